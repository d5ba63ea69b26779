import { isCohortError } from '../../shared/errors';
import type { MaskedInputResponse, SecAggConfig } from '../../shared/secagg';
import {
  MASKED_EXTRA_ELEMENTS,
  addPackedInto,
  chooseSecAggParams,
  decodeAggregate,
  packLowBits,
  quantizeWeightedUpdate,
  runInMemorySecAggRound,
  toSignedBits,
} from '../../shared/secagg';
import { allocateWrapVector, packedChunkElements, setSimdMode } from '../../shared/simd/kernels';
import {
  MODEL_HASH,
  idOf,
  makeClients,
  maxAbsDiff,
  plainWeightedMean,
  quantizationTolerance,
  seededFill,
  withDrops,
} from './helpers';

/**
 * The packed wire encoding (shared/secagg/packing.ts): a masked element travels as its low b
 * bits, and the coordinator's Uint32 accumulator of those low bits, unmasked mod 2^32, holds
 * the true sum in its low b bits.
 */

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');

describe('packLowBits and addPackedInto', () => {
  // 0, 1, the largest b-bit values, all 32 bits set, a pattern, the sign bit alone.
  const WORDS = [0, 1, 0xffff, 0xffffff, 0xffffffff, 0x12345678, 0x80000000, 0x00ab00cd];

  it.each([
    [16, '0000' + '0100' + 'ffff' + 'ffff' + 'ffff' + '7856' + '0000' + 'cd00'],
    [24, '000000' + '010000' + 'ffff00' + 'ffffff' + 'ffffff' + '785634' + '000000' + 'cd00ab'],
    [
      32,
      '00000000' +
        '01000000' +
        'ffff0000' +
        'ffffff00' +
        'ffffffff' +
        '78563412' +
        '00000080' +
        'cd00ab00',
    ],
  ])('at %i bits: little-endian low bits, the higher bits dropped', (bits, expected) => {
    const packed = packLowBits(Uint32Array.from(WORDS), bits);
    expect(packed).toHaveLength((WORDS.length * bits) / 8);
    expect(hex(packed)).toBe(expected);
    // Unpacked into zeros, each element comes back reduced mod 2^b.
    const back = new Uint32Array(WORDS.length);
    addPackedInto(back, packed, bits);
    const mod = 2 ** bits;
    expect(Array.from(back)).toEqual(WORDS.map((w) => w % mod));
  });

  it('at 32 bits sends a view of the masked vector, not a copy', () => {
    const values = Uint32Array.from(WORDS);
    const packed = packLowBits(values, 32);
    expect(packed.buffer).toBe(values.buffer);
    expect(packed.byteOffset).toBe(0);
  });

  it('adds mod 2^32 at the edge of the accumulator, from aligned and unaligned bytes', () => {
    for (const bits of [16, 24, 32]) {
      const top = 2 ** bits - 1;
      const packed = packLowBits(Uint32Array.from([1, top, top, 0]), bits);
      // The same bytes at an odd offset, as socket.io hands Buffers from a shared pool.
      const pool = new Uint8Array(packed.length + 1);
      pool.set(packed, 1);
      for (const source of [packed, pool.subarray(1)]) {
        const acc = Uint32Array.from([0xffffffff, 0xfffffffe, 1, 7]);
        addPackedInto(acc, source, bits);
        // 0xffffffff + 1 wraps to 0; 0xfffffffe + (2^b - 1) wraps to 2^b - 3 (2^32 - 3 at 32);
        // 1 + (2^b - 1) carries into bit b (wraps to 0 at 32).
        expect(Array.from(acc)).toEqual([0, (0xfffffffe + top) % 2 ** 32, (1 + top) % 2 ** 32, 7]);
      }
    }
  });

  it('folds into a SIMD accumulator (allocateWrapVector) exactly as into a plain one', () => {
    // Lengths around the kernels' scratch chunks; bytes aligned and at an odd offset; the
    // accumulator near 2^32 so sums wrap; and the forced JS fallback on kernel memory.
    for (const bits of [16, 24, 32] as const) {
      const chunk = packedChunkElements((bits / 8) as 2 | 3 | 4);
      for (const length of [128, 1000, chunk - 1, chunk, chunk + 1, 2 * chunk + 5]) {
        const initial = new Uint32Array(length);
        seededFill(length + bits)(initial);
        const simd = allocateWrapVector(length);
        simd.set(initial);
        const forced = allocateWrapVector(length);
        forced.set(initial);
        const plain = initial.slice();
        for (let k = 0; k < 3; k++) {
          const values = new Uint32Array(length);
          seededFill(length * 10 + k)(values);
          values.fill(0xffffffff, 0, 7);
          const packed = packLowBits(values, bits);
          const pool = Buffer.alloc(packed.length + 1);
          pool.set(packed, 1);
          addPackedInto(simd, k === 1 ? pool.subarray(1) : packed, bits);
          addPackedInto(plain, packed, bits);
          setSimdMode('js');
          try {
            addPackedInto(forced, k === 2 ? pool.subarray(1) : packed, bits);
          } finally {
            setSimdMode('auto');
          }
        }
        const firstDifference = (a: Uint32Array): number => a.findIndex((v, i) => v !== plain[i]);
        expect([bits, length, firstDifference(simd), firstDifference(forced)]).toEqual([
          bits,
          length,
          -1,
          -1,
        ]);
      }
    }
  });

  it('refuses a packed vector whose length is not exactly n elements of b bits', () => {
    const acc = new Uint32Array(4);
    for (const [bits, length] of [
      [24, 11],
      [24, 13],
      [24, 16], // a 32-bit encoding sent to a 24-bit round
      [16, 12],
      [32, 12],
    ] as const) {
      expect(() => addPackedInto(acc, new Uint8Array(length), bits)).toThrow(/UPDATE_SHAPE/);
    }
    expect(Array.from(acc)).toEqual([0, 0, 0, 0]);
    for (const bits of [8, 20, 31, 40]) {
      expect(() => packLowBits(acc, bits)).toThrow(/CONFIG_UNSAFE/);
      expect(() => addPackedInto(acc, new Uint8Array(4 * 4), bits)).toThrow(/CONFIG_UNSAFE/);
    }
  });
});

