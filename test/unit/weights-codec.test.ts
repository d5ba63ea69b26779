import * as tf from '@tensorflow/tfjs';
import { isCohortError } from '../../shared/errors';
import type { ErrorCode } from '../../shared/errors';
import { buildModel } from '../../shared/model/build-model';
import type { ModelSpec } from '../../shared/model/spec';
import {
  applyWeights,
  assertFinite,
  bytesToFloats,
  decodeFloat32LittleEndian,
  encodeFloat32LittleEndian,
  extractWeights,
  floatsToBytes,
  hashWeights,
  manifestsEqual,
  modelManifest,
} from '../../shared/weights/codec';
import type { WeightManifest } from '../../shared/weights/codec';

const SPEC: ModelSpec = {
  input: [4, 4, 1],
  classes: 2,
  layers: [
    { type: 'conv2d', filters: 2, kernel: 3 },
    { type: 'flatten' },
    { type: 'dense', units: 2 },
  ],
};
// conv kernel 3*3*1*2 = 18, bias 2, dense kernel 8*2 = 16, bias 2.
const LENGTH = 38;

function codeOf(fn: () => unknown): ErrorCode | undefined {
  try {
    fn();
  } catch (err) {
    if (isCohortError(err)) return err.code;
    throw err;
  }
  return undefined;
}

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('extractWeights / applyWeights', () => {
  it('flattens in getWeights() order with names and shapes', () => {
    const model = buildModel(SPEC, 1);
    try {
      const { manifest, data } = extractWeights(model);
      expect(manifest).toEqual({
        entries: [
          { name: 'l0_conv2d/kernel', shape: [3, 3, 1, 2] },
          { name: 'l0_conv2d/bias', shape: [2] },
          { name: 'l2_dense/kernel', shape: [8, 2] },
          { name: 'l2_dense/bias', shape: [2] },
        ],
        length: LENGTH,
      });
      const expected = model.getWeights().flatMap((t) => Array.from(t.dataSync()));
      expect(Array.from(data)).toEqual(expected);
    } finally {
      model.dispose();
    }
  });

  it('round-trips weights into another model and leaks no tensors', () => {
    const source = buildModel(SPEC, 1);
    const target = buildModel(SPEC, 2);
    try {
      const { manifest, data } = extractWeights(source);
      const before = tf.memory().numTensors;
      applyWeights(target, manifest, data);
      expect(tf.memory().numTensors).toBe(before);
      expect(extractWeights(target).data).toEqual(data);
      const values = new Float32Array(LENGTH).map((_, i) => i / 10);
      applyWeights(target, manifest, values);
      expect(extractWeights(target).data).toEqual(values);
      // The model's data is a copy: changing the source array later changes nothing.
      values[0] = 99;
      expect(extractWeights(target).data[0]).toBe(0);
    } finally {
      for (const m of [source, target]) m.dispose();
    }
  });

  it('refuses mismatched names, shapes or lengths with UPDATE_SHAPE', () => {
    const model = buildModel(SPEC, 1);
    try {
      const { manifest, data } = extractWeights(model);
      const renamed: WeightManifest = {
        ...manifest,
        entries: manifest.entries.map((e, i) => (i === 1 ? { ...e, name: 'other/bias' } : e)),
      };
      const reshaped: WeightManifest = {
        ...manifest,
        entries: manifest.entries.map((e, i) => (i === 2 ? { ...e, shape: [2, 8] } : e)),
      };
      expect(codeOf(() => applyWeights(model, renamed, data))).toBe('UPDATE_SHAPE');
      expect(codeOf(() => applyWeights(model, reshaped, data))).toBe('UPDATE_SHAPE');
      expect(codeOf(() => applyWeights(model, manifest, data.subarray(1)))).toBe('UPDATE_SHAPE');
      expect(
        codeOf(() =>
          applyWeights(model, { ...manifest, entries: manifest.entries.slice(1) }, data),
        ),
      ).toBe('UPDATE_SHAPE');
      expect(manifestsEqual(manifest, modelManifest(model))).toBe(true);
      expect(manifestsEqual(manifest, renamed)).toBe(false);
      expect(manifestsEqual(manifest, reshaped)).toBe(false);
    } finally {
      model.dispose();
    }
  });
});

