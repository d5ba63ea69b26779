import {
  ANSWER_FLOOR_BYTES,
  BUNDLE_ENTRY_BYTES,
  SEALED_BUNDLE_BYTES,
  SHARE_ENTRY_BYTES,
  answerCap,
  evaluateAnswerLimit,
  fitAnswerLimit,
  maxSecAggNeighbours,
  secAggAnswerLimit,
} from '../../coordinator/answer-limits';
import { boundedSize } from '../../coordinator/connection-guard';
import { generateIdentity } from '../../shared/identity';
import { getModelSpec } from '../../shared/model/registry';
import { summarizeModelSpec } from '../../shared/model/validate-spec';
import { packBinary } from '../../shared/protocol/binary-envelope';
import type { SecAggPhase, ShareKeysResponse } from '../../shared/secagg';
import { SECAGG_PHASES, chooseSecAggParams, runInMemorySecAggRound } from '../../shared/secagg';
import { floatsToBytes } from '../../shared/weights/codec';

/** The per-answer caps by hand, then against real honest answers and padded ones. */

/** The longest round id the coordinator's protocol allows: the heaviest honest answers. */
const ROUND_ID = 'r'.repeat(120);
const MODEL_HASH = 'ab'.repeat(32);

/** `answer` with an extra field that makes it weigh `factor` times as much. */
function inflated(answer: object, factor: number): Record<string, unknown> {
  const size = boundedSize(answer, Number.MAX_SAFE_INTEGER);
  return { ...answer, padding: new Uint8Array(Math.ceil((factor - 1) * size)) };
}

/** The heaviest error acknowledgement a client sends (shared/client/client-session.ts). */
const WORST_ERROR_ACK = {
  status: 'error',
  roundId: 'r'.repeat(128),
  code: 'C'.repeat(60),
  message: 'm'.repeat(2000),
};

describe('the bounds, by hand', () => {
  test('the entry sizes follow from the wire format', () => {
    // encodeFields: 6 headers of 5, the 29-character domain label, a 32-byte view hash, two
    // 32-character ids and two 33-byte shares; then the 16-byte Poly1305 tag.
    expect(SEALED_BUNDLE_BYTES).toBe(30 + 29 + 32 + 64 + 66 + 16);
    // recipientId + id, nonce + ref + 24 bytes, ciphertext + ref + the sealed bundle.
    expect(BUNDLE_ENTRY_BYTES).toBe(11 + 32 + (5 + 28 + 24) + (10 + 28 + 237));
    // ownerId + id, share + ref + 33 bytes.
    expect(SHARE_ENTRY_BYTES).toBe(7 + 32 + (5 + 28 + 33));
  });

  test('a cap is twice the honest bound plus 1 KiB, never under 4 KiB', () => {
    expect(answerCap(0)).toBe(4096);
    expect(answerCap(1536)).toBe(4096);
    expect(answerCap(2000)).toBe(5024);
    expect(answerCap(10_000)).toBe(21_024);
  });

  test('fit and evaluate', () => {
    // Plain: 512 for the fields + 4 bytes a parameter, doubled, + 1024.
    expect(fitAnswerLimit(1000, false)).toBe(2 * (512 + 4000) + 1024);
    expect(fitAnswerLimit(1_000_000, false)).toBe(2 * (512 + 4_000_000) + 1024);
    // Secure: no update, so the floor whatever the model.
    expect(fitAnswerLimit(1_000_000, true)).toBe(4096);
    expect(evaluateAnswerLimit()).toBe(4096);
  });

  test('the neighbour bound covers the complete graph and SecAgg+', () => {
    expect(maxSecAggNeighbours(1)).toBe(0);
    expect(maxSecAggNeighbours(5)).toBe(4);
    expect(maxSecAggNeighbours(100)).toBe(99);
    // 101 participants have 70 neighbours, but 100 of them (after a dropout) have 99.
    expect(maxSecAggNeighbours(101)).toBe(99);
    expect(maxSecAggNeighbours(1000)).toBe(100); // 10 * ceil(log2 1000)
    expect(maxSecAggNeighbours(100_000)).toBe(170); // 10 * 17
  });

  test('each secure phase, for 5 clients and 1000 parameters', () => {
    const config = chooseSecAggParams(5, { vectorLength: 1000, clipRange: 1, weightCap: 100 });
    const caps = Object.fromEntries(SECAGG_PHASES.map((p) => [p, secAggAnswerLimit(p, config)]));
    expect(caps).toEqual({
      advertiseKeys: 4096,
      shareKeys: 2 * (512 + 4 * 375) + 1024, // 4 neighbours' bundles
      maskedInput: 2 * (512 + 4 * 1002) + 1024, // 1000 + 2 uint32
      consistencyCheck: 4096,
      unmasking: 4096, // 5 shares of 105: under the floor
    });
  });

  test('the masked input cap follows the packed width: 2, 3 or 4 bytes an element', () => {
    for (const [bits, bytes] of [
      [16, 2],
      [24, 3],
      [32, 4],
    ] as const) {
      const config = chooseSecAggParams(5, {
        vectorLength: 10_000,
        clipRange: 1,
        weightCap: 100,
        modulusBits: bits,
      });
      expect(config.modulusBits).toBe(bits);
      expect(secAggAnswerLimit('maskedInput', config)).toBe(2 * (512 + bytes * 10_002) + 1024);
    }
  });

  test('large cohorts: the bundle and share lists grow with the degree, capped by SecAgg+', () => {
    const config = chooseSecAggParams(1000, { vectorLength: 10, clipRange: 1, weightCap: 100 });
    expect(secAggAnswerLimit('shareKeys', config)).toBe(2 * (512 + 100 * 375) + 1024);
    expect(secAggAnswerLimit('unmasking', config)).toBe(2 * (512 + 101 * 105) + 1024);
  });

  test('every cap admits the heaviest error acknowledgement', () => {
    const config = chooseSecAggParams(3, { vectorLength: 1, clipRange: 1, weightCap: 100 });
    const weight = boundedSize(WORST_ERROR_ACK, Number.MAX_SAFE_INTEGER);
    expect(weight).toBe(2217);
    expect(weight).toBeLessThanOrEqual(evaluateAnswerLimit());
    expect(weight).toBeLessThanOrEqual(fitAnswerLimit(1, true));
    expect(weight).toBeLessThanOrEqual(ANSWER_FLOOR_BYTES);
    for (const phase of SECAGG_PHASES) {
      expect(weight).toBeLessThanOrEqual(secAggAnswerLimit(phase, config));
    }
  });
});