describe('decoding a b-bit sum', () => {
  it('reads the low b bits as two’s complement', () => {
    expect(toSignedBits(0xffffff, 24)).toBe(-1);
    expect(toSignedBits(0x7fffff, 24)).toBe(2 ** 23 - 1);
    expect(toSignedBits(0x800000, 24)).toBe(-(2 ** 23));
    // Higher bits are ignored: they are carries and mask residue, not part of the sum.
    expect(toSignedBits(0xab_ffffff, 24)).toBe(-1);
    expect(toSignedBits(0x1234_8000, 16)).toBe(-32768);
    expect(toSignedBits(0xffffffff, 32)).toBe(-1);
    expect(toSignedBits(0x7fffffff, 32)).toBe(2 ** 31 - 1);
  });

  /** Encodes, masks with masks that cancel mod 2^32, packs and folds; returns the accumulator. */
  function maskedPackedSum(
    config: SecAggConfig,
    inputs: { update: number[]; exampleCount: number; trainLoss: number }[],
    seed = 1,
  ): Uint32Array {
    const length = config.vectorLength + MASKED_EXTRA_ELEMENTS;
    const acc = new Uint32Array(length);
    const masks = inputs.map((_, k) => {
      const m = new Uint32Array(length);
      seededFill(seed * 100 + k)(m);
      return m;
    });
    // The last mask cancels the others, as the pairwise and self masks do once removed.
    const last = masks[masks.length - 1]!;
    last.fill(0);
    for (const m of masks.slice(0, -1)) for (let i = 0; i < length; i++) last[i] = last[i]! - m[i]!;
    inputs.forEach((input, k) => {
      const v = quantizeWeightedUpdate(
        { ...input, update: new Float32Array(input.update) },
        config,
        seededFill(seed * 1000 + k),
      );
      for (let i = 0; i < length; i++) v[i] = v[i]! + masks[k]![i]!;
      addPackedInto(acc, packLowBits(v, config.modulusBits), config.modulusBits);
    });
    return acc;
  }

  it('decodes a 24-bit sum of negative values exactly, whatever the bits above', () => {
    // Hand-checked: clip 1, weightCap 100, 5 clients at 24 bits: s = 2^floor(log2((2^23 - 1)
    // / 5 - 1) / 100) = 2^14 = 16384; every element below times weight times s is an integer.
    const config = chooseSecAggParams(5, {
      vectorLength: 3,
      clipRange: 1,
      weightCap: 100,
      modulusBits: 24,
    });
    expect(config).toMatchObject({ modulusBits: 24, scale: 16384 });
    const inputs = [10, 20, 30, 40, 100].map((w) => ({
      update: [-1, -0.5, -0.25],
      exampleCount: w,
      trainLoss: 2,
    }));
    const acc = maskedPackedSum(config, inputs);
    const decoded = decodeAggregate(acc, config, 5 * 100);
    expect(decoded.totalWeight).toBe(200);
    expect(Array.from(decoded.weightedMean)).toEqual([-1, -0.5, -0.25]);
    expect(decoded.meanTrainLoss).toBe(2);
    // Residue above bit 24 (carries of the packed sum, the removed masks' high bits) is ignored.
    const shifted = acc.map((v) => v + 0x5a000000);
    expect(Array.from(decodeAggregate(shifted, config, 500).weightedMean)).toEqual([
      -1, -0.5, -0.25,
    ]);
  });

  it('refuses a sum no clipped inputs could reach: random residue with a plausible weight', () => {
    // 16 bits, 10 clients of at most 100 examples, clip 1: scale 32 (hand-checked in
    // params.test.ts). Residue from a bad reconstruction passes the weight check with
    // probability 1000 / 2^16; each element then lands within 32 * W + 11 with probability
    // about (64 * W) / 2^16, here about a half, so 50 of them all inside is 2^-50.
    const config = chooseSecAggParams(10, {
      vectorLength: 50,
      clipRange: 1,
      weightCap: 100,
      modulusBits: 16,
    });
    expect(config).toMatchObject({ modulusBits: 16, scale: 32 });
    const residue = new Uint32Array(52);
    seededFill(7)(residue);
    residue[50] = 500; // a weight in [1, 1000]
    expect(() => decodeAggregate(residue, config, 1000)).toThrow(
      /SECAGG_RECONSTRUCT: unmasked element \d+ is -?\d+, beyond what clipped inputs of total weight 500/,
    );
  });

  it('bounds each element by clip * scale * W + maxClients + 1, and the loss below by 0', () => {
    // 24 bits, clip 1, 5 clients: scale 16384 (above); at W = 200 the bound is
    // 200 * 16384 + 5 + 1 = 3276806.
    const config = chooseSecAggParams(5, {
      vectorLength: 1,
      clipRange: 1,
      weightCap: 100,
      modulusBits: 24,
    });
    const sum = (element: number, loss: number) =>
      Uint32Array.from([element >>> 0, 200, loss >>> 0]);
    for (const edge of [3276806, -3276806]) {
      expect(decodeAggregate(sum(edge, 0), config, 500).weightedMean[0]).toBeCloseTo(
        edge / (16384 * 200),
        6,
      );
    }
    for (const beyond of [3276807, -3276807]) {
      expect(() => decodeAggregate(sum(beyond, 0), config, 500)).toThrow(
        /SECAGG_RECONSTRUCT: unmasked element 0 is -?3276807/,
      );
    }
    expect(decodeAggregate(sum(0, 3276806), config, 500).meanTrainLoss).toBeCloseTo(64, 3);
    expect(() => decodeAggregate(sum(0, 3276807), config, 500)).toThrow(/element 2 is 3276807/);
    expect(() => decodeAggregate(sum(0, -1), config, 500)).toThrow(/element 2 is -1,/);
  });

  // The overflow edge: maxClients clients all at +clip, or all at -clip, each at the full
  // weight cap and the largest loss, sum to the most the derived scale allows.
  it.each([16, 24] as const)(
    'at %i bits the worst-case sums decode exactly; one scale step finer wraps',
    (bits) => {
      const n = 7;
      const weightCap = bits === 16 ? 1000 : 30_000;
      const config = chooseSecAggParams(n, {
        vectorLength: 2,
        clipRange: 1,
        weightCap,
        modulusBits: bits,
      });
      // The bound is tight: n full clients reach at least a quarter of 2^(b-1).
      expect(n * (weightCap * config.scale + 1)).toBeLessThanOrEqual(2 ** (bits - 1) - 1);
      expect(n * (weightCap * config.scale * 2 + 1)).toBeGreaterThan(2 ** (bits - 1) - 1);
      const full = (x: number) => ({ update: [x, -x], exampleCount: weightCap, trainLoss: 64 });
      for (const x of [1, -1]) {
        const decoded = decodeAggregate(
          maskedPackedSum(
            config,
            Array.from({ length: n }, () => full(x)),
          ),
          config,
          n * weightCap,
        );
        expect(Array.from(decoded.weightedMean)).toEqual([x, -x]);
        expect(decoded.totalWeight).toBe(n * weightCap);
        expect(decoded.meanTrainLoss).toBe(64);
      }
      // One scale step finer: the sums wrap. Either the decoder catches it (the maximal loss
      // wraps negative, which no clipped input gives) or, with no loss, the mean is silently
      // wrong: what the derived scale prevents.
      const finer = { ...config, scale: config.scale * 2 };
      const all = (loss: number) =>
        maskedPackedSum(
          finer,
          Array.from({ length: n }, () => ({ ...full(1), trainLoss: loss })),
        );
      expect(() => decodeAggregate(all(64), finer, n * weightCap)).toThrow(
        /SECAGG_RECONSTRUCT: unmasked element 3 is -\d+, beyond what clipped inputs/,
      );
      const wrapped = decodeAggregate(all(0), finer, n * weightCap);
      expect(wrapped.weightedMean[0]).not.toBeCloseTo(1, 3);
    },
  );
});

