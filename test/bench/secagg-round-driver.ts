/**
 * One secure-aggregation round and one plain round over the same simulated clients, with
 * every party's cost measured separately. runInMemorySecAggRound cannot say which side spent
 * the time, so this drives SecAggClientSession and SecAggServerRound directly, in the same
 * order: each client's phase call and each coordinator call runs inside its own CPU and wall
 * timer, so client work, coordinator work and bytes sent are attributed to the party that
 * does it. Clients run one after another in this process; updates are regenerated from a
 * seed outside the timers (a 1.2M-parameter cohort of 200 would not fit in memory at once).
 */
import { performance } from 'node:perf_hooks';
import nacl from 'tweetnacl';
import { StreamingWeightedMean } from '../../shared/aggregation/streaming-weighted-mean';
import { isCohortError } from '../../shared/errors';
import type { IdentityKeyPair } from '../../shared/identity';
import { clientIdFromPublicKey } from '../../shared/identity';
import { createRng, mixSeeds } from '../../shared/random';
import type {
  GraphParams,
  MaskRemover,
  SecAggConfig,
  SecAggInput,
  SecAggPhase,
  SecAggResult,
} from '../../shared/secagg';
import { SECAGG_PHASES, SecAggClientSession, SecAggServerRound } from '../../shared/secagg';
import { bytesToFloats, floatsToBytes } from '../../shared/weights/codec';
import { wireSize } from './wire-size';

/** A simulated client: a deterministic identity and update, and when it goes silent. */
export interface BenchClient {
  identity: IdentityKeyPair;
  clientId: string;
  exampleCount: number;
  /**
   * Its local train loss, in [0, UPDATE_RANGE): travels inside the masked vector, clipped to
   * [0, clipRange] like the update, so it is kept inside the clip range as the update is.
   */
  trainLoss: number;
  /** Seed of its update vector (see {@link makeUpdate}). */
  updateSeed: number;
  /** Goes silent from this phase on (never answers it nor later ones). */
  dropAt?: SecAggPhase;
}

/** CPU and wall time spent by one party, in milliseconds. */
export interface Cost {
  cpuMs: number;
  wallMs: number;
}

/** What one client spent and sent during a round. */
export interface ClientCost extends Cost {
  /** Estimated socket.io bytes of all its responses (see wire-size.ts). */
  bytesSent: number;
  /** Phases it answered (5 = the whole secure round, 1 = the plain round). */
  phasesAnswered: number;
}

/** The measured secure round; `abortCode` is set instead of `result` when it aborted. */
export interface SecureRoundMeasurement {
  result?: SecAggResult;
  abortCode?: string;
  /** k, t and the colluder bound the coordinator derived from the advertisements. */
  params?: GraphParams;
  clients: Map<string, ClientCost>;
  coordinator: Cost;
  /**
   * The part of `coordinator` spent in finish(): rebuilding seeds and removing masks (CPU of
   * every thread, so worker threads count; wall time is what the round waits).
   */
  coordinatorUnmask: Cost;
  /** Sum of all timed segments: the round as a sequential simulation runs it. */
  roundWallMs: number;
}

/** The measured plain round; `mean` is the reference the secure result must match. */
export interface PlainRoundMeasurement {
  mean: Float32Array;
  totalWeight: number;
  /** Example-weighted mean of the contributors' train losses, as the plain path computes it. */
  meanTrainLoss: number;
  contributors: number;
  clients: Map<string, ClientCost>;
  coordinator: Cost;
  roundWallMs: number;
}

/** Coordinator id and experiment the simulated round is bound to (any well-formed values). */
export const BENCH_COORDINATOR_ID = 'b'.repeat(32);
export const BENCH_EXPERIMENT = 'bench-secagg';

/** Update elements are uniform in [-UPDATE_RANGE, UPDATE_RANGE): inside any clip range >= it. */
export const UPDATE_RANGE = 0.05;

/**
 * `n` clients with identities, example counts (10..109), train losses and update seeds derived
 * from `seed`, so ids, the SecAgg+ graph and the chosen dropouts are the same on every run.
 */
