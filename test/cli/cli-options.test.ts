import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { getModelSpec } from '../../shared/model/registry';
import { validateModelSpec } from '../../shared/model/validate-spec';
import { assertCliBuilt, killAllCliProcesses, runCli } from '../helpers/cli-process';
import type { CliResult } from '../helpers/cli-process';

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
  /** `error: CODE: message` as the first line of stderr, and the flags it must name. */
  type Refusal = [code: 'CONFIG_INVALID' | 'CONFIG_UNSAFE', mentions: RegExp[]];

  /** The contract every refusal keeps: exit code 2, one `error: CODE: ` line naming the flags. */
  function expectRefused(result: CliResult, [code, mentions]: Refusal): void {
    const context = `stderr:\n${result.stderr}\nstdout:\n${result.stdout}`;
    expect({ signal: result.signal, code: result.code, context }).toEqual({
      signal: null,
      code: 2,
      context,
    });
    const errorLines = result.stderr.split('\n').filter((line) => line.startsWith('error: '));
    expect(errorLines).toHaveLength(1);
    expect(errorLines[0]).toMatch(new RegExp(`^error: ${code}: \\S`));
    for (const mention of mentions) expect(errorLines[0]).toMatch(mention);
  }

  /**
   * Flags every coordinator refusal gets, so that a missed refusal would show up as a database;
   * `--min-clients 3` so that no case is refused for the secure cohort size instead of its own flag.
   */
  const coordinatorBase = () => [
    '--host',
    '127.0.0.1',
    '--port',
    '0',
    '--backend',
    'wasm',
    '--min-clients',
    '3',
    '--database',
    `file:${join(dir, 'refused.db')}`,
    '--identity',
    join(dir, 'coordinator-identity.json'),
  ];
  const simulateBase = () => [
    '--backend',
    'wasm',
    '--clients',
    '3',
    '--database',
    `file:${join(dir, 'refused.db')}`,
  ];

  const invalid = (...mentions: RegExp[]): Refusal => ['CONFIG_INVALID', mentions];
  const unsafe = (...mentions: RegExp[]): Refusal => ['CONFIG_UNSAFE', mentions];

  const cases: Array<[string, () => string[], Refusal]> = [
    [
      'coordinator with --clients-per-round and --fraction',
      () => ['coordinator', ...coordinatorBase(), '--clients-per-round', '3', '--fraction', '0.5'],
      invalid(/--clients-per-round/, /--fraction/),
    ],
    [
      'coordinator --rounds 0',
      () => ['coordinator', ...coordinatorBase(), '--rounds', '0'],
      invalid(/--rounds/, /between 1 and/),
    ],
    [
      'coordinator --lr -1',
      () => ['coordinator', ...coordinatorBase(), '--lr', '-1'],
      invalid(/--lr/),
    ],
    [
      'coordinator --lr abc',
      () => ['coordinator', ...coordinatorBase(), '--lr', 'abc'],
      invalid(/--lr/, /expected a number/),
    ],
    [
      'coordinator --port 70000',
      () => ['coordinator', ...coordinatorBase(), '--port', '70000'],
      invalid(/--port/),
    ],
    [
      'coordinator --batch-size 1.5',
      () => ['coordinator', ...coordinatorBase(), '--batch-size', '1.5'],
      invalid(/--batch-size/, /integer/),
    ],
    [
      'coordinator --over-selection 2',
      () => ['coordinator', ...coordinatorBase(), '--over-selection', '2'],
      invalid(/--over-selection/),
    ],
    [
      'coordinator --round-timeout 0',
      () => ['coordinator', ...coordinatorBase(), '--round-timeout', '0'],
      invalid(/--round-timeout/),
    ],
    [
      'coordinator --secure-aggregation maybe',
      () => ['coordinator', ...coordinatorBase(), '--secure-aggregation', 'maybe'],
      invalid(/--secure-aggregation/, /"on" or "off"/),
    ],
    [
      'coordinator --task imagenet',
      () => ['coordinator', ...coordinatorBase(), '--task', 'imagenet'],
      invalid(/--task/, /mnist, cifar10/),
    ],
    [
      'coordinator --backend bogus',
      () => ['coordinator', ...coordinatorBase(), '--backend', 'bogus'],
      invalid(/--backend/),
    ],
    [
      'coordinator with an unknown option',
      () => ['coordinator', ...coordinatorBase(), '--roundz', '3'],
      invalid(/unknown option '--roundz'/),
    ],
    [
      'coordinator with an operand',
      () => ['coordinator', ...coordinatorBase(), 'now'],
      invalid(/too many arguments/),
    ],
    [
      'coordinator --rounds without a value',
      () => ['coordinator', ...coordinatorBase(), '--rounds'],
      invalid(/--rounds/, /argument missing/),
    ],
    [
      'coordinator --clients-per-round below --min-clients',
      () => ['coordinator', ...coordinatorBase(), '--min-clients', '4', '--clients-per-round', '3'],
      invalid(/--clients-per-round/, /--min-clients/),
    ],
    [
      'coordinator --mu without fedprox',
      () => ['coordinator', ...coordinatorBase(), '--mu', '0.1'],
      invalid(/--mu/),
    ],
    [
      'coordinator --server-lr with fedavg',
      () => ['coordinator', ...coordinatorBase(), '--server-lr', '1'],
      invalid(/--server-lr/),
    ],
    [
      'a secure coordinator with --min-clients 2',
      () => ['coordinator', ...coordinatorBase(), '--min-clients', '2'],
      unsafe(/--min-clients 2/, /at least 3 clients/, /--secure-aggregation off/),
    ],
    [
      'simulate --dropout 1.5',
      () => ['simulate', ...simulateBase(), '--dropout', '1.5'],
      invalid(/--dropout/),
    ],
    [
      'simulate --clients 0',
      () => ['simulate', ...simulateBase(), '--clients', '0'],
      invalid(/--clients/),
    ],
    [
      'simulate --partition dirichlet:-1',
      () => ['simulate', ...simulateBase(), '--partition', 'dirichlet:-1'],
      invalid(/--partition/),
    ],
    [
      'a secure simulate of 2 clients',
      () => ['simulate', ...simulateBase(), '--clients', '2'],
      unsafe(/--clients 2/, /at least 3 clients/, /--secure-aggregation off/),
    ],
    ['demo --rounds 0', () => ['demo', ...simulateBase(), '--rounds', '0'], invalid(/--rounds/)],
  ];
  test.each(cases)(
    '%s exits 2 with `error: CODE:` naming the flag, before opening a database',
    async (_name, args, refusal) => {
      const result = await runCli(args(), 60_000, dir);
      expectRefused(result, refusal);
      expect(result.stdout).not.toMatch(/listening/);
      expect(existsSync(join(dir, 'refused.db'))).toBe(false);
      expect(existsSync(join(dir, 'coordinator-identity.json'))).toBe(false);
      // Nothing written next to the working directory either (demo's default .cohort/).
      expect(existsSync(join(dir, '.cohort'))).toBe(false);
    },
  );

  const clientCases: Array<[string, () => string[], Refusal]> = [
    [
      'client with --shard and --data',
      () => ['--shard', '1/3', '--data', dir],
      invalid(/--shard/, /--data/),
    ],
    ['client --shard 4/3', () => ['--shard', '4/3'], invalid(/--shard/, /4\/3/)],
    ['client --limit 0', () => ['--shard', '1/3', '--limit', '0'], invalid(/--limit/)],
    [
      'client --coordinator-key that is not a key',
      () => ['--shard', '1/3', '--coordinator-key', 'abc123'],
      invalid(/--coordinator-key/, /abc123/),
    ],
    [
      'client --coordinator-key of 64 non-hex characters',
      () => ['--shard', '1/3', '--coordinator-key', 'zz'.repeat(32)],
      invalid(/--coordinator-key/),
    ],
    [
      'client --min-participants below 3',
      () => ['--shard', '1/3', '--min-participants', '2'],
      invalid(/--min-participants/),
    ],
    ['client --task imagenet', () => ['--shard', '1/3', '--task', 'imagenet'], invalid(/--task/)],
    [
      'client --trusted-keys naming a missing file',
      () => ['--shard', '1/3', '--trusted-keys', join(dir, 'missing-keys.txt')],
      invalid(/cannot read trusted keys/, /missing-keys\.txt/),
    ],
    [
      'client --trusted-keys with a line that is not a key',
      () => {
        const file = join(dir, 'bad-keys.txt');
        writeFileSync(file, `# the cohort\n${'ab'.repeat(32)}\nnot-a-key\n`);
        return ['--shard', '1/3', '--trusted-keys', file];
      },
      invalid(/bad-keys\.txt:3/, /64-character hex public key/),
    ],
    [
      'client with an unknown option',
      () => ['--shard', '1/3', '--allow-plainly'],
      invalid(/unknown option '--allow-plainly'/),
    ],
  ];
  test.each(clientCases)(
    '%s exits 2 with `error: CODE:` naming the flag, before creating an identity',
    async (_name, args, refusal) => {
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
      expectRefused(result, refusal);
      expect(result.stdout).not.toMatch(/connecting/);
      expect(existsSync(identity)).toBe(false);
      expect(existsSync(`${identity}.rounds`)).toBe(false);
    },
  );

  const usageCases: Array<[string, string[], Refusal]> = [
    [
      'client without --server',
      ['client', '--shard', '1/3', '--identity', '$DIR/id.json'],
      invalid(/required option '--server <url>' not specified/),
    ],
    ['an unknown subcommand', ['coordinate'], invalid(/unknown command 'coordinate'/)],
    ['an unknown model subcommand', ['model', 'describe'], invalid(/unknown command 'describe'/)],
    ['an unknown top-level option', ['--verbose'], invalid(/unknown option '--verbose'/)],
  ];
  test.each(usageCases)(
    '%s exits 2 with `error: CONFIG_INVALID:` and points to --help',
    async (_name, args, refusal) => {
      const result = await runCli(
        args.map((a) => a.replace('$DIR', dir)),
        60_000,
        dir,
      );
      expectRefused(result, refusal);
      expect(result.stdout).toBe('');
      expect(result.stderr).toMatch(/^\(run "cohort( \w+)? --help" for usage\)$/m);
      expect(existsSync(join(dir, 'id.json'))).toBe(false);
    },
  );

  test('an unknown subcommand is suggested the nearest one, on the error line', async () => {
    const result = await runCli(['coordinate'], 60_000, dir);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(
      /^error: CONFIG_INVALID: unknown command 'coordinate' \(Did you mean coordinator\?\)$/m,
    );
  });

  test.each([
    ['cohort', []],
    ['cohort model', ['model']],
  ])('`%s` without a command prints its usage to stderr and exits 2', async (_name, args) => {
    const result = await runCli(args, 60_000, dir);
    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(/^Usage: cohort/);
    expect(result.stderr).toMatch(/^error: CONFIG_INVALID: /m);
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
