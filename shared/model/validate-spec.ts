/**
 * Runtime checks for model specs. A spec can arrive from a config file, a database row or the
 * network, and a bad one must fail with a clear CONFIG_INVALID before tfjs builds anything
 * (or allocates gigabytes for an absurd layer).
 */
import { CohortError } from '../errors';
import type { Activation, Conv2dLayerSpec, LayerSpec, ModelSpec } from './spec';

/** Upper bounds that keep a hostile or mistyped spec from exhausting memory. */
export const MODEL_SPEC_LIMITS = {
  maxLayers: 64,
  maxInputSide: 1024,
  maxChannels: 4096,
  maxKernel: 32,
  maxUnits: 65_536,
  maxClasses: 10_000,
  maxParameters: 50_000_000,
} as const;

/**
 * 'softmax' stays in the Activation type for specs written for other tools, but is refused:
 * the PyTorch reference ignores it, so a hidden softmax would build two different networks,
 * and the loss already applies softmax to the logits.
 */
const ACTIVATIONS: readonly Activation[] = ['relu', 'linear'];

/** Shape of the activations after a layer: spatial [h, w, c] or flat [n]. */
export type LayerOutputShape = readonly [number, number, number] | readonly [number];

/** Per-layer output shapes and parameter counts of a valid spec, for logs and size checks. */
export interface ModelSpecSummary {
  outputShapes: LayerOutputShape[];
  parametersPerLayer: number[];
  parameters: number;
}

/**
 * Checks every field of an untrusted value and returns a clean copy typed as ModelSpec.
 * Beyond types it enforces what both tfjs and the PyTorch reference need to build the same
 * network: flatten before dense, 'same' padding only with stride 1 and an odd kernel (the only
 * case where both frameworks pad identically), spatial sizes that stay positive, and a last
 * layer that is a linear dense layer with one unit per class (it gives logits).
 */
export function validateModelSpec(value: unknown): ModelSpec {
  const top = asRecord(value, 'model spec');
  allowOnly(top, ['input', 'classes', 'layers'], 'model spec');
  const input = top.input;
  if (!Array.isArray(input) || input.length !== 3) {
    throw bad('input must be [height, width, channels]');
  }
  const [h, w, c] = input.map((d, i) =>
    positiveInt(d, `input[${i}]`, i < 2 ? MODEL_SPEC_LIMITS.maxInputSide : 64),
  ) as [number, number, number];
  const classes = positiveInt(top.classes, 'classes', MODEL_SPEC_LIMITS.maxClasses);
  if (classes < 2) throw bad('classes must be at least 2');
  if (!Array.isArray(top.layers) || top.layers.length === 0) {
    throw bad('layers must be a non-empty array');
  }
  if (top.layers.length > MODEL_SPEC_LIMITS.maxLayers) {
    throw bad(`at most ${MODEL_SPEC_LIMITS.maxLayers} layers`);
  }
  const layers = (top.layers as unknown[]).map((layer, i) => validateLayer(layer, i));
  const spec: ModelSpec = { input: [h, w, c], classes, layers };
  const summary = summarizeModelSpec(spec);
  const last = layers[layers.length - 1]!;
  if (last.type !== 'dense' || last.units !== classes) {
    throw bad(`the last layer must be a dense layer with ${classes} units (the logits)`);
  }
  if (last.activation !== undefined && last.activation !== 'linear') {
    throw bad('the last dense layer gives logits: its activation must be linear or absent');
  }
  if (summary.parameters > MODEL_SPEC_LIMITS.maxParameters) {
    throw bad(`${summary.parameters} parameters exceed ${MODEL_SPEC_LIMITS.maxParameters}`);
  }
  return spec;
}

/**
 * Walks the layers computing output shapes and parameter counts, the same way both tfjs and
 * the PyTorch reference do; throws CONFIG_INVALID where a layer cannot apply.
 */
