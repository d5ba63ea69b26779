import type { EventEmitter } from 'node:events';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { parseErrorCode } from '../../shared/errors';
import type { CoordinatorEvents } from '../coordinator-events';

/** The Prometheus content type `/metrics` answers with. */
export const METRICS_CONTENT_TYPE = Registry.PROMETHEUS_CONTENT_TYPE;

/**
 * The coordinator's Prometheus metrics (`/metrics`), on a registry of its own so several
 * coordinators in one process (tests, simulations) never share counters. Everything is fed
 * by the coordinator's events and its live client list; nothing here can see an update.
 */
export class CoordinatorMetrics {
  readonly registry = new Registry();
  private readonly rounds: Counter<'status'>;
  private readonly roundSeconds: Histogram;
  private readonly phaseSeconds: Histogram<'phase'>;
  private readonly dropouts: Counter;
  private readonly rejections: Counter;
  private readonly secaggFailures: Counter<'code'>;
  private readonly bytesIn: Counter;
  private readonly bytesOut: Counter;
  private phaseStart: { phase: string; at: number } | null = null;

  constructor(
    events: EventEmitter<CoordinatorEvents>,
    live: {
      /** Registered clients connected now, by platform. */
      clientsByPlatform(): Record<string, number>;
      /** Connections open and not registered yet (bounded by --max-unregistered). */
      unregisteredConnections(): number;
      /** Registered clients of the whole federation (cluster mode: every process's). */
      federationClients(): number;
      /** Cluster mode: bytes of the messages other processes sent this one (null alone). */
      clusterBytesReceived(): number | null;
    },
  ) {
    const registers = [this.registry];
    // Process memory, CPU, event-loop lag and handles (`process_*`, `nodejs_*`): what an
    // operator watches when many clients, or strangers, connect.
    collectDefaultMetrics({ register: this.registry });
    new Gauge({
      name: 'cohort_unregistered_connections',
      help: 'Connections open that have not registered yet (at most --max-unregistered)',
      registers,
      collect() {
        this.set(live.unregisteredConnections());
      },
    });
    this.rounds = new Counter({
      name: 'cohort_rounds_total',
      help: 'Round attempts recorded, by status (completed or failed)',
      labelNames: ['status'],
      registers,
    });
    this.roundSeconds = new Histogram({
      name: 'cohort_round_duration_seconds',
      help: 'Wall time of a round attempt, selection to recorded',
      buckets: [0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800],
      registers,
    });
    this.phaseSeconds = new Histogram({
      name: 'cohort_phase_duration_seconds',
      help: 'Wall time of each phase of a round (training, secure-aggregation phases, evaluating)',
      labelNames: ['phase'],
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300],
      registers,
    });
    new Gauge({
      name: 'cohort_federation_clients',
      help: 'Registered clients of the whole federation (in a cluster: every process, from their heartbeats)',
      registers,
      collect() {
        this.set(live.federationClients());
      },
    });
    new Gauge({
      name: 'cohort_cluster_bytes_received',
      help: 'Cluster mode: bytes of the messages this process received from the others so far',
      registers,
      collect() {
        this.set(live.clusterBytesReceived() ?? 0);
      },
    });
    new Gauge({
      name: 'cohort_connected_clients',
      help: 'Registered clients connected now, by platform',
      labelNames: ['platform'],
      registers,
      collect() {
        const counts = { node: 0, browser: 0, ...live.clientsByPlatform() };
        for (const [platform, count] of Object.entries(counts)) this.set({ platform }, count);
      },
    });
    this.dropouts = new Counter({
      name: 'cohort_dropouts_total',
      help: 'Selected clients that vanished or missed a deadline',
      registers,
    });
    this.rejections = new Counter({
      name: 'cohort_rejections_total',
      help: 'Selected clients whose answer was refused (malformed, stale, wrong shape)',
      registers,
    });
    this.secaggFailures = new Counter({
      name: 'cohort_secagg_failures_total',
      help: 'Secure rounds that failed, by error code',
      labelNames: ['code'],
      registers,
    });
    this.bytesIn = new Counter({
      name: 'cohort_bytes_received_total',
      help: 'Bytes received from clients over socket.io (packet payloads)',
      registers,
    });
    this.bytesOut = new Counter({
      name: 'cohort_bytes_sent_total',
      help: 'Bytes sent to clients over socket.io (packet payloads)',
      registers,
    });

    events.on('round-phase', ({ phase }) => this.enterPhase(phase));
    events.on('round-end', (entry) => {
      this.enterPhase(null);
      this.rounds.inc({ status: entry.status });
      this.roundSeconds.observe(entry.durationMs / 1000);
      this.dropouts.inc(entry.dropped);
      this.rejections.inc(entry.rejected);
      if (entry.secureAggregation === 'on' && entry.failureReason !== null) {
        const code = parseErrorCode(entry.failureReason.split(':', 1)[0] ?? '') ?? 'INTERNAL';
        this.secaggFailures.inc({ code });
      }
    });
  }

  /** Counts socket.io traffic; called by the engine's packet hooks. */
  countBytes(direction: 'in' | 'out', bytes: number): void {
    if (bytes > 0) (direction === 'in' ? this.bytesIn : this.bytesOut).inc(bytes);
  }

  /** The text exposition of every metric. */
  render(): Promise<string> {
    return this.registry.metrics();
  }

  private enterPhase(phase: string | null): void {
    const now = Date.now();
    if (this.phaseStart) {
      this.phaseSeconds.observe(
        { phase: this.phaseStart.phase },
        (now - this.phaseStart.at) / 1000,
      );
    }
    this.phaseStart = phase === null ? null : { phase, at: now };
  }
}

/** Payload bytes of an engine.io packet (strings by UTF-8 length, binary by size). */
export function packetBytes(packet: { data?: unknown }): number {
  const data = packet.data;
  if (typeof data === 'string') return Buffer.byteLength(data);
  if (data instanceof Uint8Array) return data.byteLength;
  if (data instanceof ArrayBuffer) return data.byteLength;
  return 0;
}
