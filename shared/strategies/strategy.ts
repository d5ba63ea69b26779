/**
 * The federated strategy contract, after Flower's: the round loop does all I/O and calls a
 * pure strategy to configure clients and to turn the averaged client update into the next
 * global model. Server-side optimizer state is a flat Float32Array so checkpoints can persist
 * it next to the weights and a restarted coordinator resumes the same trajectory.
 */
import { CohortError } from '../errors';

/** Local training settings sent to each client for a round. */
export interface FitConfig {
  epochs: number;
  batchSize: number;
  learningRate: number;
  optimizer: 'sgd' | 'adam';
  /** Weight of the FedProx proximal term (mu/2)||w - w_global||^2; 0 disables it. */
  proximalMu: number;
}

/** Every built-in strategy name, for CLI help and validation. */
export const STRATEGY_NAMES = ['fedavg', 'fedavgm', 'fedadam', 'fedyogi', 'fedprox'] as const;

/** The built-in strategies. */
export type StrategyName = (typeof STRATEGY_NAMES)[number];

/** What the round loop hands to `aggregateFit`. */
export interface AggregateFitInput {
  /** The global weights the round started from. */
  global: Float32Array;
  /** Example-weighted mean of (client weights - global weights). */
  meanDelta: Float32Array;
  /** 1-based round number. */
  round: number;
}

/** The next global model and the server optimizer state to carry into the next round. */
export interface AggregateFitResult {
  weights: Float32Array;
  state: Float32Array;
}

/** One federated algorithm; implementations are pure and never mutate their inputs. */
export interface Strategy {
  readonly name: StrategyName;
  /** The resolved hyperparameters (defaults filled in), for logs and experiment records. */
  readonly hyperparameters: Readonly<Record<string, number>>;
  /** Client-side fit config for a round (FedProx sets proximalMu). */
  configureFit(base: FitConfig, round: number): FitConfig;
  /** Server optimizer state, a flat Float32Array (empty for FedAvg), so checkpoints can persist it. */
  initialState(modelLength: number): Float32Array;
  /**
   * meanDelta = example-weighted mean of (client weights - global weights). Returns the next
   * global model and state; never mutates inputs.
   */
  aggregateFit(input: AggregateFitInput, state: Float32Array): AggregateFitResult;
}

/**
 * Strategy choice plus optional hyperparameters; anything left out takes the value in
 * {@link STRATEGY_DEFAULTS}.
 */
export interface StrategyOptions {
  name: StrategyName;
  /** Server learning rate (eta in Reddi et al.); FedAvgM, FedAdam, FedYogi. */
  serverLr?: number;
  /** Server momentum (beta in Hsu et al. 2019); FedAvgM. */
  momentum?: number;
  /** First-moment decay; FedAdam, FedYogi. */
  beta1?: number;
  /** Second-moment decay; FedAdam, FedYogi. */
  beta2?: number;
  /** Adaptivity floor added to sqrt(v); FedAdam, FedYogi. */
  tau?: number;
  /** Proximal term weight; FedProx. */
  proximalMu?: number;
}

/**
 * Defaults. FedAdam/FedYogi follow Reddi et al. 2021 "Adaptive Federated Optimization"
 * (beta1 0.9, beta2 0.99, tau 1e-3; server lr 1e-2, in the range their tuning found best for
 * CNNs); FedAvgM uses momentum 0.9 with server lr 1 (Hsu et al. 2019); FedProx mu 0.01
 * (Li et al. 2020 tuned mu in {0.001, 0.01, 0.1, 1}).
 */
export const STRATEGY_DEFAULTS = {
  fedavgm: { serverLr: 1, momentum: 0.9 },
  fedadam: { serverLr: 0.01, beta1: 0.9, beta2: 0.99, tau: 1e-3 },
  fedyogi: { serverLr: 0.01, beta1: 0.9, beta2: 0.99, tau: 1e-3 },
  fedprox: { proximalMu: 0.01 },
} as const;

/**
 * Throws UPDATE_SHAPE unless global, meanDelta and state have the lengths the strategy
 * expects: a checkpoint of another model or a truncated update must not be applied.
 */
export function checkAggregateInput(
  input: AggregateFitInput,
  state: Float32Array,
  expectedStateLength: number,
): void {
  if (input.meanDelta.length !== input.global.length) {
    throw new CohortError(
      'UPDATE_SHAPE',
      `mean update has ${input.meanDelta.length} values, model has ${input.global.length}`,
    );
  }
  if (state.length !== expectedStateLength) {
    throw new CohortError(
      'UPDATE_SHAPE',
      `strategy state has ${state.length} values, expected ${expectedStateLength}`,
    );
  }
}

/** Copies base with no shared references, so callers may mutate what configureFit returns. */
export function copyFitConfig(base: FitConfig): FitConfig {
  return { ...base };
}
