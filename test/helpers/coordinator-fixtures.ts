import { toHex, utf8Bytes } from '../../shared/bytes';
import type { IdentityKeyPair } from '../../shared/identity';
import { signDetached } from '../../shared/identity';
import { buildModel } from '../../shared/model/build-model';
import { getModelSpec } from '../../shared/model/registry';
import type { ModelPayload } from '../../shared/protocol/messages';
import { registrationAnswerMessage } from '../../shared/protocol/messages';
import { extractWeights, floatsToBytes, hashWeights } from '../../shared/weights/codec';

/**
 * Pieces every hand-written test coordinator needs to look like a real one, in one place:
 * the signed registration answer and a global model payload.
 */

/** A global model as a coordinator sends it: weights of buildModel(mnist, seed) with their hash. */
export async function mnistModelPayload(seed: number): Promise<ModelPayload> {
  const model = buildModel(getModelSpec('mnist'), seed);
  try {
    const { manifest, data } = extractWeights(model);
    const weights = data.slice();
    return {
      modelHash: await hashWeights(manifest, weights),
      manifest,
      weights: floatsToBytes(weights),
    };
  } finally {
    model.dispose();
  }
}

/**
 * The 'ok' registration answer a real coordinator gives, signed with its key over the
 * client's nonce when the client sent one (as Cohort clients do).
 */
export function signedRegistrationAnswer(options: {
  identity: IdentityKeyPair;
  coordinatorId: string;
  nonce: string;
  ins: Record<string, unknown>;
  clientId: string;
  experiment: string;
  secureAggregation: boolean;
}): Record<string, unknown> {
  const answer: Record<string, unknown> = {
    status: 'ok',
    clientId: options.clientId,
    experiment: options.experiment,
    secureAggregation: options.secureAggregation,
  };
  const { ins } = options;
  if (typeof ins.clientNonce === 'string' && typeof ins.publicKey === 'string') {
    const message = registrationAnswerMessage({
      coordinatorId: options.coordinatorId,
      nonce: options.nonce,
      clientNonce: ins.clientNonce,
      clientPublicKey: ins.publicKey,
      clientId: options.clientId,
      experiment: options.experiment,
      secureAggregation: options.secureAggregation,
    });
    answer.coordinatorSignature = toHex(signDetached(utf8Bytes(message), options.identity));
  }
  return answer;
}