describe('secure rounds with packed masked inputs', () => {
  it.each([16, 24] as const)(
    'at %i bits decode to plain weighted FedAvg within the quantization step, with dropouts',
    async (bits) => {
      const vectorLength = 120;
      const config = chooseSecAggParams(7, {
        vectorLength,
        clipRange: 1,
        weightCap: 1000,
        modulusBits: bits,
      });
      expect(config.modulusBits).toBe(bits);
      const clients = withDrops(makeClients(7, vectorLength, 11, 1.5), {
        1: 'shareKeys',
        4: 'maskedInput',
      });
      const report = await runInMemorySecAggRound({
        roundId: `r-packed-${bits}`,
        modelHash: MODEL_HASH,
        config,
        clients,
      });
      expect(report.error).toBeUndefined();
      expect(report.clientErrors.size).toBe(0);
      // What left each client: exactly b/8 bytes an element, the two extra elements included.
      for (const response of report.responses.get('maskedInput')!.values()) {
        const bytes = (response as MaskedInputResponse).maskedInput.byteLength;
        expect(bytes).toBe(((vectorLength + MASKED_EXTRA_ELEMENTS) * bits) / 8);
      }
      const survivors = clients.filter((c) => c.dropAt === undefined);
      const expected = plainWeightedMean(survivors, config);
      expect(report.result!.survivors).toEqual(survivors.map(idOf).sort());
      expect(report.result!.totalWeight).toBe(expected.totalWeight);
      expect(maxAbsDiff(report.result!.weightedMean, expected.mean)).toBeLessThan(
        quantizationTolerance(survivors.length, config, expected.totalWeight),
      );
    },
  );

  it('a 24-bit masked input is exactly 0.75x of 4 bytes an element', async () => {
    const vectorLength = 1000;
    const sizes: Record<number, number> = {};
    for (const bits of [24, 32] as const) {
      const config = chooseSecAggParams(3, {
        vectorLength,
        clipRange: 4,
        modulusBits: bits,
      });
      const report = await runInMemorySecAggRound({
        roundId: `r-size-${bits}`,
        modelHash: MODEL_HASH,
        config,
        clients: makeClients(3, vectorLength, 12),
      });
      expect(report.error).toBeUndefined();
      const [response] = report.responses.get('maskedInput')!.values();
      sizes[bits] = (response as MaskedInputResponse).maskedInput.byteLength;
    }
    expect(sizes[32]).toBe(4 * (vectorLength + 2));
    expect(sizes[24]).toBe(3 * (vectorLength + 2));
    expect(sizes[24]! / sizes[32]!).toBe(0.75);
  });

  const vectorLength = 10;
  const honest = (vectorLength + 2) * 3;
  it.each([
    ['the 32-bit encoding', 4 * (vectorLength + 2)],
    ['one byte short', honest - 1],
    ['one byte over', honest + 1],
    ['the 16-bit encoding', 2 * (vectorLength + 2)],
  ])(
    'the coordinator refuses %s in a 24-bit round (UPDATE_SHAPE) and sums the others',
    async (_label, length) => {
      const config = chooseSecAggParams(5, {
        vectorLength,
        clipRange: 1,
        weightCap: 1000,
        modulusBits: 24,
      });
      const clients = makeClients(5, vectorLength, 13);
      const cheater = idOf(clients[0]!);
      const report = await runInMemorySecAggRound({
        roundId: 'r-packed-shape',
        modelHash: MODEL_HASH,
        config,
        clients,
        hooks: {
          deliverResponse(phase, clientId, response) {
            if (phase === 'maskedInput' && clientId === cheater) {
              (response as MaskedInputResponse).maskedInput = new Uint8Array(length);
            }
            return true;
          },
        },
      });
      const error = report.serverRejections.get(cheater);
      expect(isCohortError(error, 'UPDATE_SHAPE') ? 'UPDATE_SHAPE' : error).toBe('UPDATE_SHAPE');
      expect(report.serverRejections.size).toBe(1);
      // t = 4 of 5: the round completes with the four others, the refused bytes not summed.
      expect(report.error).toBeUndefined();
      const others = clients.slice(1);
      const expected = plainWeightedMean(others, config);
      expect(report.result!.survivors).toEqual(others.map(idOf).sort());
      expect(report.result!.totalWeight).toBe(expected.totalWeight);
      expect(maxAbsDiff(report.result!.weightedMean, expected.mean)).toBeLessThan(
        quantizationTolerance(others.length, config, expected.totalWeight),
      );
    },
  );
});
