import type { Dataset } from '../../shared/data/dataset';
import type { IdentityKeyPair } from '../../shared/identity';
import { clientIdFromPublicKey, generateIdentity, signDetached } from '../../shared/identity';
import type { FitConfigMessage, ModelPayload } from '../../shared/protocol/messages';
import type {
  AdvertiseKeysRequest,
  AdvertisedKeys,
  ConsistencyCheckRequest,
  MaskedInputRequest,
  SecAggConfig,
  SecAggPhase,
  ShareKeysRequest,
  UnmaskingRequest,
} from '../../shared/secagg';
import {
  DEFAULT_MIN_PARTICIPANTS,
  MAX_MASKED_LOSS,
  chooseSecAggParams,
  configHash,
  graphParams,
  quantizeWeightedUpdate,
} from '../../shared/secagg';
import { advertisementBytes } from '../../shared/secagg/signed-payloads';
import { useWasmBackend } from '../helpers/backend';
import { MaliciousCoordinator, isErrorAck } from '../helpers/malicious-coordinator';
import { mnistModelPayload } from '../helpers/coordinator-fixtures';
import { smallMnist } from '../helpers/mnist-fixture';
import {
  exampleWeightedLoss,
  exampleWeightedMean,
  maxAbsDiff,
  totalExamples,
} from '../helpers/secagg-expectations';
import type { ProbedClient } from '../helpers/secagg-probe';
import { closeProbedClients, startProbedClients } from '../helpers/secagg-probe';
import type { SocketRoundReport } from '../helpers/socket-secagg-round';
import { acksFrom, runSocketSecAggRound } from '../helpers/socket-secagg-round';

/**
 * Honest, real Node clients (connectNodeClient, wasm backend, pinned identities, the default
 * minimum of 5 participants) against a coordinator that cheats over real sockets. In every
 * case the victims must answer with an error of the expected stable code, refuse everything
 * after, and nothing any client returns may let the coordinator unmask one update: no owner's
 * self-mask share and secret-key share both revealed, no masked input after a refusal. A last
 * check looks at the masked bytes one client actually sent for a constant update: they must be
 * statistically uniform.
 *
 * Six clients, so a round that loses one victim still has the 5 participants an honest client
 * requires by default. The complete graph of 6 has t = max(3, ceil(2*6/3)) = 4, which each
 * client derives itself from the signed advertisement list.
 */

const SEED = 3;
const CLIENTS = 6;
const PER_CLIENT = 40;
const FIT: Omit<FitConfigMessage, 'seed'> = {
  epochs: 1,
  batchSize: 32,
  learningRate: 0.05,
  optimizer: 'sgd',
  proximalMu: 0,
  maxExamples: 32,
};
/** Chi-square critical value for 15 degrees of freedom at p = 1e-6. */
const CHI2_DF15_P1E6 = 56.49;

let data: { train: Dataset; test: Dataset };
let harness: MaliciousCoordinator;
let clients: ProbedClient[] = [];
let identities: IdentityKeyPair[];
/** Pinned by every client, but never connected: a member the coordinator could impersonate. */
let absent: IdentityKeyPair;
/** Client ids, sorted. */
let ids: string[];
let victim: string;
let other: string;
let global: ModelPayload;
let config: SecAggConfig;
let round = 0;

beforeAll(async () => {
  const backend = await useWasmBackend();
  data = await smallMnist(CLIENTS * PER_CLIENT, 20);
  harness = await MaliciousCoordinator.start();
  identities = Array.from({ length: CLIENTS }, () => generateIdentity());
  absent = generateIdentity();
  const pinned = [...identities, absent].map((i) => i.publicKey);
  clients = await startProbedClients(
    harness.url,
    backend,
    data,
    new Array<number>(CLIENTS).fill(PER_CLIENT),
    (i) => ({ identity: identities[i]!, policy: { knownIdentityKeys: pinned } }),
  );
  ids = (await harness.waitForClients(CLIENTS)).map((c) => c.id);
  [victim, other] = [ids[1]!, ids[3]!];
  global = await mnistModelPayload(SEED);
  config = chooseSecAggParams(CLIENTS, {
    vectorLength: global.manifest.length,
    clipRange: 4,
    weightCap: 16384,
  });
  expect(graphParams(CLIENTS)).toMatchObject({ complete: true, threshold: 4 });
  expect(DEFAULT_MIN_PARTICIPANTS).toBe(CLIENTS - 1);
});
afterAll(async () => {
  closeProbedClients(clients);
  await harness?.close();
});

