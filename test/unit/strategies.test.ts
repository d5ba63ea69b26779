import { isCohortError } from '../../shared/errors';
import type { ErrorCode } from '../../shared/errors';
import { createStrategy, parseStrategyName } from '../../shared/strategies/create-strategy';
import type { FitConfig, Strategy, StrategyName } from '../../shared/strategies/strategy';
import { STRATEGY_DEFAULTS, STRATEGY_NAMES } from '../../shared/strategies/strategy';
import { yogiSecondMoment } from '../../shared/strategies/fedyogi';

const BASE: FitConfig = {
  epochs: 1,
  batchSize: 32,
  learningRate: 0.1,
  optimizer: 'sgd',
  proximalMu: 0,
};

function codeOf(fn: () => unknown): ErrorCode | undefined {
  try {
    fn();
  } catch (err) {
    if (isCohortError(err)) return err.code;
    throw err;
  }
  return undefined;
}

/** Runs two rounds from `global` with the given mean deltas; returns weights and state after each. */
function twoRounds(strategy: Strategy, global: number[], deltas: [number[], number[]]) {
  let weights: Float32Array = new Float32Array(global);
  let state = strategy.initialState(global.length);
  const history: { weights: number[]; state: number[] }[] = [];
  deltas.forEach((delta, i) => {
    const next = strategy.aggregateFit(
      { global: weights, meanDelta: new Float32Array(delta), round: i + 1 },
      state,
    );
    weights = next.weights;
    state = next.state;
    history.push({ weights: Array.from(weights), state: Array.from(state) });
  });
  return history;
}

function expectClose(actual: number[], expected: number[], digits = 6): void {
  expect(actual).toHaveLength(expected.length);
  actual.forEach((a, i) => expect(a).toBeCloseTo(expected[i]!, digits));
}

describe('FedAvg', () => {
  it('adds the mean delta; no state', () => {
    const s = createStrategy({ name: 'fedavg' });
    const [r1, r2] = twoRounds(
      s,
      [1, 2, -1],
      [
        [0.5, -1, 0],
        [0.1, 0.2, -0.3],
      ],
    );
    expectClose(r1!.weights, [1.5, 1, -1]);
    expectClose(r2!.weights, [1.6, 1.2, -1.3]);
    expect(r2!.state).toEqual([]);
    expect(s.initialState(3)).toHaveLength(0);
  });
});

describe('FedAvgM', () => {
  it('v = momentum v + delta; w = w + serverLr v (by hand)', () => {
    const s = createStrategy({ name: 'fedavgm', serverLr: 0.5, momentum: 0.9 });
    const [r1, r2] = twoRounds(
      s,
      [1, 2, -1],
      [
        [0.5, -1, 0],
        [0.1, 0.2, -0.3],
      ],
    );
    // Round 1: v = [0.5, -1, 0]; w = [1.25, 1.5, -1].
    expectClose(r1!.state, [0.5, -1, 0]);
    expectClose(r1!.weights, [1.25, 1.5, -1]);
    // Round 2: v = 0.9 [0.5, -1, 0] + [0.1, 0.2, -0.3] = [0.55, -0.7, -0.3];
    // w = [1.25 + 0.275, 1.5 - 0.35, -1 - 0.15].
    expectClose(r2!.state, [0.55, -0.7, -0.3]);
    expectClose(r2!.weights, [1.525, 1.15, -1.15]);
  });

  it('with momentum 0 and serverLr 1 equals FedAvg', () => {
    const m = createStrategy({ name: 'fedavgm', serverLr: 1, momentum: 0 });
    const a = createStrategy({ name: 'fedavg' });
    const deltas: [number[], number[]] = [
      [0.3, -0.2],
      [0.1, 0.4],
    ];
    expect(twoRounds(m, [1, 1], deltas)[1]!.weights).toEqual(
      twoRounds(a, [1, 1], deltas)[1]!.weights,
    );
  });
});

