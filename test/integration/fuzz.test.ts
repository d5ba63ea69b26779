import fc from 'fast-check';
import type { NodeClient } from '../../client-node/node-client';
import { Coordinator } from '../../coordinator/coordinator';
import type { CoordinatorConfigInput } from '../../coordinator/config';
import { ERROR_CODES } from '../../shared/errors';
import { generateIdentity } from '../../shared/identity';
import { getModelSpec } from '../../shared/model/registry';
import { specHash } from '../../shared/model/spec-hash';
import { useWasmBackend } from '../helpers/backend';
import { closeAll, startClients } from '../helpers/federation';
import { smallMnist } from '../helpers/mnist-fixture';
import { readPersistedRounds } from '../helpers/persisted-rounds';
import { connectRawSocket } from '../helpers/raw-socket';
import type { RawChallenge, RawSocket } from '../helpers/raw-socket';
import { connectScriptedClient, signedRegistration } from '../helpers/scripted-client';
import { ScriptedFederation } from '../helpers/scripted-federation';
import { waitUntil } from '../helpers/wait-until';

/**
 * Property-based fuzzing (fast-check) of a live coordinator over real sockets: random events
 * and random or mutated payloads, registrations above all. Every answer is an error with a
 * published code (or nothing), the coordinator keeps serving, and rounds run by real clients
 * while the fuzzer hammers it end exactly as they do without it: the same model, bit for bit.
 * (Plain rounds: training is seeded and deterministic, and so is their weighted mean; secure
 * rounds quantize with random rounding, so two runs agree only within its tolerance.)
 */

const federation = new ScriptedFederation('fuzz');
const raws: RawSocket[] = [];
let clients: NodeClient[] = [];
afterEach(() => {
  for (const raw of raws.splice(0)) raw.close();
  closeAll(clients);
  clients = [];
});

/** Event names socket.io reserves (emitting them throws on the client side). */
const RESERVED = new Set([
  'connect',
  'connect_error',
  'disconnect',
  'disconnecting',
  'newListener',
  'removeListener',
]);

const eventName = fc.oneof(
  fc.constantFrom('register', 'register', 'progress', 'fit', 'secagg', 'evaluate', 'presence'),
  fc.string({ maxLength: 24 }).filter((name) => !RESERVED.has(name)),
);

const junk = fc.anything({
  maxDepth: 3,
  maxKeys: 6,
  withTypedArray: true,
  withNullPrototype: false,
  withBigInt: false,
  withMap: false,
  withSet: false,
  withBoxedValues: false,
});

/** A well-formed, correctly signed registration for this connection, one field mutated. */
async function validRegistration(challenge: RawChallenge): Promise<Record<string, unknown>> {
  return signedRegistration(generateIdentity(), challenge, {
    task: 'mnist',
    modelSpecHash: await specHash(getModelSpec('mnist')),
    trainExamples: 10,
  });
}

const REGISTRATION_FIELDS = [
  'protocolVersion',
  'publicKey',
  'signature',
  'task',
  'modelSpecHash',
  'platform',
  'backend',
  'trainExamples',
  'testExamples',
  'displayName',
  'clientNonce',
  'joinProof',
  '__proto__',
  'constructor',
] as const;

type Step =
  | { kind: 'random'; event: string; payload: unknown }
  | { kind: 'mutated-register'; field: (typeof REGISTRATION_FIELDS)[number]; value: unknown };

const step: fc.Arbitrary<Step> = fc.oneof(
  fc.record({ kind: fc.constant('random' as const), event: eventName, payload: junk }),
  fc.record({
    kind: fc.constant('mutated-register' as const),
    field: fc.constantFrom(...REGISTRATION_FIELDS),
    value: junk,
  }),
);

