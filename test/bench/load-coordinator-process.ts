/**
 * The coordinator process of the "load" bench, forked by load-coordinator.ts (never run by
 * hand): a real Coordinator.start(...) whose memory, CPU and event-loop delay
 * (perf_hooks.monitorEventLoopDelay) are measured inside it, so the simulated clients in the
 * bench process cannot blur them. It starts paused and runs exactly one round per `round`
 * request (resume, then pause again as the round starts), so the bench decides how many
 * clients are connected when each round selects its cohort.
 */
import { getHeapStatistics } from 'node:v8';
import { performance } from 'node:perf_hooks';
import type { IntervalHistogram } from 'node:perf_hooks';
import { loopDelayOf, startLoopMonitor } from './loop-delay';
import { Coordinator } from '../../coordinator/coordinator';
import type { RoundHistoryEntry } from '../../coordinator/history';
import { WEB_PATHS } from '../../shared/protocol/web';
import type {
  CoordinatorStats,
  LoadRequest,
  LoadResponse,
  PhaseTiming,
  RoundReport,
  StartedCoordinator,
  StatsWindowName,
} from './load-ipc';

/** How often RSS and heap are sampled for the windows' peaks. */
const MEMORY_SAMPLE_MS = 100;
const MB = 1024 * 1024;

/** Costs since the window opened: loop delay, CPU, memory peaks and socket.io bytes. */
class StatsWindow {
  private readonly histogram: IntervalHistogram;
  private startedAt = performance.now();
  private cpu = process.cpuUsage();
  private peakRss = 0;
  private peakHeap = 0;
  private bytes: { in: number; out: number } | null = null;

  constructor(private readonly coordinator: () => Coordinator | null) {
    this.histogram = startLoopMonitor();
  }

  /** Starts a new window. */
  async reset(): Promise<void> {
    this.histogram.reset();
    this.cpu = process.cpuUsage();
    this.peakRss = 0;
    this.peakHeap = 0;
    this.sampleMemory();
    this.bytes = await readBytes(this.coordinator());
    this.startedAt = performance.now();
  }

  /** The window so far; memory after a full collection (the process runs with --expose-gc). */
  async read(): Promise<CoordinatorStats> {
    const windowMs = performance.now() - this.startedAt;
    this.sampleMemory();
    const cpu = process.cpuUsage(this.cpu);
    const loop = loopDelayOf(this.histogram);
    const bytes = await readBytes(this.coordinator());
    (globalThis as { gc?: () => void }).gc?.();
    const memory = process.memoryUsage();
    return {
      windowMs,
      connected: this.coordinator()?.connectedClients ?? 0,
      loop,
      cpuMs: (cpu.user + cpu.system) / 1000,
      peakRssMB: this.peakRss / MB,
      peakHeapMB: this.peakHeap / MB,
      rssMB: memory.rss / MB,
      heapUsedMB: memory.heapUsed / MB,
      heapLimitMB: getHeapStatistics().heap_size_limit / MB,
      bytesIn: bytes && this.bytes ? bytes.in - this.bytes.in : null,
      bytesOut: bytes && this.bytes ? bytes.out - this.bytes.out : null,
    };
  }

  sampleMemory(): void {
    const memory = process.memoryUsage();
    this.peakRss = Math.max(this.peakRss, memory.rss);
    this.peakHeap = Math.max(this.peakHeap, memory.heapUsed);
  }

  close(): void {
    this.histogram.disable();
  }
}

/** The coordinator's own byte counters (its /metrics), so no socket is hooked twice. */
async function readBytes(
  coordinator: Coordinator | null,
): Promise<{ in: number; out: number } | null> {
  if (!coordinator) return null;
  try {
    const text = await (await fetch(`${coordinator.url}${WEB_PATHS.metrics}`)).text();
    const value = (name: string) => {
      const match = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
      return match ? Number(match[1]) : 0;
    };
    return { in: value('cohort_bytes_received_total'), out: value('cohort_bytes_sent_total') };
  } catch {
    return null;
  }
}

