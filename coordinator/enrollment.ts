import { fromHex } from '../shared/bytes';
import { verifyCertificate } from '../shared/registrar';
import { CohortError } from '../shared/errors';
import type { JoinProofContext } from '../shared/join-proof';
import { verifyJoinProof } from '../shared/join-proof';
import type { RegisterIns } from '../shared/protocol/messages';
import { parsePublicKeyList } from '../shared/public-key-list';
import type { CoordinatorConfig } from './config';
import type { Logger } from './logger';
import { readConfigFile } from './read-config-file';
import { checkToken, resolveToken } from './token-file';

/** How a client was admitted; recorded with each enrollment (never the token itself). */
export type EnrollmentMethod =
  | 'open'
  | 'join-token'
  | 'allowlist'
  | 'join-token+allowlist'
  | 'registrar'
  | `${'join-token' | 'allowlist' | 'join-token+allowlist'}+registrar`;

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
  registrarKey: Uint8Array | null = null,
): EnrollmentPolicy {
  const allowed = allowedKeys ? new Set(allowedKeys.map((k) => k.toLowerCase())) : null;
  const base =
    joinToken !== null && allowed
      ? 'join-token+allowlist'
      : joinToken !== null
        ? 'join-token'
        : allowed
          ? 'allowlist'
          : 'open';
  const method: EnrollmentMethod =
    registrarKey === null ? base : base === 'open' ? 'registrar' : `${base}+registrar`;
  return {
    tokenRequired: joinToken !== null,
    method,
    admit(ins, context) {
      if (
        registrarKey !== null &&
        !verifyCertificate(
          registrarKey,
          fromHex(ins.publicKey),
          ins.certificate !== undefined ? fromHex(ins.certificate) : undefined,
        )
      ) {
        throw new CohortError(
          'JOIN_REFUSED',
          ins.certificate === undefined
            ? 'this coordinator admits only identities certified by its registrar: start the client with --certificate FILE (cohort keys certify)'
            : "the identity's certificate is not from this coordinator's registrar (--registrar-key)",
        );
      }
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

/** Reads a join token file for a client: it must exist and hold a valid token. */
export async function readJoinTokenFile(path: string): Promise<string> {
  const token = (await readConfigFile(path, 'join token file')).trim();
  checkToken(token, 'join token', path);
  return token;
}

/** The coordinator's policy from its config: token (given or from its file) and allowlist. */
export async function loadEnrollmentPolicy(
  config: CoordinatorConfig,
  log: Logger,
): Promise<EnrollmentPolicy> {
  const token = await resolveToken(
    config.joinToken,
    config.joinTokenFile,
    { what: 'join token', giveTo: 'give it to your clients (--join-token-file)' },
    log,
  );
  let allowed: string[] | null = null;
  if (config.allowClients !== undefined) {
    const text = await readConfigFile(config.allowClients, 'allowlist');
    allowed = parsePublicKeyList(text, config.allowClients);
  }
  const registrar =
    config.registrarKey !== undefined ? fromHex(config.registrarKey.toLowerCase()) : null;
  const policy = enrollmentPolicy(token, allowed, registrar);
  if (policy.method !== 'open') {
    const parts = [
      ...(token !== null ? ['its join token'] : []),
      ...(allowed ? [`one of ${allowed.length} allowed keys`] : []),
      ...(registrar ? ['a certificate from the pinned registrar'] : []),
    ];
    log.info(`enrollment: clients need ${parts.join(' and ')}`);
  }
  return policy;
}
