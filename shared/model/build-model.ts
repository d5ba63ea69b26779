/**
 * Turns a ModelSpec into a tfjs model. The model comes only from the spec, with stable layer
 * names and seeded initial weights, so every client and the coordinator build the same
 * network with the same weight manifest, and a seed reproduces the same starting point.
 */
import * as tf from '@tensorflow/tfjs';
import { createRng } from '../random';
import type { Rng } from '../random';
import type { LayerSpec, ModelSpec } from './spec';
import { validateModelSpec } from './validate-spec';

/**
 * Builds an uncompiled model whose output is the logits (training applies softmax
 * cross-entropy itself). Layers are named `l<index>_<type>`, so weight names such as
 * `l0_conv2d/kernel` do not depend on how many models the process built before. Kernels get
 * Glorot-uniform values from a seeded generator (biases start at zero), the Keras default
 * made reproducible: the same spec and seed give bit-identical weights on every backend.
 */
export function buildModel(spec: ModelSpec, seed = 0): tf.LayersModel {
  const valid = validateModelSpec(spec);
  const model = tf.sequential({
    layers: valid.layers.map((layer, i) =>
      createLayer(layer, `l${i}_${layer.type}`, i === 0 ? valid.input : undefined),
    ),
  });
  initializeWeights(model, createRng(seed));
  return model;
}

function createLayer(
  layer: LayerSpec,
  name: string,
  inputShape: [number, number, number] | undefined,
): tf.layers.Layer {
  const common = inputShape === undefined ? { name } : { name, inputShape };
  switch (layer.type) {
    case 'conv2d':
      return tf.layers.conv2d({
        ...common,
        filters: layer.filters,
        kernelSize: layer.kernel,
        strides: layer.stride ?? 1,
        padding: layer.padding ?? 'valid',
        activation: layer.activation ?? 'linear',
        kernelInitializer: 'zeros',
        biasInitializer: 'zeros',
      });
    case 'maxpool':
      return tf.layers.maxPooling2d({
        ...common,
        poolSize: layer.size,
        strides: layer.size,
        padding: 'valid',
      });
    case 'flatten':
      return tf.layers.flatten(common);
    case 'dense':
      return tf.layers.dense({
        ...common,
        units: layer.units,
        activation: layer.activation ?? 'linear',
        kernelInitializer: 'zeros',
        biasInitializer: 'zeros',
      });
    case 'dropout':
      return tf.layers.dropout({ ...common, rate: layer.rate });
  }
}

/** Glorot-uniform kernels (limit sqrt(6 / (fanIn + fanOut))), zero biases. */
function initializeWeights(model: tf.LayersModel, rng: Rng): void {
  const values = model.weights.map((variable) => {
    const shape = variable.shape as number[];
    const size = shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(size);
    if (variable.originalName.endsWith('/kernel')) {
      // Dense [in, out]; conv [kh, kw, in, out]: the receptive field multiplies both fans.
      const receptive = shape.slice(0, -2).reduce((a, b) => a * b, 1);
      const fanIn = receptive * shape[shape.length - 2]!;
      const fanOut = receptive * shape[shape.length - 1]!;
      const limit = Math.sqrt(6 / (fanIn + fanOut));
      for (let i = 0; i < size; i++) data[i] = (2 * rng.next() - 1) * limit;
    }
    return tf.tensor(data, shape, 'float32');
  });
  model.setWeights(values);
  tf.dispose(values);
}
