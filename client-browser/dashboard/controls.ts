import { CONTROL_ACTIONS } from '../../shared/protocol/web';
import type { ControlAction, DashboardSnapshot } from '../../shared/protocol/web';
import { postControl } from './api';
import { byTestId, setText } from './dom';
import type { ControlOutcome } from './hook';

/** How long the stop button stays armed after the first click. */
const STOP_CONFIRM_MS = 5_000;

const STOP_LABEL = 'Stop';
const STOP_ARMED_LABEL = 'Click again to stop';

/**
 * The admin panel: pause, resume and stop, each a POST with the admin token typed here. The
 * token stays in this object's memory (the input's value), never in storage or the URL, since
 * it can end the run. Stop takes two clicks (the first arms the button for a few seconds)
 * rather than a confirm() dialog, which would block the page and its live updates. The
 * coordinator decides what is allowed; refusals are shown as it words them.
 */
export class Controls {
  private readonly tokenInput = byTestId<HTMLInputElement>('admin-token');
  private readonly result = byTestId('control-result');
  private readonly buttons = new Map<ControlAction, HTMLButtonElement>();
  private stopArmedUntil = 0;
  private disarmTimer: ReturnType<typeof setTimeout> | null = null;
  private busy = false;

  /** @param onOutcome told how every request ended (the test hook). */
  constructor(private readonly onOutcome: (outcome: ControlOutcome) => void) {
    for (const action of CONTROL_ACTIONS) {
      const button = byTestId<HTMLButtonElement>(`control-${action}`);
      this.buttons.set(action, button);
      button.addEventListener('click', () => void this.click(action));
    }
  }

  /** Shows the panel when the coordinator has an admin token configured, else the note. */
  render(snapshot: DashboardSnapshot): void {
    byTestId('controls').hidden = !snapshot.controls;
    byTestId('controls-off').hidden = snapshot.controls;
    const final =
      snapshot.status === 'finished' ||
      snapshot.status === 'stopped' ||
      snapshot.status === 'failed';
    for (const button of this.buttons.values()) {
      button.classList.toggle('muted-button', final);
    }
  }

  private async click(action: ControlAction): Promise<void> {
    if (this.busy) return;
    if (action === 'stop' && Date.now() > this.stopArmedUntil) {
      this.armStop();
      return;
    }
    this.disarmStop();
    this.busy = true;
    for (const button of this.buttons.values()) button.disabled = true;
    this.show('pending', `${action}…`);
    try {
      const answer = await postControl(action, this.tokenInput.value.trim());
      const outcome: ControlOutcome = answer.ok
        ? { action, ok: true, status: answer.status, code: null, message: answer.message }
        : {
            action,
            ok: false,
            status: answer.status,
            code: answer.code,
            message: answer.message,
          };
      this.show(
        outcome.ok ? 'true' : 'false',
        outcome.ok
          ? `${action}: ${outcome.message}`
          : `${action} refused: ${outcome.code ?? 'ERROR'} — ${outcome.message}`,
      );
      this.onOutcome(outcome);
    } finally {
      this.busy = false;
      for (const button of this.buttons.values()) button.disabled = false;
    }
  }

  private armStop(): void {
    const stop = this.buttons.get('stop');
    if (stop === undefined) return;
    this.stopArmedUntil = Date.now() + STOP_CONFIRM_MS;
    stop.dataset.armed = 'true';
    stop.classList.add('armed');
    setText(stop, STOP_ARMED_LABEL);
    this.show('pending', 'Stopping ends the run for good: click the button again to confirm.');
    if (this.disarmTimer !== null) clearTimeout(this.disarmTimer);
    this.disarmTimer = setTimeout(() => {
      this.disarmStop();
      if (this.result.dataset.ok === 'pending') this.show('', '');
    }, STOP_CONFIRM_MS);
  }

  private disarmStop(): void {
    this.stopArmedUntil = 0;
    if (this.disarmTimer !== null) clearTimeout(this.disarmTimer);
    this.disarmTimer = null;
    const stop = this.buttons.get('stop');
    if (stop === undefined) return;
    delete stop.dataset.armed;
    stop.classList.remove('armed');
    setText(stop, STOP_LABEL);
  }

  /** `ok` is 'true', 'false', 'pending' or '' (nothing to show), kept as data-ok. */
  private show(ok: string, text: string): void {
    this.result.dataset.ok = ok;
    setText(this.result, text);
  }
}
