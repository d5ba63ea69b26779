import { readFileSync } from 'node:fs';
import type { NodeClient } from '../../client-node/node-client';
import { connectNodeClient } from '../../client-node/node-client';
import { discoverTask } from '../../client-node/discover-task';
import { Coordinator } from '../../coordinator/coordinator';
import type { CoordinatorConfigInput } from '../../coordinator/config';
import { resolveCoordinatorConfig } from '../../coordinator/config';
import { generateIdentity } from '../../shared/identity';
import { useWasmBackend } from '../helpers/backend';
import { rejectionOf } from '../helpers/error-of';
import { slice } from '../helpers/federation';
import { smallMnist } from '../helpers/mnist-fixture';
import { describeRequiring } from '../helpers/requires';
import { ScriptedFederation } from '../helpers/scripted-federation';
import { makeSelfSigned, opensslAvailable } from '../helpers/self-signed';

/**
 * TLS: a coordinator given --tls-cert/--tls-key serves HTTPS/WSS; real Node clients that trust
 * its (self-signed) certificate through --ca run a secure round over it; a client that does
 * not trust it stops at once with TLS_UNTRUSTED instead of retrying forever; a certificate
 * and key that do not belong together are refused at start-up.
 */

const federation = new ScriptedFederation('tls');

describeRequiring('TLS (self-signed certificate from openssl)', opensslAvailable(), () => {
  const clients: NodeClient[] = [];
  afterEach(() => {
    for (const c of clients.splice(0)) c.close();
  });

  function options(files: { cert: string; key: string }): CoordinatorConfigInput {
    return {
      host: '127.0.0.1',
      port: 0,
      experiment: 'tls',
      rounds: 1,
      minClients: 3,
      overSelection: 0,
      evaluation: 'none',
      batchSize: 32,
      database: federation.database('run.db'),
      tlsCert: files.cert,
      tlsKey: files.key,
    };
  }

  test('a secure round over WSS with clients that trust the certificate through --ca', async () => {
    const files = makeSelfSigned(federation.dir);
    const ca = readFileSync(files.cert, 'utf8');
    const [backend, data] = await Promise.all([useWasmBackend(), smallMnist(300, 30)]);
    const coordinator = federation.track(
      await Coordinator.start(options(files), { testSet: null }),
    );
    expect(coordinator.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);

    expect(await discoverTask(coordinator.url, { ca })).toMatchObject({ task: 'mnist' });
    for (let i = 0; i < 3; i++) {
      clients.push(
        await connectNodeClient({
          server: coordinator.url,
          ca,
          task: 'mnist',
          train: slice(data.train, i * 100, (i + 1) * 100),
          test: data.test,
          identity: generateIdentity(),
          backend,
          minParticipants: 3,
        }),
      );
    }
    const history = await coordinator.done;
    expect(history.rounds[0]).toMatchObject({
      status: 'completed',
      participants: 3,
      secureAggregation: 'on',
    });
    const finished = await Promise.all(clients.map((c) => c.session.finished));
    expect(finished.map((f) => f.rounds)).toEqual([1, 1, 1]);
  }, 120_000);

  test('a client that does not trust the certificate stops with TLS_UNTRUSTED, at once', async () => {
    const files = makeSelfSigned(federation.dir);
    const other = makeSelfSigned(federation.dir, 'another-ca');
    const [backend, data] = await Promise.all([useWasmBackend(), smallMnist(20, 10)]);
    const coordinator = federation.track(
      await Coordinator.start(options(files), { testSet: null }),
    );
    const untrusted =
      /^TLS_UNTRUSTED: the coordinator's TLS certificate is not trusted \(DEPTH_ZERO_SELF_SIGNED_CERT/;
    // No --ca, and a --ca that is not the one that signed the coordinator's certificate.
    for (const ca of [undefined, readFileSync(other.cert, 'utf8')]) {
      const client = await connectNodeClient({
        server: coordinator.url,
        ...(ca !== undefined ? { ca } : {}),
        task: 'mnist',
        train: data.train,
        test: data.test,
        identity: generateIdentity(),
        backend,
        reconnectDelayMs: 50,
      });
      clients.push(client);
      expect(await rejectionOf(client.session.finished)).toMatch(
        ca === undefined ? untrusted : /^TLS_UNTRUSTED: /,
      );
      expect(
        await rejectionOf(discoverTask(coordinator.url, ca !== undefined ? { ca } : {})),
      ).toMatch(/^TLS_UNTRUSTED: /);
    }
    expect(coordinator.connectedClients).toBe(0);
  }, 60_000);

  test('refuses a certificate without its key, and a key that is not the certificate’s', async () => {
    const files = makeSelfSigned(federation.dir);
    const other = makeSelfSigned(federation.dir, 'other');
    expect(() => resolveCoordinatorConfig({ tlsCert: files.cert })).toThrow(
      '--tls-cert and --tls-key go together: give both',
    );
    expect(
      await rejectionOf(
        Coordinator.start({ ...options(files), tlsKey: other.key }, { testSet: null }),
      ),
    ).toMatch(/^CONFIG_INVALID: --tls-cert .* and --tls-key .* are not a usable PEM pair/);
    expect(
      await rejectionOf(
        Coordinator.start(
          { ...options(files), tlsCert: `${files.cert}.absent` },
          { testSet: null },
        ),
      ),
    ).toMatch(/^CONFIG_INVALID: cannot read TLS certificate/);
  }, 60_000);
});
