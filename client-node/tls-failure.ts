import { CohortError } from '../shared/errors';

/** OpenSSL's verification failures: retrying cannot fix them, a `--ca` can. */
const CERTIFICATE_ERRORS = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/**
 * The TLS_UNTRUSTED error for a socket.io `connect_error` caused by certificate verification
 * (the cause sits in the transport error's `description`, a WebSocket error event whose
 * `error` is Node's TLS error; or in a `cause` chain), or null
 * for a failure worth retrying (refused, reset, timed out).
 */
export function untrustedCertificate(error: unknown): CohortError | null {
  const seen = new Set<unknown>();
  let current: unknown = error;
  while (typeof current === 'object' && current !== null && !seen.has(current)) {
    seen.add(current);
    const {
      code,
      message,
      description,
      error: inner,
      cause,
    } = current as {
      code?: unknown;
      message?: unknown;
      description?: unknown;
      error?: unknown;
      cause?: unknown;
    };
    if (typeof code === 'string' && CERTIFICATE_ERRORS.has(code)) {
      return new CohortError(
        'TLS_UNTRUSTED',
        `the coordinator's TLS certificate is not trusted (${code}${typeof message === 'string' ? `: ${message}` : ''}): ` +
          'pass --ca FILE with the certificate of the CA that signed it (or the self-signed certificate itself)',
      );
    }
    current = description ?? inner ?? cause;
  }
  return null;
}
