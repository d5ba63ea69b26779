import { parseSecAggMessage, chooseSecAggParams } from '../../shared/secagg';

const id = 'a'.repeat(32);
const config = chooseSecAggParams(5, { vectorLength: 10, clipRange: 1 });

describe('secure-aggregation message validators', () => {
  it('accepts well-formed messages of every phase', () => {
    const key = new Uint8Array(32);
    const sig = new Uint8Array(64);
    expect(
      parseSecAggMessage('advertiseKeysRequest', {
        coordinatorId: id,
        experiment: 'mnist',
        roundId: 'r1',
        modelHash: 'ab'.repeat(32),
        config,
      }).config,
    ).toEqual(config);
    parseSecAggMessage('advertiseKeysResponse', {
      roundId: 'r1',
      cPublicKey: key,
      sPublicKey: key,
      signature: sig,
    });
    parseSecAggMessage('shareKeysRequest', {
      roundId: 'r1',
      advertisements: [
        { clientId: id, identityPublicKey: key, cPublicKey: key, sPublicKey: key, signature: sig },
      ],
    });
    parseSecAggMessage('shareKeysResponse', {
      roundId: 'r1',
      bundles: [{ recipientId: id, nonce: new Uint8Array(24), ciphertext: new Uint8Array(200) }],
    });
    parseSecAggMessage('maskedInputRequest', { roundId: 'r1', sharers: [id], bundles: [] });
    parseSecAggMessage('maskedInputResponse', {
      roundId: 'r1',
      maskedInput: new Uint8Array(48),
      signature: sig,
    });
    parseSecAggMessage('consistencyCheckRequest', { roundId: 'r1', survivors: [id] });
    parseSecAggMessage('consistencyCheckResponse', { roundId: 'r1', signature: sig });
    parseSecAggMessage('unmaskingRequest', {
      roundId: 'r1',
      survivors: [id],
      dropped: [],
      signatures: [{ clientId: id, signature: sig }],
      inputSignatures: [],
    });
    parseSecAggMessage('unmaskingResponse', {
      roundId: 'r1',
      selfMaskShares: [{ ownerId: id, share: new Uint8Array(33) }],
      secretKeyShares: [],
    });
  });

  it('accepts Node Buffers and ArrayBuffers, returning private plain Uint8Array copies', () => {
    const buffer = Buffer.alloc(64, 7);
    const parsed = parseSecAggMessage('consistencyCheckResponse', {
      roundId: 'r1',
      signature: buffer,
    });
    expect(parsed.signature.constructor).toBe(Uint8Array);
    buffer[0] = 0;
    expect(parsed.signature[0]).toBe(7);
    const arrayBuffer = new Uint8Array(64).fill(3).buffer;
    const fromArrayBuffer = parseSecAggMessage('consistencyCheckResponse', {
      roundId: 'r1',
      signature: arrayBuffer,
    });
    expect(fromArrayBuffer.signature.buffer).not.toBe(arrayBuffer);
    new Uint8Array(arrayBuffer).fill(0);
    expect(fromArrayBuffer.signature[63]).toBe(3);
    // An odd-offset view into a pooled buffer, as socket.io may deliver.
    const pool = Buffer.alloc(100, 1);
    const masked = parseSecAggMessage('maskedInputResponse', {
      roundId: 'r1',
      maskedInput: pool.subarray(3, 51),
      signature: new Uint8Array(64),
    });
    expect(masked.maskedInput.byteOffset).toBe(0);
    expect(masked.maskedInput).toHaveLength(48);
  });

  it.each([
    [
      'a 31-byte key',
      'advertiseKeysResponse',
      {
        roundId: 'r1',
        cPublicKey: new Uint8Array(31),
        sPublicKey: new Uint8Array(32),
        signature: new Uint8Array(64),
      },
      'cPublicKey',
    ],
    [
      'a 65-byte signature',
      'consistencyCheckResponse',
      { roundId: 'r1', signature: new Uint8Array(65) },
      'signature',
    ],
    [
      'a 33-byte key as an ArrayBuffer',
      'advertiseKeysResponse',
      {
        roundId: 'r1',
        cPublicKey: new Uint8Array(32),
        sPublicKey: new ArrayBuffer(33),
        signature: new Uint8Array(64),
      },
      'sPublicKey',
    ],
    [
      'a bundle ciphertext of 1025 bytes',
      'shareKeysResponse',
      {
        roundId: 'r1',
        bundles: [{ recipientId: id, nonce: new Uint8Array(24), ciphertext: new Uint8Array(1025) }],
      },
      'bundles.0.ciphertext',
    ],
    [
      'a 63-byte signature',
      'consistencyCheckResponse',
      { roundId: 'r1', signature: new Uint8Array(63) },
      'signature',
    ],
    [
      'a key sent as a number array',
      'consistencyCheckResponse',
      { roundId: 'r1', signature: Array(64).fill(0) },
      'signature',
    ],
    [
      'an upper-case client id',
      'consistencyCheckRequest',
      { roundId: 'r1', survivors: ['A'.repeat(32)] },
      'survivors.0',
    ],
    [
      'a short client id',
      'consistencyCheckRequest',
      { roundId: 'r1', survivors: ['abc'] },
      'survivors.0',
    ],
    [
      'an unknown field',
      'consistencyCheckRequest',
      { roundId: 'r1', survivors: [], extra: 1 },
      'root',
    ],
    [
      'a missing field',
      'unmaskingRequest',
      { roundId: 'r1', survivors: [], signatures: [] },
      'dropped',
    ],
    [
      'a round id with spaces',
      'consistencyCheckRequest',
      { roundId: 'r 1', survivors: [] },
      'roundId',
    ],
    [
      'a 32-byte share',
      'unmaskingResponse',
      {
        roundId: 'r1',
        selfMaskShares: [{ ownerId: id, share: new Uint8Array(32) }],
        secretKeyShares: [],
      },
      'selfMaskShares.0.share',
    ],
    [
      'a NaN in the config',
      'advertiseKeysRequest',
      {
        coordinatorId: id,
        experiment: 'mnist',
        roundId: 'r1',
        modelHash: 'ab'.repeat(32),
        config: { ...config, scale: NaN },
      },
      'config.scale',
    ],
    [
      'a bundle nonce of 16 bytes',
      'maskedInputRequest',
      {
        roundId: 'r1',
        sharers: [],
        bundles: [{ senderId: id, nonce: new Uint8Array(16), ciphertext: new Uint8Array(100) }],
      },
      'bundles.0.nonce',
    ],
    ['not an object', 'consistencyCheckRequest', 'hello', 'root'],
  ] as [string, Parameters<typeof parseSecAggMessage>[0], unknown, string][])(
    'refuses %s with MESSAGE_INVALID naming the field',
    (_label, name, payload, field) => {
      let error: unknown;
      try {
        parseSecAggMessage(name, payload);
      } catch (err) {
        error = err;
      }
      expect(String(error)).toMatch(/^CohortError: MESSAGE_INVALID/);
      expect(String(error)).toContain(field === 'root' ? '(root)' : field);
    },
  );

  /**
   * The refusal names the first three offending fields, one '<path>: <reason>' each, joined
   * by '; ', so a log line stays short however broken the payload is.
   */
  it('names at most the first three offending fields, separated by semicolons', () => {
    let error: unknown;
    try {
      parseSecAggMessage('unmaskingRequest', {
        roundId: 'r 1',
        survivors: ['x'],
        dropped: ['y'],
        signatures: 1,
        inputSignatures: 2,
      });
    } catch (err) {
      error = err;
    }
    expect(error).toMatchObject({ code: 'MESSAGE_INVALID' });
    const message = (error as Error).message;
    expect(message).toMatch(
      /^MESSAGE_INVALID: invalid unmaskingRequest: roundId: [^;]+; survivors\.0: [^;]+; dropped\.0: [^;]+$/,
    );
    expect(message).not.toContain('ignatures');
  });
});
