import { isCohortError } from '../../shared/errors';
import type { ErrorCode } from '../../shared/errors';
import { clientIdFromPublicKey, generateIdentity, signDetached } from '../../shared/identity';
import type {
  AdvertiseKeysRequest,
  InMemoryRoundHooks,
  InMemoryRoundReport,
  MaskedInputRequest,
  SecAggPhase,
  ShareKeysRequest,
  ShareKeysResponse,
  SimulatedSecAggClient,
  UnmaskingRequest,
  ConsistencyCheckRequest,
  ConsistencyCheckResponse,
} from '../../shared/secagg';
import {
  IN_MEMORY_COORDINATOR_ID,
  IN_MEMORY_EXPERIMENT,
  SECAGG_PHASES,
  SecAggClientSession,
  chooseSecAggParams,
  configHash,
  runInMemorySecAggRound,
} from '../../shared/secagg';
import { advertisementBytes } from '../../shared/secagg/signed-payloads';
import { MODEL_HASH, makeClients, smallConfig } from './helpers';

/**
 * A malicious coordinator drives honest client sessions with crafted requests. In every case
 * the victim must throw the right CohortError and send nothing for that phase or any later one
 * (so nothing it sends can unmask an individual update).
 */

const N = 5;
const VECTOR = 16;
const ROUND = 'r-adv';
const config = smallConfig(N, VECTOR); // complete graph, t = 4 (derived from n = 5)
const CTX = {
  coordinatorId: IN_MEMORY_COORDINATOR_ID,
  experiment: IN_MEMORY_EXPERIMENT,
  roundId: ROUND,
  modelHash: MODEL_HASH,
  configHash: configHash(config),
};
const clients = makeClients(N, VECTOR, 11);
const ids = clients.map((c) => clientIdFromPublicKey(c.identity.publicKey));
const VICTIM = ids[1]!;
const OTHER = ids[3]!;
const PHASES = SECAGG_PHASES;

function run(
  hooks: InMemoryRoundHooks,
  roster: SimulatedSecAggClient[] = clients,
): Promise<InMemoryRoundReport> {
  return runInMemorySecAggRound({
    roundId: ROUND,
    modelHash: MODEL_HASH,
    config,
    clients: roster,
    hooks,
  });
}

/** Rewrites only the victim's request of one phase. */
function tamper<T>(phase: SecAggPhase, edit: (request: T) => unknown): InMemoryRoundHooks {
  return {
    tamperRequest(p, id, request) {
      return p === phase && id === VICTIM ? edit(request as T) : request;
    },
  };
}

function expectRefusal(report: InMemoryRoundReport, phase: SecAggPhase, code: ErrorCode): void {
  const error = report.clientErrors.get(VICTIM);
  expect(isCohortError(error, code) ? code : error).toBe(code);
  for (const p of PHASES.slice(PHASES.indexOf(phase))) {
    expect(report.responses.get(p)!.has(VICTIM)).toBe(false);
  }
  expect(report.sessions.get(VICTIM)!.phase).toBe('failed');
}