describe('honest answers fit their cap; three times as heavy does not', () => {
  test('a plain fit answer with a real update for the MNIST model', () => {
    const parameters = summarizeModelSpec(getModelSpec('mnist')).parameters;
    const delta = new Float32Array(parameters).map((_, j) => Math.sin(j));
    // The exact shape client-session.ts sends.
    const answer = {
      status: 'ok',
      roundId: ROUND_ID,
      modelHash: MODEL_HASH,
      numExamples: 600,
      trainLoss: 0.4,
      update: floatsToBytes(delta),
    };
    const cap = fitAnswerLimit(parameters, false);
    expect(boundedSize(answer, cap)).toBeLessThanOrEqual(cap);
    expect(boundedSize(inflated(answer, 3), cap)).toBeGreaterThan(cap);
    // The same answer in a secure round carries an update it must not: far over its cap.
    expect(boundedSize(answer, fitAnswerLimit(parameters, true))).toBeGreaterThan(
      fitAnswerLimit(parameters, true),
    );
  });

  test('fixed-size answers: secure fit and evaluate sit under the floor', () => {
    const secureFit = { status: 'ok', roundId: ROUND_ID, modelHash: MODEL_HASH };
    const evaluate = {
      status: 'ok',
      roundId: ROUND_ID,
      numExamples: 100,
      loss: 0.3,
      accuracy: 0.9,
    };
    for (const [answer, cap] of [
      [secureFit, fitAnswerLimit(20_000, true)],
      [evaluate, evaluateAnswerLimit()],
    ] as const) {
      const weight = boundedSize(answer, cap);
      expect(weight).toBeLessThan(300);
      expect(weight).toBeLessThanOrEqual(cap);
      // Under a floor-sized cap, "three times as heavy" is three times the cap.
      expect(boundedSize(inflated(answer, (3 * cap) / weight), cap)).toBeGreaterThan(cap);
    }
  });

  test.each([32, 24, 16] as const)(
    'every secure phase of a real 20-client round at %i bits',
    async (bits) => {
      const n = 20;
      const vectorLength = 1000;
      const config = chooseSecAggParams(n, {
        vectorLength,
        clipRange: 1,
        weightCap: 100,
        modulusBits: bits,
      });
      const report = await runInMemorySecAggRound({
        roundId: 'r'.repeat(128),
        modelHash: MODEL_HASH,
        config,
        clients: Array.from({ length: n }, (_, i) => ({
          identity: generateIdentity(),
          update: new Float32Array(vectorLength).map((_, j) => Math.sin(i + j) * 0.5),
          exampleCount: 10 + i,
          trainLoss: 0.5,
        })),
      });
      expect(report.error).toBeUndefined();
      expect(report.result?.survivors).toHaveLength(n);

      // Sealed bundles weigh exactly what the bound assumes.
      for (const response of report.responses.get('shareKeys')!.values()) {
        const bundles = (response as ShareKeysResponse).bundles;
        expect(bundles).toHaveLength(n - 1);
        for (const b of bundles) expect(b.ciphertext.byteLength).toBe(SEALED_BUNDLE_BYTES);
      }

      // Where the payload dominates, three times an honest answer is over; where the answer is
      // fixed and small, the cap is the floor and three times the cap is over.
      const proportional: ReadonlySet<SecAggPhase> = new Set([
        'shareKeys',
        'maskedInput',
        'unmasking',
      ]);
      for (const phase of SECAGG_PHASES) {
        const cap = secAggAnswerLimit(phase, config);
        const answers = [...report.responses.get(phase)!.values()];
        expect(answers).toHaveLength(n);
        for (const response of answers) {
          // What the coordinator receives: the packed envelope (client-session.ts).
          const packed = packBinary(response);
          const weight = boundedSize(packed, cap);
          expect({ phase, under: weight <= cap }).toEqual({ phase, under: true });
          const factor = proportional.has(phase) ? 3 : (3 * cap) / weight;
          expect({ phase, over: boundedSize(inflated(packed, factor), cap) > cap }).toEqual({
            phase,
            over: true,
          });
          // And the honest answer uses a fair share of its cap: the bound is not loose.
          if (proportional.has(phase)) expect(weight).toBeGreaterThan(cap / 3);
        }
      }
    },
    60_000,
  );
});
