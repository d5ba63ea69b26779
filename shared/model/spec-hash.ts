/**
 * The identity of a model architecture. Clients send it when they register so a client built
 * for another network is refused (TASK_MISMATCH) before any weights travel.
 */
import { utf8Bytes } from '../bytes';
import { sha256Hex } from '../weights/sha256';
import { canonicalJson } from './canonical-json';
import type { ModelSpec } from './spec';
import { validateModelSpec } from './validate-spec';

/** Hex SHA-256 of the validated spec's canonical JSON: equal specs hash equal, key order aside. */
export async function specHash(spec: ModelSpec): Promise<string> {
  return sha256Hex(utf8Bytes(canonicalJson(validateModelSpec(spec))));
}
