/**
 * What a client remembers across sessions about the secure rounds it took part in: the ids
 * of rounds in which it revealed shares. A round id is single-use: revealing shares twice
 * under one id (after a restart, or to a coordinator replaying an ended round) would hand out
 * a second set of shares the first set's holders never agreed to. Implementations persist
 * with the client's identity (a file next to the Node client's identity; an in-memory one
 * for simulations); `record` must be durable before it resolves, because the client reveals
 * right after.
 */
export interface RoundLedger {
  /** True when this client already revealed shares in the round named by `key`. */
  has(key: string): Promise<boolean>;
  /** Remembers `key`; resolves once that is durable. */
  record(key: string): Promise<void>;
}

/** The ledger key of a round: coordinator, experiment and round id together. */
export function roundLedgerKey(coordinatorId: string, experiment: string, roundId: string): string {
  return `${coordinatorId}/${encodeURIComponent(experiment)}/${roundId}`;
}

/** A ledger that lives as long as the process: simulations and tests. */
export class MemoryRoundLedger implements RoundLedger {
  private readonly keys = new Set<string>();

  has(key: string): Promise<boolean> {
    return Promise.resolve(this.keys.has(key));
  }

  record(key: string): Promise<void> {
    this.keys.add(key);
    return Promise.resolve();
  }
}
