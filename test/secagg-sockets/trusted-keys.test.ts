import type { KeyObject } from 'node:crypto';
import { generateKeyPairSync, sign } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadTrustedKeys, publicKeyHex } from '../../client-node/identity-store';
import type { NodeClient } from '../../client-node/node-client';
import { Coordinator } from '../../coordinator/coordinator';
import type { Dataset } from '../../shared/data/dataset';
import type { IdentityKeyPair } from '../../shared/identity';
import { toHex } from '../../shared/bytes';
import { clientIdFromPublicKey, generateIdentity } from '../../shared/identity';
import type { FitConfigMessage, ModelPayload } from '../../shared/protocol/messages';
import type { AdvertisedKeys, SecAggConfig } from '../../shared/secagg';
import {
  COMPLETE_GRAPH_MAX_CLIENTS,
  DEFAULT_MIN_PARTICIPANTS,
  buildRoundView,
  chooseSecAggParams,
  configHash,
  graphParams,
} from '../../shared/secagg';
import type { RoundContext } from '../../shared/secagg/signed-payloads';
import { advertisementBytes } from '../../shared/secagg/signed-payloads';
import { useWasmBackend } from '../helpers/backend';
import { closeAll, startClients } from '../helpers/federation';
import { MaliciousCoordinator, isErrorAck } from '../helpers/malicious-coordinator';
import { mnistModelPayload } from '../helpers/coordinator-fixtures';
import { smallMnist } from '../helpers/mnist-fixture';
import { readPersistedRounds } from '../helpers/persisted-rounds';

/**
 * Pinned identity keys (`cohort client --trusted-keys FILE`): a client refuses a secure round
 * that includes anyone it does not know, so a coordinator cannot slip in clients of its own.
 * In protocol v2 that is every participant of the signed advertisement list, not only the
 * client's neighbours: the participant count decides k and t for everyone, so an invented
 * client anywhere in the round shifts the security parameters of all of them.
 */

let backend: string;
let data: { train: Dataset; test: Dataset };
let dir: string;
let clients: NodeClient[] = [];
let coordinator: Coordinator | undefined;
let harness: MaliciousCoordinator | undefined;

beforeAll(async () => {
  backend = await useWasmBackend();
  data = await smallMnist(500, 50);
});
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'cohort-trusted-'));
});
afterEach(async () => {
  closeAll(clients);
  clients = [];
  await coordinator?.stop();
  coordinator = undefined;
  await harness?.close();
  harness = undefined;
  rmSync(dir, { recursive: true, force: true });
});

/** Writes hex public keys as a trusted-keys file and loads it back, as `cohort client` does. */
async function trustedKeysFile(trusted: readonly string[]): Promise<Uint8Array[]> {
  const file = join(dir, 'trusted.txt');
  writeFileSync(file, '# cohort members\n' + trusted.join('\n') + '\n');
  const keys = await loadTrustedKeys(file);
  expect(keys).toHaveLength(trusted.length);
  return keys;
}

async function runWithTrust(identities: IdentityKeyPair[], trusted: IdentityKeyPair[]) {
  const trustedKeys = await trustedKeysFile(trusted.map(publicKeyHex));
  const database = `file:${join(dir, 'run.db')}`;
  coordinator = await Coordinator.start(
    {
      host: '127.0.0.1',
      port: 0,
      rounds: 1,
      minClients: identities.length,
      overSelection: 0,
      batchSize: 32,
      evaluation: 'none',
      experiment: 'trusted',
      database,
    },
    {},
  );
  clients = await startClients(coordinator.url, identities.length, data, 100, backend, (i) => ({
    identity: identities[i]!,
    trustedKeys,
  }));
  const history = await coordinator.done;
  return { history, rounds: await readPersistedRounds(database, 'trusted') };
}

/** Five members: the smallest secure round an honest client joins by default. */
const MEMBERS = DEFAULT_MIN_PARTICIPANTS;

