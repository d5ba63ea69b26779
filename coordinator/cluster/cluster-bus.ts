/**
 * Messages between the coordinator processes of one cluster, carried by socket.io's Redis
 * adapter (`io.serverSideEmit`): addressed one-way messages, requests with their own
 * deadlines (the adapter's own acknowledgements share one global timeout and cannot carry
 * binary), and heartbeats that tell every process which others are alive. Every message is
 * validated before a handler sees it; binary fields travel as base64 strings, since the
 * adapter encodes server-side events as JSON.
 */
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { Server } from 'socket.io';
import { z } from 'zod';
import { CohortError, errorMessage, isCohortError, parseErrorCode } from '../../shared/errors';
import { isUint8Array } from '../../shared/bytes';
import type { Logger } from '../logger';

/** The one socket.io server-side event every cluster message travels as. */
const BUS_EVENT = 'cohort:cluster';

/** How often each process says it is alive, and how long silence means it is gone. */
export const HEARTBEAT_MS = 500;
export const PEER_TIMEOUT_MS = 3_000;

/** What a heartbeat tells: the process's role and the identity its clients registered with. */
export interface PeerInfo {
  nodeId: string;
  role: 'leader' | 'follower';
  /** The coordinator id its clients' signatures are bound to: the same in the whole cluster. */
  coordinatorId: string;
  /** Clients registered with it right now. */
  clients: number;
  /** Its listening URL (for logs and the dashboard). */
  url: string;
  lastSeen: number;
}

const envelopeSchema = z.strictObject({
  from: z.string().min(1).max(64),
  /** A node id, or '*' for every other process. */
  to: z.string().min(1).max(64),
  kind: z.string().min(1).max(64),
  /** Set on requests and on their replies. */
  id: z.string().min(1).max(64).optional(),
  reply: z.boolean().optional(),
  body: z.unknown(),
});

const heartbeatSchema = z.strictObject({
  role: z.enum(['leader', 'follower']),
  coordinatorId: z.string().min(1).max(128),
  clients: z.number().int().min(0),
  url: z.string().max(512),
});

const replySchema = z.union([
  z.strictObject({ ok: z.literal(true), value: z.unknown() }),
  z.strictObject({ ok: z.literal(false), code: z.string().max(64), message: z.string() }),
]);

type Envelope = z.infer<typeof envelopeSchema>;

/** Answers one request kind; a thrown CohortError travels back with its code. */
export type RequestHandler = (body: unknown, from: string, signal: AbortSignal) => Promise<unknown>;

interface PendingRequest {
  to: string;
  resolve(value: unknown): void;
  reject(error: Error): void;
}

/** How a request waits. */
export interface BusRequestOptions {
  timeoutMs: number;
  signal?: AbortSignal;
}

/** Events of a {@link ClusterBus}. */
export interface ClusterBusEvents {
  'peer-joined': [PeerInfo];
  'peer-lost': [PeerInfo];
}

/** Options of a {@link ClusterBus}. */
export interface ClusterBusOptions {
  coordinatorId: string;
  url: () => string;
  role: () => PeerInfo['role'];
  clients: () => number;
  log: Logger;
  heartbeatMs?: number;
  peerTimeoutMs?: number;
}

/**
 * One process's end of the cluster's message bus. Requests to a process that stops
 * heartbeating fail with CLUSTER_UNAVAILABLE at once instead of waiting for their deadline.
 */
export class ClusterBus extends EventEmitter<ClusterBusEvents> {
  readonly nodeId = randomUUID();
  /**
   * Bytes of the cluster messages this process received (their JSON, as Redis carried it):
   * what a leader's inbound traffic per round is measured by.
   */
  bytesReceived = 0;
  private readonly handlers = new Map<string, RequestHandler>();
  private readonly oneWay = new Map<string, (body: unknown, from: string) => void>();
  private readonly pending = new Map<string, PendingRequest>();
  /** Requests this process is answering, by `${from}/${id}`: aborted when asked to. */
  private readonly serving = new Map<string, AbortController>();
  private readonly peerMap = new Map<string, PeerInfo>();
  private heartbeat: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly onMessage = (raw: unknown) => this.receive(raw);

  constructor(
    private readonly io: Server,
    private readonly options: ClusterBusOptions,
  ) {
    super();
  }

