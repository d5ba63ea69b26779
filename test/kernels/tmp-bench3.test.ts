import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { registerWasmTrainingKernels } from '../../shared/tfjs-kernels';
import { makeConv2DBackpropFilterWasm } from '../../shared/tfjs-kernels/conv2d-backprop-filter';
import { conv2DBackpropFilterWasm as convBased } from '../../shared/tfjs-kernels/tmp-conv-based';
function use(f: tf.KernelFunc) {
  tf.unregisterKernel('Conv2DBackpropFilter', 'wasm');
  tf.registerKernel({ kernelName: 'Conv2DBackpropFilter', backendName: 'wasm', kernelFunc: f });
}
it('bench', async () => {
  registerWasmTrainingKernels();
  await tf.setBackend('wasm');
  const variants: [string, tf.KernelFunc][] = [['conv', convBased as tf.KernelFunc], ['im2col 2M', makeConv2DBackpropFilterWasm()], ['im2col 8M', makeConv2DBackpropFilterWasm(2 ** 23)], ['im2col 512K', makeConv2DBackpropFilterWasm(2 ** 19)]];
  for (const [n, h, cin, cout, s] of [[64, 28, 1, 32, 1], [64, 32, 4, 32, 1], [64, 32, 8, 32, 1], [64, 16, 16, 32, 1]]) {
    const x = tf.randomUniform([n, h, h, cin]) as tf.Tensor4D;
    const oh = Math.ceil(h / s);
    const dy = tf.randomUniform([n, oh, oh, cout]) as tf.Tensor4D;
    const times: Record<string, number[]> = {};
    for (let rep = 0; rep < 4; rep++) for (const [name, f] of variants) {
      use(f);
      const t = performance.now();
      const r = tf.engine().runKernel('Conv2DBackpropFilter', { x, dy }, { strides: s, pad: 'same', dataFormat: 'NHWC', filterShape: [3, 3, cin, cout] }) as tf.Tensor;
      r.dataSync(); r.dispose();
      (times[name] ??= []).push(performance.now() - t);
    }
    console.log(`${h}x${cin}->${cout} s${s}`, Object.entries(times).map(([k, v]) => `${k}: ${Math.min(...v.slice(1)).toFixed(1)}`).join(' | '));
    x.dispose(); dy.dispose();
  }
});
