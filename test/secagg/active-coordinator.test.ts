import { clientIdFromPublicKey, generateIdentity } from '../../shared/identity';
import { createRng } from '../../shared/random';
import {
  MemoryRoundLedger,
  chooseSecAggParams,
  graphParams,
  runInMemorySecAggRound,
} from '../../shared/secagg';
import { VECTOR, arena, arenaConfig, expectCode, honestRun, splitViewAttack } from './arena-setup';
import {
  MODEL_HASH,
  identities,
  makeClients,
  maxAbsDiff,
  plainWeightedMean,
  quantizationTolerance,
} from './helpers';

/**
 * Secure aggregation against an active coordinator that lies to each client differently.
 * Every test plays the attack with the real client code, then hands everything the
 * coordinator received (and its corrupt clients' secrets) to a generic oracle that tries to
 * reconstruct an honest client's update; the assertion is that it cannot. Control cases run
 * the same oracle where the documented bound (c < 2t - m colluders per neighbourhood) is
 * exceeded, and there it does recover the update: the oracle has teeth.
 */

const corruptPool = Array.from({ length: 3 }, () => generateIdentity());

describe('the reconstruction oracle', () => {
  it('recovers nothing individual from an honest run, even holding every revealed share', async () => {
    const a = arena({ honest: 5 });
    const ids = [...a.honest.keys()];
    await honestRun(a, ids);
    for (const id of ids) expect(a.errorOf(id)).toBeUndefined();
    for (const id of ids) expect(a.matches(id, await a.recover(id))).toBe(false);
  });

  it('recovers a victim when c = 2t - m colluders split the view (beyond the documented bound)', async () => {
    // n = 5, t = 4: secure for c < 2t - m = 3. Three colluders: the victim is shown alive to
    // itself and dead to the one other honest client, and each side still gets t signatures.
    const a = arena({ honest: 2, corrupt: corruptPool.slice(0, 3) });
    const [victim, other] = [...a.honest.keys()] as [string, string];
    expect(graphParams(5)).toMatchObject({ threshold: 4, maxColluders: 2 });
    expect(await splitViewAttack(a)).toBe(victim);
    expect(a.errorOf(victim)).toBeUndefined();
    expect(a.errorOf(other)).toBeUndefined();
    expect(a.matches(victim, await a.recover(victim))).toBe(true);
  });
});

describe('attack: the packed wire (--secure-bits)', () => {
  it('at the default 24-bit width the oracle still has teeth: nothing within the bound, the victim beyond it', async () => {
    expect(arenaConfig(5, 'auto').modulusBits).toBe(24);
    const honestOnly = arena({ honest: 5, modulusBits: 'auto' });
    const ids = [...honestOnly.honest.keys()];
    await honestRun(honestOnly, ids);
    for (const id of ids) expect(honestOnly.errorOf(id)).toBeUndefined();
    for (const id of ids) expect(honestOnly.matches(id, await honestOnly.recover(id))).toBe(false);

    // The split-view control of the oracle suite, at 24 bits: three colluders of five.
    const a = arena({ honest: 2, corrupt: corruptPool.slice(0, 3), modulusBits: 'auto' });
    const victim = await splitViewAttack(a);
    expect(a.matches(victim, await a.recover(victim))).toBe(true);
  });

  it('a coordinator sending one client another wire width than the rest gets nothing revealed', async () => {
    // A valid 16-bit config (its own derived scale) for one client, 32 bits for the others:
    // the config hash each client signs differs, so no advertisement list verifies for all.
    let victim = '';
    const narrow = chooseSecAggParams(5, {
      vectorLength: VECTOR,
      clipRange: 1,
      weightCap: 10,
      maxClients: 5,
      modulusBits: 16,
    });
    const a = arena({
      honest: 5,
      configFor: (id) => (id === victim ? narrow : undefined),
    });
    const ids = [...a.honest.keys()];
    victim = ids[0]!;
    await honestRun(a, ids);
    for (const id of ids) expectCode(a.errorOf(id), 'SECAGG_SIGNATURE');
    for (const id of ids) expect(a.matches(id, await a.recover(id))).toBe(false);
    expect(a.knowledge.selfMaskShares.size + a.knowledge.secretKeyShares.size).toBe(0);
  });
});

