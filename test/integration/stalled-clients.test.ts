import type { Socket as NetSocket } from 'node:net';
import { Coordinator } from '../../coordinator/coordinator';
import { generateIdentity } from '../../shared/identity';
import { NO_ANSWER, connectScriptedClient, plainUpdateAnswer } from '../helpers/scripted-client';
import type { ScriptedClient } from '../helpers/scripted-client';
import { ScriptedFederation, scriptedDelta } from '../helpers/scripted-federation';

/**
 * Clients that stall: one stops reading its socket after registering, one starts a binary
 * answer (a socket.io packet announcing an attachment) and never sends the attachment. The
 * round deadline handles both: every round completes with the honest clients, the stallers
 * are recorded as dropped (ROUND_DEADLINE), and the coordinator serves the next round.
 */

const federation = new ScriptedFederation('stalled');

async function honest(url: string, index: number): Promise<ScriptedClient> {
  return federation.trackClient(
    await connectScriptedClient(url, {
      fit: (ins) => {
        const model = ins.model as { modelHash: string; manifest: { length: number } };
        return plainUpdateAnswer(
          { roundId: ins.roundId as string, model },
          10,
          1,
          scriptedDelta(index, Number(ins.round), model.manifest.length),
        );
      },
    }),
  );
}

/** The TCP socket under a socket.io-client websocket (Node's ws). */
function tcpOf(client: ScriptedClient): NetSocket {
  const engine = client.socket.io.engine as unknown as {
    transport: { ws: { _socket: NetSocket } };
  };
  return engine.transport.ws._socket;
}

test('a client that stops reading and one that sends half a message: rounds complete without them', async () => {
  const coordinator = federation.track(
    await Coordinator.start(
      federation.config('stalled', { rounds: 2, minClients: 5, roundTimeoutMs: 3_000 }),
      { identity: generateIdentity() },
    ),
  );
  // Every round waits for all five, stallers included.
  const deaf = federation.trackClient(await connectScriptedClient(coordinator.url, {}));
  expect(await deaf.registered).toMatchObject({ status: 'ok' });
  tcpOf(deaf).pause(); // stops reading: each fit request (the whole model) piles up unread
  let started = false;
  const halfway = federation.trackClient(
    await connectScriptedClient(coordinator.url, {
      fit: () => {
        if (!started) {
          started = true;
          // A binary event announcing one attachment that never comes.
          (halfway.socket.io.engine as unknown as { write(data: string): void }).write(
            '51-["progress",{"_placeholder":true,"num":0}]',
          );
        }
        return NO_ANSWER;
      },
    }),
  );
  expect(await halfway.registered).toMatchObject({ status: 'ok' });
  for (let i = 0; i < 3; i++) await honest(coordinator.url, i);

  const history = await coordinator.done;
  expect(history.rounds.map((r) => [r.status, r.participants, r.dropped])).toEqual([
    ['completed', 3, 2],
    ['completed', 3, 2],
  ]);
  // A peer that does not read cannot finish a close handshake: cut its connection.
  tcpOf(deaf).destroy();
}, 60_000);
