import type {
  CancelMessage,
  Challenge,
  DoneMessage,
  EvaluateIns,
  FitIns,
  RoundSummaryMessage,
} from './messages';

/**
 * socket.io event maps. Requests the coordinator makes carry an acknowledgement callback
 * whose argument is the response; every argument that arrives from the other side is typed
 * `unknown` so that it has to pass a schema in ./messages before anything reads it.
 */

/** A response callback: whatever the peer passes must be validated by the receiver. */
export type Ack = (response: unknown) => void;

/**
 * A secure-aggregation phase request. `body` and `blob` are a packed message (see
 * ./binary-envelope: one attachment whatever the cohort size); the unpacked body is validated
 * by the secagg message schemas. Answers are packed the same way.
 */
export interface SecAggEnvelope {
  phase: string;
  roundId: string;
  body: unknown;
  blob: Uint8Array;
}

export interface ServerToClientEvents {
  challenge: (challenge: Challenge) => void;
  fit: (ins: FitIns, ack: Ack) => void;
  evaluate: (ins: EvaluateIns, ack: Ack) => void;
  secagg: (envelope: SecAggEnvelope, ack: Ack) => void;
  cancel: (message: CancelMessage) => void;
  'round-summary': (summary: RoundSummaryMessage) => void;
  /** Acknowledged, so the coordinator knows the message arrived before it shuts down. */
  done: (message: DoneMessage, ack: Ack) => void;
  /** "Are you still there?": asked before another connection may take over this identity. */
  presence: (ack: Ack) => void;
}

export interface ClientToServerEvents {
  register: (ins: unknown, ack: Ack) => void;
  progress: (progress: unknown) => void;
}

/** What the client sees: everything the coordinator sends is still unvalidated. */
export interface ClientSideServerEvents {
  challenge: (challenge: unknown) => void;
  fit: (ins: unknown, ack: Ack) => void;
  evaluate: (ins: unknown, ack: Ack) => void;
  secagg: (envelope: unknown, ack: Ack) => void;
  cancel: (message: unknown) => void;
  'round-summary': (summary: unknown) => void;
  done: (message: unknown, ack?: Ack) => void;
  presence: (ack?: Ack) => void;
}
