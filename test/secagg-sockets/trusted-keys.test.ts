import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadTrustedKeys, publicKeyHex } from '../../client-node/identity-store';
import type { NodeClient } from '../../client-node/node-client';
import { Coordinator } from '../../coordinator/coordinator';
import type { Dataset } from '../../shared/data/dataset';
import type { IdentityKeyPair } from '../../shared/identity';
import { generateIdentity } from '../../shared/identity';
import { useWasmBackend } from '../helpers/backend';
import { closeAll, startClients } from '../helpers/federation';
import { smallMnist } from '../helpers/mnist-fixture';
import { readPersistedRounds } from '../helpers/persisted-rounds';

/**
 * Pinned identity keys (`cohort client --trusted-keys FILE`): a client refuses a secure round
 * that includes anyone it does not know, so a coordinator cannot slip in clients of its own.
 */

let backend: string;
let data: { train: Dataset; test: Dataset };
let dir: string;
let clients: NodeClient[] = [];
let coordinator: Coordinator | undefined;

beforeAll(async () => {
  backend = await useWasmBackend();
  data = await smallMnist(400, 50);
});
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'cohort-trusted-'));
});
afterEach(async () => {
  closeAll(clients);
  clients = [];
  await coordinator?.stop();
  coordinator = undefined;
  rmSync(dir, { recursive: true, force: true });
});

async function runWithTrust(identities: IdentityKeyPair[], trusted: IdentityKeyPair[]) {
  const file = join(dir, 'trusted.txt');
  writeFileSync(file, '# cohort members\n' + trusted.map(publicKeyHex).join('\n') + '\n');
  const trustedKeys = await loadTrustedKeys(file);
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

describe('trusted identity keys', () => {
  test('a cohort made only of trusted members aggregates normally', async () => {
    const members = Array.from({ length: 4 }, () => generateIdentity());
    const { history } = await runWithTrust(members, members);
    expect(history.rounds[0]).toMatchObject({ status: 'completed', participants: 4 });
  });

  test('one member nobody trusts makes every honest client refuse the secure round', async () => {
    const members = Array.from({ length: 4 }, () => generateIdentity());
    const { history, rounds } = await runWithTrust(members, members.slice(0, 3));
    expect(history.rounds[0]).toMatchObject({ status: 'failed', participants: 0 });
    expect(rounds[0]!.checkpoint).toBeNull();
    const refusals = rounds[0]!.participations.filter((p) => p.errorCode === 'SECAGG_SIGNATURE');
    expect(refusals.length).toBeGreaterThanOrEqual(3);
  });

  test('a malformed trusted-keys file is refused with the line number', async () => {
    const file = join(dir, 'bad.txt');
    writeFileSync(file, `${'ab'.repeat(32)}\nnot-a-key\n`);
    await expect(loadTrustedKeys(file)).rejects.toThrow(/bad\.txt:2: expected a 64-character hex/);
  });
});