describe('honest client against a malicious coordinator: AdvertiseKeys', () => {
  it('refuses a model hash other than the one it trained on', async () => {
    const report = await run(
      tamper<AdvertiseKeysRequest>('advertiseKeys', (r) => ({ ...r, modelHash: 'cd'.repeat(32) })),
    );
    expectRefusal(report, 'advertiseKeys', 'MODEL_HASH_MISMATCH');
  });

  it.each([
    // The config's scale is derived for 32 bits: at 16 or 24 bits the sum would wrap.
    ['a 16-bit modulus with the 32-bit scale', { modulusBits: 16 }],
    ['a 24-bit modulus with the 32-bit scale', { modulusBits: 24 }],
    ['a 20-bit modulus', { modulusBits: 20 }],
    ['a 40-bit modulus', { modulusBits: 40 }],
    ['a scale that can overflow', { scale: config.scale * 4 }],
    ['a scale coarser than the derived one', { scale: config.scale / 4 }],
    ['a maxClients whose scale was not recomputed', { maxClients: 1000 }],
  ])('refuses a config with %s (CONFIG_UNSAFE)', async (_label, change) => {
    const report = await run(
      tamper<AdvertiseKeysRequest>('advertiseKeys', (r) => ({
        ...r,
        config: { ...r.config, ...change },
      })),
    );
    expectRefusal(report, 'advertiseKeys', 'CONFIG_UNSAFE');
  });

  it.each([
    ['a threshold', { threshold: 2 }],
    ['a neighbour count', { neighbours: 2 }],
  ])('refuses a config that tries to set %s (the client derives it)', async (_label, extra) => {
    const report = await run(
      tamper<AdvertiseKeysRequest>('advertiseKeys', (r) => ({
        ...r,
        config: { ...r.config, ...extra },
      })),
    );
    expectRefusal(report, 'advertiseKeys', 'MESSAGE_INVALID');
  });

  it.each([
    ['another coordinator', { coordinatorId: 'e'.repeat(32) }],
    ['another experiment', { experiment: 'someone-else' }],
  ])('refuses a round naming %s than it registered with', async (_label, change) => {
    const report = await run(
      tamper<AdvertiseKeysRequest>('advertiseKeys', (r) => ({ ...r, ...change })),
    );
    expectRefusal(report, 'advertiseKeys', 'SECAGG_INCONSISTENT');
  });

  it('refuses a config sized for another vector than its update', async () => {
    const report = await run(
      tamper<AdvertiseKeysRequest>('advertiseKeys', (r) => ({
        ...r,
        config: smallConfig(N, VECTOR + 1),
      })),
    );
    expectRefusal(report, 'advertiseKeys', 'UPDATE_SHAPE');
  });

  it('cannot be mixed into a round after being shown a different (safe) config', async () => {
    const report = await run(
      tamper<AdvertiseKeysRequest>('advertiseKeys', (r) => ({
        ...r,
        config: chooseSecAggParams(N, { vectorLength: VECTOR, clipRange: 0.5, weightCap: 1000 }),
      })),
    );
    // Its signature covers another config hash: the coordinator cannot use its keys.
    expect(isCohortError(report.serverRejections.get(VICTIM), 'SECAGG_SIGNATURE')).toBe(true);
    expect(report.result!.survivors).not.toContain(VICTIM);
  });

  it('refuses a request for another round and phases out of order', async () => {
    const stale = await run(
      tamper<AdvertiseKeysRequest>('advertiseKeys', (r) => ({ ...r, roundId: 'r-old' })),
    );
    expectRefusal(stale, 'advertiseKeys', 'UPDATE_STALE');
    const session = new SecAggClientSession({
      identity: clients[0]!.identity,
      coordinatorId: IN_MEMORY_COORDINATOR_ID,
      experiment: IN_MEMORY_EXPERIMENT,
      roundId: ROUND,
      modelHash: MODEL_HASH,
      input: { update: new Float32Array(VECTOR), exampleCount: 1, trainLoss: 0 },
    });
    await expect(session.unmasking({})).rejects.toThrow(/SECAGG_REPLAY/);
    expect(session.phase).toBe('failed');
    const request: AdvertiseKeysRequest = {
      coordinatorId: IN_MEMORY_COORDINATOR_ID,
      experiment: IN_MEMORY_EXPERIMENT,
      roundId: ROUND,
      modelHash: MODEL_HASH,
      config,
    };
    await expect(session.advertiseKeys(request)).rejects.toThrow(/SECAGG_REPLAY/);
  });
});

