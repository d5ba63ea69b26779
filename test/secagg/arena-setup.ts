/**
 * The set-up shared by the malicious-coordinator suites (complete-graph and SecAgg+ cohorts).
 */
import { isCohortError } from '../../shared/errors';
import type { ErrorCode } from '../../shared/errors';
import type { IdentityKeyPair } from '../../shared/identity';
import type { RoundLedger, SecAggConfig } from '../../shared/secagg';
import { chooseSecAggParams } from '../../shared/secagg';
import { Arena } from './active-adversary';
import { MODEL_HASH, makeClients } from './helpers';

/** Update length of every arena round: long enough to tell updates apart, cheap to mask. */
export const VECTOR = 8;

/** n honest clients' identities and seeded inputs. */
export function inputs(n: number, seed: number) {
  return makeClients(n, VECTOR, seed).map((c) => ({
    identity: c.identity,
    input: { update: c.update, exampleCount: c.exampleCount, trainLoss: 0.5 },
  }));
}

/**
 * An arena of `honest` real client sessions (and the coordinator's own `corrupt` identities)
 * with the default parameters for that cohort size.
 */
export function arena(options: {
  honest: number;
  corrupt?: IdentityKeyPair[];
  seed?: number;
  roundId?: string;
  pinned?: Uint8Array[];
  ledger?: (id: string) => RoundLedger | undefined;
  experiment?: string;
  registrarKey?: Uint8Array;
  certificates?: ReadonlyMap<string, Uint8Array>;
  /** The wire width (default 32); 'auto' is the coordinator's default. */
  modulusBits?: 'auto' | 16 | 24 | 32;
  /** What a lying coordinator sends one honest client instead of the round's config. */
  configFor?: (clientId: string) => SecAggConfig | undefined;
}): Arena {
  const n = options.honest + (options.corrupt?.length ?? 0);
  const honest = inputs(options.honest, options.seed ?? 1).map((h) => ({
    ...h,
    ...(options.pinned ? { knownIdentityKeys: options.pinned } : {}),
  }));
  return new Arena({
    roundId: options.roundId ?? 'r-active',
    modelHash: MODEL_HASH,
    config: arenaConfig(n, options.modulusBits),
    honest,
    ...(options.corrupt ? { corrupt: options.corrupt } : {}),
    ...(options.ledger ? { ledger: options.ledger } : {}),
    ...(options.experiment ? { experiment: options.experiment } : {}),
    ...(options.registrarKey ? { registrarKey: options.registrarKey } : {}),
    ...(options.certificates ? { certificates: options.certificates } : {}),
    ...(options.configFor ? { configFor: options.configFor } : {}),
  });
}

/** The arena's config for a cohort of n at a wire width (default 32 bits). */
export function arenaConfig(n: number, modulusBits: 'auto' | 16 | 24 | 32 = 32): SecAggConfig {
  return chooseSecAggParams(n, {
    vectorLength: VECTOR,
    clipRange: 1,
    weightCap: 1000,
    modulusBits,
  });
}

/** Asserts a CohortError with `code`, printing the actual error when it is something else. */
export function expectCode(error: unknown, code: ErrorCode): void {
  expect(isCohortError(error, code) ? code : error).toBe(code);
}

/** Runs the honest protocol over `ids` (everyone shown the same lists) up to the end. */
export async function honestRun(a: Arena, ids: string[]): Promise<void> {
  await a.advertiseAll();
  const all = a.ids;
  for (const id of ids) await a.shareKeys(id, all);
  for (const id of ids) await a.maskedInput(id, all);
  for (const id of ids) await a.consistencyCheck(id, all);
  for (const id of ids) await a.unmasking(id);
}

/**
 * The split-view attack on an arena of two honest clients and the coordinator's colluders:
 * everyone advertises, shares keys and sends a masked input, then the victim is shown alive
 * to itself and dead to the other honest client, and both are asked to unmask. Returns the
 * victim, whose update the oracle can rebuild only beyond the documented bound.
 */
export async function splitViewAttack(a: Arena): Promise<string> {
  const [victim, other] = [...a.honest.keys()] as [string, string];
  await a.advertiseAll();
  const all = a.ids;
  for (const id of [victim, other]) await a.shareKeys(id, all);
  for (const id of [victim, other]) await a.maskedInput(id, all);
  await a.consistencyCheck(victim, all);
  await a.consistencyCheck(
    other,
    all.filter((id) => id !== victim),
  );
  await a.unmasking(victim);
  await a.unmasking(other);
  return victim;
}
