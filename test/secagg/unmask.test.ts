import { isCohortError } from '../../shared/errors';
import { generateIdentity } from '../../shared/identity';
import type { AdvertisedKeys, SecAggResult } from '../../shared/secagg';
import {
  IN_MEMORY_COORDINATOR_ID,
  IN_MEMORY_EXPERIMENT,
  SecAggClientSession,
  addMask,
  assertReconstructible,
  buildNeighbourGraph,
  graphSeed,
  quantizeWeightedUpdate,
  reconstructAggregate,
  splitSecret,
} from '../../shared/secagg';
import { MODEL_HASH, seededFill, smallConfig } from './helpers';

/**
 * The coordinator's unmasking step, one rule at a time on a 12-client sparse graph (k = 4,
 * t = 3): which secrets must be rebuilt, how many shares that takes, and that bad shares of
 * a masking key are caught rather than corrupting the model. Whole rounds exercise the same
 * code in round.test.ts; these are the exact boundaries.
 */

const ids = Array.from({ length: 12 }, (_, i) => (i + 1).toString(16).padStart(32, '0'));
const graph = buildNeighbourGraph(ids, 4, graphSeed(new Uint8Array(32).fill(3)));
const T = 3;
const VECTOR = 4;
const config = smallConfig(12, VECTOR);

const OWNER = ids[0]!;
const holders = graph.holdersOf(OWNER);
const neighbours = graph.neighboursOf(OWNER);
const strangers = ids.filter((id) => !holders.includes(id));

function codeOf(action: () => void): unknown {
  try {
    action();
    return 'none';
  } catch (error) {
    return isCohortError(error) ? error.code : error;
  }
}

describe('assertReconstructible', () => {
  const check = (alive: string[], confirmed: string[]) => () =>
    assertReconstructible(graph, [OWNER], new Set(alive), new Set(confirmed), T);

  it('a survivor needs t confirmed holders of its own: t pass, t - 1 do not, strangers never count', () => {
    expect(codeOf(check([OWNER], holders.slice(0, T)))).toBe('none');
    expect(codeOf(check([OWNER], [...holders.slice(0, T - 1), ...strangers]))).toBe(
      'SECAGG_BELOW_THRESHOLD',
    );
  });

  it('a dropped client with one surviving neighbour needs its holders too (its masks are in the sum)', () => {
    const alive = [neighbours[0]!];
    expect(codeOf(check(alive, holders.slice(0, T - 1)))).toBe('SECAGG_BELOW_THRESHOLD');
    expect(codeOf(check(alive, holders.slice(0, T)))).toBe('none');
  });

  it('a dropped client without surviving neighbours needs nothing', () => {
    expect(codeOf(check(strangers, []))).toBe('none');
  });

  it('checks every sharer, not only the first', () => {
    const sharers = [strangers[0]!, OWNER];
    expect(
      codeOf(() => assertReconstructible(graph, sharers, new Set([OWNER]), new Set(strangers), T)),
    ).toBe('SECAGG_BELOW_THRESHOLD');
  });
});

describe('reconstructAggregate', () => {
  const update = new Float32Array([0.5, -0.25, 0.125, 0]);
  const keys = new Map<string, AdvertisedKeys>(
    ids.map((id, i) => [
      id,
      {
        clientId: id,
        identityPublicKey: new Uint8Array(32).fill(i + 1),
        cPublicKey: new Uint8Array(32).fill(i + 50),
        sPublicKey: new Uint8Array(32).fill(i + 100),
        signature: new Uint8Array(64),
      },
    ]),
  );

  /** The owner alone survives, masked with its self mask only; `dropped` shared keys. */
  async function inputs(options: {
    dropped: string[];
    selfShares?: number;
    secretKeyShares?: Map<string, Uint8Array[]>;
  }) {
    const seed = new Uint8Array(32).fill(9);
    const accumulator = quantizeWeightedUpdate(
      { update, exampleCount: 10, trainLoss: 0.5 },
      config,
      seededFill(1),
    );
    await addMask(accumulator, seed, 1);
    const shares = await splitSecret(seed, 5, T);
    return {
      roundId: 'r-unmask',
      config,
      threshold: T,
      graph,
      accumulator,
      survivors: [OWNER],
      dropped: options.dropped,
      keys,
      selfMaskShares: new Map([[OWNER, shares.slice(0, options.selfShares ?? T)]]),
      secretKeyShares: options.secretKeyShares ?? new Map<string, Uint8Array[]>(),
    };
  }

  async function outcome(promise: Promise<SecAggResult>): Promise<unknown> {
    return promise.catch((error: unknown) => error);
  }

  it('removes the self mask and skips dropped clients none of whose masks entered the sum', async () => {
    const dropped = [strangers[0]!, strangers[1]!].sort();
    const result = await reconstructAggregate(await inputs({ dropped }));
    expect(result.survivors).toEqual([OWNER]);
    expect(result.dropped).toEqual(dropped);
    expect(result.totalWeight).toBe(10);
    const step = 1 / (config.scale * 10);
    for (let i = 0; i < VECTOR; i++) {
      expect(Math.abs(result.weightedMean[i]! - update[i]!)).toBeLessThanOrEqual(step);
    }
  });

  it('refuses with t - 1 shares of a self-mask seed, naming the secret', async () => {
    const error = await outcome(
      reconstructAggregate(await inputs({ dropped: [], selfShares: T - 1 })),
    );
    expect(isCohortError(error, 'SECAGG_BELOW_THRESHOLD')).toBe(true);
    expect((error as Error).message).toMatch(/2 shares of the self-mask seed/);
  });

  it("a dropped neighbour's masking key: too few shares, or shares of another key, are refused", async () => {
    const neighbour = neighbours[0]!;
    const wrongKey = await splitSecret(new Uint8Array(32).fill(77), 5, T);
    const few = await outcome(
      reconstructAggregate(
        await inputs({
          dropped: [neighbour],
          secretKeyShares: new Map([[neighbour, wrongKey.slice(0, 2)]]),
        }),
      ),
    );
    expect(isCohortError(few, 'SECAGG_BELOW_THRESHOLD')).toBe(true);
    expect((few as Error).message).toMatch(/2 shares of the masking key/);
    const bad = await outcome(
      reconstructAggregate(
        await inputs({
          dropped: [neighbour],
          secretKeyShares: new Map([[neighbour, wrongKey.slice(0, T)]]),
        }),
      ),
    );
    expect(isCohortError(bad, 'SECAGG_RECONSTRUCT')).toBe(true);
    // Caught at the key check, before any mask is removed with it (not later, as a garbled sum).
    expect((bad as Error).message).toMatch(
      /rebuilt masking key of [0-9a-f]+ does not match its public key/,
    );
  });
});

describe('SecAggClientSession options', () => {
  it('refuses a minimum cohort below 3 or not an integer (CONFIG_INVALID), accepts 3', () => {
    const session = (minParticipants: number) => () =>
      new SecAggClientSession({
        identity: generateIdentity(),
        coordinatorId: IN_MEMORY_COORDINATOR_ID,
        experiment: IN_MEMORY_EXPERIMENT,
        roundId: 'r-min',
        modelHash: MODEL_HASH,
        input: { update: new Float32Array(VECTOR), exampleCount: 1, trainLoss: 0 },
        minParticipants,
      });
    expect(codeOf(session(3))).toBe('none');
    for (const bad of [2, 0, -3, 3.5, Number.NaN]) {
      expect([bad, codeOf(session(bad))]).toEqual([bad, 'CONFIG_INVALID']);
    }
  });
});
