import type { Dataset } from '../../shared/data/dataset';
import type { IdentityKeyPair } from '../../shared/identity';
import { clientIdFromPublicKey, generateIdentity, signDetached } from '../../shared/identity';
import type { FitConfigMessage, ModelPayload } from '../../shared/protocol/messages';
import type {
  AdvertiseKeysRequest,
  ConsistencyCheckRequest,
  MaskedInputRequest,
  SecAggConfig,
  SecAggPhase,
  ShareKeysRequest,
  UnmaskingRequest,
} from '../../shared/secagg';
import { chooseSecAggParams, configHash, quantizeWeightedUpdate } from '../../shared/secagg';
import { advertisementBytes } from '../../shared/secagg/signed-payloads';
import { useWasmBackend } from '../helpers/backend';
import {
  MaliciousCoordinator,
  isErrorAck,
  mnistModelPayload,
} from '../helpers/malicious-coordinator';
import { smallMnist } from '../helpers/mnist-fixture';
import { exampleWeightedMean, maxAbsDiff, totalExamples } from '../helpers/secagg-expectations';
import type { ProbedClient } from '../helpers/secagg-probe';
import { closeProbedClients, startProbedClients } from '../helpers/secagg-probe';
import type { SocketRoundReport } from '../helpers/socket-secagg-round';
import { acksFrom, runSocketSecAggRound } from '../helpers/socket-secagg-round';

/**
 * Honest, real Node clients (connectNodeClient, wasm backend, pinned identities) against a
 * coordinator that cheats over real sockets. In every case the victims must answer with an
 * error of the expected stable code, refuse everything after, and nothing any client returns
 * may let the coordinator unmask one update: no owner's self-mask share and secret-key share
 * both revealed, no masked input after a refusal. A last check looks at the masked bytes one
 * client actually sent for a constant update: they must be statistically uniform.
 */

const SEED = 3;
const CLIENTS = 5;
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
  const pinned = identities.map((i) => i.publicKey);
  clients = await startProbedClients(
    harness.url,
    backend,
    data,
    new Array<number>(CLIENTS).fill(PER_CLIENT),
    (i) => ({ identity: identities[i]!, knownIdentityKeys: pinned }),
  );
  ids = (await harness.waitForClients(CLIENTS)).map((c) => c.id);
  [victim, other] = [ids[1]!, ids[3]!];
  global = await mnistModelPayload(SEED);
  config = chooseSecAggParams(CLIENTS, {
    vectorLength: global.manifest.length,
    clipRange: 4,
    weightCap: 16384,
  });
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
): void {
  expect(report.refusals.get(clientId)).toEqual({ phase, code });
  const later = acksFrom(report, clientId, phase);
  expect(later.length).toBeGreaterThan(0);
  expect(later.filter((a) => !isErrorAck(a))).toEqual([]);
  expectNothingUnmasks(report);
}

