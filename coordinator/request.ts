import { CohortError } from '../shared/errors';
import type { ServerToClientEvents } from '../shared/protocol/events';
import type { CoordinatorSocket } from './client-registry';
import { boundedSize } from './connection-guard';

type RequestEvent = 'fit' | 'evaluate' | 'secagg';

/** How long to wait for an answer, how large it may be, and when to give up on it. */
export interface RequestLimits {
  timeoutMs: number;
  /**
   * The largest answer accepted (see answer-limits.ts), counted as `boundedSize` does. A
   * larger one is refused before anything parses it and the client is disconnected.
   */
  maxAnswerBytes: number;
  /** Abandons the request (the round closed). */
  signal?: AbortSignal;
}

/**
 * Sends one request to a client and waits for its acknowledgement, failing fast when the
 * client disconnects (socket.io alone would wait for the whole timeout) and when the round
 * is aborted. An answer above `maxAnswerBytes` rejects with MESSAGE_INVALID and closes the
 * connection, as an oversized client event does: a client that pads answers is not honest,
 * and socket.io's maxHttpBufferSize alone would let every answer weigh a whole plain update.
 * The answer is returned as `unknown`: the caller validates it.
 */
export function requestFromClient<E extends RequestEvent>(
  socket: CoordinatorSocket,
  event: E,
  payload: Parameters<ServerToClientEvents[E]>[0],
  limits: RequestLimits,
): Promise<unknown> {
  const { timeoutMs, maxAnswerBytes, signal } = limits;
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
      if (boundedSize(res, maxAnswerBytes) > maxAnswerBytes) {
        fail(
          new CohortError(
            'MESSAGE_INVALID',
            `${event} answer is larger than ${maxAnswerBytes} bytes`,
          ),
        );
        socket.disconnect(true);
        return;
      }
      cleanup();
      resolve(res);
    });
  });
}