/** Sends one step and returns the acknowledgement (undefined: none within the wait). */
async function send(raw: RawSocket, s: Step): Promise<unknown> {
  let event: string;
  let payload: unknown;
  if (s.kind === 'random') {
    event = s.event;
    payload = s.payload;
  } else {
    event = 'register';
    const body = await validRegistration(raw.challenge);
    // Object.defineProperty, so '__proto__' lands as an own key, as JSON from a peer would.
    Object.defineProperty(body, s.field, { value: s.value, enumerable: true, writable: true });
    payload = body;
  }
  if (!raw.socket.connected) return undefined;
  // No acknowledgement is expected for progress; everything else gets one or is dropped.
  const wait = event === 'progress' ? 0 : 300;
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(undefined), wait);
    raw.socket.emit(event, payload, (ack: unknown) => {
      clearTimeout(timer);
      resolve(ack);
    });
  });
}

function config(extra: Partial<CoordinatorConfigInput>): CoordinatorConfigInput {
  return {
    host: '127.0.0.1',
    port: 0,
    experiment: 'fuzz',
    overSelection: 0,
    evaluation: 'none',
    batchSize: 32,
    seed: 3,
    database: federation.database('run.db'),
    ...extra,
  };
}

test('random and mutated payloads get an error with a published code, or nothing; the coordinator keeps serving', async () => {
  const coordinator = federation.track(
    await Coordinator.start(config({ minClients: 1000, maxEventsPerSecond: 1000 }), {
      testSet: null,
    }),
  );
  const codes = new Set(Object.keys(ERROR_CODES));
  await fc.assert(
    fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 4 }), async (steps) => {
      const raw = await connectRawSocket(coordinator.url);
      raws.push(raw);
      try {
        for (const s of steps) {
          const ack = await send(raw, s);
          if (ack === undefined) continue;
          const a = ack as { status?: unknown; code?: unknown };
          // A mutated registration can still be valid (a field replaced by a valid value).
          if (a.status === 'ok') continue;
          expect(a.status).toBe('error');
          expect(codes.has(String(a.code))).toBe(true);
        }
      } finally {
        raw.close();
        raws.splice(raws.indexOf(raw), 1);
      }
    }),
    { numRuns: 150, seed: 42 },
  );
  // Still serving: a proper client registers, and nothing the fuzzer sent is registered but
  // the valid registrations it happened to produce (none is left connected).
  const client = federation.trackClient(await connectScriptedClient(coordinator.url, {}));
  expect(await client.registered).toMatchObject({ status: 'ok' });
  // (A valid registration the fuzzer produced leaves when its socket's close arrives.)
  await waitUntil(() => coordinator.connectedClients === 1);
}, 180_000);

test('rounds under fuzzing end with the very model they reach without it', async () => {
  const [backend, data] = await Promise.all([useWasmBackend(), smallMnist(300, 20)]);

  async function run(experiment: string, fuzz: boolean): Promise<string[]> {
    const coordinator = federation.track(
      await Coordinator.start(
        config({ experiment, rounds: 2, minClients: 3, secureAggregation: false }),
        {
          testSet: null,
        },
      ),
    );
    let fuzzing = fuzz;
    let sent = 0;
    const fuzzer = (async () => {
      const samples = fc.sample(fc.array(step, { minLength: 1, maxLength: 4 }), {
        numRuns: 400,
        seed: 7,
      });
      for (const steps of samples) {
        if (!fuzzing) break;
        const raw = await connectRawSocket(coordinator.url).catch(() => null);
        if (!raw) continue;
        for (const s of steps) {
          await send(raw, s);
          sent++;
        }
        raw.close();
      }
    })();
    clients = await startClients(coordinator.url, 3, data, 100, backend, () => ({
      allowPlain: true,
    }));
    const history = await coordinator.done;
    const sentDuringRun = sent;
    fuzzing = false;
    await fuzzer;
    // The fuzzer was really at work while the rounds ran.
    if (fuzz) expect(sentDuringRun).toBeGreaterThan(5);
    closeAll(clients);
    clients = [];
    expect(history.rounds.map((r) => [r.status, r.participants])).toEqual([
      ['completed', 3],
      ['completed', 3],
    ]);
    await coordinator.stop();
    const rounds = await readPersistedRounds(federation.database('run.db'), experiment);
    return rounds.map((r) => r.checkpoint!.modelHash);
  }

  const reference = await run('fuzz-reference', false);
  const fuzzed = await run('fuzz-under-fire', true);
  expect(fuzzed).toEqual(reference);
}, 300_000);
