/**
 * Headers on every page, asset and API answer the coordinator serves. The pages run private
 * data and long-term keys, so they load nothing from elsewhere (CSP), cannot be framed, and
 * are cross-origin isolated (COOP + COEP), which is also what lets the wasm backend use
 * threads (SharedArrayBuffer). `'wasm-unsafe-eval'` admits WebAssembly compilation only;
 * `blob:` in script-src and worker-src is what the threaded wasm binary's workers need (they
 * start from a blob: URL and import another): a blob: URL can only be minted by script
 * already running on the page, so it admits no code from elsewhere.
 */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'Content-Security-Policy':
    "default-src 'self'; script-src 'self' 'wasm-unsafe-eval' blob:; style-src 'self'; " +
    "img-src 'self' data: blob:; connect-src 'self' ws: wss:; worker-src 'self' blob:; " +
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'none'",
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
  'Cross-Origin-Resource-Policy': 'same-origin',
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
  'Referrer-Policy': 'no-referrer',
};
