import type { SecAggConfig, SecAggPhase } from '../../shared/secagg';
import { MAX_MASKED_LOSS, chooseSecAggParams } from '../../shared/secagg';
import type { BrowserBundle, BundlePage } from '../helpers/browser-page';
import { bundleForBrowser, describeWithChromium, openBundlePage } from '../helpers/browser-page';
import type { BrowserRoundOutcome, BrowserRoundRequest } from './fixtures/secagg-round-page';

/**
 * Browser clients run the same secure-aggregation code as Node clients. This suite bundles
 * shared/secagg/index.ts for the browser and runs complete rounds inside Chromium (every party
 * in the page), checking the decoded mean (and mean train loss) against plain weighted FedAvg
 * computed here in Node. Four participants: each derives the complete graph and t = 3 itself.
 */

const VECTOR_LENGTH = 6;
const CLIP_RANGE = 1;
const WEIGHT_CAP = 1000;

// Four clients; 1.7 and -3 exceed the clip range, 5000 examples exceed the weight cap.
const UPDATES: number[][] = [
  [0.25, -0.5, 0.125, 0.9, -0.01, 1.7],
  [-0.75, 0.3, 0.6, -0.2, 0.05, 0.4],
  [0.1, 0.2, -3, 0.33, -0.66, 0.0],
  [0.5, -0.125, 0.7, -0.9, 0.45, -0.35],
];
const EXAMPLE_COUNTS = [40, 120, 5000, 75];
// Train losses travel masked too, capped at MAX_MASKED_LOSS (64): 100 counts as 64.
const TRAIN_LOSSES = [0.4, 0.875, 100, 1.5];

/** Plain FedAvg with the protocol's clipping, weight cap and float32 inputs, in float64. */
function expectedMean(included: readonly number[]): {
  mean: number[];
  totalWeight: number;
  trainLoss: number;
} {
  const mean = new Array<number>(VECTOR_LENGTH).fill(0);
  let totalWeight = 0;
  let loss = 0;
  for (const i of included) {
    const weight = Math.min(EXAMPLE_COUNTS[i]!, WEIGHT_CAP);
    totalWeight += weight;
    loss += Math.min(MAX_MASKED_LOSS, TRAIN_LOSSES[i]!) * weight;
    UPDATES[i]!.forEach((x, j) => {
      const clipped = Math.max(-CLIP_RANGE, Math.min(CLIP_RANGE, Math.fround(x)));
      mean[j] = mean[j]! + clipped * weight;
    });
  }
  return { mean: mean.map((s) => s / totalWeight), totalWeight, trainLoss: loss / totalWeight };
}

describeWithChromium('secure aggregation round inside Chromium', (chromium) => {
  let bundle: BrowserBundle;
  let browser: BundlePage | undefined;
  let config: SecAggConfig;

  beforeAll(async () => {
    config = chooseSecAggParams(UPDATES.length, {
      vectorLength: VECTOR_LENGTH,
      clipRange: CLIP_RANGE,
      weightCap: WEIGHT_CAP,
    });
    bundle = await bundleForBrowser(
      'test/browser/fixtures/secagg-round-page.ts',
      'CohortSecAggPage',
    );
    browser = await openBundlePage(chromium, bundle);
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
  });

  async function runRound(
    dropAt: (SecAggPhase | null)[],
    backend: BrowserRoundRequest['backend'],
  ): Promise<BrowserRoundOutcome> {
    const request: BrowserRoundRequest = {
      config,
      updates: UPDATES,
      exampleCounts: EXAMPLE_COUNTS,
      trainLosses: TRAIN_LOSSES,
      dropAt,
      backend,
    };
    return browser!.call<BrowserRoundOutcome>('runRoundInPage', request);
  }

  function expectMean(outcome: BrowserRoundOutcome, included: readonly number[]): void {
    expect(outcome.error).toBeNull();
    expect(outcome.clientErrors).toEqual([]);
    expect(outcome.serverRejections).toEqual([]);
    const expected = expectedMean(included);
    expect(outcome.totalWeight).toBe(expected.totalWeight);
    expect(outcome.weightedMean).toHaveLength(VECTOR_LENGTH);
    // Stochastic rounding moves each client's element by < 1/scale: the mean by < n/(scale*W).
    const tolerance = included.length / (config.scale * expected.totalWeight) + 1e-6;
    outcome.weightedMean.forEach((x, j) => {
      expect(Math.abs(x - expected.mean[j]!)).toBeLessThan(tolerance);
    });
    // The loss travels as loss * clipRange / MAX_MASKED_LOSS: a coarser rounding step.
    const lossTolerance = tolerance * (MAX_MASKED_LOSS / config.clipRange);
    expect(Math.abs(outcome.meanTrainLoss! - expected.trainLoss)).toBeLessThan(lossTolerance);
    expect(outcome.survivors).toEqual(included.map((i) => outcome.clientIds[i]!).sort());
  }

  it('bundles shared/secagg/index.ts with tweetnacl, shamir-secret-sharing and zod', () => {
    expect(bundle.inputs).toContain('shared/secagg/index.ts');
    expect(bundle.inputs).toContain('shared/secagg/in-memory-round.ts');
    for (const pkg of ['tweetnacl', 'shamir-secret-sharing', 'zod']) {
      expect(bundle.inputs.some((f) => f.startsWith(`node_modules/${pkg}/`))).toBe(true);
    }
    expect(bundle.inputs.filter((f) => f.startsWith('node:'))).toEqual([]);
    expect(bundle.disabledImports).toEqual([
      'node_modules/tweetnacl/nacl-fast.js -> (disabled):crypto',
    ]);
  });

  it('a complete round of 4 clients decodes to the weighted mean', async () => {
    const outcome = await runRound([null, null, null, null], 'auto');
    expectMean(outcome, [0, 1, 2, 3]);
    expect(outcome.dropped).toEqual([]);
    expect(browser!.pageErrors).toEqual([]);
  });

  it('with tweetnacl forced and a client dropping before its masked input', async () => {
    const outcome = await runRound([null, null, 'maskedInput', null], 'tweetnacl');
    expect(outcome.backends).toEqual({ ed25519: 'tweetnacl', x25519: 'tweetnacl' });
    expectMean(outcome, [0, 1, 3]);
    expect(outcome.dropped).toEqual([outcome.clientIds[2]]);
    expect(browser!.pageErrors).toEqual([]);
  });
});
