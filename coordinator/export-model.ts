import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { CohortError } from '../shared/errors';

/**
 * Writes the model in the TensorFlow.js layers format (`model.json` + `weights.bin`), so
 * `tf.loadLayersModel('file://.../model.json')` or a browser can use the federated result
 * directly. Returns the absolute directory.
 */
export async function exportModel(model: tf.LayersModel, directory: string): Promise<string> {
  const dir = resolve(directory);
  await mkdir(dir, { recursive: true });
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      if (!artifacts.weightData || !artifacts.weightSpecs) {
        throw new CohortError('INTERNAL', 'model produced no weights to export');
      }
      const weightData = Array.isArray(artifacts.weightData)
        ? tf.io.concatenateArrayBuffers(artifacts.weightData)
        : artifacts.weightData;
      const modelJson = {
        format: 'layers-model',
        generatedBy: `cohort (TensorFlow.js ${tf.version.tfjs})`,
        convertedBy: null,
        modelTopology: artifacts.modelTopology,
        weightsManifest: [{ paths: ['weights.bin'], weights: artifacts.weightSpecs }],
      };
      await writeFile(join(dir, 'weights.bin'), new Uint8Array(weightData));
      await writeFile(join(dir, 'model.json'), JSON.stringify(modelJson));
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }),
  );
  return dir;
}
