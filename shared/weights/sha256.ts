/**
 * SHA-256 through WebCrypto, the one hash implementation that is identical (and fast) in Node
 * 20 and in browsers, so a model hash computed by the coordinator matches the client's.
 */
import { toHex } from '../bytes';
import { CohortError } from '../errors';

/**
 * Hex SHA-256 of `bytes`. Browsers expose WebCrypto only in secure contexts (https or
 * localhost): elsewhere this throws CONFIG_INVALID saying so, instead of an opaque TypeError.
 */
export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const subtle = (globalThis as { crypto?: Crypto }).crypto?.subtle;
  if (subtle === undefined) {
    throw new CohortError(
      'CONFIG_INVALID',
      'WebCrypto (crypto.subtle) is unavailable: serve the page over https or from localhost',
    );
  }
  const digest = await subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>);
  return toHex(new Uint8Array(digest));
}
