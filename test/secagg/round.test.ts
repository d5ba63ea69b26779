import { isCohortError } from '../../shared/errors';
import type { SecAggPhase, SecAggServerRound } from '../../shared/secagg';
import { graphParams, runInMemorySecAggRound } from '../../shared/secagg';
import {
  MODEL_HASH,
  idOf,
  makeClients,
  maxAbsDiff,
  plainWeightedMean,
  quantizationTolerance,
  smallConfig,
  withDrops,
} from './helpers';

async function catchError(fn: () => Promise<unknown>): Promise<unknown> {
  try {
    await fn();
  } catch (err) {
    return err;
  }
  return undefined;
}

describe('secure aggregation round (complete graph)', () => {
  it('masks cancel exactly: all-zero updates decode to exactly zero, with and without dropouts', async () => {
    const vectorLength = 64;
    const config = smallConfig(7, vectorLength);
    for (const drops of [{}, { 1: 'shareKeys', 4: 'maskedInput' } as Record<number, SecAggPhase>]) {
      const clients = withDrops(
        makeClients(7, vectorLength, 1).map((c) => ({
          ...c,
          update: new Float32Array(vectorLength),
        })),
        drops,
      );
      const report = await runInMemorySecAggRound({
        roundId: 'r-zero',
        modelHash: MODEL_HASH,
        config,
        clients,
      });
      expect(report.error).toBeUndefined();
      expect(report.clientErrors.size).toBe(0);
      const survivors = clients.filter((c) => c.dropAt === undefined);
      expect(report.result!.weightedMean.every((x) => x === 0)).toBe(true);
      expect(report.result!.totalWeight).toBe(survivors.reduce((s, c) => s + c.exampleCount, 0));
      expect(report.result!.survivors).toEqual(survivors.map(idOf).sort());
    }
  });

  it('decodes to plain weighted FedAvg within the quantization step', async () => {
    const vectorLength = 200;
    const config = smallConfig(6, vectorLength);
    // Some elements outside the clip range, one client above the weight cap.
    const clients = makeClients(6, vectorLength, 2, 1.5);
    clients[0] = { ...clients[0]!, exampleCount: 5000 };
    const report = await runInMemorySecAggRound({
      roundId: 'r-avg',
      modelHash: MODEL_HASH,
      config,
      clients,
    });
    expect(report.error).toBeUndefined();
    const expected = plainWeightedMean(clients, config);
    expect(report.result!.totalWeight).toBe(expected.totalWeight);
    expect(maxAbsDiff(report.result!.weightedMean, expected.mean)).toBeLessThan(
      quantizationTolerance(6, config, expected.totalWeight),
    );
    // The capped client counts weightCap, not 5000: an uncapped mean would differ visibly.
    expect(expected.totalWeight).toBeLessThan(5000);
  });

  const dropCases: [string, SecAggPhase][] = [
    ['after AdvertiseKeys', 'shareKeys'],
    ['after ShareKeys', 'maskedInput'],
    ['after MaskedInput', 'consistencyCheck'],
    ['during Unmasking', 'unmasking'],
  ];
  it.each(dropCases)(
    "two clients dropping %s still give the survivors' mean",
    async (_label, dropAt) => {
      const vectorLength = 40;
      const config = smallConfig(8, vectorLength); // t = 6 of 8
      const clients = withDrops(makeClients(8, vectorLength, 3), { 2: dropAt, 5: dropAt });
      const report = await runInMemorySecAggRound({
        roundId: `r-${dropAt}`,
        modelHash: MODEL_HASH,
        config,
        clients,
      });
      expect(report.error).toBeUndefined();
      // Clients that already sent their masked input are in the sum even if they vanish later.
      const inSum =
        dropAt === 'consistencyCheck' || dropAt === 'unmasking'
          ? clients
          : clients.filter((c) => c.dropAt === undefined);
      const expected = plainWeightedMean(inSum, config);
      expect(report.result!.survivors).toEqual(inSum.map(idOf).sort());
      expect(report.result!.totalWeight).toBe(expected.totalWeight);
      expect(maxAbsDiff(report.result!.weightedMean, expected.mean)).toBeLessThan(
        quantizationTolerance(inSum.length, config, expected.totalWeight),
      );
    },
  );

  it.each(['shareKeys', 'maskedInput', 'unmasking'] as SecAggPhase[])(
    'aborts cleanly with SECAGG_BELOW_THRESHOLD when fewer than t survive (%s)',
    async (dropAt) => {
      const config = smallConfig(6, 16);
      expect(graphParams(6).threshold).toBe(4);
      const clients = withDrops(makeClients(6, 16, 4), { 0: dropAt, 1: dropAt, 2: dropAt });
      const report = await runInMemorySecAggRound({
        roundId: 'r-abort',
        modelHash: MODEL_HASH,
        config,
        clients,
      });
      expect(report.result).toBeUndefined();
      expect(isCohortError(report.error, 'SECAGG_BELOW_THRESHOLD')).toBe(true);
      expect(report.serverPhase).toBe('aborted');
      // Nothing can be received any more, and nothing partial is left to read.
      await expect(report.server.receiveUnmasking(idOf(clients[3]!), {})).rejects.toThrow(
        /ROUND_ABORTED/,
      );
      await expect(report.server.finish()).rejects.toThrow(/ROUND_ABORTED/);
    },
  );

  it('rejects a masked input that arrives after its sender was declared dropped', async () => {
    const vectorLength = 30;
    const config = smallConfig(6, vectorLength);
    const clients = withDrops(makeClients(6, vectorLength, 5), { 0: 'shareKeys' });
    const lateId = idOf(clients[3]!);
    const droppedId = idOf(clients[0]!); // declared dropped when ShareKeys closed
    let withheld: unknown;
    let lateError: unknown;
    let droppedError: unknown;
    let forgedError: unknown;
    let strangerError: unknown;
    const report = await runInMemorySecAggRound({
      roundId: 'r-late',
      modelHash: MODEL_HASH,
      config,
      clients,
      hooks: {
        deliverResponse(phase, id, response) {
          if (phase !== 'maskedInput' || id !== lateId) return true;
          withheld = response; // lost in the network until after the deadline
          return false;
        },
        async afterClose(phase, server) {
          if (phase === 'shareKeys') {
            // MaskedInput is open, but this client is no longer part of the round.
            const wellFormed = {
              roundId: 'r-late',
              maskedInput: new Uint8Array(4 * (vectorLength + 2)),
              signature: new Uint8Array(64),
            };
            droppedError = await catchError(() => server.receiveMaskedInput(droppedId, wellFormed));
          }
          if (phase !== 'maskedInput') return;
          lateError = await catchError(() => server.receiveMaskedInput(lateId, withheld));
          strangerError = await catchError(() =>
            server.receiveMaskedInput('f'.repeat(32), withheld),
          );
          forgedError = await catchError(() =>
            server.receiveConsistencyCheck(idOf(clients[1]!), {
              roundId: 'r-late',
              signature: new Uint8Array(64),
            }),
          );
        },
      },
    });
    expect(isCohortError(lateError, 'SECAGG_LATE')).toBe(true);
    expect(isCohortError(droppedError, 'SECAGG_LATE')).toBe(true);
    expect(isCohortError(strangerError, 'UPDATE_NOT_SELECTED')).toBe(true);
    // A forged consistency signature is refused; the client's real one still counts.
    expect(isCohortError(forgedError, 'SECAGG_SIGNATURE')).toBe(true);
    expect(report.error).toBeUndefined();
    const survivors = clients.filter((c) => idOf(c) !== lateId && idOf(c) !== droppedId);
    const expected = plainWeightedMean(survivors, config);
    expect(report.result!.survivors).toEqual(survivors.map(idOf).sort());
    expect(report.result!.totalWeight).toBe(expected.totalWeight);
    expect(maxAbsDiff(report.result!.weightedMean, expected.mean)).toBeLessThan(
      quantizationTolerance(4, config, expected.totalWeight),
    );
  });

  it('refuses a duplicate masked input without summing it twice', async () => {
    const config = smallConfig(5, 8);
    const clients = makeClients(5, 8, 6);
    const target = idOf(clients[2]!);
    let server: SecAggServerRound | undefined;
    const report = await runInMemorySecAggRound({
      roundId: 'r-dup',
      modelHash: MODEL_HASH,
      config,
      clients,
      hooks: {
        afterClose(_phase, s) {
          server = s;
        },
        async deliverResponse(phase, id, response) {
          // Deliver it once ourselves: the driver's own delivery is then a duplicate.
          if (phase === 'maskedInput' && id === target)
            await server!.receiveMaskedInput(id, response);
          return true;
        },
      },
    });
    expect(isCohortError(report.serverRejections.get(target), 'UPDATE_DUPLICATE')).toBe(true);
    expect(report.error).toBeUndefined();
    const expected = plainWeightedMean(clients, config);
    expect(report.result!.totalWeight).toBe(expected.totalWeight);
    expect(maxAbsDiff(report.result!.weightedMean, expected.mean)).toBeLessThan(
      quantizationTolerance(5, config, expected.totalWeight),
    );
    // After the round, anything is late.
    const masked = report.responses.get('maskedInput')!.get(target);
    expect(
      isCohortError(
        await catchError(() => report.server.receiveMaskedInput(target, masked)),
        'SECAGG_LATE',
      ),
    ).toBe(true);
  });
});