/** Every client trains the round's model (or the one `modelFor` picks); returns the round id. */
async function trainRound(modelFor: (id: string) => ModelPayload = () => global) {
  round++;
  const roundId = `adv-r${round}`;
  const acks = await harness.fit(roundId, round, modelFor, { ...FIT, seed: round });
  return { roundId, acks };
}

/** Trains, then runs a secure round where `requests` may rewrite what each client receives. */
async function attack(
  requests?: (phase: SecAggPhase, clientId: string, honest: unknown) => unknown[],
): Promise<SocketRoundReport> {
  const { roundId, acks } = await trainRound();
  expect([...acks.values()].every((a) => !isErrorAck(a))).toBe(true);
  return runSocketSecAggRound({
    coordinator: harness,
    roundId,
    modelHash: global.modelHash,
    config,
    cohort: ids,
    ...(requests ? { requests } : {}),
  });
}

/** Rewrites only the victim's request in one phase. */
function onVictim<T>(phase: SecAggPhase, edit: (request: T) => unknown) {
  return (p: SecAggPhase, id: string, honest: unknown): unknown[] =>
    p === phase && id === victim ? [edit(honest as T)] : [honest];
}

interface RevealedShares {
  selfMaskShares: Array<{ ownerId: string }>;
  secretKeyShares: Array<{ ownerId: string }>;
}

/**
 * Nothing returned lets the coordinator unmask one client: over every unmasking answer of the
 * round (and any extra ones), no owner has both a self-mask share and a secret-key share out.
 */
function expectNothingUnmasks(report: SocketRoundReport, extra: unknown[] = []): void {
  const answers = [...report.acks.get('unmasking')!.values()].flat().concat(extra);
  const alive = new Set<string>();
  const dead = new Set<string>();
  for (const answer of answers) {
    if (isErrorAck(answer)) continue;
    const shares = answer as RevealedShares;
    for (const s of shares.selfMaskShares) alive.add(s.ownerId);
    for (const s of shares.secretKeyShares) dead.add(s.ownerId);
  }
  expect([...alive].filter((id) => dead.has(id))).toEqual([]);
}

/**
 * The client refused `phase` with `code`, and every later request it was pushed (the driver
 * keeps asking) was refused too: no masked input, no share after a refusal.
 */
function expectRefusal(
  report: SocketRoundReport,
  clientId: string,
  phase: SecAggPhase,
  code: string,
  message?: RegExp,
): void {
  expect(report.refusals.get(clientId)).toEqual({ phase, code });
  if (message) {
    const [first] = report.acks.get(phase)!.get(clientId)!;
    expect(isErrorAck(first) && first.message).toMatch(message);
  }
  const later = acksFrom(report, clientId, phase);
  expect(later.length).toBeGreaterThan(0);
  expect(later.filter((a) => !isErrorAck(a))).toEqual([]);
  expectNothingUnmasks(report);
}

