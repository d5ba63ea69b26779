import { isCohortError } from '../../shared/errors';
import { chooseSecAggParams, graphParams, runInMemorySecAggRound } from '../../shared/secagg';
import {
  MODEL_HASH,
  idOf,
  makeClients,
  maxAbsDiff,
  plainWeightedMean,
  quantizationTolerance,
  withDrops,
} from './helpers';

/**
 * SecAgg+ rounds (n > 100, sparse neighbour graph). Kept apart from the complete-graph rounds
 * because each costs seconds: the mutation run judges the protocol with the fast rounds only.
 */
describe('secure aggregation round (SecAgg+ neighbour graph)', () => {
  // Above 100 participants every party derives a sparse graph: k = 70, t = 48 for n = 101.
  const n = 101;
  const params = graphParams(n);

  it('gives the correct mean with k < n - 1 and dropouts', async () => {
    expect(params).toMatchObject({ complete: false, neighbours: 70, threshold: 48 });
    const vectorLength = 6;
    const config = chooseSecAggParams(n, { vectorLength, clipRange: 1, weightCap: 1000 });
    const clients = withDrops(makeClients(n, vectorLength, 7), {
      3: 'maskedInput',
      9: 'unmasking',
    });
    const report = await runInMemorySecAggRound({
      roundId: 'r-plus',
      modelHash: MODEL_HASH,
      config,
      clients,
    });
    expect(report.error).toBeUndefined();
    expect(report.clientErrors.size).toBe(0);
    // Each client really only talked to its 70 neighbours.
    const shareResponses = report.responses.get('shareKeys')!;
    for (const response of shareResponses.values()) {
      expect((response as { bundles: unknown[] }).bundles).toHaveLength(70);
    }
    const inSum = clients.filter((c) => c.dropAt !== 'maskedInput');
    const expected = plainWeightedMean(inSum, config);
    expect(report.result!.totalWeight).toBe(expected.totalWeight);
    expect(report.result!.dropped).toEqual([idOf(clients[3]!)]);
    expect(maxAbsDiff(report.result!.weightedMean, expected.mean)).toBeLessThan(
      quantizationTolerance(inSum.length, config, expected.totalWeight),
    );
  }, 300_000);

  it('aborts before Unmasking when a neighbourhood loses too many holders (nothing is revealed)', async () => {
    const config = chooseSecAggParams(n, { vectorLength: 4, clipRange: 1, weightCap: 1000 });
    const clients = makeClients(n, 4, 8);
    const victim = clients.map(idOf).sort()[0]!;
    let gone = new Set<string>();
    const report = await runInMemorySecAggRound({
      roundId: 'r-hood',
      modelHash: MODEL_HASH,
      config,
      clients,
      hooks: {
        afterClose(phase, server) {
          if (phase !== 'advertiseKeys') return;
          // 24 of its 70 neighbours vanish after sending their masked input: 47 of its 71
          // holders remain, fewer than t = 48. The graph is only known once keys are in.
          gone = new Set(server.roundView!.graph.neighboursOf(victim).slice(0, 24));
        },
        deliverResponse: (phase, id) => !(phase === 'consistencyCheck' && gone.has(id)),
      },
    });
    expect(isCohortError(report.error, 'SECAGG_BELOW_THRESHOLD')).toBe(true);
    expect(report.serverPhase).toBe('aborted');
    expect(report.responses.get('unmasking')!.size).toBe(0);
    expect(report.clientErrors.size).toBe(0);
  }, 300_000);
});
