import { packBinary, unpackBinary } from '../../shared/protocol/binary-envelope';

describe('binary envelope (one socket.io attachment per message)', () => {
  test('round-trips nested binary fields into one blob and back', () => {
    const message = {
      roundId: 'r1',
      keys: [
        { id: 'a', key: new Uint8Array([1, 2, 3]) },
        { id: 'b', key: new Uint8Array([4]) },
      ],
      empty: new Uint8Array(0),
      tail: Buffer.from([9, 8]),
    };
    const packed = packBinary(message);
    expect(packed.blob).toEqual(new Uint8Array([1, 2, 3, 4, 9, 8]));
    expect(JSON.parse(JSON.stringify(packed.body))).toEqual(packed.body);
    const back = unpackBinary(packed) as typeof message;
    expect(back.roundId).toBe('r1');
    expect(Array.from(back.keys[0]!.key)).toEqual([1, 2, 3]);
    expect(Array.from(back.keys[1]!.key)).toEqual([4]);
    expect(back.empty.byteLength).toBe(0);
    expect(Array.from(back.tail)).toEqual([9, 8]);
  });

  test('copies out of the transport buffer rather than aliasing it', () => {
    const packed = packBinary({ k: new Uint8Array([5, 6]) });
    const back = unpackBinary(packed) as { k: Uint8Array };
    packed.blob.fill(0);
    expect(Array.from(back.k)).toEqual([5, 6]);
  });

  test.each([
    ['no blob', { body: {} }],
    ['reference past the end', { body: { k: { $bin: [1, 5] } }, blob: new Uint8Array(4) }],
    ['negative offset', { body: { k: { $bin: [-1, 1] } }, blob: new Uint8Array(4) }],
    ['malformed reference', { body: { k: { $bin: 'x' } }, blob: new Uint8Array(4) }],
    ['not an object', 42],
  ])('refuses %s with MESSAGE_INVALID', (_name, input) => {
    expect(() => unpackBinary(input)).toThrow(/MESSAGE_INVALID/);
  });
});