export function makeBenchClients(n: number, seed: number): BenchClient[] {
  const rng = createRng(seed);
  return Array.from({ length: n }, (_, i) => {
    const keySeed = new Uint8Array(32);
    for (let b = 0; b < keySeed.length; b++) keySeed[b] = rng.int(256);
    const pair = nacl.sign.keyPair.fromSeed(keySeed);
    const identity = { publicKey: pair.publicKey, secretKey: pair.secretKey };
    return {
      identity,
      clientId: clientIdFromPublicKey(identity.publicKey),
      exampleCount: 10 + rng.int(100),
      trainLoss: UPDATE_RANGE * createRng(mixSeeds(seed, i, 1)).next(),
      updateSeed: mixSeeds(seed, i),
    };
  });
}

/** The update of a client: `length` floats uniform in [-UPDATE_RANGE, UPDATE_RANGE). */
export function makeUpdate(client: BenchClient, length: number): Float32Array {
  const rng = createRng(client.updateSeed);
  const out = new Float32Array(length);
  for (let i = 0; i < length; i++) out[i] = (2 * rng.next() - 1) * UPDATE_RANGE;
  return out;
}

/** Whether `client` has gone silent by `phase`. */
export function isSilent(client: BenchClient, phase: SecAggPhase): boolean {
  return (
    client.dropAt !== undefined &&
    SECAGG_PHASES.indexOf(client.dropAt) <= SECAGG_PHASES.indexOf(phase)
  );
}

/** Whether the client's update reaches the coordinator (it did not drop before sending it). */
export function sendsUpdate(client: BenchClient): boolean {
  return !isSilent(client, 'maskedInput');
}

/** Wall time of a whole simulated round: the sum of every party's timed segments. */
interface RoundClock {
  wallMs: number;
}

/** Accumulates CPU (process.cpuUsage: all threads, so WebCrypto's pool too) and wall time. */
class Meter {
  readonly cost: Cost = { cpuMs: 0, wallMs: 0 };

  async time<T>(operation: () => T | Promise<T>, round?: RoundClock): Promise<T> {
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    try {
      return await operation();
    } finally {
      const wallMs = performance.now() - t0;
      const cpu = process.cpuUsage(cpu0);
      this.cost.cpuMs += (cpu.user + cpu.system) / 1000;
      this.cost.wallMs += wallMs;
      if (round) round.wallMs += wallMs;
    }
  }
}

/**
 * Runs one secure round with `clients` under `config`. Protocol aborts (e.g. too few share
 * holders left) are reported as `abortCode`; any other failure, a client refusing an honest
 * coordinator, or the coordinator rejecting an honest client, throws: the bench must not time
 * a broken protocol.
 */
