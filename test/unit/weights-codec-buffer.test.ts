import { bytesToFloats, floatsToBytes } from '../../shared/weights/codec';

describe('bytesToFloats on Node Buffers (what socket.io hands the coordinator)', () => {
  test('decodes a Buffer at an odd offset without reading its neighbours', () => {
    const floats = new Float32Array([1.5, -2, 3.25]);
    const backing = Buffer.alloc(floats.byteLength + 1, 0xff);
    backing.set(floatsToBytes(floats), 1);
    const unaligned = backing.subarray(1);
    expect(unaligned.byteOffset % 4).toBe(1);
    expect(Array.from(bytesToFloats(unaligned))).toEqual([1.5, -2, 3.25]);
  });
});