describe('honest client against a malicious coordinator: ShareKeys', () => {
  type Entry = ShareKeysRequest['advertisements'][number];
  const replaceEntry = (r: ShareKeysRequest, edit: (e: Entry) => Entry): ShareKeysRequest => ({
    ...r,
    advertisements: r.advertisements
      .map((e) => (e.clientId === OTHER ? edit(e) : e))
      .sort((a, b) => (a.clientId < b.clientId ? -1 : 1)),
  });

  it('refuses a substituted masking key (signature no longer verifies)', async () => {
    const attacker = new Uint8Array(32).fill(42);
    const report = await run(
      tamper<ShareKeysRequest>('shareKeys', (r) =>
        replaceEntry(r, (e) => ({ ...e, sPublicKey: attacker })),
      ),
    );
    expectRefusal(report, 'shareKeys', 'SECAGG_SIGNATURE');
  });

  it('refuses keys re-signed by a foreign identity under a real client id', async () => {
    const impostor = generateIdentity();
    const report = await run(
      tamper<ShareKeysRequest>('shareKeys', (r) =>
        replaceEntry(r, (e) => ({
          ...e,
          identityPublicKey: impostor.publicKey,
          signature: signDetached(
            advertisementBytes(CTX, e.clientId, e.cPublicKey, e.sPublicKey),
            impostor,
          ),
        })),
      ),
    );
    expectRefusal(report, 'shareKeys', 'SECAGG_SIGNATURE');
  });

  /** Replaces OTHER by an invented participant whose entry `sign` produces. */
  function injectParticipant(
    sign: (fakeId: string, entry: Entry) => Uint8Array,
    identity = generateIdentity(),
  ) {
    const fakeId = clientIdFromPublicKey(identity.publicKey);
    return tamper<ShareKeysRequest>('shareKeys', (r) =>
      replaceEntry(r, (e) => {
        const entry = { ...e, clientId: fakeId, identityPublicKey: identity.publicKey };
        return { ...entry, signature: sign(fakeId, entry) };
      }),
    );
  }

  it('refuses an injected unsigned client', async () => {
    const report = await run(injectParticipant(() => new Uint8Array(64)));
    expectRefusal(report, 'shareKeys', 'SECAGG_SIGNATURE');
  });

  it('refuses a validly signed invented client when identities are pinned', async () => {
    const sybil = generateIdentity();
    const hooks = injectParticipant(
      (fakeId, e) =>
        signDetached(advertisementBytes(CTX, fakeId, e.cPublicKey, e.sPublicKey), sybil),
      sybil,
    );
    const pinned = clients.map((c) => c.identity.publicKey);
    const roster = clients.map((c) => ({ ...c, knownIdentityKeys: pinned }));
    const report = await run(hooks, roster);
    expectRefusal(report, 'shareKeys', 'SECAGG_SIGNATURE');
  });

  it.each([
    [
      'an advertisement listed twice',
      'MESSAGE_INVALID',
      (r: ShareKeysRequest) => {
        const list = r.advertisements;
        const at = list.findIndex(
          (e, k) => k > 0 && e.clientId !== VICTIM && list[k - 1]!.clientId !== VICTIM,
        );
        return { ...r, advertisements: list.map((e, k) => (k === at ? list[k - 1]! : e)) };
      },
    ],
    [
      'a list without the client itself',
      'SECAGG_INCONSISTENT',
      (r: ShareKeysRequest) => ({
        ...r,
        advertisements: r.advertisements.filter((e) => e.clientId !== VICTIM),
      }),
    ],
    [
      'its own keys altered',
      'SECAGG_INCONSISTENT',
      (r: ShareKeysRequest) => ({
        ...r,
        advertisements: r.advertisements.map((e) =>
          e.clientId === VICTIM ? { ...e, sPublicKey: new Uint8Array(32).fill(7) } : e,
        ),
      }),
    ],
    [
      'one key advertised by two participants',
      'SECAGG_INCONSISTENT',
      (r: ShareKeysRequest) =>
        replaceEntry(r, (e) => ({
          ...e,
          cPublicKey: r.advertisements.find((a) => a.clientId === VICTIM)!.cPublicKey,
        })),
    ],
    [
      'fewer participants than its minimum',
      'SECAGG_BELOW_THRESHOLD',
      (r: ShareKeysRequest) => {
        const keep = new Set([VICTIM, OTHER]);
        return { ...r, advertisements: r.advertisements.filter((e) => keep.has(e.clientId)) };
      },
    ],
    [
      'a malformed key',
      'MESSAGE_INVALID',
      (r: ShareKeysRequest) => replaceEntry(r, (e) => ({ ...e, cPublicKey: new Uint8Array(31) })),
    ],
  ] as [string, ErrorCode, (r: ShareKeysRequest) => unknown][])(
    'refuses %s',
    async (_label, code, edit) => {
      const report = await run(tamper<ShareKeysRequest>('shareKeys', edit));
      expectRefusal(report, 'shareKeys', code);
    },
  );
});

