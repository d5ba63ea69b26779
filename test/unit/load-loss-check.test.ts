import type { RoundHistoryEntry } from '../../coordinator/history';
import { DEFAULT_WEIGHT_CAP, MAX_MASKED_LOSS, derivedScale } from '../../shared/secagg';
import { lossCheck } from '../bench/load-report';
import { loadClientShape } from '../bench/load-trainer';

const CLIP = 4;

function entryOf(participants: number, trainLoss: number): RoundHistoryEntry {
  return {
    round: 1,
    status: 'completed',
    participants,
    dropped: 0,
    rejected: 0,
    selected: participants,
    trainLoss,
    testLoss: null,
    testAccuracy: null,
    evaluation: 'none',
    federatedAccuracy: null,
    durationMs: 1,
    bytesReceived: 0,
    secureAggregation: 'on',
    failureReason: null,
  };
}

/** The bench's clients 0..n-1, their weight and the plain weighted mean of their losses. */
function fleet(n: number) {
  const fits = Array.from({ length: n }, (_, i) => loadClientShape(i));
  const weight = fits.reduce((s, f) => s + f.numExamples, 0);
  const mean = fits.reduce((s, f) => s + f.numExamples * f.trainLoss, 0) / weight;
  return { fits, weight, mean };
}

describe('the load bench loss check', () => {
  test('a cohort of 20 travels at 24 bits, so its tolerance uses the 24-bit scale', () => {
    const { fits, weight, mean } = fleet(20);
    const scale24 = derivedScale(20, CLIP, DEFAULT_WEIGHT_CAP, 24);
    const tolerance = (20 * MAX_MASKED_LOSS) / (CLIP * scale24 * weight) + 1e-6;
    // The error the 24-bit run showed (0.0097), once reported as 35x a 32-bit tolerance.
    const observed = lossCheck(entryOf(20, mean - 0.0097), fits, CLIP, 'auto');
    expect(observed.tolerance).toBeCloseTo(tolerance, 12);
    expect(observed.ok).toBe(true);
    expect(lossCheck(entryOf(20, mean + 2 * tolerance), fits, CLIP, 'auto').ok).toBe(false);
  });

  test('a cohort of 110 travels at 32 bits', () => {
    const { fits, weight, mean } = fleet(110);
    const scale32 = derivedScale(110, CLIP, DEFAULT_WEIGHT_CAP, 32);
    const tolerance = (110 * MAX_MASKED_LOSS) / (CLIP * scale32 * weight) + 1e-6;
    expect(lossCheck(entryOf(110, mean), fits, CLIP, 'auto').tolerance).toBeCloseTo(tolerance, 12);
    expect(lossCheck(entryOf(110, mean + 2 * tolerance), fits, CLIP, 'auto').ok).toBe(false);
  });

  test('a round that did not sum every trained client is not checked', () => {
    const { fits, mean } = fleet(5);
    expect(lossCheck(entryOf(4, mean), fits, CLIP, 'auto').ok).toBeNull();
  });
});