describe('bytes', () => {
  it('encodes little-endian float32', () => {
    const bytes = floatsToBytes(new Float32Array([1, -2]));
    // 1.0f = 0x3f800000, -2.0f = 0xc0000000, least significant byte first.
    expect(Array.from(bytes)).toEqual([0, 0, 0x80, 0x3f, 0, 0, 0, 0xc0]);
    expect(Array.from(bytesToFloats(bytes))).toEqual([1, -2]);
  });

  it('decodes unaligned views by copying', () => {
    const floats = new Float32Array([0.5, 3.25, -1e-7]);
    const backing = new Uint8Array(1 + floats.byteLength);
    backing.set(floatsToBytes(floats), 1);
    const unaligned = backing.subarray(1);
    expect(unaligned.byteOffset % 4).toBe(1);
    expect(bytesToFloats(unaligned)).toEqual(floats);
  });

  it('refuses a byte length that is not a multiple of 4', () => {
    expect(codeOf(() => bytesToFloats(new Uint8Array(7)))).toBe('UPDATE_SHAPE');
    expect(bytesToFloats(new Uint8Array(0))).toHaveLength(0);
  });

  it('assertFinite refuses NaN and infinities', () => {
    expect(codeOf(() => assertFinite(new Float32Array([1, 2])))).toBeUndefined();
    expect(codeOf(() => assertFinite(new Float32Array([1, Number.NaN])))).toBe('UPDATE_NON_FINITE');
    expect(codeOf(() => assertFinite(new Float32Array([-Infinity])))).toBe('UPDATE_NON_FINITE');
  });
});

describe('hashWeights', () => {
  const manifest: WeightManifest = { entries: [{ name: 'w', shape: [2] }], length: 2 };

  it('is the SHA-256 of length-prefixed canonical manifest JSON plus the float bytes', async () => {
    const data = new Float32Array([1, 2]);
    const json = new TextEncoder().encode('{"entries":[{"name":"w","shape":[2]}],"length":2}');
    const message = new Uint8Array(4 + json.length + 8);
    new DataView(message.buffer).setUint32(0, json.length, true);
    message.set(json, 4);
    message.set(new Uint8Array(data.buffer), 4 + json.length);
    const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', message));
    const expected = Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('');
    expect(await hashWeights(manifest, data)).toBe(expected);
  });

  it('changes with any weight bit or with the manifest', async () => {
    const data = new Float32Array([1, 2]);
    const hash = await hashWeights(manifest, data);
    expect(await hashWeights(manifest, new Float32Array([1, 2.0000002]))).not.toBe(hash);
    expect(await hashWeights({ entries: [{ name: 'v', shape: [2] }], length: 2 }, data)).not.toBe(
      hash,
    );
    expect(
      await hashWeights({ entries: [{ name: 'w', shape: [2, 1] }], length: 2 }, data),
    ).not.toBe(hash);
    // The same content behind an unaligned view hashes the same.
    const backing = new Uint8Array(9);
    backing.set(floatsToBytes(data), 1);
    expect(await hashWeights(manifest, bytesToFloats(backing.subarray(1)))).toBe(hash);
  });

  it('refuses data whose length disagrees with the manifest', async () => {
    await expect(hashWeights(manifest, new Float32Array(3))).rejects.toThrow(/UPDATE_SHAPE/);
  });
});

/** The error `fn` throws (undefined when it returns). */
function errorOf(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  return undefined;
}

