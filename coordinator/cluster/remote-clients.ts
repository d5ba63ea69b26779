/**
 * The leader's view of the clients held by the other processes of its cluster: each is a
 * RoundClient whose proxy sends the request through the bus to the gateway holding the
 * socket, so the round phases drive it exactly like a local client.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { CohortError, isCohortError } from '../../shared/errors';
import type { ModelPayload } from '../../shared/protocol/messages';
import { registerInsSchema } from '../../shared/protocol/messages';
import type { ClientProxy, RequestLimits } from '../client-proxy';
import type { RoundClient } from '../client-registry';
import type { Logger } from '../logger';
import type { ClusterBus } from './cluster-bus';

/**
 * ShareKeys gives every participant the same request, the whole advertisement list (n
 * entries): its blob goes to each gateway once and is then named by hash, instead of
 * crossing Redis n times per gateway. Every other phase's requests differ per client. A
 * round needs one blob; leader and gateways remember this many.
 */
export const KEPT_BLOBS = 8;
/** How long the leader waits for a gateway's roster or model acknowledgement. */
const CONTROL_TIMEOUT_MS = 5_000;
/** The bus adds this to a client request's deadline: the gateway's answer has to travel. */
const BUS_SLACK_MS = 2_000;

const rosterSchema = z.strictObject({
  clients: z
    .array(
      z.strictObject({
        id: z.string().min(1).max(128),
        publicKey: z.instanceof(Uint8Array),
        info: registerInsSchema,
        connectedAt: z.string().max(64),
      }),
    )
    .max(1_000_000),
});
const progressSchema = z.strictObject({ clientId: z.string().max(128), progress: z.unknown() });

/** A client of another process, with the gateway that holds it. */
export interface RemoteClient extends RoundClient {
  readonly gateway: string;
}

/** True for a client reached through another process. */
export function isRemoteClient(client: RoundClient): client is RemoteClient {
  return typeof (client as Partial<RemoteClient>).gateway === 'string';
}

/**
 * The leader's directory of remote clients: rosters fetched from every live gateway, proxies
 * that route over the bus, and each global model sent once to each gateway.
 */
export class RemoteClients {
  /** Progress listeners of fit requests in flight, by client id. */
  private readonly progress = new Map<string, (progress: unknown) => void>();
  /** Which model each gateway holds (its latest acknowledgement). */
  private readonly modelSent = new Map<string, Promise<void>>();
  /** Which shared request blobs each gateway holds, by `${gateway}/${hash}`. */
  private readonly blobSent = new Map<string, Promise<void>>();

  /** Peers already reported for carrying another coordinator identity. */
  private readonly misconfigured = new Set<string>();

  constructor(
    private readonly bus: ClusterBus,
    private readonly coordinatorId: string,
    private readonly log: Logger,
  ) {
    bus.listen('progress', (body) => {
      const parsed = progressSchema.safeParse(body);
      if (parsed.success) this.progress.get(parsed.data.clientId)?.(parsed.data.progress);
    });
  }

  /** Every client registered with a live gateway; a gateway that does not answer adds none. */
  async list(): Promise<RemoteClient[]> {
    const peers = this.peers();
    const lists = await Promise.all(
      peers.map(async (peer) => {
        try {
          const raw = await this.bus.request(
            peer.nodeId,
            'roster',
            {},
            {
              timeoutMs: CONTROL_TIMEOUT_MS,
            },
          );
          const roster = rosterSchema.parse(raw);
          return roster.clients.map((c) => this.remoteClient(peer.nodeId, c));
        } catch (error) {
          this.log.warn(`cluster: no roster from ${peer.nodeId.slice(0, 8)}: ${String(error)}`);
          return [];
        }
      }),
    );
    return lists.flat();
  }

  /** Clients the live gateways last reported in their heartbeats (cheap; for waiting). */
  reportedCount(): number {
    return this.peers().reduce((sum, p) => sum + p.clients, 0);
  }

  /**
   * Live peers with this process's coordinator identity. A peer with another one registered
   * its clients under a different coordinator id, so their signatures would never verify
   * against this leader's rounds: it is left out, and said so once.
   */
  private peers() {
    return this.bus.peers().filter((peer) => {
      if (peer.coordinatorId === this.coordinatorId) return true;
      if (!this.misconfigured.has(peer.nodeId)) {
        this.misconfigured.add(peer.nodeId);
        this.log.warn(
          `cluster: ${peer.url} has coordinator id ${peer.coordinatorId.slice(0, 12)}, not ${this.coordinatorId.slice(0, 12)}: ` +
            'give every process the same --coordinator-identity; its clients are left out',
        );
      }
      return false;
    });
  }

  private remoteClient(gateway: string, entry: z.infer<typeof rosterSchema>['clients'][number]) {
    const client: RemoteClient = {
      id: entry.id,
      publicKey: entry.publicKey,
      info: entry.info,
      connectedAt: new Date(entry.connectedAt),
      gateway,
      proxy: this.proxyOf(gateway, entry.id),
      bytesReceived: () => 0,
    };
    return client;
  }

