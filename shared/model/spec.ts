/**
 * Model architectures are data, not code: the same JSON spec builds the tfjs model on every
 * client and feeds `../shared/bench/torch_reference.py`, so speed comparisons are honest.
 */
export type Activation = 'relu' | 'linear' | 'softmax';

/** A 2-D convolution; `stride` defaults to 1 and `padding` to 'valid' as in the torch reference. */
export interface Conv2dLayerSpec {
  type: 'conv2d';
  filters: number;
  kernel: number;
  stride?: number;
  padding?: 'same' | 'valid';
  activation?: Activation;
}
export interface MaxPoolLayerSpec {
  type: 'maxpool';
  size: number;
}
export interface FlattenLayerSpec {
  type: 'flatten';
}
export interface DenseLayerSpec {
  type: 'dense';
  units: number;
  activation?: Activation;
}
export interface DropoutLayerSpec {
  type: 'dropout';
  rate: number;
}
export type LayerSpec =
  Conv2dLayerSpec | MaxPoolLayerSpec | FlattenLayerSpec | DenseLayerSpec | DropoutLayerSpec;

/** Channels-last input shape, number of classes, layers in order; the last dense layer gives logits. */
export interface ModelSpec {
  input: [number, number, number];
  classes: number;
  layers: LayerSpec[];
}
