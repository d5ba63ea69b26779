/**
 * The single entry point that turns configuration into a Strategy, so the coordinator, the
 * simulator and the benchmarks resolve names and defaults identically.
 */
import { CohortError } from '../errors';
import { createFedAdam } from './fedadam';
import { createFedAvg } from './fedavg';
import { createFedAvgM } from './fedavgm';
import { createFedProx } from './fedprox';
import { createFedYogi } from './fedyogi';
import type { Strategy, StrategyName, StrategyOptions } from './strategy';
import { STRATEGY_DEFAULTS, STRATEGY_NAMES } from './strategy';

/**
 * Builds the named strategy, filling unset hyperparameters from STRATEGY_DEFAULTS (an
 * explicit 0 is kept, never replaced by a default). Options that the chosen strategy does not
 * use are refused with CONFIG_INVALID, so e.g. `--momentum` with FedAdam is not silently
 * ignored. Bad values are CONFIG_INVALID too.
 */
export function createStrategy(options: StrategyOptions): Strategy {
  const name = parseStrategyName(options.name);
  refuseUnused(options, name);
  switch (name) {
    case 'fedavg':
      return createFedAvg();
    case 'fedavgm': {
      const d = STRATEGY_DEFAULTS.fedavgm;
      return createFedAvgM({
        serverLr: options.serverLr ?? d.serverLr,
        momentum: options.momentum ?? d.momentum,
      });
    }
    case 'fedadam':
    case 'fedyogi': {
      const d = STRATEGY_DEFAULTS[name];
      const resolved = {
        serverLr: options.serverLr ?? d.serverLr,
        beta1: options.beta1 ?? d.beta1,
        beta2: options.beta2 ?? d.beta2,
        tau: options.tau ?? d.tau,
      };
      return name === 'fedadam' ? createFedAdam(resolved) : createFedYogi(resolved);
    }
    case 'fedprox':
      return createFedProx({
        proximalMu: options.proximalMu ?? STRATEGY_DEFAULTS.fedprox.proximalMu,
      });
  }
}

/** Reads a strategy name case-insensitively; CONFIG_INVALID listing the valid names otherwise. */
export function parseStrategyName(text: string): StrategyName {
  // Stryker disable next-line StringLiteral: any placeholder that is not a strategy name is refused alike.
  const name = typeof text === 'string' ? text.trim().toLowerCase() : '';
  if (!(STRATEGY_NAMES as readonly string[]).includes(name)) {
    throw new CohortError(
      'CONFIG_INVALID',
      `unknown strategy ${JSON.stringify(text)}: expected one of ${STRATEGY_NAMES.join(', ')}`,
    );
  }
  return name as StrategyName;
}

const USED_OPTIONS: Record<StrategyName, readonly (keyof StrategyOptions)[]> = {
  fedavg: [],
  fedavgm: ['serverLr', 'momentum'],
  fedadam: ['serverLr', 'beta1', 'beta2', 'tau'],
  fedyogi: ['serverLr', 'beta1', 'beta2', 'tau'],
  fedprox: ['proximalMu'],
};

function refuseUnused(options: StrategyOptions, name: StrategyName): void {
  for (const key of Object.keys(options) as (keyof StrategyOptions)[]) {
    if (key === 'name' || options[key] === undefined) continue;
    if (!USED_OPTIONS[name].includes(key)) {
      throw new CohortError('CONFIG_INVALID', `strategy ${name} does not use option ${key}`);
    }
  }
}
