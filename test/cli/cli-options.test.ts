import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { getModelSpec } from '../../shared/model/registry';
import { validateModelSpec } from '../../shared/model/validate-spec';
import { assertCliBuilt, killAllCliProcesses, runCli } from '../helpers/cli-process';

let dir: string;

beforeAll(() => assertCliBuilt());
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'cohort-cli-'));
});
afterEach(async () => {
  await killAllCliProcesses();
  rmSync(dir, { recursive: true, force: true });
});

const PACKAGE_VERSION = (
  JSON.parse(readFileSync(resolve(__dirname, '..', '..', 'package.json'), 'utf8')) as {
    version: string;
  }
).version;

describe('cohort --help', () => {
  const cases: Array<[string, string[], string[]]> = [
    ['cohort --help', ['--help'], ['coordinator', 'client', 'simulate', 'demo', 'model']],
    [
      'cohort coordinator --help',
      ['coordinator', '--help'],
      [
        '--port',
        '--host',
        '--rounds',
        '--min-clients',
        '--clients-per-round',
        '--fraction',
        '--database',
        '--secure-aggregation',
        '--strategy',
        '--export',
        '--json',
        '--test-limit',
        '--backend',
        '--identity',
      ],
    ],
    [
      'cohort client --help',
      ['client', '--help'],
      [
        '--server',
        '--task',
        '--shard',
        '--data',
        '--limit',
        '--identity',
        '--backend',
        '--allow-plain',
        '--coordinator-key',
        '--share-metrics',
        '--min-participants',
        '--trusted-keys',
      ],
    ],
    [
      'cohort simulate --help',
      ['simulate', '--help'],
      ['--clients', '--rounds', '--partition', '--dropout', '--database', '--secure-aggregation'],
    ],
    ['cohort demo --help', ['demo', '--help'], ['--clients', '--rounds', '--database', '--export']],
    ['cohort model --help', ['model', '--help'], ['spec']],
    ['cohort model spec --help', ['model', 'spec', '--help'], ['--task', 'cifar10']],
    ['cohort help coordinator', ['help', 'coordinator'], ['--min-clients']],
  ];
  test.each(cases)('%s exits 0 and lists its flags', async (_name, args, flags) => {
    const result = await runCli(args);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^Usage: cohort/);
    for (const flag of flags) expect(result.stdout).toContain(flag);
  });

  test('--version prints the package version', async () => {
    const result = await runCli(['--version']);
    expect(result.code).toBe(0);
    expect(result.stdout.trim()).toBe(PACKAGE_VERSION);
  });
});

