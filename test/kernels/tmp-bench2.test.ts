import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
function time(label: string, f: () => tf.Tensor) {
  f().dispose();
  let best = 1e9;
  for (let i = 0; i < 4; i++) { const t = performance.now(); f().dispose(); best = Math.min(best, performance.now() - t); }
  console.log(label, best.toFixed(1));
}
it('bench', async () => {
  await tf.setBackend('wasm');
  for (const [n, h, cin, cout] of [[64, 32, 3, 32], [64, 16, 32, 64], [64, 8, 64, 64]]) {
    const m = n * h * h, k = 9 * cin;
    const P = tf.randomUniform([m, k]); const PT = tf.randomUniform([k, m]); const D = tf.randomUniform([m, cout]); const DT = tf.randomUniform([cout, m]);
    time(`${h}x${cin} mm PT D`, () => tf.matMul(PT, D, false, false));
    time(' mm DT P', () => tf.matMul(DT, P, false, false));
    time(' transpose D', () => tf.transpose(D));
    time(' transpose P', () => tf.transpose(P));
  }
});
