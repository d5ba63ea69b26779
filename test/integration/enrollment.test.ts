import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { NodeClient } from '../../client-node/node-client';
import { connectNodeClient } from '../../client-node/node-client';
import { Coordinator } from '../../coordinator/coordinator';
import type { CoordinatorConfigInput } from '../../coordinator/config';
import { toHex } from '../../shared/bytes';
import { isCohortError } from '../../shared/errors';
import { clientIdFromPublicKey, generateIdentity } from '../../shared/identity';
import { joinProof } from '../../shared/join-proof';
import { floatsToBytes } from '../../shared/weights/codec';
import { useWasmBackend } from '../helpers/backend';
import { smallMnist } from '../helpers/mnist-fixture';
import { readPersistedRun } from '../helpers/persisted-rounds';
import { connectScriptedClient } from '../helpers/scripted-client';
import { ScriptedFederation } from '../helpers/scripted-federation';

/**
 * Enrollment over real sockets: with a join token only clients that prove they hold it get
 * in, a proof seen on one connection is useless on another, an allowlist admits only its
 * keys, each admission is recorded in the database with its method, and the token appears
 * neither in the database nor in the coordinator's log.
 */

const federation = new ScriptedFederation('enrollment');
const TOKEN = 'enrollment-test-token-0123456789';

const config = (extra: Partial<CoordinatorConfigInput>) => federation.config('enrollment', extra);

interface Registration {
  status: string;
  code?: string;
  message?: string;
}

/** A scripted plain client that answers fit with a zero update; `proof` shapes its join proof. */
async function scripted(
  coordinator: Coordinator,
  proof: (challenge: { nonce: string; coordinatorId: string }, publicKey: string) => unknown,
  identity = generateIdentity(),
) {
  const publicKey = toHex(identity.publicKey);
  const client = await connectScriptedClient(
    coordinator.url,
    {
      fit: (ins) => {
        const model = ins.model as { modelHash: string; manifest: { length: number } };
        return {
          status: 'ok',
          roundId: ins.roundId,
          modelHash: model.modelHash,
          numExamples: 10,
          trainLoss: 1,
          update: floatsToBytes(new Float32Array(model.manifest.length)),
        };
      },
    },
    {
      identity,
      trainExamples: 10,
      registerOverride: (challenge) => {
        const value = proof(challenge, publicKey);
        return value === undefined ? {} : { joinProof: value };
      },
    },
  );
  federation.trackClient(client);
  return { client, registered: (await client.registered) as Registration, identity };
}

const withToken =
  (token: string) => (challenge: { nonce: string; coordinatorId: string }, publicKey: string) =>
    joinProof(token, { ...challenge, publicKey });

test('with a join token: holders get in and train, others are refused JOIN_REFUSED; recorded, never stored', async () => {
  const log: string[] = [];
  const options = config({ joinToken: TOKEN });
  const coordinator = federation.track(
    await Coordinator.start(options, {
      testSet: null,
      log: { info: (l) => log.push(l), warn: (l) => log.push(l), debug: () => undefined },
    }),
  );

  // No proof, a proof of another token, a proof replayed from another connection.
  const none = await scripted(coordinator, () => undefined);
  expect(none.registered).toMatchObject({ status: 'error', code: 'JOIN_REFUSED' });
  const wrong = await scripted(coordinator, withToken(`${TOKEN}-not`));
  expect(wrong.registered).toMatchObject({
    status: 'error',
    code: 'JOIN_REFUSED',
    message: 'the join token proof is wrong (another token?)',
  });
  let seen: string | undefined;
  const honest = await scripted(coordinator, (challenge, key) => {
    seen = joinProof(TOKEN, { ...challenge, publicKey: key });
    return seen;
  });
  expect(honest.registered).toMatchObject({ status: 'ok' });
  // The eavesdropper reuses the honest client's key and proof on its own connection: the
  // signature check needs the key's secret, so it can only try with its own key.
  const replayed = await scripted(coordinator, () => seen);
  expect(replayed.registered).toMatchObject({ status: 'error', code: 'JOIN_REFUSED' });
  expect(coordinator.connectedClients).toBe(1);

  const others = [
    await scripted(coordinator, withToken(TOKEN)),
    await scripted(coordinator, withToken(TOKEN)),
  ];
  for (const o of others) expect(o.registered).toMatchObject({ status: 'ok' });
  const history = await coordinator.done;
  expect(history.rounds[0]).toMatchObject({ status: 'completed', participants: 3 });
  await coordinator.stop();

  // Each admission is recorded with its method; the refused ones are not.
  const { enrollments } = await readPersistedRun(options.database!, 'enrollment');
  const admitted = [honest, ...others].map((c) => clientIdFromPublicKey(c.identity.publicKey));
  expect(enrollments.map((e) => e.clientId)).toEqual([...admitted].sort());
  expect(enrollments.every((e) => e.method === 'join-token')).toBe(true);
  const bytes = readFileSync(join(federation.dir, 'run.db'));
  expect(bytes.includes(Buffer.from(TOKEN))).toBe(false);
  expect(log.some((l) => l.includes(TOKEN))).toBe(false);
  expect(log.some((l) => l.includes('refused registration: JOIN_REFUSED'))).toBe(true);
}, 60_000);