  /** Starts listening and heartbeating. */
  start(): void {
    (this.io as unknown as EventEmitter).on(BUS_EVENT, this.onMessage);
    this.handle('abandon', () => Promise.resolve(null));
    this.listen('abandon', (body, from) => {
      const id = typeof body === 'string' ? body : '';
      this.serving.get(`${from}/${id}`)?.abort();
    });
    const beat = () => {
      this.send('*', 'heartbeat', {
        role: this.options.role(),
        coordinatorId: this.options.coordinatorId,
        clients: this.options.clients(),
        url: this.options.url(),
      });
      this.expirePeers();
    };
    beat();
    this.heartbeat = setInterval(beat, this.options.heartbeatMs ?? HEARTBEAT_MS);
    this.heartbeat.unref();
  }

  /** The other processes heard from within the peer timeout. */
  peers(): PeerInfo[] {
    this.expirePeers();
    return [...this.peerMap.values()];
  }

  /** Whether `nodeId` is a live peer. */
  isAlive(nodeId: string): boolean {
    return this.peers().some((p) => p.nodeId === nodeId);
  }

  /** Registers the answer to one request kind. */
  handle(kind: string, handler: RequestHandler): void {
    this.handlers.set(kind, handler);
  }

  /** Registers the listener of one one-way message kind. */
  listen(kind: string, listener: (body: unknown, from: string) => void): void {
    this.oneWay.set(kind, listener);
  }

  /** Sends a one-way message to one process, or to every other one with '*'. */
  send(to: string, kind: string, body: unknown): void {
    this.emit_({ from: this.nodeId, to, kind, body: encode(body) });
  }

  /**
   * Asks one process and waits for its answer: rejects with the answer's CohortError, with
   * ROUND_DEADLINE after `timeoutMs`, and with CLUSTER_UNAVAILABLE when the process is gone.
   */
  request(to: string, kind: string, body: unknown, options: BusRequestOptions): Promise<unknown> {
    if (this.closed) return Promise.reject(new CohortError('CLUSTER_UNAVAILABLE', 'bus closed'));
    if (!this.isAlive(to)) {
      return Promise.reject(
        new CohortError('CLUSTER_UNAVAILABLE', `coordinator process ${to.slice(0, 8)} is gone`),
      );
    }
    const id = randomUUID();
    return new Promise<unknown>((resolve, reject) => {
      const { signal } = options;
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        this.pending.delete(id);
      };
      const onAbort = () => {
        done();
        this.send(to, 'abandon', id);
        reject(new CohortError('ROUND_DEADLINE', `${kind} abandoned: round closed`));
      };
      const timer = setTimeout(() => {
        done();
        this.send(to, 'abandon', id);
        reject(
          new CohortError('ROUND_DEADLINE', `no ${kind} answer within ${options.timeoutMs} ms`),
        );
      }, options.timeoutMs);
      if (signal?.aborted) {
        onAbort();
        return;
      }
      signal?.addEventListener('abort', onAbort);
      this.pending.set(id, {
        to,
        resolve: (value) => {
          done();
          resolve(value);
        },
        reject: (error) => {
          done();
          reject(error);
        },
      });
      this.emit_({ from: this.nodeId, to, kind, id, body: encode(body) });
    });
  }

  /** Stops heartbeating and fails every pending request. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.heartbeat);
    (this.io as unknown as EventEmitter).off(BUS_EVENT, this.onMessage);
    for (const p of [...this.pending.values()])
      p.reject(new CohortError('CLUSTER_UNAVAILABLE', 'this process is stopping'));
    for (const c of this.serving.values()) c.abort();
  }

  private emit_(envelope: Envelope): void {
    if (this.closed && envelope.kind !== 'abandon') return;
    this.io.serverSideEmit(BUS_EVENT as never, envelope);
  }

  private receive(raw: unknown): void {
    const parsed = envelopeSchema.safeParse(raw);
    if (!parsed.success) {
      this.options.log.warn(
        `cluster: dropped a malformed message (${parsed.error.issues[0]?.message})`,
      );
      return;
    }
    const envelope = parsed.data;
    if (envelope.to !== this.nodeId && envelope.to !== '*') return;
    this.bytesReceived += JSON.stringify(envelope.body)?.length ?? 0;
    let body: unknown;
    try {
      body = decode(envelope.body);
    } catch (error) {
      this.options.log.warn(
        `cluster: dropped ${envelope.kind} from ${envelope.from}: ${errorMessage(error)}`,
      );
      return;
    }
    if (envelope.kind === 'heartbeat') {
      this.heard(envelope.from, body);
      return;
    }
    if (envelope.reply) {
      this.replied(envelope, body);
      return;
    }
    if (envelope.id !== undefined) {
      void this.serve(envelope, body);
      return;
    }
    this.oneWay.get(envelope.kind)?.(body, envelope.from);
  }

  private heard(from: string, body: unknown): void {
    const beat = heartbeatSchema.safeParse(body);
    if (!beat.success) return;
    const known = this.peerMap.has(from);
    const peer: PeerInfo = { nodeId: from, ...beat.data, lastSeen: Date.now() };
    this.peerMap.set(from, peer);
    if (!known) this.emit('peer-joined', peer);
  }

  private replied(envelope: Envelope, body: unknown): void {
    const pending = envelope.id !== undefined ? this.pending.get(envelope.id) : undefined;
    if (!pending || pending.to !== envelope.from) return; // late, or not ours
    const reply = replySchema.safeParse(body);
    if (!reply.success) {
      pending.reject(new CohortError('MESSAGE_INVALID', `malformed ${envelope.kind} reply`));
      return;
    }
    if (reply.data.ok) pending.resolve(reply.data.value);
    else {
      const code = parseErrorCode(reply.data.code) ?? 'INTERNAL';
      pending.reject(new CohortError(code, reply.data.message));
    }
  }

  private async serve(envelope: Envelope, body: unknown): Promise<void> {
    const handler = this.handlers.get(envelope.kind);
    const key = `${envelope.from}/${envelope.id!}`;
    const controller = new AbortController();
    this.serving.set(key, controller);
    let reply: unknown;
    try {
      if (!handler) throw new CohortError('MESSAGE_INVALID', `unknown request ${envelope.kind}`);
      reply = { ok: true, value: await handler(body, envelope.from, controller.signal) };
    } catch (error) {
      reply = isCohortError(error)
        ? { ok: false, code: error.code, message: error.reason }
        : { ok: false, code: 'INTERNAL', message: errorMessage(error) };
    } finally {
      this.serving.delete(key);
    }
    this.emit_({
      from: this.nodeId,
      to: envelope.from,
      kind: envelope.kind,
      id: envelope.id!,
      reply: true,
      body: encode(reply),
    });
  }

  /** Forgets silent peers, failing what is pending on them. */
  private expirePeers(): void {
    const limit = Date.now() - (this.options.peerTimeoutMs ?? PEER_TIMEOUT_MS);
    for (const peer of [...this.peerMap.values()]) {
      if (peer.lastSeen >= limit) continue;
      this.peerMap.delete(peer.nodeId);
      for (const p of [...this.pending.values()]) {
        if (p.to === peer.nodeId) {
          p.reject(
            new CohortError(
              'CLUSTER_UNAVAILABLE',
              `coordinator process ${peer.nodeId.slice(0, 8)} stopped answering`,
            ),
          );
        }
      }
      this.emit('peer-lost', peer);
    }
  }
}