describe('attack: threshold checked on the wrong set', () => {
  it('with pinned keys, every participant must be pinned, not only neighbours (n = 5)', async () => {
    const sybil = generateIdentity();
    const pinned = identities(4).map((i) => i.publicKey);
    const a = arena({ honest: 4, corrupt: [sybil], pinned, seed: 3 });
    const victim = [...a.honest.keys()][0]!;
    await a.advertiseAll();
    await a.shareKeys(victim, a.ids);
    expectCode(a.errorOf(victim), 'SECAGG_SIGNATURE');
  });
});

describe('attack: colluders within the bound', () => {
  it('two colluders of five (t = 4) recover nothing under any split of the survivor lists', async () => {
    // Every way of telling each honest client who survived (each honest client is shown as
    // alive or dead to each other honest client), with the colluders signing everything.
    const splits: [boolean, boolean, boolean][] = [];
    for (let mask = 0; mask < 8; mask++) {
      splits.push([(mask & 1) !== 0, (mask & 2) !== 0, (mask & 4) !== 0]);
    }
    let answered = 0;
    for (const [i, split] of splits.entries()) {
      const a = arena({ honest: 3, corrupt: corruptPool.slice(0, 2), seed: 20 + i });
      const honest = [...a.honest.keys()];
      await a.advertiseAll();
      const all = a.ids;
      for (const id of honest) await a.shareKeys(id, all);
      for (const id of honest) await a.maskedInput(id, all);
      // Honest client k is told that honest client k+1 dropped when split[k] is set.
      for (const [k, id] of honest.entries()) {
        const dead = split[k] ? honest[(k + 1) % honest.length]! : undefined;
        await a.consistencyCheck(
          id,
          all.filter((x) => x !== dead),
        );
      }
      for (const id of honest) if (await a.unmasking(id)) answered++;
      for (const id of honest) expect(a.matches(id, await a.recover(id))).toBe(false);
    }
    expect(answered).toBeGreaterThan(0); // the attack got shares out of honest clients
  }, 300_000);
});

describe('attack: round ids reused', () => {
  it('a client refuses a round id it already revealed shares in, across sessions', async () => {
    const ledgers = new Map<string, MemoryRoundLedger>();
    const ledger = (id: string) => {
      if (!ledgers.has(id)) ledgers.set(id, new MemoryRoundLedger());
      return ledgers.get(id);
    };
    const first = arena({ honest: 5, ledger, roundId: 'r-once' });
    const ids = [...first.honest.keys()];
    await honestRun(first, ids);
    for (const id of ids) expect(first.errorOf(id)).toBeUndefined();
    // The same round again (after a restart, or replayed by the coordinator): refused at once.
    const again = arena({ honest: 5, ledger, roundId: 'r-once' });
    await again.advertiseAll();
    for (const id of ids) expectCode(again.errorOf(id), 'SECAGG_REPLAY');
    // Another experiment with the same round id is another round.
    const elsewhere = arena({ honest: 5, ledger, roundId: 'r-once', experiment: 'other' });
    await honestRun(elsewhere, ids);
    for (const id of ids) expect(elsewhere.errorOf(id)).toBeUndefined();
  });

  it('consistency and MaskedInput signatures from another experiment do not verify', async () => {
    const first = arena({ honest: 5, roundId: 'r-same' });
    const ids = [...first.honest.keys()];
    await honestRun(first, ids);
    const second = arena({ honest: 5, roundId: 'r-same', experiment: 'other' });
    await second.advertiseAll();
    const all = second.ids;
    for (const id of ids) await second.shareKeys(id, all);
    for (const id of ids) await second.maskedInput(id, all);
    for (const id of ids) await second.consistencyCheck(id, all);
    const victim = ids[0]!;
    const session = second.honest.get(victim)!.session;
    const replayed = ids.map((id) => ({
      clientId: id,
      signature: first.honest.get(id)!.consistencySignature!,
    }));
    await expect(
      session.unmasking({
        roundId: 'r-same',
        survivors: all,
        dropped: [],
        signatures: replayed,
        inputSignatures: ids
          .filter((id) => id !== victim)
          .map((id) => ({ clientId: id, signature: first.honest.get(id)!.maskedInputSignature! })),
      }),
    ).rejects.toThrow(/SECAGG_SIGNATURE/);
  });
});

