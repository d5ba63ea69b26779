import { simulate } from '../../coordinator/cli/simulation';
import type { Dataset } from '../../shared/data/dataset';
import { useWasmBackend } from '../helpers/backend';
import { smallMnist } from '../helpers/mnist-fixture';

/**
 * The server-side strategies and federated evaluation over real sockets: each runs whole
 * rounds end to end, and federated accuracy (clients' local test splits, example-weighted)
 * agrees with the coordinator's centralized accuracy on the same test distribution.
 */

let backend: string;
let data: { train: Dataset; test: Dataset };

beforeAll(async () => {
  backend = await useWasmBackend();
  data = await smallMnist(900, 600);
});

const base = { secureAggregation: false, batchSize: 16, evaluation: 'both' } as const;

describe('strategies and evaluation on real sockets', () => {
  test.each([
    ['fedavg', {}],
    ['fedavgm', { serverLearningRate: 1 }],
    ['fedadam', { serverLearningRate: 0.03 }],
    ['fedyogi', { serverLearningRate: 0.03 }],
    ['fedprox', { proximalMu: 0.01 }],
  ] as const)('%s completes rounds and its accuracy beats chance', async (strategy, extra) => {
    const history = await simulate({
      clients: 3,
      rounds: 2,
      task: 'mnist',
      data,
      backend,
      seed: 3,
      coordinator: { ...base, strategy, ...extra },
    });
    expect(history.rounds.map((r) => r.status)).toEqual(['completed', 'completed']);
    const last = history.rounds[1]!;
    expect(last.evaluation).toBe('centralized');
    expect(last.testAccuracy!).toBeGreaterThan(0.3); // chance is 0.1
    // Both evaluations measure the same model on samples of the same distribution.
    expect(last.federatedAccuracy).not.toBeNull();
    expect(Math.abs(last.federatedAccuracy! - last.testAccuracy!)).toBeLessThan(0.12);
  });

  test("federated evaluation alone reports the clients' example-weighted accuracy", async () => {
    const history = await simulate({
      clients: 3,
      rounds: 1,
      task: 'mnist',
      data,
      backend,
      seed: 4,
      coordinator: { ...base, evaluation: 'federated' },
    });
    const round = history.rounds[0]!;
    expect(round.evaluation).toBe('federated');
    expect(round.testAccuracy).toBe(round.federatedAccuracy);
    expect(round.testAccuracy!).toBeGreaterThan(0.2);
  });
});
