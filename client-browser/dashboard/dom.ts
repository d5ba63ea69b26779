/**
 * Small DOM helpers for the dashboard. The page's CSP forbids inline styles and scripts, so
 * everything is built with createElement and classes; text always goes in as textContent,
 * never as HTML, since names and failure reasons come from clients.
 */

/** The element with `data-testid="<id>"`; the page's markup is fixed, so a miss is a bug. */
export function byTestId<T extends HTMLElement = HTMLElement>(id: string): T {
  const element = document.querySelector<T>(`[data-testid="${id}"]`);
  if (element === null) throw new Error(`dashboard.html has no element data-testid="${id}"`);
  return element;
}

/** Sets an element's text only when it changed, so a re-render does not churn the DOM. */
export function setText(target: string | HTMLElement, text: string): void {
  const element = typeof target === 'string' ? byTestId(target) : target;
  if (element.textContent !== text) element.textContent = text;
}

/** What {@link el} may set on a new element. */
export interface ElementOptions {
  className?: string;
  text?: string;
  title?: string;
  /** Attributes, `data-*` included; a null value is skipped. */
  attrs?: Record<string, string | null>;
}

/** A new element with classes, text and attributes, and the given children appended. */
export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  options: ElementOptions = {},
  children: readonly Node[] = [],
): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  if (options.className !== undefined) element.className = options.className;
  if (options.text !== undefined) element.textContent = options.text;
  if (options.title !== undefined) element.title = options.title;
  for (const [name, value] of Object.entries(options.attrs ?? {})) {
    if (value !== null) element.setAttribute(name, value);
  }
  for (const child of children) element.appendChild(child);
  return element;
}