describe('trusted identity keys', () => {
  test('a cohort made only of trusted members aggregates normally', async () => {
    const members = Array.from({ length: MEMBERS }, () => generateIdentity());
    const { history } = await runWithTrust(members, members);
    expect(history.rounds[0]).toMatchObject({ status: 'completed', participants: MEMBERS });
  });

  test('one member nobody trusts makes every honest client refuse the secure round', async () => {
    const members = Array.from({ length: MEMBERS }, () => generateIdentity());
    const trusted = members.slice(0, MEMBERS - 1);
    const { history, rounds } = await runWithTrust(members, trusted);
    expect(history.rounds[0]).toMatchObject({ status: 'failed', participants: 0 });
    expect(rounds[0]!.checkpoint).toBeNull();
    // Exactly the clients that pin their keys refused, each on seeing the stranger's key.
    const refusers = rounds[0]!.participations
      .filter((p) => p.errorCode === 'SECAGG_SIGNATURE')
      .map((p) => p.clientId)
      .sort();
    expect(refusers).toEqual(trusted.map((m) => clientIdFromPublicKey(m.publicKey)).sort());
  });

  test('a malformed trusted-keys file is refused with the line number', async () => {
    const file = join(dir, 'bad.txt');
    writeFileSync(file, `${'ab'.repeat(32)}\nnot-a-key\n`);
    await expect(loadTrustedKeys(file)).rejects.toThrow(/bad\.txt:2: expected a 64-character hex/);
  });
});

/**
 * A participant the test plays: an Ed25519 identity held by node:crypto (some 50x faster than
 * tweetnacl at the hundred key pairs and signatures a round of 101 needs; the signatures are
 * the same standard Ed25519 the client verifies).
 */
interface ScriptedMember {
  publicKey: Uint8Array;
  clientId: string;
  privateKey: KeyObject;
}

/** The raw 32-byte key at the end of an Ed25519 or X25519 SubjectPublicKeyInfo. */
function rawPublicKey(key: KeyObject): Uint8Array {
  return new Uint8Array(key.export({ format: 'der', type: 'spki' }).subarray(-32));
}

function scriptedMember(): ScriptedMember {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const raw = rawPublicKey(publicKey);
  return { publicKey: raw, clientId: clientIdFromPublicKey(raw), privateKey };
}