describe('attack: choosing the neighbour graph by trial', () => {
  it('a client answers ShareKeys once: the coordinator cannot try a second participant set', async () => {
    const a = arena({ honest: 6 });
    const victim = a.ids[0]!;
    await a.advertiseAll();
    await a.shareKeys(victim, a.ids);
    expect(a.errorOf(victim)).toBeUndefined();
    const session = a.honest.get(victim)!.session;
    await expect(
      session.shareKeys({
        roundId: 'r-active',
        advertisements: a.ids.slice(0, 5).map((id) => a.adverts.get(id)!),
      }),
    ).rejects.toThrow(/SECAGG_REPLAY/);
    expect(session.phase).toBe('failed');
  });
});

describe('randomized malicious coordinator', () => {
  it('showing each client random participant, sharer and survivor sets never unmasks an individual update', async () => {
    const SEEDS = 40;
    let reveals = 0;
    let refusals = 0;
    for (let seed = 1; seed <= SEEDS; seed++) {
      const rng = createRng(seed);
      const colluders = seed % 2 === 0 ? corruptPool.slice(0, 1) : [];
      const a = arena({ honest: 6, corrupt: colluders, seed: 100 + seed });
      const honest = [...a.honest.keys()];
      await a.advertiseAll();
      const all = a.ids;
      // The coordinator keeps two candidate lists at every phase and shows each client one
      // of them at random, so some clients share a view of the round and some do not.
      const randomSubset = (from: readonly string[]): string[] =>
        from.filter(() => rng.next() < 0.75);
      const candidates = new Map<string, string[][]>();
      const pick = (from: readonly string[], self: string): string[] => {
        const key = from.join();
        if (!candidates.has(key)) candidates.set(key, [[...from], randomSubset(from)]);
        const list = candidates.get(key)![rng.int(2)]!;
        return list.includes(self) ? list : [...list, self].sort();
      };
      for (const id of honest) await a.shareKeys(id, pick(all, id));
      for (const id of honest) {
        const view = a.honest.get(id)!.view;
        if (view) await a.maskedInput(id, pick(view.participants, id));
      }
      for (const id of honest) {
        const sharers = a.honest.get(id)!.sharers;
        if (sharers) await a.consistencyCheck(id, pick(sharers, id));
      }
      for (const id of honest) if (await a.unmasking(id)) reveals++;
      for (const id of honest) {
        if (a.errorOf(id) !== undefined) refusals++;
        expect(a.matches(id, await a.recover(id))).toBe(false);
      }
    }
    // Not vacuous: many honest clients did reveal shares, and many refused a lie.
    expect(reveals).toBeGreaterThan(SEEDS / 2);
    expect(refusals).toBeGreaterThan(SEEDS / 2);
  }, 300_000);

  it('the honest case is still exact', async () => {
    const clients = makeClients(7, VECTOR, 5);
    const config = chooseSecAggParams(7, { vectorLength: VECTOR, clipRange: 1, weightCap: 1000 });
    const report = await runInMemorySecAggRound({
      roundId: 'r-honest',
      modelHash: MODEL_HASH,
      config,
      clients: clients.map((c, i) => ({ ...c, trainLoss: i / 4 })),
    });
    expect(report.error).toBeUndefined();
    const expected = plainWeightedMean(clients, config);
    expect(report.result!.totalWeight).toBe(expected.totalWeight);
    expect(maxAbsDiff(report.result!.weightedMean, expected.mean)).toBeLessThan(
      quantizationTolerance(7, config, expected.totalWeight),
    );
    const loss =
      clients.reduce((s, c, i) => s + (i / 4) * Math.min(c.exampleCount, 1000), 0) /
      expected.totalWeight;
    expect(report.result!.meanTrainLoss).toBeCloseTo(loss, 3);
    expect(clientIdFromPublicKey(clients[0]!.identity.publicKey)).toMatch(/^[0-9a-f]{32}$/);
  });
});
