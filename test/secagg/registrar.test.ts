import { clientIdFromPublicKey, generateIdentity } from '../../shared/identity';
import type { IdentityKeyPair } from '../../shared/identity';
import {
  certificateMessage,
  certifyIdentity,
  formatCertificateFile,
  parseCertificateFile,
  verifyCertificate,
} from '../../shared/registrar';
import { thrownBy } from '../helpers/error-of';
import { arena, expectCode, honestRun, inputs } from './arena-setup';

/**
 * A registrar certifies identities; clients pinned to it check every cohort member's
 * certificate. Played as the attacker: a coordinator that invents a client, forges a
 * certificate with its own key, or relays a real client's certificate for its sybil.
 */

const registrar = generateIdentity();
const idOf = (identity: IdentityKeyPair) => clientIdFromPublicKey(identity.publicKey);

/** Certificates for these identities, by client id. */
function certify(identities: IdentityKeyPair[], by = registrar): Map<string, Uint8Array> {
  return new Map(identities.map((i) => [idOf(i), certifyIdentity(by, i.publicKey)]));
}

describe('identity certificates', () => {
  it('verify only for the certified key, under the registrar that signed', () => {
    const client = generateIdentity();
    const cert = certifyIdentity(registrar, client.publicKey);
    expect(verifyCertificate(registrar.publicKey, client.publicKey, cert)).toBe(true);
    expect(verifyCertificate(registrar.publicKey, generateIdentity().publicKey, cert)).toBe(false);
    expect(verifyCertificate(generateIdentity().publicKey, client.publicKey, cert)).toBe(false);
    expect(verifyCertificate(registrar.publicKey, client.publicKey, undefined)).toBe(false);
    // The message names the registrar, so a certificate cannot be re-attributed.
    expect(Buffer.from(certificateMessage(registrar.publicKey, client.publicKey)).toString()).toBe(
      `cohort/identity-certificate/v1\n${Buffer.from(registrar.publicKey).toString('hex')}\n` +
        Buffer.from(client.publicKey).toString('hex'),
    );
  });

  it('files round-trip and a tampered file is refused', () => {
    const client = generateIdentity();
    const cert = {
      registrarKey: registrar.publicKey,
      publicKey: client.publicKey,
      certificate: certifyIdentity(registrar, client.publicKey),
    };
    const text = formatCertificateFile(cert);
    expect(parseCertificateFile(text, 'c.json')).toEqual(cert);
    const other = Buffer.from(generateIdentity().publicKey).toString('hex');
    const tampered = text.replace(Buffer.from(client.publicKey).toString('hex'), other);
    expect(thrownBy(() => parseCertificateFile(tampered, 'c.json'))).toBe(
      'CONFIG_INVALID: certificate c.json does not verify under its registrar key',
    );
    expect(thrownBy(() => parseCertificateFile('{}', 'c.json'))).toMatch(/malformed/);
  });
});

describe('attack: a coordinator invents clients (registrar-pinned cohort)', () => {
  it('an honest round of certified clients runs to the end', async () => {
    const honest = inputs(4, 31).map((h) => h.identity);
    const a = arena({
      honest: 4,
      seed: 31,
      registrarKey: registrar.publicKey,
      certificates: certify(honest),
    });
    await honestRun(a, a.ids);
    for (const id of a.ids) expect(a.errorOf(id)).toBeUndefined();
  });

  it('a sybil without a certificate stops every honest client before it shares a key', async () => {
    const sybil = generateIdentity();
    const honest = inputs(4, 32).map((h) => h.identity);
    const a = arena({
      honest: 4,
      corrupt: [sybil],
      seed: 32,
      registrarKey: registrar.publicKey,
      certificates: certify(honest),
    });
    await a.advertiseAll();
    for (const id of a.honest.keys()) {
      await a.shareKeys(id, a.ids);
      expectCode(a.errorOf(id), 'SECAGG_SIGNATURE');
    }
  });

  it("a sybil certified by the coordinator's own key, or carrying a real client's certificate, is refused", async () => {
    const sybil = generateIdentity();
    const honest = inputs(4, 33).map((h) => h.identity);
    for (const forged of [
      certifyIdentity(generateIdentity(), sybil.publicKey),
      certifyIdentity(registrar, honest[0]!.publicKey),
    ]) {
      const certificates = certify(honest);
      certificates.set(idOf(sybil), forged);
      const a = arena({
        honest: 4,
        corrupt: [sybil],
        seed: 33,
        registrarKey: registrar.publicKey,
        certificates,
      });
      await a.advertiseAll();
      const victim = [...a.honest.keys()][0]!;
      await a.shareKeys(victim, a.ids);
      expectCode(a.errorOf(victim), 'SECAGG_SIGNATURE');
    }
  });
});
