import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import type { Requirement } from './requires';

/** PEM files of a throwaway certificate for 127.0.0.1 and localhost. */
export interface SelfSignedFiles {
  cert: string;
  key: string;
}

/** Whether the `openssl` command is here (CI installs it); it makes the test certificates. */
export function opensslAvailable(): Requirement<true> {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return { met: true, value: true };
  } catch {
    return { met: false, reason: 'openssl is not installed (apt install openssl)' };
  }
}

/**
 * Generates a self-signed P-256 certificate valid for a day, for 127.0.0.1 and localhost, in
 * `dir` (`name`.crt and `name`.key): a private CA of one for the TLS tests.
 */
export function makeSelfSigned(dir: string, name = 'coordinator'): SelfSignedFiles {
  const files = { cert: join(dir, `${name}.crt`), key: join(dir, `${name}.key`) };
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-days',
      '1',
      '-subj',
      `/CN=cohort-test-${name}`,
      '-addext',
      'subjectAltName=IP:127.0.0.1,DNS:localhost',
      '-keyout',
      files.key,
      '-out',
      files.cert,
    ],
    { stdio: 'ignore' },
  );
  return files;
}
