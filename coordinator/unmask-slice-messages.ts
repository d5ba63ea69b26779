/** Messages between the {@link UnmaskWorkerPool} and its workers, declared once for both. */

/** Expand every term over elements [start, start + length) of the vector. */
export interface SliceRequest {
  id: number;
  /** First element of the slice; a multiple of 4 (AES-CTR seeks by 16-byte blocks). */
  start: number;
  length: number;
  /** The terms' 32-byte seeds, concatenated (a copy the worker wipes). */
  seeds: Uint8Array<ArrayBuffer>;
  /** One sign per term: 1 adds PRG(seed), -1 subtracts it. */
  signs: Int8Array<ArrayBuffer>;
}

/** The slice of sum(sign * PRG(seed)) mod 2^32, or why it could not be computed. */
export type SliceResponse =
  | { id: number; ok: true; sum: Uint32Array<ArrayBuffer> }
  | { id: number; ok: false; message: string };