describe('FedAdam and FedYogi (Reddi et al. 2021)', () => {
  const options = { serverLr: 0.1, beta1: 0.9, beta2: 0.99, tau: 1e-3 };
  const deltas: [number[], number[]] = [
    [0.2, -0.4],
    [0.01, 0.3],
  ];

  it('FedAdam: m, v and weights by hand', () => {
    const s = createStrategy({ name: 'fedadam', ...options });
    const [r1, r2] = twoRounds(s, [1, -1], deltas);
    // Round 1: m = 0.1 d = [0.02, -0.04]; v = 0.99 tau^2 + 0.01 d^2 = [4.0099e-4, 1.60099e-3];
    // w = w + 0.1 m / (sqrt(v) + tau): 1 + 0.002 / 0.0210247 = 1.0951261.
    expectClose(r1!.state, [0.02, -0.04, 4.0099e-4, 1.60099e-3], 8);
    expectClose(r1!.weights, [1.0951260517, -1.0975315423]);
    expectClose(r2!.state, [0.019, -0.006, 3.979801e-4, 2.4849801e-3], 8);
    expectClose(r2!.weights, [1.1858206062, -1.109331051]);
  });

  it('FedYogi: the additive second moment shrinks v when delta^2 < v', () => {
    const s = createStrategy({ name: 'fedyogi', ...options });
    const [r1, r2] = twoRounds(s, [1, -1], deltas);
    // Round 1: v = tau^2 + 0.01 d^2 (sign(v - d^2) = -1) = [4.01e-4, 1.601e-3].
    expectClose(r1!.state, [0.02, -0.04, 4.01e-4, 1.601e-3], 8);
    expectClose(r1!.weights, [1.095124922, -1.0975312451]);
    // Round 2: element 0 has d^2 = 1e-4 < v: v = 4.01e-4 - 1e-6 = 4e-4 (Adam: 3.9798e-4).
    expectClose(r2!.state, [0.019, -0.006, 4e-4, 2.501e-3], 8);
    expectClose(r2!.weights, [1.1856011124, -1.1092936449]);
  });

  it('initial state is m = 0, v = tau^2', () => {
    const state = createStrategy({ name: 'fedadam', tau: 0.01 }).initialState(2);
    expectClose(Array.from(state), [0, 0, 1e-4, 1e-4], 9);
  });
});

describe('FedProx', () => {
  it('sends proximalMu to clients and aggregates like FedAvg', () => {
    const s = createStrategy({ name: 'fedprox', proximalMu: 0.1 });
    expect(s.configureFit(BASE, 1)).toEqual({ ...BASE, proximalMu: 0.1 });
    const [, r2] = twoRounds(
      s,
      [1, 2, -1],
      [
        [0.5, -1, 0],
        [0.1, 0.2, -0.3],
      ],
    );
    expectClose(r2!.weights, [1.6, 1.2, -1.3]);
  });

  it('defaults mu to 0.01', () => {
    expect(createStrategy({ name: 'fedprox' }).configureFit(BASE, 3).proximalMu).toBe(0.01);
  });
});

describe('every strategy', () => {
  it.each(STRATEGY_NAMES)('%s never mutates its inputs and resumes from a saved state', (name) => {
    const s = createStrategy({ name });
    const global = new Float32Array([0.5, -0.25, 2]);
    const delta1 = new Float32Array([0.1, 0.2, -0.3]);
    const delta2 = new Float32Array([-0.05, 0.4, 0.01]);
    const state0 = s.initialState(3);
    const snapshot = [Array.from(global), Array.from(delta1), Array.from(state0)];
    const r1 = s.aggregateFit({ global, meanDelta: delta1, round: 1 }, state0);
    expect([Array.from(global), Array.from(delta1), Array.from(state0)]).toEqual(snapshot);
    expect(r1.weights).not.toBe(global);

    // Persist the state as bytes (as a checkpoint would), restore it into a fresh instance.
    const saved = new Uint8Array(r1.state.buffer.slice(0));
    const restored = new Float32Array(saved.buffer);
    const continued = s.aggregateFit({ global: r1.weights, meanDelta: delta2, round: 2 }, r1.state);
    const resumed = createStrategy({ name }).aggregateFit(
      { global: r1.weights, meanDelta: delta2, round: 2 },
      restored,
    );
    expect(resumed.weights).toEqual(continued.weights);
    expect(resumed.state).toEqual(continued.state);

    const config = s.configureFit(BASE, 1);
    expect(config).not.toBe(BASE);
    expect(BASE.proximalMu).toBe(0);
  });

  it.each(STRATEGY_NAMES)('%s refuses wrong lengths with UPDATE_SHAPE', (name) => {
    const s = createStrategy({ name });
    const state = s.initialState(2);
    const global = new Float32Array(2);
    expect(
      codeOf(() => s.aggregateFit({ global, meanDelta: new Float32Array(3), round: 1 }, state)),
    ).toBe('UPDATE_SHAPE');
    expect(
      codeOf(() =>
        s.aggregateFit({ global, meanDelta: new Float32Array(2), round: 1 }, new Float32Array(7)),
      ),
    ).toBe('UPDATE_SHAPE');
  });
});