describe('refused start-up', () => {
  /** Flags every coordinator refusal gets, so that a missed refusal would show up as a database. */
  const coordinatorBase = () => [
    '--host',
    '127.0.0.1',
    '--port',
    '0',
    '--backend',
    'wasm',
    '--database',
    `file:${join(dir, 'refused.db')}`,
    '--identity',
    join(dir, 'coordinator-identity.json'),
  ];
  const simulateBase = () => ['--backend', 'wasm', '--database', `file:${join(dir, 'refused.db')}`];

  const cases: Array<[string, () => string[], RegExp[]]> = [
    [
      'coordinator with --clients-per-round and --fraction',
      () => ['coordinator', ...coordinatorBase(), '--clients-per-round', '3', '--fraction', '0.5'],
      [/--clients-per-round/, /--fraction/],
    ],
    [
      'coordinator --rounds 0',
      () => ['coordinator', ...coordinatorBase(), '--rounds', '0'],
      [/--rounds/],
    ],
    ['coordinator --lr -1', () => ['coordinator', ...coordinatorBase(), '--lr', '-1'], [/--lr/]],
    ['coordinator --lr abc', () => ['coordinator', ...coordinatorBase(), '--lr', 'abc'], [/--lr/]],
    [
      'coordinator --port 70000',
      () => ['coordinator', ...coordinatorBase(), '--port', '70000'],
      [/--port/],
    ],
    [
      'coordinator --batch-size 1.5',
      () => ['coordinator', ...coordinatorBase(), '--batch-size', '1.5'],
      [/--batch-size/],
    ],
    [
      'coordinator --secure-aggregation maybe',
      () => ['coordinator', ...coordinatorBase(), '--secure-aggregation', 'maybe'],
      [/--secure-aggregation/],
    ],
    [
      'coordinator --task imagenet',
      () => ['coordinator', ...coordinatorBase(), '--task', 'imagenet'],
      [/--task/],
    ],
    [
      'coordinator --clients-per-round below --min-clients',
      () => ['coordinator', ...coordinatorBase(), '--min-clients', '3', '--clients-per-round', '2'],
      [/--clients-per-round/, /--min-clients/],
    ],
    [
      'coordinator --mu without fedprox',
      () => ['coordinator', ...coordinatorBase(), '--mu', '0.1'],
      [/--mu/],
    ],
    [
      'coordinator --server-lr with fedavg',
      () => ['coordinator', ...coordinatorBase(), '--server-lr', '1'],
      [/--server-lr/],
    ],
    [
      'simulate --dropout 1.5',
      () => ['simulate', ...simulateBase(), '--dropout', '1.5'],
      [/--dropout/],
    ],
    [
      'simulate --clients 0',
      () => ['simulate', ...simulateBase(), '--clients', '0'],
      [/--clients/],
    ],
    [
      'simulate --partition dirichlet:-1',
      () => ['simulate', ...simulateBase(), '--partition', 'dirichlet:-1'],
      [/--partition/],
    ],
  ];
  test.each(cases)(
    '%s exits non-zero naming the flag, before opening a database',
    async (_name, args, mentions) => {
      const result = await runCli(args(), 60_000);
      expect(result.signal).toBeNull();
      expect(result.code).not.toBe(0);
      for (const mention of mentions) expect(result.stderr).toMatch(mention);
      expect(result.stdout).not.toMatch(/listening/);
      expect(existsSync(join(dir, 'refused.db'))).toBe(false);
      expect(existsSync(join(dir, 'coordinator-identity.json'))).toBe(false);
    },
  );

  const clientCases: Array<[string, () => string[], RegExp[]]> = [
    [
      'client with --shard and --data',
      () => ['--shard', '1/3', '--data', dir],
      [/--shard/, /--data/],
    ],
    ['client --shard 4/3', () => ['--shard', '4/3'], [/--shard/]],
    ['client --limit 0', () => ['--shard', '1/3', '--limit', '0'], [/--limit/]],
    [
      'client --coordinator-key that is not a key',
      () => ['--shard', '1/3', '--coordinator-key', 'abc123'],
      [/CONFIG_INVALID/, /--coordinator-key/],
    ],
    [
      'client --min-participants below 3',
      () => ['--shard', '1/3', '--min-participants', '2'],
      [/--min-participants/],
    ],
  ];
  test.each(clientCases)(
    '%s exits non-zero naming the flag, before creating an identity',
    async (_name, args, mentions) => {
      const identity = join(dir, 'keys', 'id.json');
      // Port 9 (discard) on loopback: nothing answers there, and the client must not get that far.
      const result = await runCli(
        [
          'client',
          '--server',
          'http://127.0.0.1:9',
          '--backend',
          'wasm',
          '--identity',
          identity,
          ...args(),
        ],
        60_000,
      );
      expect(result.signal).toBeNull();
      expect(result.code).not.toBe(0);
      for (const mention of mentions) expect(result.stderr).toMatch(mention);
      expect(result.stdout).not.toMatch(/connecting/);
      expect(existsSync(identity)).toBe(false);
    },
  );

  test('a refused --coordinator-key exits 2 with `error: CODE: message`', async () => {
    const result = await runCli([
      'client',
      '--server',
      'http://127.0.0.1:9',
      '--backend',
      'wasm',
      '--identity',
      join(dir, 'keys', 'id.json'),
      '--coordinator-key',
      'zz'.repeat(32),
    ]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/^error: CONFIG_INVALID: --coordinator-key/m);
  });

  test('client without --server says which option is missing', async () => {
    const result = await runCli(['client', '--shard', '1/3']);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/--server/);
  });

  test('an unknown subcommand is refused', async () => {
    const result = await runCli(['coordinate']);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/coordinate/);
  });
});

describe('cohort model spec', () => {
  test.each(['mnist', 'cifar10'] as const)(
    '--task %s prints the registry spec as valid JSON',
    async (task) => {
      const result = await runCli(['model', 'spec', '--task', task]);
      expect(result.code).toBe(0);
      const printed: unknown = JSON.parse(result.stdout);
      expect(() => validateModelSpec(printed)).not.toThrow();
      expect(validateModelSpec(printed)).toEqual(getModelSpec(task));
      expect(printed).toEqual(getModelSpec(task));
    },
  );
});
