import { resolveEvaluation } from '../../coordinator/evaluation';
import type { ClientSocket } from '../../shared/client/client-session';
import { ClientSession } from '../../shared/client/client-session';
import type { Trainer } from '../../shared/client/trainer';
import { isCohortError } from '../../shared/errors';
import { generateIdentity } from '../../shared/identity';
import { fitResSchema } from '../../shared/protocol/messages';

/** A trainer that must never be used: these tests stop at the constructor. */
const trainer = {} as Trainer;
/** A socket that must never be used either. */
const socket = {} as ClientSocket;

function construct(options: Partial<ConstructorParameters<typeof ClientSession>[1]>): unknown {
  try {
    new ClientSession(socket, {
      identity: generateIdentity(),
      trainer,
      platform: 'node',
      ...options,
    });
    return null;
  } catch (error) {
    return error;
  }
}

describe('ClientSession options', () => {
  test('a client without a secure submission cannot require secure aggregation', () => {
    const error = construct({});
    expect(isCohortError(error, 'CONFIG_INVALID')).toBe(true);
    expect((error as Error).message).toMatch(/allowPlain/);
  });

  test('a malformed coordinator pin is refused, naming --coordinator-key', () => {
    const error = construct({ allowPlain: true, coordinatorKey: 'ab'.repeat(31) });
    expect(isCohortError(error, 'CONFIG_INVALID')).toBe(true);
    expect((error as Error).message).toMatch(/--coordinator-key/);
  });
});

describe('resolveEvaluation', () => {
  test.each([
    ['auto', false, true, 'centralized'],
    ['auto', false, false, 'federated'],
    ['auto', true, true, 'centralized'],
    ['auto', true, false, 'none'],
    ['federated', true, false, 'federated'],
    ['both', true, true, 'both'],
    ['none', false, true, 'none'],
  ] as const)('%s, secure %s, test set %s → %s', (mode, secure, testSet, expected) => {
    expect(resolveEvaluation(mode, secure, testSet)).toBe(expected);
  });
});

describe('fit result schema', () => {
  const base = { status: 'ok', roundId: 'r1', modelHash: 'ab'.repeat(32) };
  test('a secure answer needs no example count, loss or update', () => {
    expect(fitResSchema.safeParse(base).success).toBe(true);
  });
  test('the fields a plain answer carries are still checked when present', () => {
    expect(fitResSchema.safeParse({ ...base, numExamples: 0 }).success).toBe(false);
    expect(fitResSchema.safeParse({ ...base, trainLoss: Number.NaN }).success).toBe(false);
    expect(fitResSchema.safeParse({ ...base, numExamples: 3, trainLoss: 0.5 }).success).toBe(true);
  });
});
