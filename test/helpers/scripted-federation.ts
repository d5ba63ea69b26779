import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CoordinatorConfigInput } from '../../coordinator/config';
import type { Coordinator } from '../../coordinator/coordinator';
import type { ScriptedClient } from './scripted-client';

/**
 * What the numbers-asserting integration tests share: a temporary folder for the database,
 * and every coordinator and scripted client a test starts, closed after each test.
 */
export class ScriptedFederation {
  dir = '';
  private coordinators: Coordinator[] = [];
  private clients: ScriptedClient[] = [];

  /** Registers beforeEach/afterEach hooks that make and remove the folder and close everything. */
  constructor(prefix: string) {
    beforeEach(() => {
      this.dir = mkdtempSync(join(tmpdir(), `cohort-${prefix}-`));
    });
    afterEach(async () => {
      for (const c of this.clients.splice(0)) c.close();
      for (const c of this.coordinators.splice(0)) await c.stop();
      rmSync(this.dir, { recursive: true, force: true });
    });
  }

  /** A SQLite URL inside this test's folder. */
  database(name: string): string {
    return `file:${join(this.dir, name)}`;
  }

  /**
   * A one-round plain coordinator config for three scripted clients on loopback, its database
   * in this test's folder (`run.db`); `extra` overrides any field.
   */
  config(experiment: string, extra: Partial<CoordinatorConfigInput> = {}): CoordinatorConfigInput {
    return {
      host: '127.0.0.1',
      port: 0,
      experiment,
      rounds: 1,
      minClients: 3,
      overSelection: 0,
      evaluation: 'none',
      secureAggregation: false,
      roundTimeoutMs: 30_000,
      database: this.database('run.db'),
      ...extra,
    };
  }

  /** Remembers a coordinator so it is stopped after the test. */
  track(coordinator: Coordinator): Coordinator {
    this.coordinators.push(coordinator);
    return coordinator;
  }

  /** Remembers a client so it is closed after the test. */
  trackClient(client: ScriptedClient): ScriptedClient {
    this.clients.push(client);
    return client;
  }
}

/** A deterministic, distinct delta for `client` in `round` (no training needed). */
export function scriptedDelta(client: number, round: number, length: number): Float32Array {
  const out = new Float32Array(length);
  for (let j = 0; j < length; j++) {
    out[j] = (client + 1) * 0.01 * Math.sin(j * 0.37 + client + round * 1.3);
  }
  return out;
}

/** Largest absolute element-wise difference of two equally long vectors. */
export function maxAbsDifference(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let j = 0; j < a.length; j++) m = Math.max(m, Math.abs(a[j]! - b[j]!));
  return m;
}
