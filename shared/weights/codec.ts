/**
 * The binary weight codec. Models travel as one flat little-endian float32 buffer plus a
 * manifest of variable names and shapes, never as JSON number arrays (4x larger, slow to parse,
 * lossy). The manifest lets every receiver check that an update fits its model before using it.
 */
import { utf8Bytes } from '../bytes';
import * as tf from '@tensorflow/tfjs';
import { CohortError } from '../errors';
import { canonicalJson } from '../model/canonical-json';
import { sha256Hex } from './sha256';

/** Names and shapes of a model's variables in order; `length` is the total float count. */
export interface WeightManifest {
  entries: { name: string; shape: number[] }[];
  length: number;
}

/** A model's weights as manifest + flat floats, the unit every round ships and aggregates. */
export interface FlatWeights {
  manifest: WeightManifest;
  data: Float32Array;
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * The manifest of a model: variable names (tfjs's stable `originalName`, e.g.
 * `l0_conv2d/kernel`, not the process-unique name) and shapes, in `model.getWeights()` order.
 */
export function modelManifest(model: tf.LayersModel): WeightManifest {
  const entries = model.weights.map((v) => {
    if (v.dtype !== 'float32') {
      throw new CohortError(
        'UPDATE_SHAPE',
        `variable ${v.originalName} is ${v.dtype}, not float32`,
      );
    }
    return { name: v.originalName, shape: [...(v.shape as number[])] };
  });
  return { entries, length: entries.reduce((sum, e) => sum + shapeSize(e.shape), 0) };
}

/** Copies all model weights into one flat Float32Array (ready to hash, send or aggregate). */
export function extractWeights(model: tf.LayersModel): FlatWeights {
  const manifest = modelManifest(model);
  const data = new Float32Array(manifest.length);
  let offset = 0;
  for (const variable of model.weights) {
    // read() returns the variable itself: read its data, never dispose it.
    const values = variable.read().dataSync() as Float32Array;
    data.set(values, offset);
    offset += values.length;
  }
  return { manifest, data };
}

/**
 * Loads flat weights into a model after checking that the manifest matches the model's own
 * (names, shapes, total length) and that `data` has exactly that length: UPDATE_SHAPE
 * otherwise, so a model of another architecture is never half-applied.
 */
export function applyWeights(
  model: tf.LayersModel,
  manifest: WeightManifest,
  data: Float32Array,
): void {
  const expected = modelManifest(model);
  if (!manifestsEqual(expected, manifest)) {
    throw new CohortError('UPDATE_SHAPE', 'weight manifest does not match the model', {
      difference: describeDifference(expected, manifest),
    });
  }
  if (data.length !== expected.length) {
    throw new CohortError(
      'UPDATE_SHAPE',
      `expected ${expected.length} weights, got ${data.length}`,
    );
  }
  const tensors: tf.Tensor[] = [];
  try {
    let offset = 0;
    for (const entry of expected.entries) {
      const size = shapeSize(entry.shape);
      // slice, not subarray: the cpu backend keeps the array it is given, so a view would
      // let later writes to `data` change the model behind its back.
      tensors.push(tf.tensor(data.slice(offset, offset + size), entry.shape, 'float32'));
      offset += size;
    }
    model.setWeights(tensors);
  } finally {
    for (const t of tensors) t.dispose();
  }
}

/** True when both manifests list the same names and shapes in the same order. */
export function manifestsEqual(a: WeightManifest, b: WeightManifest): boolean {
  if (a.length !== b.length || a.entries.length !== b.entries.length) return false;
  return a.entries.every((entry, i) => {
    const other = b.entries[i]!;
    return (
      entry.name === other.name &&
      entry.shape.length === other.shape.length &&
      entry.shape.every((d, j) => d === other.shape[j])
    );
  });
}

/**
 * The model hash that travels with every round: hex SHA-256 over a 4-byte little-endian length
 * of the canonical manifest JSON, that JSON, then the little-endian float bytes. Covering the
 * manifest means equal bytes under a different layout never hash equal.
 */
export async function hashWeights(manifest: WeightManifest, data: Float32Array): Promise<string> {
  if (data.length !== manifest.length) {
    throw new CohortError(
      'UPDATE_SHAPE',
      `manifest says ${manifest.length} weights, data has ${data.length}`,
    );
  }
  const header = utf8Bytes(
    canonicalJson({
      entries: manifest.entries.map((e) => ({ name: e.name, shape: e.shape })),
      length: manifest.length,
    }),
  );
  const body = floatsToBytes(data);
  const message = new Uint8Array(4 + header.length + body.length);
  new DataView(message.buffer).setUint32(0, header.length, true);
  message.set(header, 4);
  message.set(body, 4 + header.length);
  return sha256Hex(message);
}

/**
 * Little-endian bytes of the floats. On little-endian hosts (all mainstream ones) this is a
 * zero-copy view sharing memory with `floats`; copy it (`.slice()`) if the floats will change
 * while the bytes are still in use.
 */
export function floatsToBytes(floats: Float32Array): Uint8Array {
  // Stryker disable next-line ConditionalExpression: the portable path yields the same bytes; this one only skips a copy.
  if (LITTLE_ENDIAN) return new Uint8Array(floats.buffer, floats.byteOffset, floats.byteLength);
  return encodeFloat32LittleEndian(floats);
}

/**
 * Little-endian float32 bytes on any machine, one element at a time: what {@link floatsToBytes}
 * does on a big-endian host, exported so that path is tested on the little-endian ones too.
 */
export function encodeFloat32LittleEndian(floats: Float32Array): Uint8Array {
  const out = new Uint8Array(floats.length * 4);
  const view = new DataView(out.buffer);
  for (let i = 0; i < floats.length; i++) view.setFloat32(i * 4, floats[i]!, true);
  return out;
}

/**
 * Floats from little-endian bytes. A view when the bytes are 4-byte aligned on a little-endian
 * host, a copy otherwise (socket.io hands Node Buffers at arbitrary pool offsets). A length
 * that is not a multiple of 4 is UPDATE_SHAPE.
 */
export function bytesToFloats(bytes: Uint8Array): Float32Array {
  requireWholeFloats(bytes);
  // Stryker disable next-line ConditionalExpression,BlockStatement: the portable path decodes the same values; this one only skips a copy.
  if (LITTLE_ENDIAN) {
    const count = bytes.byteLength / 4;
    // Aligned: a view, no copy (the test checks it shares the buffer).
    if (bytes.byteOffset % 4 === 0) return new Float32Array(bytes.buffer, bytes.byteOffset, count);
    // An explicit copy: Buffer#slice returns a view, not a copy, so `.slice()` is not enough.
    const copy = new Uint8Array(bytes.byteLength);
    copy.set(bytes);
    return new Float32Array(copy.buffer, 0, count);
  }
  return decodeFloat32LittleEndian(bytes);
}

/** Little-endian float32 bytes decoded on any machine (the big-endian path of {@link bytesToFloats}). */
export function decodeFloat32LittleEndian(bytes: Uint8Array): Float32Array {
  requireWholeFloats(bytes);
  const count = bytes.byteLength / 4;
  const out = new Float32Array(count);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = 0; i < count; i++) out[i] = view.getFloat32(i * 4, true);
  return out;
}