  /** Sends `model` to `gateway` once; requests then name it by hash. */
  private ensureModel(gateway: string, model: ModelPayload): Promise<void> {
    const key = `${gateway}/${model.modelHash}`;
    let sent = this.modelSent.get(key);
    if (!sent) {
      sent = this.bus
        .request(gateway, 'model', model, { timeoutMs: CONTROL_TIMEOUT_MS * 4 })
        .then(() => undefined);
      sent.catch(() => this.modelSent.delete(key));
      for (const old of [...this.modelSent.keys()]) {
        if (old.startsWith(`${gateway}/`) && old !== key) this.modelSent.delete(old);
      }
      this.modelSent.set(key, sent);
    }
    return sent;
  }

  /** Sends `blob` to `gateway` once per round's worth of requests; returns its hash. */
  private async ensureBlob(gateway: string, blob: Uint8Array): Promise<string> {
    const hash = createHash('sha256').update(blob).digest('hex');
    const key = `${gateway}/${hash}`;
    let sent = this.blobSent.get(key);
    if (!sent) {
      sent = this.bus
        .request(gateway, 'blob', { hash, blob }, { timeoutMs: CONTROL_TIMEOUT_MS * 4 })
        .then(() => undefined);
      sent.catch(() => this.blobSent.delete(key));
      this.blobSent.set(key, sent);
      // The gateway keeps a few; so does this map (the oldest go first).
      for (const old of [...this.blobSent.keys()].slice(0, -KEPT_BLOBS)) this.blobSent.delete(old);
    }
    await sent;
    return hash;
  }

  private proxyOf(gateway: string, clientId: string): ClientProxy & { gateway: string } {
    const bus = this.bus;
    /** Its process gone: to the round, the client dropped out (as a closed socket does). */
    const asDropout = async <T>(work: () => Promise<T>): Promise<T> => {
      try {
        return await work();
      } catch (error) {
        if (isCohortError(error, 'CLUSTER_UNAVAILABLE'))
          throw new CohortError('CLIENT_DROPPED', error.reason);
        throw error;
      }
    };
    const ask = (kind: string, body: Record<string, unknown>, limits: RequestLimits) =>
      bus.request(
        gateway,
        kind,
        { clientId, timeoutMs: limits.timeoutMs, maxAnswerBytes: limits.maxAnswerBytes, ...body },
        {
          timeoutMs: limits.timeoutMs + BUS_SLACK_MS,
          ...(limits.signal ? { signal: limits.signal } : {}),
        },
      );
    const byHash = (model: ModelPayload): ModelPayload => ({
      ...model,
      weights: new Uint8Array(0),
    });
    return {
      gateway,
      get connected() {
        return bus.isAlive(gateway);
      },
      fit: (ins, options) =>
        asDropout(async () => {
          await this.ensureModel(gateway, ins.model);
          if (options.onProgress) this.progress.set(clientId, options.onProgress);
          try {
            return await ask('fit', { ins: { ...ins, model: byHash(ins.model) } }, options);
          } finally {
            this.progress.delete(clientId);
          }
        }),
      evaluate: (ins, limits) =>
        asDropout(async () => {
          await this.ensureModel(gateway, ins.model);
          return ask('evaluate', { ins: { ...ins, model: byHash(ins.model) } }, limits);
        }),
      secagg: (envelope, limits) =>
        asDropout(async () => {
          const fold = limits.fold;
          const blob = envelope.blob;
          if (envelope.phase === 'shareKeys' && blob instanceof Uint8Array) {
            const blobRef = await this.ensureBlob(gateway, blob);
            const byRef = { ...envelope, blob: new Uint8Array(0) };
            return ask('secagg', { envelope: byRef, blobRef, ...(fold ? { fold } : {}) }, limits);
          }
          return ask('secagg', { envelope, ...(fold ? { fold } : {}) }, limits);
        }),
      cancel: (roundId, reason) => bus.send(gateway, 'cancel', { clientId, roundId, reason }),
    };
  }

  /** Asks `gateway` for its partial sum of a round's masked inputs. */
  partialSum(gateway: string, roundId: string): Promise<unknown> {
    return this.bus.request(gateway, 'partial', { roundId }, { timeoutMs: CONTROL_TIMEOUT_MS * 4 });
  }

  /**
   * Plain rounds: asks `gateway` for the weighted mean of the updates it holds for the
   * accepted clients, with the weights the leader gives them.
   */
  heldMean(
    gateway: string,
    roundId: string,
    weights: ReadonlyArray<{ clientId: string; weight: number }>,
  ): Promise<unknown> {
    return this.bus.request(
      gateway,
      'held-mean',
      { roundId, weights },
      {
        timeoutMs: CONTROL_TIMEOUT_MS * 4,
      },
    );
  }

  /** Tells every gateway to forget a round's partial sum (the round ended). */
  discard(roundId: string): void {
    this.bus.send('*', 'discard', { roundId });
  }
}
