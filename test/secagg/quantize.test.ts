import {
  cappedWeight,
  cryptoRandomFill,
  decodeAggregate,
  quantizeWeightedUpdate,
  toSignedInt32,
} from '../../shared/secagg';
import type { SecAggConfig } from '../../shared/secagg';
import { smallConfig } from './helpers';

describe('fixed-point encoding', () => {
  it('stochastic rounding is unbiased (positive and negative values)', () => {
    const config: SecAggConfig = {
      ...smallConfig(5, 100_000),
      scale: 1,
      clipRange: 10,
      weightCap: 1,
    };
    for (const value of [2.37, -2.37, 0.01]) {
      const encoded = quantizeWeightedUpdate(
        { update: new Float32Array(100_000).fill(value), exampleCount: 1, trainLoss: 0 },
        config,
        cryptoRandomFill,
      );
      const floor = Math.floor(Math.fround(value));
      let sum = 0;
      let outside = 0;
      for (let i = 0; i < 100_000; i++) {
        const q = toSignedInt32(encoded[i]!);
        if (q !== floor && q !== floor + 1) outside++;
        sum += q;
      }
      expect(outside).toBe(0);
      // Standard deviation of the mean <= 0.5 / sqrt(1e5) = 0.0016; allow ~6 sigma.
      expect(Math.abs(sum / 100_000 - Math.fround(value))).toBeLessThan(0.01);
    }
  });

  it('clips, weights with a cap, then carries the weight and the clipped weighted loss', () => {
    const config: SecAggConfig = { ...smallConfig(5, 4), clipRange: 1, scale: 8, weightCap: 100 };
    const input = { update: new Float32Array([5, -5, 0.5, 0]), exampleCount: 250, trainLoss: 16 };
    const encoded = quantizeWeightedUpdate(input, config);
    expect(encoded).toHaveLength(6);
    expect(Array.from(encoded.subarray(0, 4), toSignedInt32)).toEqual([800, -800, 400, 0]);
    expect(encoded[4]).toBe(100);
    expect(encoded[5]).toBe(200); // 16 / 64 * clip 1 * weight 100 * scale 8
    // A loss above 64 counts as 64; a negative one as zero.
    expect(quantizeWeightedUpdate({ ...input, trainLoss: 1000 }, config)[5]).toBe(800);
    expect(quantizeWeightedUpdate({ ...input, trainLoss: -1 }, config)[5]).toBe(0);
    expect(cappedWeight(7, 100)).toBe(7);
  });

  it('refuses NaN, Infinity, wrong lengths and bad example counts', () => {
    const config = smallConfig(5, 3);
    expect(() =>
      quantizeWeightedUpdate(
        { update: new Float32Array([0, NaN, 0]), exampleCount: 1, trainLoss: 0 },
        config,
      ),
    ).toThrow(/UPDATE_NON_FINITE/);
    expect(() =>
      quantizeWeightedUpdate(
        { update: new Float32Array([Infinity, 0, 0]), exampleCount: 1, trainLoss: 0 },
        config,
      ),
    ).toThrow(/UPDATE_NON_FINITE/);
    expect(() =>
      quantizeWeightedUpdate(
        { update: new Float32Array(4), exampleCount: 1, trainLoss: 0 },
        config,
      ),
    ).toThrow(/UPDATE_SHAPE/);
    expect(() =>
      quantizeWeightedUpdate(
        { update: new Float32Array(3), exampleCount: 0, trainLoss: 0 },
        config,
      ),
    ).toThrow(/CONFIG_INVALID/);
    expect(() =>
      quantizeWeightedUpdate(
        { update: new Float32Array(3), exampleCount: 1.5, trainLoss: 0 },
        config,
      ),
    ).toThrow(/CONFIG_INVALID/);
  });

  it("decodes a sum mod 2^32 (two's complement) into the weighted mean", () => {
    const config: SecAggConfig = {
      ...smallConfig(5, 3),
      clipRange: 1,
      scale: 1024,
      weightCap: 1000,
    };
    const updates = [
      [0.5, -0.25, -1],
      [-0.75, 0.125, 1],
      [0.25, -1, -0.5],
    ];
    const weights = [10, 30, 60];
    const sum = new Uint32Array(5);
    updates.forEach((u, k) => {
      const e = quantizeWeightedUpdate(
        { update: new Float32Array(u), exampleCount: weights[k]!, trainLoss: 0.5 * (k + 1) },
        config,
      );
      for (let i = 0; i < 5; i++) sum[i] = sum[i]! + e[i]!;
    });
    const { weightedMean, totalWeight, meanTrainLoss } = decodeAggregate(sum, config, 3 * 1000);
    expect(totalWeight).toBe(100);
    // Losses travel as loss / 64 * clipRange; these are exact multiples of the step.
    expect(meanTrainLoss).toBeCloseTo((0.5 * 10 + 1 * 30 + 1.5 * 60) / 100, 6);
    for (let i = 0; i < 3; i++) {
      const expected = updates.reduce((s, u, k) => s + u[i]! * weights[k]!, 0) / 100;
      // Values times weight times scale are integers here: the result is exact.
      expect(weightedMean[i]).toBeCloseTo(expected, 6);
    }
    expect(toSignedInt32(0xffffffff)).toBe(-1);
  });

  it('refuses to decode a sum whose weight element is implausible (masks did not cancel)', () => {
    const config = smallConfig(5, 2);
    expect(() => decodeAggregate(new Uint32Array([1, 2, 0, 0]), config, 100)).toThrow(
      /SECAGG_RECONSTRUCT/,
    );
    expect(() => decodeAggregate(new Uint32Array([1, 2, 0xdeadbeef, 0]), config, 100)).toThrow(
      /SECAGG_RECONSTRUCT/,
    );
  });
});
