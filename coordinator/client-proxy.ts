/**
 * The one seam between the round phases and a client, in the manner of Flower's ClientProxy:
 * a phase asks a client to fit, evaluate or answer a secure-aggregation phase, with a deadline
 * and an abort signal, and never touches a socket. Today every client is a socket.io
 * connection of this process ({@link socketClientProxy}); a client held by another coordinator
 * process, or a socket-free simulation, would implement the same interface.
 */
import { CohortError } from '../shared/errors';
import type { SecAggEnvelope, ServerToClientEvents } from '../shared/protocol/events';
import type { EvaluateIns, FitIns } from '../shared/protocol/messages';
import type { CoordinatorSocket } from './client-registry';
import type { FoldTarget } from './cluster/partial-sums';
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
  /**
   * MaskedInput requests only: the round's masked-input shape. A client held by another
   * process of a cluster has its answer folded there into a partial sum, and only the
   * signature comes back; a local client ignores it.
   */
  fold?: FoldTarget;
}

/**
 * Sends one request over a socket and waits for its acknowledgement, failing fast when the
 * client disconnects (socket.io alone would wait for the whole timeout) and when the round
 * is aborted. An answer above `maxAnswerBytes` rejects with MESSAGE_INVALID and closes the
 * connection, as an oversized client event does: a client that pads answers is not honest,
 * and socket.io's maxHttpBufferSize alone would let every answer weigh a whole plain update.
 * The answer is returned as `unknown`: the caller validates it.
 */
function requestFromClient<E extends RequestEvent>(
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

/** A fit request's options: the limits, and where the client's progress reports go. */
export interface FitRequestOptions extends RequestLimits {
  /** Each progress report the client sends while it trains (unvalidated). */
  onProgress?: (progress: unknown) => void;
}

/**
 * How the round phases reach one client. Every answer comes back as `unknown` for the phase
 * to validate; failures reject with a CohortError (CLIENT_DROPPED, ROUND_DEADLINE,
 * MESSAGE_INVALID for an oversized answer).
 */
export interface ClientProxy {
  /** Still reachable (a request to an unreachable client fails at once). */
  readonly connected: boolean;
  fit(ins: FitIns, options: FitRequestOptions): Promise<unknown>;
  evaluate(ins: EvaluateIns, limits: RequestLimits): Promise<unknown>;
  secagg(envelope: SecAggEnvelope, limits: RequestLimits): Promise<unknown>;
  /** Tells the client the round closed without its update, so it stops training. */
  cancel(roundId: string, reason: string): void;
}

/** The {@link ClientProxy} of a client connected to this process over socket.io. */
export function socketClientProxy(socket: CoordinatorSocket): ClientProxy {
  return {
    get connected() {
      return socket.connected;
    },
    async fit(ins, options) {
      const onProgress = options.onProgress;
      if (onProgress) socket.on('progress', onProgress);
      try {
        return await requestFromClient(socket, 'fit', ins, options);
      } finally {
        if (onProgress) socket.off('progress', onProgress);
      }
    },
    evaluate: (ins, limits) => requestFromClient(socket, 'evaluate', ins, limits),
    secagg: (envelope, limits) => requestFromClient(socket, 'secagg', envelope, limits),
    cancel(roundId, reason) {
      if (socket.connected) socket.emit('cancel', { roundId, reason });
    },
  };
}
