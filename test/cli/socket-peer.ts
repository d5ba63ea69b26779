import { io } from 'socket.io-client';
import type { Socket } from 'socket.io-client';
import { clientIdFromPublicKey, generateIdentity } from '../../shared/identity';
import { getModelSpec } from '../../shared/model/registry';
import { specHash } from '../../shared/model/spec-hash';
import type { CancelMessage, RegisterRes } from '../../shared/protocol/messages';
import { bytesToFloats } from '../../shared/weights/codec';
import { plainUpdateAnswer, signedRegistration } from '../helpers/scripted-client';

/** A fit request as a peer receives it (only the fields the tests read). */
export interface PeerFitIns {
  roundId: string;
  round: number;
  secure: boolean;
  model: { modelHash: string; weights: Uint8Array };
}

/**
 * A hand-driven client of a `cohort coordinator` process: it connects and takes the
 * challenge at once, but registers only when the test says so (so a test decides exactly
 * which round it can be selected for), then answers fit requests as scripted, or never (a
 * straggler that stays connected). It records every fit request and cancellation it gets.
 */
export interface SocketPeer {
  readonly id: string;
  readonly socket: Socket;
  readonly fits: PeerFitIns[];
  readonly cancels: CancelMessage[];
  register(): Promise<RegisterRes>;
  close(): void;
}

export async function connectPeer(
  url: string,
  options: {
    /** Answers a fit request; absent: the peer never answers (it stays silent). */
    fit?(ins: PeerFitIns): unknown;
    trainExamples?: number;
  } = {},
): Promise<SocketPeer> {
  const identity = generateIdentity();
  const modelSpecHash = await specHash(getModelSpec('mnist'));
  const socket = io(url, { transports: ['websocket'], reconnection: false });
  const fits: PeerFitIns[] = [];
  const cancels: CancelMessage[] = [];
  socket.on('fit', (ins: PeerFitIns, ack: (res: unknown) => void) => {
    fits.push(ins);
    if (options.fit) void Promise.resolve(options.fit(ins)).then(ack);
  });
  socket.on('cancel', (message: CancelMessage) => cancels.push(message));
  // Acknowledged, so the coordinator does not wait for this peer before it exits.
  socket.on('done', (_message: unknown, ack?: (res: unknown) => void) => ack?.({ status: 'ok' }));
  const challenge = await new Promise<{ nonce: string; coordinatorId: string }>(
    (resolve, reject) => {
      socket.once('connect_error', (error) => {
        socket.disconnect();
        reject(error);
      });
      socket.once('challenge', resolve);
    },
  );
  return {
    id: clientIdFromPublicKey(identity.publicKey),
    socket,
    fits,
    cancels,
    register: () =>
      socket.timeout(60_000).emitWithAck(
        'register',
        signedRegistration(identity, challenge, {
          task: 'mnist',
          modelSpecHash,
          trainExamples: options.trainExamples ?? 100,
        }),
      ) as Promise<RegisterRes>,
    close: () => socket.disconnect(),
  };
}

/**
 * A valid plain-mode fit answer: a small deterministic delta of the model's length, trained
 * (so it claims) on `numExamples` examples.
 */
export function plainFitAnswer(ins: PeerFitIns, numExamples: number, trainLoss = 1): unknown {
  const length = bytesToFloats(new Uint8Array(ins.model.weights)).length;
  const delta = new Float32Array(length);
  for (let j = 0; j < length; j++) delta[j] = 0.001 * Math.sin(j * 0.37 + ins.round);
  return plainUpdateAnswer(ins, numExamples, trainLoss, delta);
}
