import { resolveCoordinatorConfig, secureModulusBits } from '../../coordinator/config';
import { isCohortError } from '../../shared/errors';

function refusal(input: Parameters<typeof resolveCoordinatorConfig>[0]): {
  code: string;
  message: string;
} {
  try {
    resolveCoordinatorConfig(input);
  } catch (error) {
    if (isCohortError(error)) return { code: error.code, message: error.message };
    throw error;
  }
  throw new Error('expected the config to be refused');
}

describe('coordinator options', () => {
  test('defaults are filled in, the experiment is named after the task, the result is frozen', () => {
    const config = resolveCoordinatorConfig({});
    expect(config).toMatchObject({
      task: 'mnist',
      experiment: 'mnist',
      rounds: 10,
      minClients: 3,
      secureAggregation: true,
      database: 'file:./cohort.db',
      learningRate: 0.1,
    });
    expect(Object.isFrozen(config)).toBe(true);
  });

  test('an explicit 0 is kept, never replaced by a default', () => {
    expect(resolveCoordinatorConfig({ overSelection: 0, port: 0, seed: 0 })).toMatchObject({
      overSelection: 0,
      port: 0,
      seed: 0,
    });
  });

  test.each([
    [{ clientsPerRound: 5, fraction: 0.5 }, 'CONFIG_INVALID', /conflict/],
    [{ minClients: 5, clientsPerRound: 3 }, 'CONFIG_INVALID', /below --min-clients/],
    [{ proximalMu: 0.1 }, 'CONFIG_INVALID', /fedprox/],
    [{ serverLearningRate: 0.1 }, 'CONFIG_INVALID', /no effect/],
    [{ rounds: 0 }, 'CONFIG_INVALID', /rounds/],
    [{ learningRate: -1 }, 'CONFIG_INVALID', /learningRate/],
    [{ task: 'imagenet' as never }, 'CONFIG_INVALID', /task/],
    [{ bogus: 1 } as never, 'CONFIG_INVALID', /bogus|Unrecognized/],
    [{ minClients: 2 }, 'CONFIG_UNSAFE', /at least 3 clients/],
    [{ secureBits: '20' as never }, 'CONFIG_INVALID', /secureBits/],
    // Cluster mode: PostgreSQL only (leadership lives there), and a Redis URL.
    [{ cluster: 'redis://127.0.0.1:6379' }, 'CONFIG_INVALID', /--cluster needs a postgresql/],
    [
      { cluster: 'http://127.0.0.1:6379', database: 'postgresql://h/db' },
      'CONFIG_INVALID',
      /redis:\/\/ or rediss:\/\//,
    ],
    // 3 clients of 16384 examples already sum past 2^15 - 1.
    [{ secureBits: '16' as const }, 'CONFIG_UNSAFE', /for 3 clients: .*below 2\^15/],
    // A fixed width is not widened: 528 clients (480 plus 10% over-selection) of 16384
    // examples sum past 2^23 - 1. (At 70 clients 24 bits still fit, at 8 levels an example:
    // a fixed width asks only for safety, `auto` for 16 levels.)
    [
      { secureBits: '24' as const, clientsPerRound: 480 },
      'CONFIG_UNSAFE',
      /for 528 clients: .*2\^23/,
    ],
  ])('refuses %j with %s', (input, code, message) => {
    const refused = refusal(input);
    expect(refused.code).toBe(code);
    expect(refused.message).toMatch(message);
  });

  test('--secure-bits: auto by default, a fixed width when given', () => {
    expect(resolveCoordinatorConfig({}).secureBits).toBe('auto');
    expect(secureModulusBits(resolveCoordinatorConfig({}))).toBe('auto');
    expect(secureModulusBits(resolveCoordinatorConfig({ secureBits: '24' }))).toBe(24);
    expect(secureModulusBits(resolveCoordinatorConfig({ secureBits: '32' }))).toBe(32);
    // A width that fits the cohort bound is accepted at start-up.
    for (const clientsPerRound of [50, 70]) {
      expect(resolveCoordinatorConfig({ secureBits: '24', clientsPerRound }).secureBits).toBe('24');
    }
  });

  test('cluster mode takes a redis:// URL with a PostgreSQL database', () => {
    const config = resolveCoordinatorConfig({
      cluster: 'redis://10.0.0.5:6379',
      database: 'postgresql://cohort@db:5432/cohort?schema=fl',
    });
    expect(config.cluster).toBe('redis://10.0.0.5:6379');
    expect(resolveCoordinatorConfig({}).cluster).toBeUndefined();
  });

  test('plain FedAvg accepts two clients', () => {
    expect(resolveCoordinatorConfig({ minClients: 2, secureAggregation: false }).minClients).toBe(
      2,
    );
  });
});
