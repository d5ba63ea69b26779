import type { NodeClient } from '../../client-node/node-client';
import { Coordinator } from '../../coordinator/coordinator';
import { toHex } from '../../shared/bytes';
import { generateIdentity } from '../../shared/identity';
import type { IdentityKeyPair } from '../../shared/identity';
import { certifyIdentity } from '../../shared/registrar';
import { useWasmBackend } from '../helpers/backend';
import { closeAll, startClients } from '../helpers/federation';
import { smallMnist } from '../helpers/mnist-fixture';
import { readPersistedRun } from '../helpers/persisted-rounds';
import { connectScriptedClient } from '../helpers/scripted-client';
import { ScriptedFederation } from '../helpers/scripted-federation';

/**
 * A coordinator pinned to a registrar admits only certified identities, over real sockets,
 * and real Node clients pinned to it run a secure round in which each checked every member's
 * certificate (relayed by the coordinator). Enrollment records the method.
 */

const federation = new ScriptedFederation('registrar');
const registrar = generateIdentity();
let clients: NodeClient[] = [];
afterEach(() => {
  closeAll(clients);
  clients = [];
});

interface Registration {
  status: string;
  code?: string;
  message?: string;
}

async function register(coordinator: Coordinator, identity: IdentityKeyPair, cert?: Uint8Array) {
  const client = federation.trackClient(
    await connectScriptedClient(
      coordinator.url,
      {},
      {
        identity,
        trainExamples: 10,
        registerOverride: () => (cert ? { certificate: toHex(cert) } : {}),
      },
    ),
  );
  return (await client.registered) as Registration;
}

test('only certified identities get in; certified Node clients pinned to the registrar run a secure round', async () => {
  const coordinator = federation.track(
    await Coordinator.start(
      federation.config('registrar', {
        secureAggregation: true,
        registrarKey: toHex(registrar.publicKey),
        minClients: 3,
      }),
      { identity: generateIdentity() },
    ),
  );
  // Refused: no certificate; a certificate from another registrar; another key's certificate.
  const stranger = generateIdentity();
  const refusals = [
    await register(coordinator, stranger),
    await register(coordinator, stranger, certifyIdentity(generateIdentity(), stranger.publicKey)),
    await register(coordinator, stranger, certifyIdentity(registrar, generateIdentity().publicKey)),
  ];
  expect(refusals.map((r) => [r.status, r.code])).toEqual([
    ['error', 'JOIN_REFUSED'],
    ['error', 'JOIN_REFUSED'],
    ['error', 'JOIN_REFUSED'],
  ]);
  expect(refusals[0]!.message).toMatch(/--certificate/);

  const identities = [generateIdentity(), generateIdentity(), generateIdentity()];
  const data = await smallMnist(180, 30);
  clients = await startClients(coordinator.url, 3, data, 60, await useWasmBackend(), (i) => ({
    identity: identities[i]!,
    certificate: certifyIdentity(registrar, identities[i]!.publicKey),
    registrarKey: registrar.publicKey,
    minParticipants: 3,
  }));
  const history = await coordinator.done;
  expect(history.rounds.map((r) => [r.status, r.participants, r.secureAggregation])).toEqual([
    ['completed', 3, 'on'],
  ]);
  const run = await readPersistedRun(federation.database('run.db'), 'registrar');
  expect(run.enrollments.map((e) => e.method)).toEqual(['registrar', 'registrar', 'registrar']);
}, 120_000);