describe('honest Node clients against a malicious coordinator (real sockets)', () => {
  it('the transport delivers a secagg message with hundreds of binary fields', async () => {
    // A ShareKeys request of a 200-client round carries the whole signed advertisement list:
    // 200 x 4 keys and signatures. Delivered, the client answers (no round in progress here:
    // UPDATE_STALE); a transport that cannot decode it drops the connection instead.
    const key = () => new Uint8Array(32).fill(7);
    const advertisements = Array.from({ length: 200 }, (_, i) => ({
      clientId: i.toString(16).padStart(32, '0'),
      identityPublicKey: key(),
      cPublicKey: key(),
      sPublicKey: key(),
      signature: new Uint8Array(64),
    }));
    const answer = await harness.secagg(victim, 'shareKeys', 'adv-none', {
      roundId: 'adv-none',
      advertisements,
    });
    expect(isErrorAck(answer) && answer.code).toBe('UPDATE_STALE');
  });

  it('each refuses a round parameter it did not derive itself, and refuses again when the honest request follows', async () => {
    // Protocol v2 has nothing for the coordinator to choose: k and t follow from the signed
    // participant count, the scale from the other config fields, and the round names the
    // coordinator and experiment the client registered with. One attack per client:
    const attacks: Array<[(r: AdvertiseKeysRequest) => unknown, string, RegExp]> = [
      // A narrower wire with the scale derived for 32 bits would wrap the sum silently.
      [
        (r) => ({ ...r, config: { ...r.config, modulusBits: 24 } }),
        'CONFIG_UNSAFE',
        /not the derived .* 24-bit modulus/,
      ],
      // A coordinator-chosen threshold or neighbour count is not even a field any more.
      [(r) => ({ ...r, config: { ...r.config, threshold: 2 } }), 'MESSAGE_INVALID', /threshold/],
      [(r) => ({ ...r, config: { ...r.config, neighbours: 1 } }), 'MESSAGE_INVALID', /neighbours/],
      [
        (r) => ({ ...r, config: { ...r.config, scale: r.config.scale * 2 } }),
        'CONFIG_UNSAFE',
        /not the derived/,
      ],
      [(r) => ({ ...r, experiment: 'another-experiment' }), 'SECAGG_INCONSISTENT', /experiment/],
      [
        (r) => ({ ...r, coordinatorId: clientIdFromPublicKey(absent.publicKey) }),
        'SECAGG_INCONSISTENT',
        /coordinator/,
      ],
    ];
    expect(attacks).toHaveLength(CLIENTS);
    const report = await attack((phase, id, honest) =>
      phase === 'advertiseKeys'
        ? [attacks[ids.indexOf(id)]![0](honest as AdvertiseKeysRequest), honest]
        : [honest],
    );
    ids.forEach((id, i) => {
      const [, code, message] = attacks[i]!;
      const [first, retry] = report.acks.get('advertiseKeys')!.get(id)!;
      expect(isErrorAck(first) && first.code).toBe(code);
      expect(isErrorAck(first) && first.message).toMatch(message);
      // The session was abandoned on the first refusal: nothing can be retried with a variation.
      expect(isErrorAck(retry) && retry.code).toBe('SECAGG_REPLAY');
      expect(acksFrom(report, id, 'advertiseKeys').filter((a) => !isErrorAck(a))).toEqual([]);
    });
    expect(report.error).toMatchObject({ code: 'SECAGG_BELOW_THRESHOLD' });
  });

  it('a client sent a different model refuses keys for the round’s model hash', async () => {
    const odd = await mnistModelPayload(SEED + 1);
    const { roundId, acks } = await trainRound((id) => (id === victim ? odd : global));
    expect([...acks.values()].every((a) => !isErrorAck(a))).toBe(true);
    const report = await runSocketSecAggRound({
      coordinator: harness,
      roundId,
      modelHash: global.modelHash,
      config,
      cohort: ids,
    });
    expectRefusal(report, victim, 'advertiseKeys', 'MODEL_HASH_MISMATCH');
    // The others go on without it: the round still completes, without the victim.
    expect(report.result?.survivors).toEqual(ids.filter((id) => id !== victim));
  });

  it('a fit whose weights do not match the announced hash is refused', async () => {
    const forged = { ...global, modelHash: (await mnistModelPayload(SEED + 2)).modelHash };
    const { acks } = await trainRound((id) => (id === victim ? forged : global));
    const answer = acks.get(victim);
    expect(isErrorAck(answer) && answer.code).toBe('MODEL_HASH_MISMATCH');
  });

  it('refuses a substituted public key', async () => {
    const report = await attack(
      onVictim<ShareKeysRequest>('shareKeys', (r) => ({
        ...r,
        advertisements: r.advertisements.map((e) =>
          e.clientId === other ? { ...e, sPublicKey: new Uint8Array(32).fill(42) } : e,
        ),
      })),
    );
    expectRefusal(report, victim, 'shareKeys', 'SECAGG_SIGNATURE', /not signed by its identity/);
    expect(report.result?.survivors).toEqual(ids.filter((id) => id !== victim));
  });

  it('refuses a participant list shrunk below its minimum, and the others go on without it', async () => {
    // Every advertisement shown is genuine and signed; there are just too few of them.
    const report = await attack(
      onVictim<ShareKeysRequest>('shareKeys', (r) => {
        const others = r.advertisements.filter((e) => e.clientId !== victim);
        const kept = new Set([
          victim,
          ...others.slice(0, DEFAULT_MIN_PARTICIPANTS - 2).map((e) => e.clientId),
        ]);
        const advertisements = r.advertisements.filter((e) => kept.has(e.clientId));
        expect(advertisements).toHaveLength(DEFAULT_MIN_PARTICIPANTS - 1);
        return { ...r, advertisements };
      }),
    );
    expectRefusal(
      report,
      victim,
      'shareKeys',
      'SECAGG_BELOW_THRESHOLD',
      new RegExp(`at least ${DEFAULT_MIN_PARTICIPANTS}`),
    );
    expect(report.result?.survivors).toEqual(ids.filter((id) => id !== victim));
  });

  /** The round context every advertisement of the current attack round is signed under. */
  function currentContext() {
    return {
      coordinatorId: harness.coordinatorId,
      experiment: harness.experiment,
      roundId: `adv-r${round}`,
      modelHash: global.modelHash,
      configHash: configHash(config),
    };
  }

  /** Puts an invented participant in `other`'s place in the victim's ShareKeys request. */
  function inject(
    identity: IdentityKeyPair,
    sign: (fakeId: string, c: Uint8Array, s: Uint8Array) => Uint8Array,
  ) {
    const fakeId = clientIdFromPublicKey(identity.publicKey);
    return onVictim<ShareKeysRequest>('shareKeys', (r) => ({
      ...r,
      advertisements: r.advertisements
        .map((e): AdvertisedKeys =>
          e.clientId === other
            ? {
                ...e,
                clientId: fakeId,
                identityPublicKey: identity.publicKey,
                signature: sign(fakeId, e.cPublicKey, e.sPublicKey),
              }
            : e,
        )
        .sort((a, b) => (a.clientId < b.clientId ? -1 : 1)),
    }));
  }

  it('refuses an injected unsigned client, even one with a pinned identity', async () => {
    // The pinned-but-absent member passes the pinning check: only its signature is missing.
    const report = await attack(inject(absent, () => new Uint8Array(64)));
    expectRefusal(report, victim, 'shareKeys', 'SECAGG_SIGNATURE', /not signed by its identity/);
  });

  it('refuses a validly self-signed invented client, since identities are pinned', async () => {
    const sybil = generateIdentity();
    const report = await attack(
      inject(sybil, (fakeId, c, s) =>
        signDetached(advertisementBytes(currentContext(), fakeId, c, s), sybil),
      ),
    );
    expectRefusal(report, victim, 'shareKeys', 'SECAGG_SIGNATURE', /not a known identity/);
  });

  it('refuses a tampered ciphertext', async () => {
    const report = await attack(
      onVictim<MaskedInputRequest>('maskedInput', (r) => ({
        ...r,
        bundles: r.bundles.map((b, i) => {
          if (i !== 0) return b;
          const ciphertext = b.ciphertext.slice();
          ciphertext[20] = ciphertext[20]! ^ 0x01;
          return { ...b, ciphertext };
        }),
      })),
    );
    expectRefusal(report, victim, 'maskedInput', 'SECAGG_DECRYPT');
    // It shared keys but sent no masked input: dropped, its pairwise masks removed, not in the mean.
    expect(report.result?.dropped).toEqual([victim]);
  });

  it('refuses an unmasking request listing a client as both alive and dead', async () => {
    const report = await attack(
      onVictim<UnmaskingRequest>('unmasking', (r) => ({
        ...r,
        dropped: [...r.dropped, other].sort(),
      })),
    );
    expectRefusal(report, victim, 'unmasking', 'SECAGG_INCONSISTENT');
    // The other four revealed enough for the honest result; the victim revealed nothing.
    expect(report.result?.survivors).toEqual(ids);
  });

  it('refuses to reveal a self mask without the owner’s masked-input signature', async () => {
    // Revealing `other`'s self-mask share is safe only if `other` masked against the sharer
    // list the victim was shown; the coordinator withholds the signature that proves it.
    const report = await attack(
      onVictim<UnmaskingRequest>('unmasking', (r) => ({
        ...r,
        inputSignatures: r.inputSignatures.filter((s) => s.clientId !== other),
      })),
    );
    expectRefusal(
      report,
      victim,
      'unmasking',
      'SECAGG_INCONSISTENT',
      new RegExp(`no MaskedInput signature of survivor ${other}`),
    );
    expect(report.result?.survivors).toEqual(ids);
  });

  it('refuses to unmask after different survivor lists were shown to different clients', async () => {
    // Three clients are told `other` dropped, the rest that it survived: the coordinator hopes
    // for `other`'s secret-key shares from the first group and its self-mask shares from the
    // rest. With m = 6 holders and t = 4, two groups cannot both gather t signatures.
    const misled = new Set([ids[0]!, victim, ids[4]!]);
    expect(misled.has(other)).toBe(false);
    const report = await attack((phase, id, honest) => {
      if (phase !== 'consistencyCheck' || !misled.has(id)) return [honest];
      const r = honest as ConsistencyCheckRequest;
      return [{ ...r, survivors: r.survivors.filter((s) => s !== other) }];
    });
    // The honest server half cannot verify the misled signatures: only 3 signers, t = 4.
    expect(report.error).toMatchObject({ code: 'SECAGG_BELOW_THRESHOLD' });
    const signatures = [...report.acks.get('consistencyCheck')!].map(([clientId, [ack]]) => ({
      clientId,
      signature: new Uint8Array((ack as { signature: Uint8Array }).signature),
    }));
    expect(signatures).toHaveLength(CLIENTS);
    // Every client did send its masked input: the coordinator has each one's input signature.
    const inputSignatures = [...report.acks.get('maskedInput')!].map(([clientId, [ack]]) => ({
      clientId,
      signature: new Uint8Array((ack as { signature: Uint8Array }).signature),
    }));
    expect(inputSignatures).toHaveLength(CLIENTS);
    // A coordinator that pushes on anyway, each group shown the list it signed:
    const roundId = `adv-r${round}`;
    const forked = ids.filter((id) => id !== other);
    const answers = await Promise.all(
      ids.map((id) =>
        harness.secagg(
          id,
          'unmasking',
          roundId,
          misled.has(id)
            ? {
                roundId,
                survivors: forked,
                dropped: [other],
                signatures: signatures.filter((s) => s.clientId !== other),
                inputSignatures: inputSignatures.filter((s) => forked.includes(s.clientId)),
              }
            : {
                roundId,
                survivors: ids,
                dropped: [],
                signatures: signatures.filter((s) => !misled.has(s.clientId)),
                inputSignatures,
              },
        ),
      ),
    );
    const codes = answers.map((a) => (isErrorAck(a) ? a.code : 'ANSWERED'));
    expect(codes).toEqual(
      ids.map((id) => (misled.has(id) ? 'SECAGG_SIGNATURE' : 'SECAGG_BELOW_THRESHOLD')),
    );
    expectNothingUnmasks(report, answers);
  });

  it('answers Unmasking only once, even when asked again with another dropped list', async () => {
    const report = await attack((phase, id, honest) => {
      if (phase !== 'unmasking' || id !== victim) return [honest];
      const r = honest as UnmaskingRequest;
      const again = { ...r, survivors: r.survivors.filter((s) => s !== other), dropped: [other] };
      return [honest, again];
    });
    const [first, second] = report.acks.get('unmasking')!.get(victim)!;
    expect(isErrorAck(first)).toBe(false);
    expect((first as RevealedShares).selfMaskShares.map((s) => s.ownerId).sort()).toEqual(ids);
    // The session wiped its shares after answering: the round is over for it.
    expect(isErrorAck(second) && second.code).toBe('SECAGG_REPLAY');
    expectNothingUnmasks(report);
    expect(report.result?.survivors).toEqual(ids);
  });
});

