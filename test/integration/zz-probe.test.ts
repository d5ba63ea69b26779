import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Coordinator } from '../../coordinator/coordinator';
import { generateIdentity, signDetached, toHex, utf8 } from '../../shared/identity';
import { getModelSpec } from '../../shared/model/registry';
import { specHash } from '../../shared/model/spec-hash';
import { PROTOCOL_VERSION, registrationMessage } from '../../shared/protocol/messages';
import { connectRawSocket, emitAndWait } from '../helpers/raw-socket';

test('probe', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'probe-'));
  const c = await Coordinator.start({ host: '127.0.0.1', port: 0, secureAggregation: false, minClients: 5, rounds: 1, database: `file:${join(dir, 'p.db')}` });
  const raw = await connectRawSocket(c.url);
  const body = async () => {
    const identity = generateIdentity();
    const publicKey = toHex(identity.publicKey);
    return { protocolVersion: PROTOCOL_VERSION, publicKey, signature: toHex(signDetached(utf8(registrationMessage(raw.challenge.nonce, raw.challenge.coordinatorId, publicKey)), identity)), task: 'mnist', modelSpecHash: await specHash(getModelSpec('mnist')), platform: 'node', backend: 'x', trainExamples: 1, testExamples: 0 };
  };
  console.log(await emitAndWait(raw, 'register', await body()));
  console.log(await emitAndWait(raw, 'register', await body()));
  console.log(await emitAndWait(raw, 'register', await body()));
  console.log('connected', c.connectedClients);
  raw.close();
  await new Promise((r) => setTimeout(r, 500));
  console.log('after close', c.connectedClients);
  await c.stop();
});
