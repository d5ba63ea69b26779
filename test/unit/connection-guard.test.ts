import { TokenBucket, boundedSize } from '../../coordinator/connection-guard';

/** The arithmetic of the per-connection limits, by hand. */

test('a token bucket allows a burst, then the rate, and refills with time', () => {
  const bucket = new TokenBucket(10, 20, 0);
  let allowed = 0;
  for (let i = 0; i < 50; i++) if (bucket.take(0)) allowed++;
  expect(allowed).toBe(20); // the burst, all at t = 0
  expect(bucket.take(50)).toBe(false); // 0.5 tokens after 50 ms
  expect(bucket.take(100)).toBe(true); // 1 token after 100 ms
  expect(bucket.take(100)).toBe(false);
  // A long pause refills to the burst, never beyond it.
  let afterPause = 0;
  for (let i = 0; i < 50; i++) if (bucket.take(60_000)) afterPause++;
  expect(afterPause).toBe(20);
});

test('boundedSize counts strings, bytes, keys and leaves, and stops past the limit', () => {
  expect(boundedSize('abc', 100)).toBe(3);
  expect(boundedSize(new Uint8Array(10), 100)).toBe(10);
  expect(boundedSize({ ab: 'cd', n: 1 }, 100)).toBe(2 + 2 + 1 + 8);
  expect(boundedSize(['x', ['yy']], 100)).toBe(8 + 1 + 8 + 2);
  // A huge array is not walked to its end: the count stops once past the limit.
  const huge = Array.from({ length: 100_000 }, () => 'x');
  const size = boundedSize(huge, 1000);
  expect(size).toBeGreaterThan(1000);
  expect(size).toBeLessThan(1010);
});
