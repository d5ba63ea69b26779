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
    const cleanup = () => {
      socket.off('disconnect', onDisconnect);
      signal?.removeEventListener('abort', onAbort);
    };
    const onDisconnect = () => {
      cleanup();
      reject(new CohortError('CLIENT_DROPPED', `client disconnected during ${event}`));
    };
    const onAbort = () => {
      cleanup();
      reject(new CohortError('ROUND_DEADLINE', `${event} abandoned: round closed`));
    };
    socket.on('disconnect', onDisconnect);
    signal?.addEventListener('abort', onAbort);
    const emitter = socket.timeout(timeoutMs) as unknown as {
      emit(event: string, payload: unknown, ack: (err: Error | null, res: unknown) => void): void;
    };
    emitter.emit(event, payload, (err, res) => {
      cleanup();
      if (err)
        reject(new CohortError('ROUND_DEADLINE', `no ${event} answer within ${timeoutMs} ms`));
      else resolve(res);
    });
  });
}
