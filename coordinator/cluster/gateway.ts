/**
 * What every process of a cluster does for the leader: it holds its own clients' sockets,
 * answers roster requests, relays the leader's requests to those clients (each answer checked
 * here first), and folds their masked inputs into one partial sum per round, so a secure
 * update never leaves the process that received it.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { CohortError } from '../../shared/errors';
import type { DoneMessage, ModelPayload } from '../../shared/protocol/messages';
import {
  doneSchema,
  evaluateInsSchema,
  fitInsSchema,
  fitResSchema,
  modelPayloadSchema,
} from '../../shared/protocol/messages';
import { packBinary, unpackBinary } from '../../shared/protocol/binary-envelope';
import { parseSecAggMessage } from '../../shared/secagg';
import { bytesToFloats, floatsToBytes } from '../../shared/weights/codec';
import type { ClientRegistry, ConnectedClient } from '../client-registry';
import type { Logger } from '../logger';
import type { ClusterBus } from './cluster-bus';
import { HeldUpdates, PartialSums } from './partial-sums';
import { KEPT_BLOBS } from './remote-clients';

/** How many global models a gateway keeps for the requests that name them by hash. */
const KEPT_MODELS = 2;

/**
 * A gateway gives up on its client this much before the leader's own deadline, so an input
 * it folds has almost surely been counted by the leader too (a mismatch costs the whole
 * partial sum: see SecAggServerRound.foldPartialSum).
 */
export const GATEWAY_DEADLINE_MARGIN_MS = 500;

const limitsSchema = {
  clientId: z.string().min(1).max(128),
  timeoutMs: z.number().int().positive(),
  maxAnswerBytes: z.number().int().positive(),
};
const fitRequestSchema = z.strictObject({ ...limitsSchema, ins: z.unknown() });
const evaluateRequestSchema = z.strictObject({ ...limitsSchema, ins: z.unknown() });
const foldSchema = z.strictObject({
  roundId: z.string().min(1).max(128),
  elements: z.number().int().positive(),
  modulusBits: z.number().int(),
});
const secAggRequestSchema = z.strictObject({
  ...limitsSchema,
  envelope: z.record(z.string(), z.unknown()),
  /** The hash of a shared blob sent before (see RemoteClients.ensureBlob), for `blob`. */
  blobRef: z
    .string()
    .regex(/^[0-9a-f]{64}$/)
    .optional(),
  fold: foldSchema.optional(),
});
const blobSchema = z.strictObject({
  hash: z.string().regex(/^[0-9a-f]{64}$/),
  blob: z.instanceof(Uint8Array),
});
const roundIdSchema = z.strictObject({ roundId: z.string().min(1).max(128) });
const heldMeanSchema = z.strictObject({
  roundId: z.string().min(1).max(128),
  weights: z
    .array(z.strictObject({ clientId: z.string().min(1).max(128), weight: z.number().positive() }))
    .min(1)
    .max(1_000_000),
});
const cancelSchema = z.strictObject({
  clientId: z.string().min(1).max(128),
  roundId: z.string().min(1).max(128),
  reason: z.string().max(500),
});

/** One client as the roster tells the leader. */
export interface RosterEntry {
  id: string;
  publicKey: Uint8Array;
  info: unknown;
  connectedAt: string;
}

/** Options of {@link serveAsGateway}. */
export interface GatewayOptions {
  bus: ClusterBus;
  registry: ClientRegistry;
  log: Logger;
  /** Tells this process's own clients the run is over (the leader asks every gateway). */
  announceDone(message: DoneMessage): Promise<void>;
}

