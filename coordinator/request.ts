import { CohortError } from '../shared/errors';
import type { ServerToClientEvents } from '../shared/protocol/events';
import type { CoordinatorSocket } from './client-registry';

type RequestEvent = 'fit' | 'evaluate' | 'secagg';

/**
 * Sends one request to a client and waits for its acknowledgement, failing fast when the
 * client disconnects (socket.io alone would wait for the whole timeout) and when the round
 * is aborted. The answer is returned as `unknown`: the caller validates it.
 */
export function requestFromClient<E extends RequestEvent>(
  socket: CoordinatorSocket,
  event: E,
  payload: Parameters<ServerToClientEvents[E]>[0],
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<unknown> {
  return new Promise<unknown>((resolve, reject) => {
    if (!socket.connected) {
      reject(new CohortError('CLIENT_DROPPED', 'client is not connected'));
      return;
    }
    let settled = false;
    const cleanup = () => {
      settled = true;
      clearTimeout(timer);
      socket.off('disconnect', onDisconnect);
      signal?.removeEventListener('abort', onAbort);
    };
    const fail = (error: CohortError) => {
      if (settled) return;
      cleanup();
      reject(error);
    };
    const onDisconnect = () =>
      fail(new CohortError('CLIENT_DROPPED', `client disconnected during ${event}`));
    const onAbort = () =>
      fail(new CohortError('ROUND_DEADLINE', `${event} abandoned: round closed`));
    // Our own timer (not socket.timeout) so a vanished client leaves no timer keeping the
    // process alive until the deadline.
    const timer = setTimeout(
      () => fail(new CohortError('ROUND_DEADLINE', `no ${event} answer within ${timeoutMs} ms`)),
      timeoutMs,
    );
    socket.on('disconnect', onDisconnect);
    signal?.addEventListener('abort', onAbort);
    const emitter = socket as unknown as {
      emit(event: string, payload: unknown, ack: (res: unknown) => void): void;
    };
    emitter.emit(event, payload, (res) => {
      if (settled) return; // a late answer after the deadline is ignored
      cleanup();
      resolve(res);
    });
  });
}