test('a real Node client without the token stops at once with JOIN_REFUSED; with it, it registers', async () => {
  const [backend, data] = await Promise.all([useWasmBackend(), smallMnist(40, 10)]);
  const coordinator = federation.track(
    await Coordinator.start(config({ joinToken: TOKEN, minClients: 5 }), { testSet: null }),
  );
  const base = {
    server: coordinator.url,
    task: 'mnist' as const,
    train: data.train,
    test: data.test,
    backend,
    allowPlain: true,
    reconnectDelayMs: 100,
    reconnectDelayMaxMs: 500,
  };
  const clients: NodeClient[] = [];
  try {
    const outsider = await connectNodeClient({ ...base, identity: generateIdentity() });
    clients.push(outsider);
    const error = await outsider.session.finished.then(
      () => null,
      (e: unknown) => e,
    );
    expect(isCohortError(error) ? error.message : error).toBe(
      'JOIN_REFUSED: this coordinator admits only clients with its join token: pass --join-token-file FILE',
    );
    // It left before registering: the coordinator never counted it.
    expect(coordinator.connectedClients).toBe(0);

    const member = await connectNodeClient({
      ...base,
      identity: generateIdentity(),
      joinToken: TOKEN,
    });
    clients.push(member);
    const deadline = Date.now() + 20_000;
    while (coordinator.connectedClients < 1 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(coordinator.connectedClients).toBe(1);
  } finally {
    for (const c of clients) c.close();
  }
}, 60_000);

test('an allowlist admits only its keys, recorded as allowlist', async () => {
  const listed = [generateIdentity(), generateIdentity(), generateIdentity()];
  const allowed = join(federation.dir, 'allowed-clients');
  writeFileSync(allowed, ['# the three labs', ...listed.map((i) => toHex(i.publicKey))].join('\n'));
  const options = config({ allowClients: allowed });
  const coordinator = federation.track(await Coordinator.start(options, { testSet: null }));
  const stranger = await scripted(coordinator, () => undefined);
  expect(stranger.registered).toMatchObject({ status: 'error', code: 'JOIN_REFUSED' });
  for (const identity of listed) {
    expect((await scripted(coordinator, () => undefined, identity)).registered).toMatchObject({
      status: 'ok',
    });
  }
  const history = await coordinator.done;
  expect(history.rounds[0]).toMatchObject({ status: 'completed', participants: 3 });
  await coordinator.stop();
  const { enrollments } = await readPersistedRun(options.database!, 'enrollment');
  expect(enrollments.map((e) => [e.clientId, e.method])).toEqual(
    listed.map((i) => [clientIdFromPublicKey(i.publicKey), 'allowlist']).sort(),
  );
}, 60_000);