/** How deep a bus message may nest (its own envelope plus a relayed client message). */
const MAX_DEPTH = 24;

/**
 * Binary fields become `{ $b64 }` strings: the adapter sends server-side events as JSON. Not
 * packBinary's `$bin` references: a relayed client answer is itself packed that way, and its
 * references must reach the leader untouched.
 */
function encode(value: unknown, depth = 0): unknown {
  if (depth > MAX_DEPTH) throw new CohortError('INTERNAL', 'cluster message nested too deeply');
  if (isUint8Array(value)) {
    return {
      $b64: Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64'),
    };
  }
  if (Array.isArray(value)) return value.map((item) => encode(item, depth + 1));
  if (typeof value === 'object' && value !== null) {
    const out: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) out[key] = encode(item, depth + 1);
    return out;
  }
  return value;
}

function decode(value: unknown, depth = 0): unknown {
  if (depth > MAX_DEPTH)
    throw new CohortError('MESSAGE_INVALID', 'cluster message nested too deeply');
  if (Array.isArray(value)) return value.map((item) => decode(item, depth + 1));
  if (typeof value === 'object' && value !== null) {
    const entries = Object.entries(value);
    if (entries.length === 1 && entries[0]![0] === '$b64' && typeof entries[0]![1] === 'string') {
      return new Uint8Array(Buffer.from(entries[0]![1], 'base64'));
    }
    const out: Record<string, unknown> = {};
    for (const [key, item] of entries) out[key] = decode(item, depth + 1);
    return out;
  }
  return value;
}