describe('trusted identity keys in a SecAgg+ round (real client, scripted coordinator)', () => {
  /**
   * A round of 101 participants, above the complete graph: one real Node client and 100
   * advertisements the test signs itself, each with a genuine identity and per-round keys. The
   * client pins itself and 100 of those identities; `stranger` is pinned by nobody.
   */
  const PARTICIPANTS = COMPLETE_GRAPH_MAX_CLIENTS + 1;
  const FIT: FitConfigMessage = {
    epochs: 1,
    batchSize: 32,
    learningRate: 0.05,
    optimizer: 'sgd',
    proximalMu: 0,
    maxExamples: 32,
    seed: 1,
  };
  let global: ModelPayload;
  let config: SecAggConfig;
  let pinnedOthers: ScriptedMember[];
  let stranger: ScriptedMember;
  let self: IdentityKeyPair;
  let selfId: string;
  let round = 0;

  beforeAll(async () => {
    global = await mnistModelPayload(7);
    config = chooseSecAggParams(PARTICIPANTS, {
      vectorLength: global.manifest.length,
      clipRange: 4,
      weightCap: 16384,
    });
    pinnedOthers = Array.from({ length: PARTICIPANTS - 1 }, () => scriptedMember());
    stranger = scriptedMember();
    self = generateIdentity();
    selfId = clientIdFromPublicKey(self.publicKey);
    const params = graphParams(PARTICIPANTS);
    expect(params.complete).toBe(false);
    expect(params.neighbours).toBeLessThan(PARTICIPANTS - 1);
  });

  async function connectPinnedClient(): Promise<void> {
    const trustedKeys = await trustedKeysFile(
      [self, ...pinnedOthers].map((m) => toHex(m.publicKey)),
    );
    harness = await MaliciousCoordinator.start();
    clients = await startClients(harness.url, 1, data, 40, backend, () => ({
      identity: self,
      trustedKeys,
    }));
    await harness.waitForClients(1);
  }

  /** Trains the round and has the client advertise its keys; returns what it signed. */
  async function startRound(): Promise<{ ctx: RoundContext; own: AdvertisedKeys }> {
    round++;
    const roundId = `pin-r${round}`;
    const fit = await harness!.fit(roundId, round, () => global, FIT);
    expect(isErrorAck(fit.get(selfId))).toBe(false);
    const ctx: RoundContext = {
      coordinatorId: harness!.coordinatorId,
      experiment: harness!.experiment,
      roundId,
      modelHash: global.modelHash,
      configHash: configHash(config),
    };
    const answer = await harness!.secagg(selfId, 'advertiseKeys', roundId, {
      coordinatorId: ctx.coordinatorId,
      experiment: ctx.experiment,
      roundId,
      modelHash: ctx.modelHash,
      config,
    });
    expect(isErrorAck(answer)).toBe(false);
    const keys = answer as {
      cPublicKey: Uint8Array;
      sPublicKey: Uint8Array;
      signature: Uint8Array;
    };
    return {
      ctx,
      own: {
        clientId: selfId,
        identityPublicKey: self.publicKey,
        cPublicKey: new Uint8Array(keys.cPublicKey),
        sPublicKey: new Uint8Array(keys.sPublicKey),
        signature: new Uint8Array(keys.signature),
      },
    };
  }

  /** A genuine advertisement: fresh per-round keys, signed by the identity for this round. */
  function advertise(member: ScriptedMember, ctx: RoundContext): AdvertisedKeys {
    const c = rawPublicKey(generateKeyPairSync('x25519').publicKey);
    const s = rawPublicKey(generateKeyPairSync('x25519').publicKey);
    const message = advertisementBytes(ctx, member.clientId, c, s);
    return {
      clientId: member.clientId,
      identityPublicKey: member.publicKey,
      cPublicKey: c,
      sPublicKey: s,
      signature: new Uint8Array(sign(null, message, member.privateKey)),
    };
  }

  function sorted(list: AdvertisedKeys[]): AdvertisedKeys[] {
    return list.sort((a, b) => (a.clientId < b.clientId ? -1 : 1));
  }

  test('a stranger that is not even the client’s neighbour makes it refuse the round', async () => {
    await connectPinnedClient();
    const { ctx, own } = await startRound();
    const strangerId = stranger.clientId;
    const base = pinnedOthers.slice(0, PARTICIPANTS - 2).map((i) => advertise(i, ctx));
    // The graph is seeded by the hash of the whole list: redraw the stranger's per-round keys
    // until the graph leaves it outside the client's neighbourhood (70 of 100 others are in).
    let advertisements: AdvertisedKeys[] = [];
    let neighbours: readonly string[] = [];
    for (let attempt = 0; attempt < 100; attempt++) {
      advertisements = sorted([own, ...base, advertise(stranger, ctx)]);
      neighbours = buildRoundView(ctx, advertisements).graph.neighboursOf(selfId);
      if (!neighbours.includes(strangerId)) break;
    }
    expect(advertisements).toHaveLength(PARTICIPANTS);
    expect(neighbours).toHaveLength(graphParams(PARTICIPANTS).neighbours);
    expect(neighbours).not.toContain(strangerId);
    // Every neighbour (every share holder and masking partner) of the client is pinned.
    const pinnedIds = new Set(pinnedOthers.map((m) => m.clientId));
    expect(neighbours.every((id) => pinnedIds.has(id))).toBe(true);

    const answer = await harness!.secagg(selfId, 'shareKeys', ctx.roundId, {
      roundId: ctx.roundId,
      advertisements,
    });
    expect(isErrorAck(answer) && answer.code).toBe('SECAGG_SIGNATURE');
    expect(isErrorAck(answer) && answer.message).toContain(`${strangerId} is not a known identity`);
    // The refusal is final: the session is gone, whatever the coordinator asks next.
    const again = await harness!.secagg(selfId, 'shareKeys', ctx.roundId, {
      roundId: ctx.roundId,
      advertisements,
    });
    expect(isErrorAck(again) && again.code).toBe('SECAGG_REPLAY');
  });

  test('the same SecAgg+ round with every participant pinned is answered', async () => {
    // The control: same size, same graph rules, only the stranger replaced by a pinned member.
    await connectPinnedClient();
    const { ctx, own } = await startRound();
    const advertisements = sorted([own, ...pinnedOthers.map((i) => advertise(i, ctx))]);
    expect(advertisements).toHaveLength(PARTICIPANTS);
    const answer = await harness!.secagg(selfId, 'shareKeys', ctx.roundId, {
      roundId: ctx.roundId,
      advertisements,
    });
    expect(isErrorAck(answer)).toBe(false);
    // One sealed bundle per neighbour of the graph every party derives from this list.
    const expected = buildRoundView(ctx, advertisements).graph.neighboursOf(selfId);
    const recipients = (answer as { bundles: Array<{ recipientId: string }> }).bundles
      .map((b) => b.recipientId)
      .sort();
    expect(recipients).toEqual([...expected].sort());
    expect(recipients).toHaveLength(graphParams(PARTICIPANTS).neighbours);
  });
});
