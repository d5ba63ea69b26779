import { HeldUpdates, PartialSums } from '../../coordinator/cluster/partial-sums';
import { isCohortError } from '../../shared/errors';
import type { MaskedInputResponse, SimulatedSecAggClient } from '../../shared/secagg';
import { MASKED_EXTRA_ELEMENTS, runInMemorySecAggRound } from '../../shared/secagg';
import {
  MODEL_HASH,
  idOf,
  makeClients,
  maxAbsDiff,
  plainWeightedMean,
  quantizationTolerance,
  smallConfig,
} from './helpers';

/**
 * Cluster mode's hierarchical aggregation, transport-free: clients assigned to gateway
 * processes have their masked inputs folded into each gateway's partial sum (PartialSums),
 * only their signatures reach the leader's SecAggServerRound, and the partial sums are added
 * there. The result must be the very same sum as with every input at the leader, and a
 * gateway whose sum does not hold exactly what it reported must cost only its own clients.
 */

const VECTOR = 40;
const ROUND = 'round-gw';

interface Plan {
  /** Client index -> gateway name; clients not listed answer the leader directly. */
  gateways: Map<number, string>;
  /** Rewrites a gateway's partial sum before it reaches the leader (a faulty gateway). */
  tamper?: (gateway: string, partial: ReturnType<PartialSums['take']>) => unknown;
  /** Gateways whose partial sum never arrives (the process died after folding). */
  silent?: Set<string>;
}

/** Runs one round where some clients sit behind gateways; returns the report. */
async function roundThroughGateways(clients: SimulatedSecAggClient[], plan: Plan) {
  const config = smallConfig(clients.length, VECTOR);
  const target = {
    roundId: ROUND,
    elements: VECTOR + MASKED_EXTRA_ELEMENTS,
    modulusBits: config.modulusBits,
  };
  const sums = new Map<string, PartialSums>();
  const gatewayOf = new Map([...plan.gateways].map(([i, g]) => [idOf(clients[i]!), g]));
  const rejections: unknown[] = [];
  let maskedAnswers = 0;
  const expectedAnswers = clients.filter((c) => c.dropAt === undefined).length;
  const report = await runInMemorySecAggRound({
    roundId: ROUND,
    modelHash: MODEL_HASH,
    config,
    clients,
    hooks: {
      deliverResponse: async (phase, clientId, response, server) => {
        if (phase !== 'maskedInput') return true;
        maskedAnswers++;
        const gateway = gatewayOf.get(clientId);
        if (gateway !== undefined) {
          const answer = response as MaskedInputResponse;
          const partial = sums.get(gateway) ?? new PartialSums();
          sums.set(gateway, partial);
          partial.fold(target, clientId, answer.maskedInput);
          await server.receiveFoldedMaskedInput(clientId, gateway, {
            roundId: answer.roundId,
            signature: answer.signature,
          });
        } else {
          await server.receiveMaskedInput(clientId, response);
        }
        // Once the phase's last answer is in, each gateway hands over its partial sum.
        if (maskedAnswers === expectedAnswers) {
          for (const [gateway, partial] of sums) {
            if (plan.silent?.has(gateway)) continue;
            const taken = partial.take(ROUND);
            try {
              server.foldPartialSum(gateway, plan.tamper?.(gateway, taken) ?? taken);
            } catch (error) {
              rejections.push(error);
            }
          }
        }
        return false;
      },
    },
  });
  return { report, config, rejections };
}

