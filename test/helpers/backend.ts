import { selectBackend } from '../../client-node/backend/select-backend';

/** Tests train on the wasm backend (with Cohort's training kernels), like a client without tfjs-node. */
export async function useWasmBackend(): Promise<string> {
  const result = await selectBackend({ preferred: 'wasm' });
  return result.choice;
}
