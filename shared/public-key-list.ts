import { CohortError } from './errors';

/**
 * Parses a list of Ed25519 public keys, one 64-character hex key per line (`#` comments and
 * blank lines allowed), as `--trusted-keys` and `--allow-clients` files hold them. Returns
 * the keys in lower case; CONFIG_INVALID names the file and line of the first bad entry.
 */
export function parsePublicKeyList(text: string, source: string): string[] {
  const keys: string[] = [];
  for (const [index, raw] of text.split('\n').entries()) {
    const line = raw.replace(/#.*/, '').trim();
    if (line === '') continue;
    if (!/^[0-9a-fA-F]{64}$/.test(line)) {
      throw new CohortError(
        'CONFIG_INVALID',
        `${source}:${index + 1}: expected a 64-character hex public key`,
      );
    }
    keys.push(line.toLowerCase());
  }
  if (keys.length === 0) throw new CohortError('CONFIG_INVALID', `${source} lists no keys`);
  return keys;
}
