import type { Socket } from 'socket.io-client';
import { CohortError } from '../shared/errors';

/**
 * The coordinator URLs of `--server`: one, or several separated by commas (the processes of
 * one cluster). Each must be an http(s) URL.
 */
export function coordinatorUrls(server: string): string[] {
  const urls = server
    .split(',')
    .map((u) => u.trim())
    .filter((u) => u !== '');
  if (urls.length === 0) throw new CohortError('CONFIG_INVALID', '--server names no coordinator');
  for (const url of urls) {
    if (!/^https?:\/\/[^\s/]+/.test(url)) {
      throw new CohortError('CONFIG_INVALID', `--server: ${url} is not an http:// or https:// URL`);
    }
  }
  return urls;
}

/**
 * Makes a socket fail over between the processes of a cluster: every reconnection attempt
 * goes to the next URL in turn, so a client of a process that died joins another one (and
 * registers again there) within one reconnection delay. socket.io-client has no option for
 * several URLs; its manager opens each new connection to its `uri`, so that is what turns.
 */
export function rotateOnReconnect(socket: Socket, urls: readonly string[]): void {
  if (urls.length < 2) return;
  const manager = socket.io;
  const target = manager as unknown as { uri: string };
  let index = Math.max(0, urls.indexOf(target.uri));
  manager.on('reconnect_attempt', () => {
    index = (index + 1) % urls.length;
    target.uri = urls[index]!;
  });
}
