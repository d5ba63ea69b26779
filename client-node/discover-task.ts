import { io } from 'socket.io-client';
import { CohortError } from '../shared/errors';
import { untrustedCertificate } from './tls-failure';
import { coordinatorUrls, rotateOnReconnect } from './coordinator-urls';
import { TASK_NAMES, getModelSpec } from '../shared/model/registry';
import type { TaskName } from '../shared/model/registry';
import { specHash } from '../shared/model/spec-hash';
import { challengeSchema } from '../shared/protocol/messages';

/** What a coordinator announces about its task before anyone registers. */
export interface AnnouncedTask {
  readonly task: TaskName;
  readonly modelSpecHash: string;
}

/**
 * Asks a coordinator which task it runs, from the challenge it sends every connection, so a
 * client started without `--task` loads data of the right shape. Waits (reconnecting) until
 * the coordinator answers. The announcement is unsigned, which is fine: registration still
 * checks the model hash and the coordinator's signature.
 * @throws CohortError TASK_MISMATCH when the coordinator names no task, one this client does
 *   not know, or another model under a known name (a different Cohort version).
 */
export async function discoverTask(
  /** A coordinator URL, or several separated by commas (a cluster). */
  server: string,
  options: { reconnectDelayMs?: number; ca?: string } = {},
): Promise<AnnouncedTask> {
  const urls = coordinatorUrls(server);
  const socket = io(urls[0], {
    forceNew: true,
    transports: ['websocket'],
    reconnection: true,
    reconnectionAttempts: Infinity,
    reconnectionDelay: options.reconnectDelayMs ?? 1_000,
    reconnectionDelayMax: 10_000,
    ...(options.ca !== undefined ? { ca: options.ca } : {}),
  });
  // A cluster's first URL may be the process that is down: ask the next ones in turn.
  rotateOnReconnect(socket, urls);
  try {
    const raw = await new Promise<unknown>((resolve, reject) => {
      socket.once('challenge', resolve);
      socket.on('connect_error', (error) => {
        const untrusted = untrustedCertificate(error);
        if (untrusted) reject(untrusted);
      });
    });
    const challenge = challengeSchema.safeParse(raw);
    if (!challenge.success) {
      throw new CohortError('MESSAGE_INVALID', `the coordinator's challenge is malformed`);
    }
    const { task, modelSpecHash } = challenge.data;
    if (task === undefined || modelSpecHash === undefined) {
      throw new CohortError(
        'TASK_MISMATCH',
        'the coordinator does not announce its task (an older version?): pass --task',
      );
    }
    if (!(TASK_NAMES as readonly string[]).includes(task)) {
      throw new CohortError(
        'TASK_MISMATCH',
        `the coordinator runs task "${task}", which this client does not know (it knows ${TASK_NAMES.join(', ')})`,
      );
    }
    const known = task as TaskName;
    if ((await specHash(getModelSpec(known))) !== modelSpecHash) {
      throw new CohortError(
        'TASK_MISMATCH',
        `the coordinator's "${task}" model differs from this client's (another Cohort version?)`,
      );
    }
    return { task: known, modelSpecHash };
  } finally {
    socket.disconnect();
  }
}