/**
 * Throws UPDATE_NON_FINITE at the first NaN or Infinity: one poisoned update would otherwise
 * turn the whole aggregate into NaN.
 */
// Stryker disable next-line StringLiteral: the default only names the data in the message.
export function assertFinite(data: ArrayLike<number>, what = 'update'): void {
  for (let i = 0; i < data.length; i++) {
    if (!Number.isFinite(data[i]!)) {
      throw new CohortError('UPDATE_NON_FINITE', `${what} has ${data[i]} at index ${i}`, {
        index: i,
      });
    }
  }
}

/** UPDATE_SHAPE unless `bytes` holds a whole number of float32 values. */
function requireWholeFloats(bytes: Uint8Array): void {
  if (bytes.byteLength % 4 !== 0) {
    throw new CohortError(
      'UPDATE_SHAPE',
      `${bytes.byteLength} bytes is not a whole number of floats`,
    );
  }
}

function shapeSize(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function describeDifference(expected: WeightManifest, got: WeightManifest): string {
  const n = Math.max(expected.entries.length, got.entries.length);
  // Stryker disable next-line EqualityOperator: at i = n both entries are missing, hence equal.
  for (let i = 0; i < n; i++) {
    const e = expected.entries[i];
    const g = got.entries[i];
    if (e?.name !== g?.name || JSON.stringify(e?.shape) !== JSON.stringify(g?.shape)) {
      return `entry ${i}: expected ${e ? `${e.name} [${e.shape.join(',')}]` : 'none'}, got ${
        g ? `${g.name} [${g.shape.join(',')}]` : 'none'
      }`;
    }
  }
  return `expected length ${expected.length}, got ${got.length}`;
}