/**
 * Runs the next round: resumes the paused coordinator and pauses it again as soon as the round
 * starts, so it runs one round and waits. Resolves with the recorded history line and how long
 * each phase took, or with `timedOut` when no round ends within `timeoutMs`; rejects when the
 * run fails.
 */
function runOneRound(coordinator: Coordinator, timeoutMs: number): Promise<RoundReport> {
  return new Promise<RoundReport>((resolve, reject) => {
    const phases: PhaseTiming[] = [];
    let current: { phase: string; at: number } | null = null;
    const closePhase = () => {
      if (current) phases.push({ phase: current.phase, ms: performance.now() - current.at });
      current = null;
    };
    const onStart = () => coordinator.control('pause');
    const onPhase = ({ phase }: { phase: string }) => {
      closePhase();
      current = { phase, at: performance.now() };
    };
    const cleanup = () => {
      clearTimeout(timer);
      coordinator.off('round-start', onStart);
      coordinator.off('round-phase', onPhase);
      coordinator.off('round-end', onEnd);
    };
    const onEnd = (entry: RoundHistoryEntry) => {
      closePhase();
      cleanup();
      resolve({ entry, timedOut: false, phases });
    };
    const timer = setTimeout(() => {
      closePhase();
      cleanup();
      resolve({ entry: null, timedOut: true, phases });
    }, timeoutMs);
    coordinator.once('round-start', onStart);
    coordinator.on('round-phase', onPhase);
    coordinator.once('round-end', onEnd);
    coordinator.done.catch((error: unknown) => {
      cleanup();
      reject(error instanceof Error ? error : new Error(String(error)));
    });
    coordinator.control('resume');
  });
}

/** Serves the bench's requests over the IPC channel until `stop` or the parent leaves. */
function serve(): void {
  let coordinator: Coordinator | null = null;
  const windows: Record<StatsWindowName, StatsWindow> = {
    step: new StatsWindow(() => coordinator),
    phase: new StatsWindow(() => coordinator),
  };
  const sampler = setInterval(() => {
    for (const window of Object.values(windows)) window.sampleMemory();
  }, MEMORY_SAMPLE_MS);
  sampler.unref();
  const stopAndExit = async (code: number) => {
    clearInterval(sampler);
    for (const window of Object.values(windows)) window.close();
    await coordinator?.stop().catch(() => undefined);
    process.exit(code);
  };
  const reply = (response: LoadResponse) => process.send?.(response);

  const handle = async (request: LoadRequest): Promise<unknown> => {
    switch (request.type) {
      case 'start': {
        coordinator = await Coordinator.start(request.config, {
          // Paused before the round loop starts: rounds run only when the bench asks.
          observe: (c) => c.control('pause'),
          browserAssetsDir: null,
        });
        const started: StartedCoordinator = {
          url: coordinator.url,
          coordinatorId: coordinator.coordinatorId,
        };
        return started;
      }
      case 'round':
        if (!coordinator) throw new Error('the coordinator has not started');
        return runOneRound(coordinator, request.timeoutMs);
      case 'stats': {
        const window = windows[request.window];
        const value = await window.read();
        if (request.reset) await window.reset();
        return value;
      }
      case 'stop':
        setImmediate(() => void stopAndExit(0));
        return {};
    }
  };

  process.on('message', (raw: LoadRequest) => {
    handle(raw).then(
      (value) => reply({ id: raw.id, ok: true, value }),
      (error: unknown) =>
        reply({
          id: raw.id,
          ok: false,
          error: error instanceof Error ? error.message : String(error),
        }),
    );
  });
  // The bench went away (crashed, killed): do not outlive it.
  process.on('disconnect', () => void stopAndExit(0));
}

if (require.main === module) serve();
