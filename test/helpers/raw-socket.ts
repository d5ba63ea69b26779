import { io } from 'socket.io-client';
import type { Socket } from 'socket.io-client';

/** The coordinator's greeting, as a raw client sees it. */
export interface RawChallenge {
  nonce: string;
  coordinatorId: string;
}

/**
 * A bare socket.io connection that has received the coordinator's challenge and does
 * nothing else: tests push garbage through it to probe what the coordinator tolerates.
 */
export interface RawSocket {
  socket: Socket;
  challenge: RawChallenge;
  close(): void;
}

/** Connects without registering; resolves once the challenge has arrived. */
export function connectRawSocket(url: string): Promise<RawSocket> {
  const socket = io(url, { transports: ['websocket'], reconnection: false });
  return new Promise<RawSocket>((resolve, reject) => {
    socket.once('connect_error', (error) => {
      socket.disconnect();
      reject(error);
    });
    socket.once('challenge', (challenge: RawChallenge) =>
      resolve({ socket, challenge, close: () => socket.disconnect() }),
    );
  });
}

/**
 * Emits `event` with `payload` and waits for the acknowledgement; a coordinator that drops
 * the connection instead of answering resolves as `{ disconnected: reason }`, so a test can
 * tell "refused with a code" from "hung up" from "never answered" (timeout).
 */
export function emitAndWait(
  raw: RawSocket,
  event: string,
  payload: unknown,
  timeoutMs = 5_000,
): Promise<unknown> {
  const { socket } = raw;
  return new Promise<unknown>((resolve) => {
    const onDisconnect = (reason: string) => finish({ disconnected: reason });
    const timer = setTimeout(() => finish({ timedOut: true }), timeoutMs);
    function finish(value: unknown) {
      clearTimeout(timer);
      socket.off('disconnect', onDisconnect);
      resolve(value);
    }
    socket.once('disconnect', onDisconnect);
    socket.emit(event, payload, (response: unknown) => finish(response));
  });
}