describe('honest client against a malicious coordinator: MaskedInput', () => {
  it('refuses a tampered ciphertext', async () => {
    const report = await run(
      tamper<MaskedInputRequest>('maskedInput', (r) => ({
        ...r,
        bundles: r.bundles.map((b, i) => {
          if (i !== 0) return b;
          const ciphertext = b.ciphertext.slice();
          ciphertext[20] = ciphertext[20]! ^ 0x01;
          return { ...b, ciphertext };
        }),
      })),
    );
    expectRefusal(report, 'maskedInput', 'SECAGG_DECRYPT');
  });

  it('refuses bundles attributed to the wrong senders', async () => {
    const report = await run(
      tamper<MaskedInputRequest>('maskedInput', (r) => {
        const [a, b, ...rest] = r.bundles;
        return {
          ...r,
          bundles: [{ ...a!, senderId: b!.senderId }, { ...b!, senderId: a!.senderId }, ...rest],
        };
      }),
    );
    expectRefusal(report, 'maskedInput', 'SECAGG_DECRYPT');
  });

  it('refuses its own bundle reflected back (the box key is symmetric; the names inside are not)', async () => {
    let own: ShareKeysResponse | undefined;
    const report = await run({
      deliverResponse(phase, id, response) {
        if (phase === 'shareKeys' && id === VICTIM) own = response as ShareKeysResponse;
        return true;
      },
      tamperRequest(phase, id, request) {
        if (phase !== 'maskedInput' || id !== VICTIM) return request;
        const r = request as MaskedInputRequest;
        const mine = own!.bundles.find((b) => b.recipientId === OTHER)!;
        return {
          ...r,
          bundles: r.bundles.map((b) =>
            b.senderId === OTHER
              ? { senderId: OTHER, nonce: mine.nonce, ciphertext: mine.ciphertext }
              : b,
          ),
        };
      },
    });
    expectRefusal(report, 'maskedInput', 'SECAGG_DECRYPT');
  });

  it('refuses a key-sharer list naming a client that never advertised', async () => {
    const report = await run(
      tamper<MaskedInputRequest>('maskedInput', (r) => ({
        ...r,
        sharers: [...r.sharers, 'f'.repeat(32)],
      })),
    );
    expectRefusal(report, 'maskedInput', 'SECAGG_INCONSISTENT');
  });

  it('refuses a key-sharer list that keeps fewer than t of its own holders', async () => {
    // t = 4 of 5: shown itself and two others, it would mask with only two neighbours.
    const keep = new Set([VICTIM, OTHER, ids[0]!]);
    const report = await run(
      tamper<MaskedInputRequest>('maskedInput', (r) => ({
        ...r,
        sharers: r.sharers.filter((id) => keep.has(id)),
        bundles: r.bundles.filter((b) => keep.has(b.senderId)),
      })),
    );
    expectRefusal(report, 'maskedInput', 'SECAGG_BELOW_THRESHOLD');
  });
});

