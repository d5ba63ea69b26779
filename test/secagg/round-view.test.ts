import { CohortError } from '../../shared/errors';
import type { AdvertisedKeys } from '../../shared/secagg/messages';
import { buildRoundView, roundViewHash } from '../../shared/secagg/round-view';
import type { RoundContext } from '../../shared/secagg/signed-payloads';

/**
 * Direct tests of buildRoundView's structural checks. Whole rounds only build views from
 * honest advertisement lists, so the refusals a client relies on when a coordinator shows it
 * a doctored list (unsorted or duplicated ids, one public key advertised twice, too few
 * participants) are pinned here on hand-made advertisements; signatures are not checked by
 * this function, so the keys are plain distinct byte patterns.
 */

const ctx: RoundContext = {
  coordinatorId: 'c'.repeat(32),
  experiment: 'mnist',
  roundId: 'r1',
  modelHash: 'ab'.repeat(32),
  configHash: 'cd'.repeat(32),
};

/** Client `n`'s advertisement: id n repeated, keys filled with distinct bytes per client. */
function ad(n: number): AdvertisedKeys {
  return {
    clientId: String(n).repeat(32),
    identityPublicKey: new Uint8Array(32).fill(3 * n),
    cPublicKey: new Uint8Array(32).fill(3 * n + 1),
    sPublicKey: new Uint8Array(32).fill(3 * n + 2),
    signature: new Uint8Array(64).fill(n),
  };
}

/** The error `fn` throws (fails the test when it returns). */
function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error('expected a throw');
}

describe('buildRoundView', () => {
  it('builds the view of three well-formed advertisements', () => {
    const ads = [ad(1), ad(2), ad(3)];
    const view = buildRoundView(ctx, ads);
    expect(view.participants).toEqual([ads[0]!.clientId, ads[1]!.clientId, ads[2]!.clientId]);
    expect(view.keys.get(ads[1]!.clientId)).toBe(ads[1]);
    expect(view.params).toMatchObject({ participants: 3, neighbours: 2, complete: true });
    expect(view.hash).toEqual(roundViewHash(ctx, ads));
    expect(view.graph.complete).toBe(true);
  });

  it('refuses an unsorted advertisement list, naming it', () => {
    const error = thrown(() => buildRoundView(ctx, [ad(2), ad(1), ad(3)]));
    expect(error).toBeInstanceOf(CohortError);
    expect(error).toMatchObject({
      code: 'MESSAGE_INVALID',
      message: 'MESSAGE_INVALID: advertisements must be sorted and free of duplicates',
    });
  });

  it.each([
    ['an identity key reused by another client', 'identityPublicKey', 1, 'identityPublicKey'],
    ['a masking key reused as another client’s encryption key', 'sPublicKey', 1, 'cPublicKey'],
    ['an encryption key reused by another client', 'cPublicKey', 1, 'cPublicKey'],
    ['a masking key equal to the same client’s identity key', 'identityPublicKey', 2, 'sPublicKey'],
  ] as const)('refuses %s as SECAGG_INCONSISTENT', (_label, from, source, to) => {
    const ads = [ad(1), ad(2), ad(3)];
    // Client 2 advertises `to` equal to client `source`'s `from` key.
    ads[1]![to] = ads[source - 1]![from].slice();
    const error = thrown(() => buildRoundView(ctx, ads));
    expect(error).toBeInstanceOf(CohortError);
    expect(error).toMatchObject({
      code: 'SECAGG_INCONSISTENT',
      message: `SECAGG_INCONSISTENT: a public key appears twice (${ads[1]!.clientId})`,
    });
  });

  it('refuses fewer than 3 participants as SECAGG_BELOW_THRESHOLD', () => {
    for (const ads of [[ad(1), ad(2)], [ad(1)], []]) {
      const error = thrown(() => buildRoundView(ctx, ads));
      expect(error).toBeInstanceOf(CohortError);
      expect(error).toMatchObject({
        code: 'SECAGG_BELOW_THRESHOLD',
        message: `SECAGG_BELOW_THRESHOLD: ${ads.length} participants advertised keys; secure aggregation needs at least 3`,
      });
    }
  });
});
