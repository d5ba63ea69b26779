import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { CohortError } from '../shared/errors';
import type { JoinProofContext } from '../shared/join-proof';
import { verifyJoinProof } from '../shared/join-proof';
import type { RegisterIns } from '../shared/protocol/messages';
import { parsePublicKeyList } from '../shared/public-key-list';
import type { CoordinatorConfig } from './config';
import type { Logger } from './logger';
import { readConfigFile } from './read-config-file';
import { OPTIONS } from './options';

/** How a client was admitted; recorded with each enrollment (never the token itself). */
export type EnrollmentMethod = 'open' | 'join-token' | 'allowlist' | 'join-token+allowlist';

/** Who may register: checked after the client proved its key, before it counts. */
export interface EnrollmentPolicy {
  /** Whether registration needs a join proof (announced in the challenge). */
  readonly tokenRequired: boolean;
  /** What every admitted client was admitted by. */
  readonly method: EnrollmentMethod;
  /** Throws JOIN_REFUSED unless the (signature-checked) registration meets the policy. */
  admit(ins: RegisterIns, context: Omit<JoinProofContext, 'publicKey'>): void;
}

/**
 * The policy for a join token and an allowlist of hex public keys (either may be absent: no
 * token and no list admit every client that proves its key, as before enrollment existed).
 */
export function enrollmentPolicy(
  joinToken: string | null,
  allowedKeys: readonly string[] | null,
): EnrollmentPolicy {
  const allowed = allowedKeys ? new Set(allowedKeys.map((k) => k.toLowerCase())) : null;
  const method: EnrollmentMethod =
    joinToken !== null && allowed
      ? 'join-token+allowlist'
      : joinToken !== null
        ? 'join-token'
        : allowed
          ? 'allowlist'
          : 'open';
  return {
    tokenRequired: joinToken !== null,
    method,
    admit(ins, context) {
      if (allowed && !allowed.has(ins.publicKey.toLowerCase())) {
        throw new CohortError(
          'JOIN_REFUSED',
          `client key ${ins.publicKey} is not on this coordinator's allowlist (--allow-clients)`,
        );
      }
      if (joinToken === null) return;
      if (ins.joinProof === undefined) {
        throw new CohortError(
          'JOIN_REFUSED',
          'this coordinator admits only clients with its join token: start the client with --join-token-file FILE',
        );
      }
      if (!verifyJoinProof(joinToken, { ...context, publicKey: ins.publicKey }, ins.joinProof)) {
        throw new CohortError('JOIN_REFUSED', 'the join token proof is wrong (another token?)');
      }
    },
  };
}

/** Reads the token file, or creates one holding a fresh random token (owner-only). */
async function readOrCreateTokenFile(path: string, log: Logger): Promise<string> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new CohortError(
        'CONFIG_INVALID',
        `cannot read join token file ${path}: ${(error as Error).message}`,
      );
    }
    const token = randomBytes(32).toString('base64url');
    await mkdir(dirname(path), { recursive: true, mode: 0o700 });
    await writeFile(path, token + '\n', { mode: 0o600, flag: 'wx' });
    await chmod(path, 0o600);
    log.info(`created join token file ${path}: give it to your clients (--join-token-file)`);
    return token;
  }
  const token = text.trim();
  checkToken(token, path);
  if (((await stat(path)).mode & 0o077) !== 0) {
    log.warn(`join token file ${path} is readable by other users: chmod 600 it`);
  }
  return token;
}

function checkToken(token: string, source: string): void {
  const type = OPTIONS.joinToken.type;
  if (!type.pattern.test(token)) {
    throw new CohortError('CONFIG_INVALID', `join token in ${source}: ${type.patternHelp}`);
  }
}

/** Reads a join token file for a client: it must exist and hold a valid token. */
export async function readJoinTokenFile(path: string): Promise<string> {
  const token = (await readConfigFile(path, 'join token file')).trim();
  checkToken(token, path);
  return token;
}

/** The coordinator's policy from its config: token (given or from its file) and allowlist. */
export async function loadEnrollmentPolicy(
  config: CoordinatorConfig,
  log: Logger,
): Promise<EnrollmentPolicy> {
  const token =
    config.joinToken ??
    (config.joinTokenFile !== undefined
      ? await readOrCreateTokenFile(config.joinTokenFile, log)
      : null);
  let allowed: string[] | null = null;
  if (config.allowClients !== undefined) {
    const text = await readConfigFile(config.allowClients, 'allowlist');
    allowed = parsePublicKeyList(text, config.allowClients);
  }
  const policy = enrollmentPolicy(token, allowed);
  if (policy.method !== 'open') {
    const parts = [
      ...(token !== null ? ['its join token'] : []),
      ...(allowed ? [`one of ${allowed.length} allowed keys`] : []),
    ];
    log.info(`enrollment: clients need ${parts.join(' and ')}`);
  }
  return policy;
}