/** Registers this process's gateway handlers on the bus. */
export function serveAsGateway(options: GatewayOptions): void {
  const { bus, registry } = options;
  const models = new Map<string, ModelPayload>();
  const sums = new PartialSums();
  const held = new HeldUpdates();
  const blobs = new Map<string, Uint8Array>();

  const clientOf = (clientId: string): ConnectedClient => {
    const client = registry.get(clientId);
    if (!client) throw new CohortError('CLIENT_DROPPED', `client ${clientId.slice(0, 8)} left`);
    return client;
  };
  /** The leader sends weights once per model; requests name the model by hash. */
  const withWeights = (ins: unknown): unknown => {
    const hash = (ins as { model?: { modelHash?: unknown } } | null)?.model?.modelHash;
    const model = typeof hash === 'string' ? models.get(hash) : undefined;
    if (!model) throw new CohortError('CLUSTER_UNAVAILABLE', 'request names a model never sent');
    return { ...(ins as object), model };
  };
  const localDeadline = (timeoutMs: number) => Math.max(1, timeoutMs - GATEWAY_DEADLINE_MARGIN_MS);

  bus.handle('roster', () => {
    const clients: RosterEntry[] = registry.list().map((c) => ({
      id: c.id,
      publicKey: c.publicKey,
      info: c.info,
      connectedAt: c.connectedAt.toISOString(),
    }));
    return Promise.resolve({ clients });
  });

  bus.handle('model', (body) => {
    const model = modelPayloadSchema.parse(body);
    models.set(model.modelHash, model);
    for (const old of [...models.keys()].slice(0, -KEPT_MODELS)) models.delete(old);
    return Promise.resolve(null);
  });

  bus.handle('fit', async (body, from, signal) => {
    const req = parseOr(fitRequestSchema, body, 'fit request');
    const ins = fitInsSchema.parse(withWeights(req.ins));
    const raw = await clientOf(req.clientId).proxy.fit(ins, {
      timeoutMs: localDeadline(req.timeoutMs),
      maxAnswerBytes: req.maxAnswerBytes,
      signal,
      onProgress: (progress) => bus.send(from, 'progress', { clientId: req.clientId, progress }),
    });
    if (ins.secure || signal.aborted) return raw;
    // Plain round: the update stays here until the leader says whether, and how much, it counts.
    const res = fitResSchema.safeParse(raw);
    if (!res.success || res.data.status !== 'ok' || res.data.roundId !== ins.roundId) return raw;
    const { update, ...answer } = res.data;
    if (update === undefined)
      throw new CohortError('UPDATE_SHAPE', 'plain fit result carries no update');
    held.hold(ins.roundId, req.clientId, bytesToFloats(update), ins.model.manifest.length);
    return answer;
  });

  bus.handle('held-mean', (body) => {
    const req = parseOr(heldMeanSchema, body, 'held-mean request');
    const { mean, weight } = held.take(req.roundId, req.weights);
    return Promise.resolve({ roundId: req.roundId, mean: floatsToBytes(mean), weight });
  });

  bus.handle('evaluate', async (body, _from, signal) => {
    const req = parseOr(evaluateRequestSchema, body, 'evaluate request');
    const ins = evaluateInsSchema.parse(withWeights(req.ins));
    return clientOf(req.clientId).proxy.evaluate(ins, {
      timeoutMs: localDeadline(req.timeoutMs),
      maxAnswerBytes: req.maxAnswerBytes,
      signal,
    });
  });

  bus.handle('blob', (body) => {
    const { hash, blob } = parseOr(blobSchema, body, 'shared blob');
    if (createHash('sha256').update(blob).digest('hex') !== hash) {
      throw new CohortError('MESSAGE_INVALID', 'shared blob does not match its hash');
    }
    blobs.set(hash, blob);
    for (const old of [...blobs.keys()].slice(0, -KEPT_BLOBS)) blobs.delete(old);
    return Promise.resolve(null);
  });

  bus.handle('secagg', async (body, _from, signal) => {
    const req = parseOr(secAggRequestSchema, body, 'secure-aggregation request');
    let envelope = req.envelope;
    if (req.blobRef !== undefined) {
      const blob = blobs.get(req.blobRef);
      if (!blob) throw new CohortError('CLUSTER_UNAVAILABLE', 'request names a blob never sent');
      envelope = { ...envelope, blob };
    }
    const raw = await clientOf(req.clientId).proxy.secagg(
      envelope as unknown as Parameters<ConnectedClient['proxy']['secagg']>[0],
      { timeoutMs: localDeadline(req.timeoutMs), maxAnswerBytes: req.maxAnswerBytes, signal },
    );
    if (!req.fold || isErrorAnswer(raw) || signal.aborted) return raw;
    // The masked input stays here: checked, folded, and only its signature goes on.
    const answer = parseSecAggMessage('maskedInputResponse', unpackBinary(raw));
    if (answer.roundId !== req.fold.roundId) {
      throw new CohortError('UPDATE_STALE', `masked input for round ${answer.roundId}`);
    }
    sums.fold(req.fold, req.clientId, answer.maskedInput);
    return packBinary({ roundId: answer.roundId, signature: answer.signature });
  });

  bus.handle('partial', (body) => {
    const { roundId } = parseOr(roundIdSchema, body, 'partial-sum request');
    return Promise.resolve(sums.take(roundId));
  });

  bus.listen('discard', (body) => {
    const parsed = roundIdSchema.safeParse(body);
    if (!parsed.success) return;
    sums.discard(parsed.data.roundId);
    held.discard(parsed.data.roundId);
  });

  bus.listen('cancel', (body) => {
    const parsed = cancelSchema.safeParse(body);
    if (!parsed.success) return;
    registry.get(parsed.data.clientId)?.proxy.cancel(parsed.data.roundId, parsed.data.reason);
  });

  bus.handle('done', async (body) => {
    await options.announceDone(doneSchema.parse(body));
    return null;
  });
}

function isErrorAnswer(raw: unknown): boolean {
  return (
    typeof raw === 'object' && raw !== null && (raw as { status?: unknown }).status === 'error'
  );
}

function parseOr<T>(schema: z.ZodType<T>, body: unknown, what: string): T {
  const parsed = schema.safeParse(body);
  if (!parsed.success) {
    throw new CohortError(
      'MESSAGE_INVALID',
      `${what}: ${parsed.error.issues[0]?.message ?? 'invalid'}`,
    );
  }
  return parsed.data;
}
