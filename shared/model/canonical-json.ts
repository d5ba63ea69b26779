/**
 * Canonical JSON: the same value always serialises to the same text, whatever the key order it
 * was built with. Hashes of specs, manifests and configs are computed over this text, so two
 * parties agree on a hash exactly when they agree on the content.
 */
import { CohortError } from '../errors';

/**
 * JSON with object keys sorted (by UTF-16 code units) at every depth and no whitespace.
 * `undefined` object properties are omitted as JSON.stringify does; values JSON cannot carry
 * faithfully (NaN, Infinity, undefined in arrays, functions, bigint) are refused rather than
 * silently turned into `null`.
 */
export function canonicalJson(value: unknown): string {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'boolean':
    case 'string':
      return JSON.stringify(value);
    case 'number':
      if (!Number.isFinite(value)) throw unsupported(`non-finite number ${value}`);
      return JSON.stringify(value);
    case 'object': {
      if (Array.isArray(value)) {
        return `[${value
          .map((item: unknown) => {
            if (item === undefined) throw unsupported('undefined inside an array');
            return canonicalJson(item);
          })
          .join(',')}]`;
      }
      if (ArrayBuffer.isView(value)) throw unsupported('binary data (hash the bytes instead)');
      const record = value as Record<string, unknown>;
      const keys = Object.keys(record)
        .filter((k) => record[k] !== undefined)
        .sort();
      return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(record[k])}`).join(',')}}`;
    }
    default:
      throw unsupported(typeof value);
  }
}

function unsupported(what: string): CohortError {
  return new CohortError('CONFIG_INVALID', `cannot canonicalise ${what} as JSON`);
}