export async function runTimedSecureRound(
  clients: readonly BenchClient[],
  config: SecAggConfig,
  roundId: string,
  modelHash: string,
  removeMasks?: MaskRemover,
): Promise<SecureRoundMeasurement> {
  const round: RoundClock = { wallMs: 0 };
  const server = new Meter();
  const unmask = new Meter();
  const byId = new Map(clients.map((c) => [c.clientId, c] as const));
  const meters = new Map(clients.map((c) => [c.clientId, new Meter()] as const));
  const sent = new Map<string, { bytes: number; phases: number }>(
    clients.map((c) => [c.clientId, { bytes: 0, phases: 0 }]),
  );
  const coordinator = await server.time(
    () =>
      new SecAggServerRound({
        coordinatorId: BENCH_COORDINATOR_ID,
        experiment: BENCH_EXPERIMENT,
        roundId,
        modelHash,
        config,
        cohort: clients.map((c) => ({
          clientId: c.clientId,
          identityPublicKey: c.identity.publicKey,
        })),
        ...(removeMasks ? { removeMasks } : {}),
      }),
    round,
  );
  // A session reads its input only at MaskedInput (the length check at AdvertiseKeys reads
  // only its length): until then every input holds one shared zero vector, and the client's
  // real update is generated outside the timers right before that phase and let go right
  // after (a 1.2M-parameter cohort of 200 would not fit in memory at once).
  const placeholder = new Float32Array(config.vectorLength);
  const inputs = new Map<string, SecAggInput>();
  const sessions = new Map<string, SecAggClientSession>();
  for (const c of clients) {
    const input: SecAggInput = {
      update: placeholder,
      exampleCount: c.exampleCount,
      trainLoss: c.trainLoss,
    };
    inputs.set(c.clientId, input);
    const session = await meters.get(c.clientId)!.time(
      () =>
        new SecAggClientSession({
          identity: c.identity,
          coordinatorId: BENCH_COORDINATOR_ID,
          experiment: BENCH_EXPERIMENT,
          roundId,
          modelHash,
          input,
        }),
      round,
    );
    sessions.set(c.clientId, session);
  }

  const exchange = async (phase: SecAggPhase, requests: Map<string, unknown>): Promise<void> => {
    for (const [id, request] of requests) {
      const client = byId.get(id)!;
      if (isSilent(client, phase)) continue;
      const input = inputs.get(id)!;
      if (phase === 'maskedInput') input.update = makeUpdate(client, config.vectorLength);
      const session = sessions.get(id)!;
      const response = await meters.get(id)!.time(() => session.answer(phase, request), round);
      input.update = placeholder;
      const tally = sent.get(id)!;
      tally.bytes += wireSize(response).totalBytes;
      tally.phases += 1;
      await server.time(() => coordinator.receive(phase, id, response), round);
    }
  };

  const measurement = (): Omit<SecureRoundMeasurement, 'result' | 'abortCode'> => ({
    clients: new Map(
      clients.map((c) => {
        const cost = meters.get(c.clientId)!.cost;
        const tally = sent.get(c.clientId)!;
        return [c.clientId, { ...cost, bytesSent: tally.bytes, phasesAnswered: tally.phases }];
      }),
    ),
    coordinator: {
      cpuMs: server.cost.cpuMs + unmask.cost.cpuMs,
      wallMs: server.cost.wallMs + unmask.cost.wallMs,
    },
    coordinatorUnmask: unmask.cost,
    roundWallMs: round.wallMs,
    ...(coordinator.roundView ? { params: coordinator.roundView.params } : {}),
  });

  try {
    const everyone = await server.time(
      () => new Map(clients.map((c) => [c.clientId, coordinator.advertiseKeysRequest()] as const)),
      round,
    );
    await exchange('advertiseKeys', everyone);
    await exchange('shareKeys', await server.time(() => coordinator.closeAdvertiseKeys(), round));
    await exchange('maskedInput', await server.time(() => coordinator.closeShareKeys(), round));
    const check = await server.time(() => coordinator.closeMaskedInput(), round);
    await exchange('consistencyCheck', check);
    const reveal = await server.time(() => coordinator.closeConsistencyCheck(), round);
    await exchange('unmasking', reveal);
    const result = await unmask.time(() => coordinator.finish(), round);
    return { result, ...measurement() };
  } catch (error) {
    if (isCohortError(error) && error.code === 'SECAGG_BELOW_THRESHOLD') {
      return { abortCode: error.code, ...measurement() };
    }
    throw error;
  }
}

/**
 * The same cohort without secure aggregation, as the plain fit path does it: each client whose
 * update would reach the coordinator encodes it (floatsToBytes), the coordinator copies the
 * bytes (as message validation does), decodes them (bytesToFloats) and folds them into a
 * StreamingWeightedMean.
 */
export async function runTimedPlainRound(
  clients: readonly BenchClient[],
  length: number,
): Promise<PlainRoundMeasurement> {
  const round: RoundClock = { wallMs: 0 };
  const server = new Meter();
  const mean = await server.time(() => new StreamingWeightedMean(length), round);
  let weightedLoss = 0;
  const costs = new Map<string, ClientCost>();
  for (const client of clients) {
    if (!sendsUpdate(client)) continue;
    const update = makeUpdate(client, length);
    const meter = new Meter();
    const message = await meter.time(
      () => ({
        numExamples: client.exampleCount,
        trainLoss: client.trainLoss,
        update: floatsToBytes(update),
      }),
      round,
    );
    costs.set(client.clientId, {
      ...meter.cost,
      bytesSent: wireSize(message).totalBytes,
      phasesAnswered: 1,
    });
    await server.time(() => {
      const received = new Uint8Array(message.update);
      mean.add(bytesToFloats(received), message.numExamples);
      weightedLoss += message.trainLoss * message.numExamples;
    }, round);
  }
  const result = await server.time(() => mean.mean(), round);
  return {
    mean: result,
    totalWeight: mean.totalWeight,
    meanTrainLoss: weightedLoss / mean.totalWeight,
    contributors: mean.count,
    clients: costs,
    coordinator: server.cost,
    roundWallMs: round.wallMs,
  };
}
