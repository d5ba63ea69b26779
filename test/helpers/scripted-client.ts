import { toHex, utf8Bytes } from '../../shared/bytes';
import { io } from 'socket.io-client';
import type { Socket } from 'socket.io-client';
import { generateIdentity, signDetached } from '../../shared/identity';
import type { IdentityKeyPair } from '../../shared/identity';
import { getModelSpec } from '../../shared/model/registry';
import { specHash } from '../../shared/model/spec-hash';
import { PROTOCOL_VERSION, registrationMessage } from '../../shared/protocol/messages';
import { floatsToBytes } from '../../shared/weights/codec';

/**
 * A hand-driven client for tests: registers properly, then answers each request with
 * whatever the test scripts — malformed, stale, oversized — to probe the coordinator. A request
 * without a handler, or whose handler returns {@link NO_ANSWER}, is never answered.
 */
export interface ScriptedClient {
  socket: Socket;
  identity: IdentityKeyPair;
  registered: Promise<unknown>;
  close(): void;
}

/**
 * A well-formed registration for this connection's challenge, signed by `identity`, as an
 * honest Node client sends it (scripted backend, no counts shared but `trainExamples`).
 */
export function signedRegistration(
  identity: IdentityKeyPair,
  challenge: { nonce: string; coordinatorId: string },
  fields: { task: string; modelSpecHash: string; trainExamples: number },
): Record<string, unknown> {
  const publicKey = toHex(identity.publicKey);
  return {
    protocolVersion: PROTOCOL_VERSION,
    publicKey,
    signature: toHex(
      signDetached(
        utf8Bytes(registrationMessage(challenge.nonce, challenge.coordinatorId, publicKey)),
        identity,
      ),
    ),
    task: fields.task,
    modelSpecHash: fields.modelSpecHash,
    platform: 'node',
    backend: 'scripted',
    trainExamples: fields.trainExamples,
    testExamples: 0,
  };
}

/** A plain-mode fit answer carrying `delta` as the update, for the model the request sent. */
export function plainUpdateAnswer(
  ins: { roundId: string; model: { modelHash: string } },
  numExamples: number,
  trainLoss: number,
  delta: Float32Array,
): Record<string, unknown> {
  return {
    status: 'ok',
    roundId: ins.roundId,
    modelHash: ins.model.modelHash,
    numExamples,
    trainLoss,
    update: floatsToBytes(delta),
  };
}

/** What a handler returns to leave a request unanswered (a client gone silent). */
export const NO_ANSWER = Symbol('no answer');

export async function connectScriptedClient(
  url: string,
  handlers: {
    fit?(ins: Record<string, unknown>): unknown;
    evaluate?(ins: Record<string, unknown>): unknown;
    /** Secure-aggregation phase requests. */
    secagg?(req: Record<string, unknown>): unknown;
  },
  options: {
    task?: string;
    trainExamples?: number;
    /** Fields replaced in the registration; a function sees the challenge (nonce, ids). */
    registerOverride?:
      | Record<string, unknown>
      | ((challenge: { nonce: string; coordinatorId: string }) => Record<string, unknown>);
    /** Register under this identity (default: a fresh one). */
    identity?: IdentityKeyPair;
  } = {},
): Promise<ScriptedClient> {
  const task = options.task ?? 'mnist';
  const hash = await specHash(getModelSpec(task));
  const identity = options.identity ?? generateIdentity();
  const socket = io(url, { transports: ['websocket'], reconnection: false });
  const registered = new Promise<unknown>((resolve) => {
    socket.on('challenge', (challenge: { nonce: string; coordinatorId: string }) => {
      socket.emit(
        'register',
        {
          ...signedRegistration(identity, challenge, {
            task,
            modelSpecHash: hash,
            trainExamples: options.trainExamples ?? 100,
          }),
          ...(typeof options.registerOverride === 'function'
            ? options.registerOverride(challenge)
            : options.registerOverride),
        },
        (res: unknown) => resolve(res),
      );
    });
  });
  const answer =
    (handler: ((ins: Record<string, unknown>) => unknown) | undefined) =>
    (ins: Record<string, unknown>, ack: (res: unknown) => void) => {
      const res = handler?.(ins);
      if (res !== NO_ANSWER) ack(res);
    };
  socket.on('fit', answer(handlers.fit?.bind(handlers)));
  socket.on('evaluate', answer(handlers.evaluate?.bind(handlers)));
  socket.on('secagg', answer(handlers.secagg?.bind(handlers)));
  return { socket, identity, registered, close: () => socket.disconnect() };
}