describe('honest Node clients against a malicious coordinator (real sockets)', () => {
  it('the transport delivers a secagg message with hundreds of binary fields', async () => {
    // A ShareKeys request of a 100-client complete graph carries 99 x 4 keys and signatures.
    // Delivered, the client answers (no round in progress here: UPDATE_STALE); a transport
    // that cannot decode it drops the connection instead.
    const key = () => new Uint8Array(32).fill(7);
    const neighbours = Array.from({ length: 99 }, (_, i) => ({
      clientId: i.toString(16).padStart(32, '0'),
      identityPublicKey: key(),
      cPublicKey: key(),
      sPublicKey: key(),
      signature: new Uint8Array(64),
    }));
    const answer = await harness.secagg(victim, 'shareKeys', 'adv-none', {
      roundId: 'adv-none',
      participants: neighbours.map((n) => n.clientId),
      neighbours,
    });
    expect(isErrorAck(answer) && answer.code).toBe('UPDATE_STALE');
  });

  it('all refuse a config with a tiny modulus, and refuse again when it retries with the honest one', async () => {
    const report = await attack((phase, _id, honest) =>
      phase === 'advertiseKeys'
        ? [{ ...(honest as AdvertiseKeysRequest), config: { ...config, modulusBits: 16 } }, honest]
        : [honest],
    );
    for (const id of ids) {
      const [first, retry] = report.acks.get('advertiseKeys')!.get(id)!;
      expect(isErrorAck(first) && first.code).toBe('CONFIG_UNSAFE');
      // The session was abandoned on the first refusal: nothing can be retried with a variation.
      expect(isErrorAck(retry) && retry.code).toBe('SECAGG_REPLAY');
    }
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
        neighbours: r.neighbours.map((e) =>
          e.clientId === other ? { ...e, sPublicKey: new Uint8Array(32).fill(42) } : e,
        ),
      })),
    );
    expectRefusal(report, victim, 'shareKeys', 'SECAGG_SIGNATURE');
    expect(report.result?.survivors).toEqual(ids.filter((id) => id !== victim));
  });

  /** Puts an invented participant in `other`'s place in the victim's ShareKeys request. */
  function inject(
    identity: IdentityKeyPair,
    sign: (fakeId: string, c: Uint8Array, s: Uint8Array) => Uint8Array,
  ) {
    const fakeId = clientIdFromPublicKey(identity.publicKey);
    return onVictim<ShareKeysRequest>('shareKeys', (r) => ({
      ...r,
      participants: r.participants.map((id) => (id === other ? fakeId : id)).sort(),
      neighbours: r.neighbours.map((e) =>
        e.clientId === other
          ? {
              ...e,
              clientId: fakeId,
              identityPublicKey: identity.publicKey,
              signature: sign(fakeId, e.cPublicKey, e.sPublicKey),
            }
          : e,
      ),
    }));
  }

  it('refuses an injected unsigned client', async () => {
    const report = await attack(inject(generateIdentity(), () => new Uint8Array(64)));
    expectRefusal(report, victim, 'shareKeys', 'SECAGG_SIGNATURE');
  });

  it('refuses a validly self-signed invented client, since identities are pinned', async () => {
    const sybil = generateIdentity();
    const report = await attack(
      inject(sybil, (fakeId, c, s) =>
        signDetached(
          advertisementBytes(
            {
              roundId: `adv-r${round}`,
              modelHash: global.modelHash,
              configHash: configHash(config),
            },
            fakeId,
            c,
            s,
          ),
          sybil,
        ),
      ),
    );
    expectRefusal(report, victim, 'shareKeys', 'SECAGG_SIGNATURE');
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

  it('refuses to unmask after different survivor lists were shown to different clients', async () => {
    // Two clients are told `other` dropped, the rest that it survived: the coordinator hopes
    // for `other`'s secret-key shares from the first group and its self-mask shares from the rest.
    const misled = new Set([ids[0]!, victim]);
    const report = await attack((phase, id, honest) => {
      if (phase !== 'consistencyCheck' || !misled.has(id)) return [honest];
      const r = honest as ConsistencyCheckRequest;
      return [{ ...r, survivors: r.survivors.filter((s) => s !== other) }];
    });
    // The honest server half cannot verify the misled signatures: only 3 signers, t = 4.
    expect(report.error).toMatchObject({ code: 'SECAGG_BELOW_THRESHOLD' });
    const signatures = [...report.acks.get('consistencyCheck')!].map(([clientId, [ack]]) => ({
      clientId,
      identityPublicKey: harness.clients.get(clientId)!.identityPublicKey,
      signature: new Uint8Array((ack as { signature: Uint8Array }).signature),
    }));
    expect(signatures).toHaveLength(CLIENTS);
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
              }
            : {
                roundId,
                survivors: ids,
                dropped: [],
                signatures: signatures.filter((s) => !misled.has(s.clientId)),
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
    expect(bytes.byteLength).toBe(4 * (config.vectorLength + 1));
    const words = new Uint32Array(new Uint8Array(bytes).buffer);
    expect(chiSquareTopNibble(words)).toBeLessThan(CHI2_DF15_P1E6);
    // The same statistic flags the unmasked encoding of that update (the check has teeth).
    const update = watched.probe.updateOf(round);
    expect(Array.from(update.delta.subarray(0, 3))).toEqual([0.75, 0.75, 0.75]);
    const plain = quantizeWeightedUpdate(update.delta, update.numExamples, config);
    expect(chiSquareTopNibble(plain)).toBeGreaterThan(CHI2_DF15_P1E6);

    const updates = clients.map((c) => c.probe.updateOf(round));
    expect(report.result?.survivors).toEqual(ids);
    const tolerance = CLIENTS / (config.scale * totalExamples(updates)) + 1e-6;
    expect(maxAbsDiff(report.result!.weightedMean, exampleWeightedMean(updates))).toBeLessThan(
      tolerance,
    );
  });
});
