/* eslint-disable no-console -- the CLI's job is to print */
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { Command } from 'commander';
import { loadOrCreateIdentity, publicKeyHex } from '../../client-node/identity-store';
import { CohortError } from '../../shared/errors';
import { certifyIdentity, formatCertificateFile } from '../../shared/registrar';
import { addTableOptions, tableValues } from './command-options';
import { runCommand } from './run-context';

/**
 * `cohort keys`: a registrar (an organisation key) and the certificates it issues. The
 * registrar's secret key stays where it was made (offline, ideally); certificates are public
 * and travel with each client (`cohort client --certificate`), and the registrar's public key
 * is pinned with `--registrar-key` on the coordinator and the clients.
 */
export function keysCommand(): Command {
  const keys = new Command('keys').description(
    'registrar keys: certify client identities so only they can take part',
  );
  const registrar = keys
    .command('registrar')
    .description('create a registrar (organisation) key; prints the public key to pin');
  addTableOptions(registrar, 'keys-registrar');
  registrar.action((parsed: Record<string, unknown>) =>
    runCommand(async () => {
      const { keysOut } = tableValues('keys-registrar', parsed);
      if (existsSync(keysOut!)) {
        throw new CohortError(
          'CONFIG_INVALID',
          `${keysOut!} exists: a registrar key is never overwritten`,
        );
      }
      const { identity } = await loadOrCreateIdentity(keysOut!);
      console.log(`created registrar key ${keysOut!} (mode 0600: keep it offline)`);
      console.log(`registrar key: ${publicKeyHex(identity)}`);
      console.log('pin it with --registrar-key on the coordinator and on every client');
    }),
  );
  const certify = keys
    .command('certify')
    .description("certify a client identity with the registrar's key");
  addTableOptions(certify, 'keys-certify');
  certify.action((parsed: Record<string, unknown>) =>
    runCommand(async () => {
      const flags = tableValues('keys-certify', parsed);
      for (const [path, what] of [
        [flags.keysRegistrar!, 'registrar key'],
        [flags.keysIdentity!, 'identity'],
      ] as const) {
        if (!existsSync(path))
          throw new CohortError('CONFIG_INVALID', `${what} ${path} does not exist`);
      }
      const { identity: registrarKey } = await loadOrCreateIdentity(flags.keysRegistrar!);
      const { identity } = await loadOrCreateIdentity(flags.keysIdentity!);
      const out =
        flags.keysCertificateOut ?? `${flags.keysIdentity!.replace(/\.json$/, '')}.cert.json`;
      const text = formatCertificateFile({
        registrarKey: registrarKey.publicKey,
        publicKey: identity.publicKey,
        certificate: certifyIdentity(registrarKey, identity.publicKey),
      });
      await writeFile(out, text);
      console.log(`certified ${publicKeyHex(identity)}: wrote ${out}`);
      console.log(
        `start the client with --certificate ${out} --registrar-key ${publicKeyHex(registrarKey)}`,
      );
    }),
  );
  return keys;
}