describe('createStrategy and parseStrategyName', () => {
  it('fills documented defaults and keeps an explicit zero', () => {
    expect(createStrategy({ name: 'fedadam' }).hyperparameters).toEqual(STRATEGY_DEFAULTS.fedadam);
    expect(createStrategy({ name: 'fedyogi' }).hyperparameters).toEqual(STRATEGY_DEFAULTS.fedyogi);
    expect(createStrategy({ name: 'fedavgm' }).hyperparameters).toEqual({
      serverLr: 1,
      momentum: 0.9,
    });
    expect(createStrategy({ name: 'fedavgm', momentum: 0 }).hyperparameters.momentum).toBe(0);
    expect(
      createStrategy({ name: 'fedprox', proximalMu: 0 }).configureFit(BASE, 1).proximalMu,
    ).toBe(0);
  });

  it('parses names case-insensitively and refuses unknown ones', () => {
    expect(parseStrategyName(' FedAdam ')).toBe('fedadam');
    for (const name of STRATEGY_NAMES) expect(parseStrategyName(name)).toBe(name);
    expect(codeOf(() => parseStrategyName('fedsgd'))).toBe('CONFIG_INVALID');
    expect(codeOf(() => createStrategy({ name: 'nope' as StrategyName }))).toBe('CONFIG_INVALID');
  });

  it.each<[string, Parameters<typeof createStrategy>[0]]>([
    ['negative server lr', { name: 'fedadam', serverLr: -1 }],
    ['zero server lr', { name: 'fedavgm', serverLr: 0 }],
    ['momentum 1', { name: 'fedavgm', momentum: 1 }],
    ['beta2 above 1', { name: 'fedyogi', beta2: 1.5 }],
    ['zero tau', { name: 'fedadam', tau: 0 }],
    ['NaN mu', { name: 'fedprox', proximalMu: Number.NaN }],
    ['negative mu', { name: 'fedprox', proximalMu: -0.1 }],
    ['an option the strategy ignores', { name: 'fedadam', momentum: 0.9 }],
    ['mu for fedavg', { name: 'fedavg', proximalMu: 0.1 }],
  ])('refuses %s with CONFIG_INVALID', (_why, options) => {
    expect(codeOf(() => createStrategy(options))).toBe('CONFIG_INVALID');
  });
});

describe('hyperparameter bounds are exactly the documented ones', () => {
  /** The message, for a refusal; '' when accepted. */
  const refusal = (options: Parameters<typeof createStrategy>[0]): string => {
    try {
      createStrategy(options);
      return '';
    } catch (err) {
      if (isCohortError(err, 'CONFIG_INVALID')) return err.message;
      throw err;
    }
  };

  it.each<[Parameters<typeof createStrategy>[0], string]>([
    [{ name: 'fedadam', serverLr: 0 }, 'fedadam serverLr must be in (0, inf), got 0'],
    [{ name: 'fedadam', beta1: 1 }, 'fedadam beta1 must be in [0, 1), got 1'],
    [{ name: 'fedyogi', beta2: 1 }, 'fedyogi beta2 must be in [0, 1), got 1'],
    [{ name: 'fedyogi', tau: 0 }, 'fedyogi tau must be in (0, inf), got 0'],
    [{ name: 'fedavgm', serverLr: 0 }, 'fedavgm serverLr must be in (0, inf), got 0'],
    [{ name: 'fedavgm', momentum: -0.5 }, 'fedavgm momentum must be in [0, 1), got -0.5'],
    [{ name: 'fedprox', proximalMu: -1 }, 'fedprox proximalMu must be in [0, inf), got -1'],
  ])('%j is refused naming the strategy, option and range', (options, message) => {
    expect(refusal(options)).toBe(`CONFIG_INVALID: ${message}`);
  });

  it('accepts the inclusive lower bounds (beta 0, momentum 0, mu 0)', () => {
    expect(refusal({ name: 'fedadam', beta1: 0, beta2: 0 })).toBe('');
    expect(refusal({ name: 'fedyogi', beta1: 0, beta2: 0 })).toBe('');
    expect(refusal({ name: 'fedavgm', momentum: 0 })).toBe('');
    expect(refusal({ name: 'fedprox', proximalMu: 0 })).toBe('');
  });

  it('refuses a number given as a string (as an untyped config file could)', () => {
    expect(refusal({ name: 'fedadam', serverLr: '0.5' as unknown as number })).toMatch(
      /serverLr must be/,
    );
    expect(refusal({ name: 'fedavgm', momentum: Number.POSITIVE_INFINITY })).toMatch(/momentum/);
  });

  it('records every resolved hyperparameter', () => {
    expect(createStrategy({ name: 'fedprox' }).hyperparameters).toEqual({ proximalMu: 0.01 });
    expect(createStrategy({ name: 'fedavg' }).hyperparameters).toEqual({});
  });

  it('a non-string strategy name is CONFIG_INVALID, not a crash', () => {
    expect(codeOf(() => parseStrategyName(42 as unknown as string))).toBe('CONFIG_INVALID');
  });
});

describe("FedYogi's second moment at the sign change", () => {
  it('leaves v unchanged when v equals the squared update (sign 0)', () => {
    expect(yogiSecondMoment(0.25, 0.25, 0.99)).toBe(0.25);
    // v > d^2: v shrinks by (1 - beta2) d^2; v < d^2: it grows by as much.
    expect(yogiSecondMoment(1, 0.5, 0.9)).toBeCloseTo(0.95, 12);
    expect(yogiSecondMoment(0.5, 1, 0.9)).toBeCloseTo(0.6, 12);
  });
});
