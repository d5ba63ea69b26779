import type { ClientProxy } from '../../coordinator/client-proxy';
import type { ConnectedClient, CoordinatorSocket } from '../../coordinator/client-registry';
import { runEvaluatePhase } from '../../coordinator/evaluate-phase';
import type { Logger } from '../../coordinator/logger';
import { CohortError } from '../../shared/errors';
import type { RegisterIns } from '../../shared/protocol/messages';

/**
 * The round phases reach clients only through ClientProxy, so a phase runs the same against
 * clients that are not sockets of this process (another coordinator's, a simulation's). Here
 * federated evaluation runs over three scripted proxies and no socket at all.
 */

const silent: Logger = { debug: () => undefined, info: () => undefined, warn: () => undefined };

function fakeClient(
  id: string,
  testExamples: number,
  evaluate: ClientProxy['evaluate'],
): ConnectedClient {
  const proxy: ClientProxy = {
    connected: true,
    evaluate,
    fit: () => Promise.reject(new Error('not used')),
    secagg: () => Promise.reject(new Error('not used')),
    cancel: () => undefined,
  };
  return {
    id,
    publicKey: new Uint8Array(32),
    info: { testExamples } as RegisterIns,
    // A phase must never reach for the socket: any use of it throws.
    socket: new Proxy(
      {},
      {
        get: () => {
          throw new Error('the phase touched the socket');
        },
      },
    ) as CoordinatorSocket,
    proxy,
    connectedAt: new Date(),
    bytesReceived: () => 0,
  };
}

describe('round phases through ClientProxy', () => {
  it('federated evaluation: example-weighted over scripted proxies, a dropped one left out', async () => {
    const seen: unknown[] = [];
    const answer =
      (numExamples: number, loss: number, accuracy: number): ClientProxy['evaluate'] =>
      (ins) => {
        seen.push(ins);
        return Promise.resolve({ status: 'ok', roundId: 'r-7', numExamples, loss, accuracy });
      };
    const result = await runEvaluatePhase({
      round: 7,
      roundId: 'r-7',
      clients: [
        fakeClient('a', 100, answer(100, 1, 0.5)),
        // Claims more examples than it registered: counted as its registered 300.
        fakeClient('b', 300, answer(900, 2, 0.9)),
        fakeClient('c', 50, () => Promise.reject(new CohortError('CLIENT_DROPPED', 'gone'))),
      ],
      model: { modelHash: 'h', manifest: { entries: [], length: 0 }, weights: new Uint8Array(0) },
      batchSize: 32,
      deadlineMs: 1000,
      log: silent,
    });
    // (100 * 1 + 300 * 2) / 400 and (100 * 0.5 + 300 * 0.9) / 400.
    expect(result).toEqual({ loss: 1.75, accuracy: 0.8, numExamples: 400 });
    expect(seen).toHaveLength(2);
    expect(seen[0]).toMatchObject({ roundId: 'r-7', batchSize: 32, deadlineMs: 1000 });
  });
});