describe('gateway partial sums', () => {
  test('two gateways and the leader: the same weighted mean as one accumulator, bit for bit', async () => {
    const clients = makeClients(7, VECTOR, 11);
    const direct = await runInMemorySecAggRound({
      roundId: ROUND,
      modelHash: MODEL_HASH,
      config: smallConfig(7, VECTOR),
      clients: makeClients(7, VECTOR, 11),
    });
    expect(direct.error).toBeUndefined();
    const split = await roundThroughGateways(clients, {
      gateways: new Map([
        [0, 'gw-a'],
        [1, 'gw-a'],
        [2, 'gw-b'],
        [3, 'gw-b'],
        [4, 'gw-b'],
      ]),
    });
    expect(split.report.error).toBeUndefined();
    expect(split.report.result!.survivors).toEqual(direct.result!.survivors);
    expect([...split.report.result!.weightedMean]).toEqual([...direct.result!.weightedMean]);
  });

  test('a gateway whose sum leaves out an input it reported: its clients drop, the others are summed', async () => {
    const clients = makeClients(8, VECTOR, 12);
    const gateways = new Map([
      [0, 'honest'],
      [1, 'honest'],
      [2, 'faulty'],
      [3, 'faulty'],
    ]);
    const { report, config, rejections } = await roundThroughGateways(clients, {
      gateways,
      tamper: (gateway, partial) =>
        gateway === 'faulty'
          ? { ...partial, contributors: partial.contributors.slice(1) }
          : partial,
    });
    expect(rejections).toHaveLength(1);
    expect(isCohortError(rejections[0], 'MESSAGE_INVALID')).toBe(true);
    expect(report.error).toBeUndefined();
    const survivors = clients.filter((_, i) => i !== 2 && i !== 3);
    expect(report.result!.survivors).toEqual(survivors.map(idOf).sort());
    const plain = plainWeightedMean(survivors, config);
    expect(maxAbsDiff(report.result!.weightedMean, plain.mean)).toBeLessThanOrEqual(
      quantizationTolerance(survivors.length, config, plain.totalWeight),
    );
  });

  test('a gateway that dies before handing over its sum: its clients are dropouts, the round completes', async () => {
    const clients = makeClients(8, VECTOR, 13);
    const { report, config } = await roundThroughGateways(clients, {
      gateways: new Map([
        [5, 'dead'],
        [6, 'dead'],
        [7, 'alive'],
      ]),
      silent: new Set(['dead']),
    });
    expect(report.error).toBeUndefined();
    const survivors = clients.slice(0, 5).concat(clients[7]!);
    expect(report.result!.survivors).toEqual(survivors.map(idOf).sort());
    const plain = plainWeightedMean(survivors, config);
    expect(maxAbsDiff(report.result!.weightedMean, plain.mean)).toBeLessThanOrEqual(
      quantizationTolerance(survivors.length, config, plain.totalWeight),
    );
  });

  test('a partial sum of the wrong length is refused, and so is a second input of one client', () => {
    const target = { roundId: ROUND, elements: 4, modulusBits: 32 };
    const sums = new PartialSums();
    sums.fold(target, 'a', new Uint8Array(16).fill(1));
    expect(() => sums.fold(target, 'a', new Uint8Array(16))).toThrow(/second masked input/);
    expect(() => sums.fold(target, 'b', new Uint8Array(12))).toThrow(/12 bytes/);
    sums.fold(target, 'b', new Uint8Array(16).fill(2));
    const taken = sums.take(ROUND);
    expect(taken.contributors).toEqual(['a', 'b']);
    expect([...taken.sum]).toEqual(new Array(16).fill(3));
    // Taken once: a second request finds nothing.
    expect(sums.take(ROUND).contributors).toEqual([]);
  });

  test('plain rounds: a gateway hands over the weighted mean of exactly the updates the leader accepted', () => {
    const held = new HeldUpdates();
    held.hold('r', 'a', new Float32Array([1, 2]), 2);
    held.hold('r', 'b', new Float32Array([3, -2]), 2);
    held.hold('r', 'late', new Float32Array([100, 100]), 2);
    expect(() => held.hold('r', 'a', new Float32Array([0, 0]), 2)).toThrow(/second update/);
    expect(() => held.hold('r', 'c', new Float32Array([0, Number.NaN]), 2)).toThrow(/NaN/);
    expect(() => held.hold('r', 'd', new Float32Array([0]), 2)).toThrow(/1 values/);
    // 'late' was not accepted by the leader (the round had enough): it is left out.
    const { mean, weight } = held.take('r', [
      { clientId: 'a', weight: 1 },
      { clientId: 'b', weight: 3 },
    ]);
    expect(weight).toBe(4);
    expect([...mean]).toEqual([(1 + 9) / 4, (2 - 6) / 4]);
    held.hold('s', 'a', new Float32Array([1, 1]), 2);
    expect(() => held.take('s', [{ clientId: 'ghost', weight: 1 }])).toThrow(/no held update/);
  });
});
