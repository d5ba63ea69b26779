import { z } from 'zod';
import { fromHex, toHex, utf8Bytes } from './bytes';
import { CohortError } from './errors';
import type { IdentityKeyPair } from './identity';
import { signDetached, verifyDetached } from './identity';

/**
 * A registrar (an organisation key) certifies client identities once, offline
 * (`cohort keys certify`). A coordinator pinned to the registrar admits only certified
 * identities, and, more importantly, every honest client pinned to it checks the certificate
 * of each cohort member in secure aggregation: a coordinator can no longer invent clients
 * (sybils whose masks it controls) without holding the registrar's key, and no key list has
 * to be handed around by hand.
 */

/** What a certificate signs; the registrar key is in it so a certificate names its issuer. */
export function certificateMessage(registrarKey: Uint8Array, publicKey: Uint8Array): Uint8Array {
  return utf8Bytes(`cohort/identity-certificate/v1\n${toHex(registrarKey)}\n${toHex(publicKey)}`);
}

/** The registrar's signature over a client's identity key. */
export function certifyIdentity(registrar: IdentityKeyPair, publicKey: Uint8Array): Uint8Array {
  return signDetached(certificateMessage(registrar.publicKey, publicKey), registrar);
}

/** Whether `certificate` is the registrar's signature over `publicKey`. */
export function verifyCertificate(
  registrarKey: Uint8Array,
  publicKey: Uint8Array,
  certificate: Uint8Array | undefined,
): boolean {
  if (certificate === undefined) return false;
  return verifyDetached(certificateMessage(registrarKey, publicKey), certificate, registrarKey);
}

const hex = (bytes: number) => z.string().regex(new RegExp(`^[0-9a-f]{${bytes * 2}}$`));

/** The certificate file `cohort keys certify` writes (JSON, public: no secret in it). */
export const certificateFileSchema = z.strictObject({
  version: z.literal(1),
  registrarKey: hex(32),
  publicKey: hex(32),
  certificate: hex(64),
});

/** A certificate as clients hold it. */
export interface IdentityCertificate {
  registrarKey: Uint8Array;
  publicKey: Uint8Array;
  certificate: Uint8Array;
}

/** The JSON text of a certificate file. */
export function formatCertificateFile(cert: IdentityCertificate): string {
  return (
    JSON.stringify(
      {
        version: 1,
        registrarKey: toHex(cert.registrarKey),
        publicKey: toHex(cert.publicKey),
        certificate: toHex(cert.certificate),
      },
      null,
      2,
    ) + '\n'
  );
}

/**
 * Reads a certificate file and checks it: well formed, and really the named registrar's
 * signature over the named key.
 * @throws CohortError CONFIG_INVALID naming `source`.
 */
export function parseCertificateFile(text: string, source: string): IdentityCertificate {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new CohortError('CONFIG_INVALID', `certificate ${source} is not JSON`);
  }
  const parsed = certificateFileSchema.safeParse(json);
  if (!parsed.success) {
    throw new CohortError(
      'CONFIG_INVALID',
      `certificate ${source} is malformed (cohort keys certify writes one)`,
    );
  }
  const cert = {
    registrarKey: fromHex(parsed.data.registrarKey),
    publicKey: fromHex(parsed.data.publicKey),
    certificate: fromHex(parsed.data.certificate),
  };
  if (!verifyCertificate(cert.registrarKey, cert.publicKey, cert.certificate)) {
    throw new CohortError(
      'CONFIG_INVALID',
      `certificate ${source} does not verify under its registrar key`,
    );
  }
  return cert;
}
