import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveCoordinatorConfig } from '../../coordinator/config';
import {
  enrollmentPolicy,
  loadEnrollmentPolicy,
  readJoinTokenFile,
} from '../../coordinator/enrollment';
import type { Logger } from '../../coordinator/logger';
import { joinProof } from '../../shared/join-proof';
import type { RegisterIns } from '../../shared/protocol/messages';
import { rejectionOf, thrownBy } from '../helpers/error-of';

/** Who the coordinator admits, one rule at a time, and how its token and allowlist load. */

const NONCE = '11'.repeat(32);
const COORDINATOR = 'c'.repeat(64);
const KEY_A = 'a'.repeat(64);
const KEY_B = 'b'.repeat(64);
const TOKEN = 'a-long-enough-join-token';

function registration(publicKey: string, proof?: string): RegisterIns {
  return {
    protocolVersion: 1,
    publicKey,
    signature: '00'.repeat(64),
    task: 'mnist',
    modelSpecHash: 'f'.repeat(64),
    platform: 'node',
    backend: 'cpu',
    trainExamples: 0,
    testExamples: 0,
    ...(proof !== undefined ? { joinProof: proof } : {}),
  };
}

const context = { nonce: NONCE, coordinatorId: COORDINATOR };
const proofFor = (publicKey: string, token = TOKEN) => joinProof(token, { ...context, publicKey });

test('an open policy admits everyone; a token policy needs the right proof', () => {
  const open = enrollmentPolicy(null, null);
  expect([open.method, open.tokenRequired]).toEqual(['open', false]);
  expect(thrownBy(() => open.admit(registration(KEY_A), context))).toBe('returned');

  const token = enrollmentPolicy(TOKEN, null);
  expect([token.method, token.tokenRequired]).toEqual(['join-token', true]);
  expect(thrownBy(() => token.admit(registration(KEY_A, proofFor(KEY_A)), context))).toBe(
    'returned',
  );
  expect(thrownBy(() => token.admit(registration(KEY_A), context))).toMatch(
    /^JOIN_REFUSED: this coordinator admits only clients with its join token/,
  );
  // Another token, or a proof made for another key (a stolen proof), is refused.
  expect(
    thrownBy(() => token.admit(registration(KEY_A, proofFor(KEY_A, `${TOKEN}x`)), context)),
  ).toBe('JOIN_REFUSED: the join token proof is wrong (another token?)');
  expect(thrownBy(() => token.admit(registration(KEY_B, proofFor(KEY_A)), context))).toMatch(
    /^JOIN_REFUSED: the join token proof is wrong/,
  );
  // A proof for another connection's nonce is refused.
  expect(
    thrownBy(() =>
      token.admit(registration(KEY_A, proofFor(KEY_A)), { ...context, nonce: '22'.repeat(32) }),
    ),
  ).toMatch(/^JOIN_REFUSED/);
});

test('an allowlist admits listed keys (any case); with a token, a client needs both', () => {
  const list = enrollmentPolicy(null, [KEY_A.toUpperCase()]);
  expect([list.method, list.tokenRequired]).toEqual(['allowlist', false]);
  expect(thrownBy(() => list.admit(registration(KEY_A), context))).toBe('returned');
  expect(thrownBy(() => list.admit(registration(KEY_B), context))).toBe(
    `JOIN_REFUSED: client key ${KEY_B} is not on this coordinator's allowlist (--allow-clients)`,
  );
  const both = enrollmentPolicy(TOKEN, [KEY_A]);
  expect(both.method).toBe('join-token+allowlist');
  expect(thrownBy(() => both.admit(registration(KEY_A, proofFor(KEY_A)), context))).toBe(
    'returned',
  );
  expect(thrownBy(() => both.admit(registration(KEY_A), context))).toMatch(/^JOIN_REFUSED/);
  expect(thrownBy(() => both.admit(registration(KEY_B, proofFor(KEY_B)), context))).toMatch(
    /allowlist/,
  );
});

describe('loading the policy', () => {
  let dir: string;
  const lines: string[] = [];
  const log: Logger = {
    info: (l) => lines.push(`info: ${l}`),
    warn: (l) => lines.push(`warn: ${l}`),
    debug: () => undefined,
  };
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'cohort-enrollment-'));
    lines.length = 0;
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('creates a missing token file (owner-only), then reads the same token back', async () => {
    const path = join(dir, 'keys', 'join-token');
    const config = resolveCoordinatorConfig({ joinTokenFile: path });
    const first = await loadEnrollmentPolicy(config, log);
    expect(first.method).toBe('join-token');
    const token = readFileSync(path, 'utf8').trim();
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(lines.some((l) => l.includes(`created join token file ${path}`))).toBe(true);
    // The token never appears in the log, only the file's path.
    expect(lines.some((l) => l.includes(token))).toBe(false);
    expect(await readJoinTokenFile(path)).toBe(token);
    const again = await loadEnrollmentPolicy(config, log);
    const proof = joinProof(token, { ...context, publicKey: KEY_A });
    expect(thrownBy(() => again.admit(registration(KEY_A, proof), context))).toBe('returned');
  });

  it('refuses a bad token file and a bad allowlist with CONFIG_INVALID naming the file', async () => {
    const short = join(dir, 'short');
    writeFileSync(short, 'tiny\n', { mode: 0o600 });
    expect(
      await rejectionOf(
        loadEnrollmentPolicy(resolveCoordinatorConfig({ joinTokenFile: short }), log),
      ),
    ).toBe(`CONFIG_INVALID: join token in ${short}: 16 to 256 printable characters without spaces`);
    expect(await rejectionOf(readJoinTokenFile(join(dir, 'absent')))).toMatch(
      /^CONFIG_INVALID: cannot read join token file/,
    );
    const list = join(dir, 'allowed');
    writeFileSync(list, `# ops team\n${KEY_A}\nnot-a-key\n`);
    expect(
      await rejectionOf(
        loadEnrollmentPolicy(resolveCoordinatorConfig({ allowClients: list }), log),
      ),
    ).toBe(`CONFIG_INVALID: ${list}:3: expected a 64-character hex public key`);
    writeFileSync(list, `# ops team\n${KEY_A}\n\n${KEY_B}  # bob\n`);
    const policy = await loadEnrollmentPolicy(
      resolveCoordinatorConfig({ allowClients: list }),
      log,
    );
    expect(thrownBy(() => policy.admit(registration(KEY_B), context))).toBe('returned');
    expect(lines).toContain('info: enrollment: clients need one of 2 allowed keys');
  });

  it('warns when the token file is readable by others; refuses --join-token with --join-token-file', async () => {
    const path = join(dir, 'open-token');
    writeFileSync(path, `${TOKEN}\n`, { mode: 0o644 });
    await loadEnrollmentPolicy(resolveCoordinatorConfig({ joinTokenFile: path }), log);
    expect(lines).toContain(
      `warn: join token file ${path} is readable by other users: chmod 600 it`,
    );
    expect(() => resolveCoordinatorConfig({ joinToken: TOKEN, joinTokenFile: path })).toThrow(
      '--join-token and --join-token-file conflict: give one',
    );
    expect(() => resolveCoordinatorConfig({ joinToken: 'has a space in it!!' })).toThrow(
      /16 to 256 printable characters/,
    );
  });
});
