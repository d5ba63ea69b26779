import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadOrCreateIdentity } from '../../client-node/identity-store';
import { toHex } from '../../shared/bytes';
import { parseCertificateFile } from '../../shared/registrar';
import { assertCliBuilt, expectExit, killAllCliProcesses, runCli } from '../helpers/cli-process';

/**
 * `cohort keys` as a user runs it: a registrar key made once (owner-only, never overwritten),
 * a certificate that verifies for exactly the identity it names, and clear refusals.
 */

let dir = '';
beforeAll(() => assertCliBuilt());
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'cohort-keys-'));
});
afterEach(async () => {
  await killAllCliProcesses();
  rmSync(dir, { recursive: true, force: true });
});

test('registrar, then certify: the certificate verifies for that identity under that registrar', async () => {
  const registrarFile = join(dir, 'registrar.json');
  const made = await runCli(['keys', 'registrar', '--out', registrarFile]);
  expectExit(made, 0, 'keys registrar');
  expect(statSync(registrarFile).mode & 0o777).toBe(0o600);
  const { identity: registrar } = await loadOrCreateIdentity(registrarFile);
  expect(made.stdout).toContain(`registrar key: ${toHex(registrar.publicKey)}`);

  const again = await runCli(['keys', 'registrar', '--out', registrarFile]);
  expectExit(again, 2, 'a second keys registrar on the same file');
  expect(again.stderr).toContain('CONFIG_INVALID');

  const identityFile = join(dir, 'identity.json');
  const { identity } = await loadOrCreateIdentity(identityFile);
  const certified = await runCli([
    'keys',
    'certify',
    '--registrar',
    registrarFile,
    '--identity',
    identityFile,
  ]);
  expectExit(certified, 0, 'keys certify');
  const certFile = join(dir, 'identity.cert.json');
  const cert = parseCertificateFile(readFileSync(certFile, 'utf8'), certFile);
  expect(toHex(cert.publicKey)).toBe(toHex(identity.publicKey));
  expect(toHex(cert.registrarKey)).toBe(toHex(registrar.publicKey));
  // Public material only: the file holds no secret key.
  expect(readFileSync(certFile, 'utf8')).not.toContain(toHex(identity.secretKey));

  const missing = await runCli([
    'keys',
    'certify',
    '--registrar',
    registrarFile,
    '--identity',
    join(dir, 'nobody.json'),
  ]);
  expectExit(missing, 2, 'certify a missing identity');
  expect(missing.stderr).toMatch(/CONFIG_INVALID: identity .* does not exist/);
}, 60_000);