describe('the masked input one client sends over the socket', () => {
  function chiSquareTopNibble(words: Uint32Array): number {
    const counts = new Array<number>(16).fill(0);
    for (const w of words) counts[w >>> 28]!++;
    const expected = words.length / 16;
    return counts.reduce((s, c) => s + ((c - expected) * (c - expected)) / expected, 0);
  }

  it('looks uniform for a constant update, and the honest round still decodes the right mean', async () => {
    const watched = clients.find((c) => c.id === ids[0])!;
    watched.probe.faults.constantUpdate = 0.75;
    let report: SocketRoundReport;
    try {
      report = await attack();
    } finally {
      watched.probe.faults.constantUpdate = undefined;
    }
    const [ack] = report.acks.get('maskedInput')!.get(watched.id)!;
    const bytes = (ack as { maskedInput: Uint8Array }).maskedInput;
    // The update, then the weight and the weighted loss: all three masked.
    expect(bytes.byteLength).toBe(4 * (config.vectorLength + 2));
    const words = new Uint32Array(new Uint8Array(bytes).buffer);
    expect(chiSquareTopNibble(words)).toBeLessThan(CHI2_DF15_P1E6);
    // The same statistic flags the unmasked encoding of that update (the check has teeth).
    const update = watched.probe.updateOf(round);
    expect(Array.from(update.delta.subarray(0, 3))).toEqual([0.75, 0.75, 0.75]);
    const plain = quantizeWeightedUpdate(
      { update: update.delta, exampleCount: update.numExamples, trainLoss: update.trainLoss },
      config,
    );
    expect(plain).toHaveLength(words.length);
    expect(chiSquareTopNibble(plain)).toBeGreaterThan(CHI2_DF15_P1E6);
    // Neither the example count nor the loss is in the clear in what was sent.
    expect(words[config.vectorLength]).not.toBe(plain[config.vectorLength]);
    expect(words[config.vectorLength + 1]).not.toBe(plain[config.vectorLength + 1]);

    const updates = clients.map((c) => c.probe.updateOf(round));
    for (const u of updates) {
      expect(u).toMatchObject({
        coordinatorId: harness.coordinatorId,
        experiment: harness.experiment,
      });
    }
    expect(report.result?.survivors).toEqual(ids);
    const tolerance = CLIENTS / (config.scale * totalExamples(updates)) + 1e-6;
    expect(report.result!.totalWeight).toBe(totalExamples(updates));
    expect(maxAbsDiff(report.result!.weightedMean, exampleWeightedMean(updates))).toBeLessThan(
      tolerance,
    );
    // The example-weighted mean train loss travels masked too and decodes just as exactly.
    expect(Math.abs(report.result!.meanTrainLoss - exampleWeightedLoss(updates))).toBeLessThan(
      tolerance * (MAX_MASKED_LOSS / config.clipRange),
    );
  });
});