describe('manifests, exactly', () => {
  const base: WeightManifest = {
    entries: [
      { name: 'a', shape: [2, 3] },
      { name: 'b', shape: [4] },
    ],
    length: 10,
  };
  const withEntry = (i: number, entry: { name: string; shape: number[] }): WeightManifest => ({
    ...base,
    entries: base.entries.map((e, j) => (j === i ? entry : e)),
  });

  it('differ in the total length alone, the entry count alone, a name, a rank or one dimension', () => {
    expect(manifestsEqual(base, structuredClone(base))).toBe(true);
    expect(manifestsEqual(base, { ...base, length: 11 })).toBe(false);
    expect(manifestsEqual(base, { ...base, entries: base.entries.slice(0, 1) })).toBe(false);
    expect(manifestsEqual(base, withEntry(1, { name: 'c', shape: [4] }))).toBe(false);
    expect(manifestsEqual(base, withEntry(0, { name: 'a', shape: [2, 3, 1] }))).toBe(false);
    expect(manifestsEqual(base, withEntry(0, { name: 'a', shape: [2, 5] }))).toBe(false);
  });

  it('a refused manifest says which entry differs, in the error details', () => {
    const model = buildModel(SPEC, 1);
    try {
      const { manifest, data } = extractWeights(model);
      const difference = (other: WeightManifest) => {
        const error = errorOf(() => applyWeights(model, other, data));
        expect(isCohortError(error, 'UPDATE_SHAPE')).toBe(true);
        return (error as { details?: { difference?: string } }).details?.difference;
      };
      const second = manifest.entries[1]!;
      expect(
        difference({
          ...manifest,
          entries: manifest.entries.map((e, i) => (i === 1 ? { ...e, name: 'other/bias' } : e)),
        }),
      ).toBe(`entry 1: expected ${second.name} [${second.shape.join(',')}], got other/bias [2]`);
      const kernel = manifest.entries[2]!;
      expect(kernel.shape).toEqual([8, 2]);
      expect(
        difference({
          ...manifest,
          entries: manifest.entries.map((e, i) => (i === 2 ? { ...e, shape: [2, 8] } : e)),
        }),
      ).toBe(`entry 2: expected ${kernel.name} [8,2], got ${kernel.name} [2,8]`);
      expect(
        difference({ ...manifest, entries: [...manifest.entries, { name: 'extra', shape: [1] }] }),
      ).toBe('entry 4: expected none, got extra [1]');
      const last = manifest.entries.at(-1)!;
      expect(difference({ ...manifest, entries: manifest.entries.slice(0, -1) })).toBe(
        `entry 3: expected ${last.name} [${last.shape.join(',')}], got none`,
      );
      expect(difference({ ...manifest, length: LENGTH + 1 })).toBe(
        `expected length ${LENGTH}, got ${LENGTH + 1}`,
      );
    } finally {
      model.dispose();
    }
  });

  it('a model with a non-float32 variable has no manifest', () => {
    const model = {
      weights: [{ dtype: 'int32', originalName: 'counter', shape: [1] }],
    } as unknown as tf.LayersModel;
    expect(codeOf(() => modelManifest(model))).toBe('UPDATE_SHAPE');
  });
});

describe('bytes, on either byte order', () => {
  const floats = new Float32Array([1, -2, 0.5, 3.25, -1e-7]);

  it('the portable little-endian codec gives the same bytes and values as the fast path', () => {
    expect(encodeFloat32LittleEndian(floats)).toEqual(new Uint8Array(floatsToBytes(floats)));
    expect(Array.from(encodeFloat32LittleEndian(new Float32Array([1, -2])))).toEqual([
      0, 0, 0x80, 0x3f, 0, 0, 0, 0xc0,
    ]);
    const backing = new Uint8Array(3 + floats.byteLength);
    backing.set(floatsToBytes(floats), 3);
    expect(decodeFloat32LittleEndian(backing.subarray(3))).toEqual(floats);
    expect(codeOf(() => decodeFloat32LittleEndian(new Uint8Array(7)))).toBe('UPDATE_SHAPE');
  });

  it('aligned bytes decode without a copy, unaligned ones into a copy', () => {
    const aligned = floatsToBytes(floats);
    expect(bytesToFloats(aligned).buffer).toBe(aligned.buffer);
    const backing = new Uint8Array(8 + floats.byteLength);
    backing.set(aligned, 4);
    const offsetAligned = backing.subarray(4, 4 + floats.byteLength);
    expect(bytesToFloats(offsetAligned).buffer).toBe(backing.buffer);
    expect(bytesToFloats(offsetAligned)).toEqual(floats);
    const odd = new Uint8Array(1 + floats.byteLength);
    odd.set(aligned, 1);
    expect(bytesToFloats(odd.subarray(1)).buffer).not.toBe(odd.buffer);
  });

  it('assertFinite reports the first bad index in its details', () => {
    const error = errorOf(() => assertFinite([0, 1, Number.NaN, Infinity]));
    expect(isCohortError(error, 'UPDATE_NON_FINITE') && error.details).toEqual({ index: 2 });
  });
});
