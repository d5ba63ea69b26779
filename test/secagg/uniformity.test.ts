import { clientIdFromPublicKey } from '../../shared/identity';
import type { SimulatedSecAggClient } from '../../shared/secagg';
import { quantizeWeightedUpdate, runInMemorySecAggRound } from '../../shared/secagg';
import { MODEL_HASH, makeClients, smallConfig } from './helpers';

/**
 * What the coordinator receives from one client must look uniform in Z_{2^32} whatever the
 * update. Chi-square goodness of fit on the top 4 bits (16 buckets, df 15) and on the bytes
 * (256 buckets, df 255), at p = 1e-6 so an honest run fails about once in a million.
 */
const CHI2_DF15_P1E6 = 56.49;
const CHI2_DF255_P1E6 = 377.08;
const VECTOR = 16382; // + weight + loss = 16384 elements, 65536 bytes

function chiSquare(counts: number[], total: number): number {
  const expected = total / counts.length;
  return counts.reduce((s, c) => s + ((c - expected) * (c - expected)) / expected, 0);
}

function uniformityStats(vector: Uint32Array): { nibble: number; byte: number } {
  const nibbles = new Array<number>(16).fill(0);
  for (const v of vector) nibbles[v >>> 28]!++;
  const bytes = new Array<number>(256).fill(0);
  for (const b of new Uint8Array(vector.buffer, vector.byteOffset, vector.byteLength)) bytes[b]!++;
  return { nibble: chiSquare(nibbles, vector.length), byte: chiSquare(bytes, vector.byteLength) };
}

async function maskedInputOf(update: Float32Array): Promise<Uint32Array> {
  const config = smallConfig(4, VECTOR);
  const clients: SimulatedSecAggClient[] = makeClients(4, VECTOR, 31);
  clients[0] = { ...clients[0]!, update, exampleCount: 50 };
  const target = clientIdFromPublicKey(clients[0].identity.publicKey);
  let seen: Uint8Array | undefined;
  const report = await runInMemorySecAggRound({
    roundId: 'r-uniform',
    modelHash: MODEL_HASH,
    config,
    clients,
    hooks: {
      deliverResponse(phase, id, response) {
        if (phase === 'maskedInput' && id === target) {
          seen = (response as { maskedInput: Uint8Array }).maskedInput.slice();
        }
        return true;
      },
    },
  });
  expect(report.error).toBeUndefined();
  return new Uint32Array(seen!.buffer);
}

describe('masked inputs are statistically uniform', () => {
  it.each([
    ['all-zero', 0],
    ['all-constant', 0.75],
  ])('for an %s update', async (_label, value) => {
    const masked = await maskedInputOf(new Float32Array(VECTOR).fill(value));
    const stats = uniformityStats(masked);
    expect(stats.nibble).toBeLessThan(CHI2_DF15_P1E6);
    expect(stats.byte).toBeLessThan(CHI2_DF255_P1E6);
  });

  it('the same test flags the unmasked encoding (it has teeth)', () => {
    const config = smallConfig(4, VECTOR);
    const plain = quantizeWeightedUpdate(
      { update: new Float32Array(VECTOR).fill(0.75), exampleCount: 50, trainLoss: 0 },
      config,
    );
    const stats = uniformityStats(plain);
    expect(stats.nibble).toBeGreaterThan(CHI2_DF15_P1E6);
    expect(stats.byte).toBeGreaterThan(CHI2_DF255_P1E6);
  });
});