export function summarizeModelSpec(spec: ModelSpec): ModelSpecSummary {
  let shape: LayerOutputShape = spec.input;
  const outputShapes: LayerOutputShape[] = [];
  const parametersPerLayer: number[] = [];
  spec.layers.forEach((layer, i) => {
    const where = `layers[${i}] (${layer.type})`;
    let params = 0;
    switch (layer.type) {
      case 'conv2d': {
        if (shape.length !== 3) throw bad(`${where}: needs spatial input, found flat`);
        const [h, w, c] = shape;
        const stride = layer.stride ?? 1;
        const pad = layer.padding === 'same' ? Math.floor(layer.kernel / 2) : 0;
        const oh = Math.floor((h + 2 * pad - layer.kernel) / stride) + 1;
        const ow = Math.floor((w + 2 * pad - layer.kernel) / stride) + 1;
        if (oh < 1 || ow < 1) throw bad(`${where}: kernel larger than its ${h}x${w} input`);
        params = layer.kernel * layer.kernel * c * layer.filters + layer.filters;
        shape = [oh, ow, layer.filters];
        break;
      }
      case 'maxpool': {
        if (shape.length !== 3) throw bad(`${where}: needs spatial input, found flat`);
        const [h, w, c] = shape;
        if (h < layer.size || w < layer.size) {
          throw bad(`${where}: pool larger than its ${h}x${w} input`);
        }
        shape = [Math.floor(h / layer.size), Math.floor(w / layer.size), c];
        break;
      }
      case 'flatten':
        shape = [shape.reduce((a, b) => a * b, 1)];
        break;
      case 'dense':
        if (shape.length !== 1) throw bad(`${where}: put a flatten layer before dense layers`);
        params = shape[0] * layer.units + layer.units;
        shape = [layer.units];
        break;
      case 'dropout':
        break;
    }
    outputShapes.push(shape);
    parametersPerLayer.push(params);
  });
  return {
    outputShapes,
    parametersPerLayer,
    parameters: parametersPerLayer.reduce((a, b) => a + b, 0),
  };
}

function validateLayer(value: unknown, index: number): LayerSpec {
  const where = `layers[${index}]`;
  const layer = asRecord(value, where);
  switch (layer.type) {
    case 'conv2d': {
      allowOnly(layer, ['type', 'filters', 'kernel', 'stride', 'padding', 'activation'], where);
      const filters = positiveInt(layer.filters, `${where}.filters`, MODEL_SPEC_LIMITS.maxChannels);
      const kernel = positiveInt(layer.kernel, `${where}.kernel`, MODEL_SPEC_LIMITS.maxKernel);
      const out: Conv2dLayerSpec = { type: 'conv2d', filters, kernel };
      if (layer.stride !== undefined) {
        out.stride = positiveInt(layer.stride, `${where}.stride`, MODEL_SPEC_LIMITS.maxKernel);
      }
      if (layer.padding !== undefined) {
        if (layer.padding !== 'same' && layer.padding !== 'valid') {
          throw bad(`${where}.padding must be 'same' or 'valid'`);
        }
        out.padding = layer.padding;
      }
      if (out.padding === 'same' && ((out.stride ?? 1) !== 1 || kernel % 2 === 0)) {
        throw bad(`${where}: 'same' padding needs stride 1 and an odd kernel`);
      }
      const activation = optionalActivation(layer.activation, where);
      if (activation !== undefined) out.activation = activation;
      return out;
    }
    case 'maxpool':
      allowOnly(layer, ['type', 'size'], where);
      return {
        type: 'maxpool',
        size: positiveInt(layer.size, `${where}.size`, MODEL_SPEC_LIMITS.maxKernel),
      };
    case 'flatten':
      allowOnly(layer, ['type'], where);
      return { type: 'flatten' };
    case 'dense': {
      allowOnly(layer, ['type', 'units', 'activation'], where);
      const units = positiveInt(layer.units, `${where}.units`, MODEL_SPEC_LIMITS.maxUnits);
      const activation = optionalActivation(layer.activation, where);
      return activation === undefined
        ? { type: 'dense', units }
        : { type: 'dense', units, activation };
    }
    case 'dropout': {
      allowOnly(layer, ['type', 'rate'], where);
      const rate = layer.rate;
      if (typeof rate !== 'number' || !Number.isFinite(rate) || rate < 0 || rate >= 1) {
        throw bad(`${where}.rate must be a number in [0, 1)`);
      }
      return { type: 'dropout', rate };
    }
    default:
      throw bad(
        `${where}.type ${JSON.stringify(layer.type)} is not one of conv2d, maxpool, flatten, dense, dropout`,
      );
  }
}

function asRecord(value: unknown, what: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw bad(`${what} must be an object`);
  }
  return value as Record<string, unknown>;
}

function allowOnly(record: Record<string, unknown>, keys: readonly string[], what: string): void {
  for (const key of Object.keys(record)) {
    if (!keys.includes(key)) throw bad(`${what} has unknown field ${JSON.stringify(key)}`);
  }
}

function positiveInt(value: unknown, what: string, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > max) {
    throw bad(`${what} must be an integer in [1, ${max}]`);
  }
  return value;
}

function optionalActivation(value: unknown, where: string): Activation | undefined {
  if (value === undefined) return undefined;
  if (!ACTIVATIONS.includes(value as Activation)) {
    throw bad(`${where}.activation must be one of ${ACTIVATIONS.join(', ')}`);
  }
  return value as Activation;
}

function bad(message: string): CohortError {
  return new CohortError('CONFIG_INVALID', `model spec: ${message}`);
}