describe('honest client against a malicious coordinator: ConsistencyCheck and Unmasking', () => {
  it.each([
    [
      'a survivor who never shared keys',
      'SECAGG_INCONSISTENT',
      (r: ConsistencyCheckRequest) => ({ ...r, survivors: [...r.survivors, 'f'.repeat(32)] }),
    ],
    [
      'fewer than t survivors',
      'SECAGG_BELOW_THRESHOLD',
      (r: ConsistencyCheckRequest) => ({ ...r, survivors: [VICTIM] }),
    ],
  ] as [string, ErrorCode, (r: ConsistencyCheckRequest) => unknown][])(
    'consistency check refuses %s',
    async (_label, code, edit) => {
      const report = await run(tamper<ConsistencyCheckRequest>('consistencyCheck', edit));
      expectRefusal(report, 'consistencyCheck', code);
    },
  );

  it.each([
    [
      'a client listed as both alive and dead',
      'SECAGG_INCONSISTENT',
      (r: UnmaskingRequest) => ({ ...r, dropped: [...r.dropped, OTHER].sort() }),
    ],
    [
      'a survivor list other than the one it signed',
      'SECAGG_INCONSISTENT',
      (r: UnmaskingRequest) => ({
        ...r,
        survivors: r.survivors.filter((id) => id !== OTHER),
        dropped: [OTHER],
      }),
    ],
    [
      'a survivor list with one member fewer than it signed',
      'SECAGG_INCONSISTENT',
      (r: UnmaskingRequest) => ({ ...r, survivors: r.survivors.filter((id) => id !== OTHER) }),
    ],
    [
      'a forged survivor signature',
      'SECAGG_SIGNATURE',
      (r: UnmaskingRequest) => ({
        ...r,
        signatures: r.signatures.map((s) =>
          s.clientId === OTHER ? { ...s, signature: new Uint8Array(64).fill(1) } : s,
        ),
      }),
    ],
    [
      'a signature from someone outside the survivors',
      'SECAGG_INCONSISTENT',
      (r: UnmaskingRequest) => ({
        ...r,
        signatures: [...r.signatures, { ...r.signatures[0]!, clientId: 'f'.repeat(32) }],
      }),
    ],
    [
      'fewer than t signatures',
      'SECAGG_BELOW_THRESHOLD',
      (r: UnmaskingRequest) => ({ ...r, signatures: r.signatures.slice(0, 2) }),
    ],
    [
      'no MaskedInput signature of a survivor whose self-mask share it would reveal',
      'SECAGG_INCONSISTENT',
      (r: UnmaskingRequest) => ({
        ...r,
        inputSignatures: r.inputSignatures.filter((s) => s.clientId !== OTHER),
      }),
    ],
    [
      'a survivor that masked against another sharer list',
      'SECAGG_SIGNATURE',
      (r: UnmaskingRequest) => ({
        ...r,
        inputSignatures: r.inputSignatures.map((s) =>
          s.clientId === OTHER ? { ...s, signature: r.signatures[0]!.signature } : s,
        ),
      }),
    ],
  ] as [string, ErrorCode, (r: UnmaskingRequest) => unknown][])(
    'unmasking refuses %s',
    async (_label, code, edit) => {
      const report = await run(tamper<UnmaskingRequest>('unmasking', edit));
      expectRefusal(report, 'unmasking', code);
    },
  );

  it('refuses to unmask after different survivor lists were shown to different clients', async () => {
    // The coordinator tells two clients that OTHER dropped, the rest that it survived, hoping
    // to collect OTHER's secret-key shares from the first group and its self-mask shares from
    // the second, which would expose OTHER's update.
    const split = new Set([ids[0]!, VICTIM]);
    const signatures = new Map<string, ConsistencyCheckResponse>();
    let honestRequest: ConsistencyCheckRequest | undefined;
    const report = await run({
      tamperRequest(phase, id, request) {
        if (phase !== 'consistencyCheck') return request;
        honestRequest = request as ConsistencyCheckRequest;
        if (!split.has(id)) return request;
        return { ...honestRequest, survivors: honestRequest.survivors.filter((s) => s !== OTHER) };
      },
      deliverResponse(phase, id, response) {
        if (phase === 'consistencyCheck') signatures.set(id, response as ConsistencyCheckResponse);
        return true;
      },
    });
    // The honest server side refuses the two odd signatures, so the round cannot finish...
    expect(isCohortError(report.error, 'SECAGG_BELOW_THRESHOLD')).toBe(true);
    // ...and a coordinator that pushes on anyway gets nothing from the misled clients.
    const forked = honestRequest!.survivors.filter((s) => s !== OTHER);
    const allSignatures = [...signatures].map(([clientId, r]) => ({
      clientId,
      signature: r.signature,
    }));
    const mixed: UnmaskingRequest = {
      roundId: ROUND,
      survivors: forked,
      dropped: [OTHER],
      signatures: allSignatures.filter((s) => s.clientId !== OTHER),
      inputSignatures: [],
    };
    await expect(report.sessions.get(VICTIM)!.unmasking(mixed)).rejects.toThrow(/SECAGG_SIGNATURE/);
    const onlyMisled: UnmaskingRequest = {
      ...mixed,
      signatures: allSignatures.filter((s) => split.has(s.clientId)),
    };
    await expect(report.sessions.get(ids[0]!)!.unmasking(onlyMisled)).rejects.toThrow(
      /SECAGG_BELOW_THRESHOLD/,
    );
    // The clients shown the true list refuse the forked one too.
    await expect(report.sessions.get(ids[2]!)!.unmasking(mixed)).rejects.toThrow(
      /SECAGG_INCONSISTENT/,
    );
  });

  it('answers Unmasking once only', async () => {
    let request: unknown;
    const report = await run({
      tamperRequest(phase, id, r) {
        if (phase === 'unmasking' && id === VICTIM) request = r;
        return r;
      },
    });
    expect(report.error).toBeUndefined();
    expect(report.responses.get('unmasking')!.has(VICTIM)).toBe(true);
    const session = report.sessions.get(VICTIM)!;
    expect(session.phase).toBe('done');
    await expect(session.unmasking(request)).rejects.toThrow(/SECAGG_REPLAY/);
    await expect(session.consistencyCheck({ roundId: ROUND, survivors: ids })).rejects.toThrow(
      /SECAGG_REPLAY/,
    );
  });
});
