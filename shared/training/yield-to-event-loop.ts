/**
 * Lets pending I/O run between training batches. Training is CPU-bound and otherwise starves
 * the event loop: socket.io heartbeats would time out and the client would look dead.
 */

/**
 * Resolves on a later turn of the event loop: `setImmediate` in Node (runs after pending I/O),
 * a MessageChannel message in browsers (unlike `setTimeout` and `requestAnimationFrame`, not
 * throttled to once a second or paused in background tabs), `setTimeout(0)` as a last resort.
 */
export function yieldToEventLoop(): Promise<void> {
  const g = globalThis as {
    setImmediate?: (callback: () => void) => unknown;
    MessageChannel?: typeof MessageChannel;
  };
  if (typeof g.setImmediate === 'function') {
    const setImmediateFn = g.setImmediate;
    return new Promise((resolve) => {
      setImmediateFn(resolve);
    });
  }
  if (typeof g.MessageChannel === 'function') {
    const channel = new g.MessageChannel();
    return new Promise((resolve) => {
      channel.port1.onmessage = () => {
        channel.port1.close();
        resolve();
      };
      channel.port2.postMessage(null);
    });
  }
  return new Promise((resolve) => setTimeout(resolve, 0));
}
