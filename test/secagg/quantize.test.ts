import {
  cappedWeight,
  cryptoRandomFill,
  decodeAggregate,
  quantizeWeightedUpdate,
  toSignedInt32,
} from '../../shared/secagg';
import type { RandomFill, SecAggConfig } from '../../shared/secagg';
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
  /** A random source that returns `word` every time and records how many words each call asked for. */
  function constantFill(word: number, calls: number[] = []): RandomFill {
    return (out) => {
      calls.push(out.length);
      out.fill(word);
    };
  }

  // Factor weight 1 * scale 8; elements clip to [-2, 2]; the loss element is loss / 64 * 2 * 8.
  const exact: SecAggConfig = { ...smallConfig(5, 8), clipRange: 2, scale: 8, weightCap: 100 };
  // v = 2, 2.4000000953674316, -2.4000000953674316, 2.5, 16, -16, 16 (clipped), -16 (clipped).
  const values = new Float32Array([0.25, 0.3, -0.3, 0.3125, 2, -2, 5, -5]);
  const encode = (word: number, trainLoss = 0): number[] =>
    Array.from(
      quantizeWeightedUpdate(
        { update: values, exampleCount: 1, trainLoss },
        exact,
        constantFill(word),
      ),
      toSignedInt32,
    );

  it('rounds up exactly when the random fraction is below the fractional part', () => {
    // u = 0: every non-integer rounds up, integers (including the clip bounds) stay.
    expect(encode(0).slice(0, 8)).toEqual([2, 3, -2, 3, 16, -16, 16, -16]);
    // u = 0.5: only fractional parts above one half round up (0.5 itself does not).
    expect(encode(2 ** 31).slice(0, 8)).toEqual([2, 2, -2, 2, 16, -16, 16, -16]);
    // u just below 1: nothing rounds up.
    expect(encode(0xffffffff).slice(0, 8)).toEqual([2, 2, -3, 2, 16, -16, 16, -16]);
    expect(encode(0)[8]).toBe(1); // the weight
  });

  it('scales the loss by the clip range and rounds it stochastically', () => {
    // loss element = L / 64 * clipRange 2 * weight 1 * scale 8 = L / 4.
    expect(encode(0, 8)[9]).toBe(2); // exactly 2: u = 0 does not round an integer up
    expect(encode(0, 10)[9]).toBe(3); // 2.5 rounds up when u = 0
    expect(encode(2 ** 31, 10)[9]).toBe(2); // ... but not when u = 0.5
    expect(encode(2 ** 31, 3)[9]).toBe(1); // 0.75 rounds up when u = 0.5
    expect(encode(0xffffffff, 3)[9]).toBe(0);
    expect(encode(0, 1000)[9]).toBe(16); // capped at 64
  });

  it('refuses a non-finite train loss', () => {
    for (const trainLoss of [NaN, Infinity, -Infinity]) {
      expect(() =>
        quantizeWeightedUpdate(
          { update: values, exampleCount: 1, trainLoss },
          exact,
          constantFill(0),
        ),
      ).toThrow(/UPDATE_NON_FINITE: train loss is/);
    }
  });

  it('draws one random word per element, in chunks of at most 16384, then one coin', () => {
    const small: number[] = [];
    quantizeWeightedUpdate(
      { update: values, exampleCount: 1, trainLoss: 0 },
      exact,
      constantFill(0, small),
    );
    expect(small).toEqual([8, 1]);
    const long: number[] = [];
    const encoded = quantizeWeightedUpdate(
      { update: new Float32Array(16385).fill(0.3), exampleCount: 1, trainLoss: 0 },
      { ...exact, vectorLength: 16385 },
      constantFill(0, long),
    );
    expect(long).toEqual([16384, 16384, 1]);
    expect(encoded[0]).toBe(3);
    expect(encoded[16384]).toBe(3); // the last element got its own chunk's word
    const exactChunk: number[] = [];
    quantizeWeightedUpdate(
      { update: new Float32Array(16384), exampleCount: 1, trainLoss: 0 },
      { ...exact, vectorLength: 16384 },
      constantFill(0, exactChunk),
    );
    expect(exactChunk).toEqual([16384, 1]);
  });

  it('the platform random source is asked in chunks of at most 65,536 bytes, none empty', () => {
    const spy = jest.spyOn(globalThis.crypto, 'getRandomValues');
    try {
      const lengths = (n: number): number[] => {
        spy.mockClear();
        const out = new Uint32Array(n);
        cryptoRandomFill(out);
        return spy.mock.calls.map(([array]) => (array as Uint32Array).length);
      };
      expect(lengths(0)).toEqual([]);
      expect(lengths(5)).toEqual([5]);
      expect(lengths(16384)).toEqual([16384]);
      expect(lengths(32768)).toEqual([16384, 16384]);
      expect(lengths(32769)).toEqual([16384, 16384, 1]);
    } finally {
      spy.mockRestore();
    }
    const filled = new Uint32Array(40000);
    cryptoRandomFill(filled);
    // Each 16384-word chunk is filled (a zero chunk has probability 2^-524288).
    expect(filled.subarray(0, 16384).some((v) => v !== 0)).toBe(true);
    expect(filled.subarray(16384, 32768).some((v) => v !== 0)).toBe(true);
    expect(filled.subarray(32768).some((v) => v !== 0)).toBe(true);
  });

  it('decodes with the clip range, accepts weights 1 and maxTotalWeight, refuses wrong lengths', () => {
    const config: SecAggConfig = { ...smallConfig(5, 2), clipRange: 2, scale: 8, weightCap: 100 };
    // Weight 1: elements 16 and -8 are 2 and -1; the loss element 4 is 4 / 8 * 64 / 2 = 16.
    const sum = new Uint32Array([16, -8 >>> 0, 1, 4]);
    const decoded = decodeAggregate(sum, config, 1);
    expect(Array.from(decoded.weightedMean)).toEqual([2, -1]);
    expect(decoded.totalWeight).toBe(1);
    expect(decoded.meanTrainLoss).toBe(16);
    // Weight 4 at the bound: divisor 32.
    const four = decodeAggregate(new Uint32Array([16, -8 >>> 0, 4, 4]), config, 4);
    expect(Array.from(four.weightedMean)).toEqual([0.5, -0.25]);
    expect(four.meanTrainLoss).toBe(4);
    // Round trip through the encoder: loss 10 -> 10 / 64 * 2 * 8 = 2.5, rounded up by u = 0.
    const encoded = quantizeWeightedUpdate(
      { update: new Float32Array([1.5, -0.25]), exampleCount: 1, trainLoss: 10 },
      config,
      constantFill(0),
    );
    const round = decodeAggregate(encoded, config, 100);
    expect(Array.from(round.weightedMean)).toEqual([1.5, -0.25]);
    expect(round.meanTrainLoss).toBe(12); // 3 / 8 * 32
    expect(() => decodeAggregate(new Uint32Array([16, 0, 1, 4, 0]), config, 100)).toThrow(
      /UPDATE_SHAPE: aggregate has 5 elements/,
    );
    expect(() => decodeAggregate(new Uint32Array([16, 0, 1]), config, 100)).toThrow(
      /UPDATE_SHAPE: aggregate has 3 elements/,
    );
  });
});
