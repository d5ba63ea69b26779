import type { ClientSessionOptions, ClientSocket } from './client-session';
import { ClientSession } from './client-session';
import type { Trainer } from './trainer';

/**
 * Starts a client session on a socket that has not connected yet, the same way on every
 * platform: the trainer is freed if the session cannot be built, the socket is closed once
 * the run is over (so a Node process can exit and a tab stops reconnecting), and only then
 * does the socket connect, so no challenge can arrive before the session listens.
 */
export function openClientSession(
  socket: ClientSocket,
  trainer: Trainer,
  options: Omit<ClientSessionOptions, 'trainer'>,
): ClientSession {
  let session: ClientSession;
  try {
    session = new ClientSession(socket, { ...options, trainer });
  } catch (error) {
    trainer.dispose();
    throw error;
  }
  session.finished.then(
    () => socket.disconnect(),
    () => socket.disconnect(),
  );
  return session;
}
