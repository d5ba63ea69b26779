import { isCohortError } from '../../shared/errors';
import { clientIdFromPublicKey, generateIdentity } from '../../shared/identity';
import type { UnmaskingRequest } from '../../shared/secagg';
import { chooseSecAggParams, runInMemorySecAggRound } from '../../shared/secagg';
import { arena, expectCode } from './arena-setup';
import { MODEL_HASH, identities, makeClients } from './helpers';

/**
 * The malicious-coordinator attacks that only exist on a sparse neighbour graph (SecAgg+,
 * n > 100): thresholds counted over the whole list instead of a client's own share holders,
 * neighbours declared dead to some holders only, and a graph chosen by trial. Kept apart from
 * test/secagg/active-coordinator.test.ts because each round costs seconds; the fast, pure
 * checks of the same rules are in test/secagg/client-checks.test.ts.
 */

describe('attack: threshold checked on the wrong set (SecAgg+)', () => {
  it.each([101, 128])(
    'a victim shown t key sharers, as few of them neighbours as possible, refuses and sends nothing (n = %i, default parameters)',
    async (n) => {
      const a = arena({ honest: n, seed: n });
      const victim = a.ids[0]!;
      await a.advertiseAll();
      await a.shareKeys(victim, a.ids);
      const view = a.honest.get(victim)!.view!;
      expect(view.params.complete).toBe(false);
      const neighbours = new Set(view.graph.neighboursOf(victim));
      const strangers = a.ids.filter((id) => id !== victim && !neighbours.has(id));
      const t = view.params.threshold;
      // t - 1 others besides itself, strangers first: a global count of t, but fewer than t
      // of its own holders.
      const shown = [...strangers, ...neighbours].slice(0, t - 1);
      expect(shown.filter((id) => neighbours.has(id)).length + 1).toBeLessThan(t);
      await a.maskedInput(victim, [victim, ...shown].sort());
      expectCode(a.errorOf(victim), 'SECAGG_BELOW_THRESHOLD');
      expect(a.honest.get(victim)!.maskedInput).toBeUndefined();
      // The coordinator plays on: its holders see a normal round with the victim alive.
      const holders = view.graph.holdersOf(victim).filter((id) => id !== victim);
      for (const id of a.ids) if (id !== victim) await a.shareKeys(id, a.ids);
      for (const id of holders) await a.maskedInput(id, a.ids);
      for (const id of holders) await a.consistencyCheck(id, a.ids);
      for (const id of holders) await a.unmasking(id);
      expect(a.matches(victim, await a.recover(victim))).toBe(false);
    },
    300_000,
  );

  it('a victim shown itself plus t-1 neighbours cannot have those neighbours declared dead elsewhere (n = 101)', async () => {
    const a = arena({ honest: 101, seed: 7 });
    const victim = a.ids[0]!;
    await a.advertiseAll();
    const all = a.ids;
    await a.shareKeys(victim, all);
    const view = a.honest.get(victim)!.view!;
    const holders = view.graph.holdersOf(victim);
    const t = view.params.threshold;
    const partners = view.graph.neighboursOf(victim).slice(0, t - 1);
    const others = holders.filter((h) => h !== victim && !partners.includes(h));
    for (const id of all) if (id !== victim) await a.shareKeys(id, all);
    // The victim masks with t-1 partners only.
    await a.maskedInput(victim, [victim, ...partners].sort());
    await a.consistencyCheck(victim, [victim, ...partners].sort());
    expect(a.errorOf(victim)).toBeUndefined();
    // The other holders see everyone share keys and only the partners "drop": they are asked
    // for the victim's self-mask share and the partners' masking keys.
    const survivorsElsewhere = all.filter((id) => !partners.includes(id));
    for (const id of others) {
      await a.maskedInput(id, all);
      await a.consistencyCheck(id, survivorsElsewhere);
      await a.unmasking(id);
    }
    // They refuse: too few of their own holders survive, or the victim did not mask against
    // the sharer list they were shown; either way no self-mask share of the victim comes out.
    for (const id of others) {
      const error = a.errorOf(id);
      expect(
        isCohortError(error, 'SECAGG_SIGNATURE') || isCohortError(error, 'SECAGG_BELOW_THRESHOLD'),
      ).toBe(true);
    }
    expect(a.knowledge.selfMaskShares.get(victim)).toBeUndefined();
    expect(a.matches(victim, await a.recover(victim))).toBe(false);
    expect(await a.recover(victim)).toBeNull();
  }, 300_000);

  it('with pinned keys, every participant must be pinned, not only neighbours (n = 101)', async () => {
    const sybil = generateIdentity();
    const pinned = identities(100).map((i) => i.publicKey);
    const a = arena({ honest: 100, corrupt: [sybil], pinned, seed: 3 });
    const victim = [...a.honest.keys()][0]!;
    await a.advertiseAll();
    await a.shareKeys(victim, a.ids);
    expectCode(a.errorOf(victim), 'SECAGG_SIGNATURE');
  }, 300_000);
});

describe('attack: choosing the neighbour graph by trial (SecAgg+)', () => {
  it('the graph follows from the signed advertisements: same public inputs, fresh keys, another graph', async () => {
    const a = arena({ honest: 101, seed: 9 });
    const b = arena({ honest: 101, seed: 9 });
    await a.advertiseAll();
    await b.advertiseAll();
    const ga = a.viewOf(a.ids).graph;
    const gb = b.viewOf(b.ids).graph;
    expect(a.ids).toEqual(b.ids);
    expect(a.ids.some((id) => ga.neighboursOf(id).join() !== gb.neighboursOf(id).join())).toBe(
      true,
    );
  }, 300_000);
});

describe('honest client against a malicious coordinator: SecAgg+ neighbourhoods', () => {
  it('refuses when too few share holders of one of its neighbours confirmed the list', async () => {
    // Plenty of signatures overall, but not from the clients holding a given neighbour's
    // shares: the coordinator may have shown those holders another list. n = 101 is the
    // smallest cohort with a sparse graph (k = 70, t = 48).
    const n = 101;
    const plusConfig = chooseSecAggParams(n, { vectorLength: 4, clipRange: 1, weightCap: 100 });
    const roster = makeClients(n, 4, 12);
    const victim = clientIdFromPublicKey(roster[5]!.identity.publicKey);
    let cut = new Set<string>();
    const report = await runInMemorySecAggRound({
      roundId: 'r-adv-plus',
      modelHash: MODEL_HASH,
      config: plusConfig,
      clients: roster,
      hooks: {
        afterClose(phase, server) {
          if (phase !== 'advertiseKeys') return;
          const graph = server.roundView!.graph;
          const neighbour = graph.neighboursOf(victim)[0]!;
          // Withhold the signatures of 24 of that neighbour's holders: 47 < t = 48 remain.
          cut = new Set(
            graph
              .holdersOf(neighbour)
              .filter((h) => h !== victim && h !== neighbour)
              .slice(0, 24),
          );
        },
        tamperRequest(phase, id, request) {
          if (phase !== 'unmasking' || id !== victim) return request;
          const r = request as UnmaskingRequest;
          return { ...r, signatures: r.signatures.filter((s) => !cut.has(s.clientId)) };
        },
      },
    });
    expect(isCohortError(report.clientErrors.get(victim), 'SECAGG_BELOW_THRESHOLD')).toBe(true);
    expect(report.responses.get('unmasking')!.has(victim)).toBe(false);
    // Everyone else answered, and losing one unmasker still leaves enough shares.
    expect(report.clientErrors.size).toBe(1);
    expect(report.error).toBeUndefined();
  }, 300_000);
});
