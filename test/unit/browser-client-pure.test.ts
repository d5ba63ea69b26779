import { concatDatasets, fitToTask, splitLocalTest } from '../../client-browser/data/fit-task';
import { parseJoinQuery } from '../../client-browser/join/query';
import type { Dataset } from '../../shared/data/dataset';
import { getModelSpec } from '../../shared/model/registry';
import { thrownBy } from '../helpers/error-of';

/** The join page's pure parts, checked by hand: its query and what it does to picked data. */

function data(count: number, shape: [number, number, number] = [28, 28, 1], label = 0): Dataset {
  const size = shape[0] * shape[1] * shape[2];
  return {
    images: Float32Array.from({ length: count * size }, (_, i) => (i % 7) / 7),
    labels: Uint8Array.from({ length: count }, (_, i) => (label + i) % 10),
    count,
    shape,
    classes: 10,
  };
}

describe('join page query', () => {
  it('defaults: no sample, 5 participants, nothing forced', () => {
    expect(parseJoinQuery('')).toEqual({ sample: false, minParticipants: 5 });
  });

  it('reads every parameter', () => {
    expect(
      parseJoinQuery('?sample=1&shard=3&backend=wasm&min-participants=3&name=lab%20tab&token=t'),
    ).toEqual({
      sample: true,
      shard: 3,
      backend: 'wasm',
      minParticipants: 3,
      name: 'lab tab',
      token: 't',
    });
  });

  it('refuses what would quietly weaken or misdirect the tab', () => {
    expect(thrownBy(() => parseJoinQuery('?min-participants=2'))).toMatch(/^CONFIG_INVALID: /);
    expect(thrownBy(() => parseJoinQuery('?min-participants=3.5'))).toMatch(/^CONFIG_INVALID: /);
    expect(thrownBy(() => parseJoinQuery('?backend=tensorflow'))).toMatch(/^CONFIG_INVALID: /);
    expect(thrownBy(() => parseJoinQuery('?shard=-1'))).toMatch(/^CONFIG_INVALID: /);
  });
});

describe('picked data', () => {
  const mnist = getModelSpec('mnist');

  it('fits the task only with its exact shape and label range', () => {
    expect(fitToTask(data(3), mnist, 'x').count).toBe(3);
    expect(thrownBy(() => fitToTask(data(3, [32, 32, 3]), mnist, 'cifar.bin'))).toBe(
      "DATA_INVALID: cifar.bin holds 32x32x3 images, and this task's model takes 28x28x1 (only image folders are resized)",
    );
    const tooManyClasses = { ...data(2), labels: Uint8Array.from([0, 12]) };
    expect(thrownBy(() => fitToTask(tooManyClasses, mnist, 'f'))).toMatch(/label 12/);
    expect(thrownBy(() => fitToTask(data(0), mnist, 'f'))).toMatch(/no examples/);
  });

  it('holds out 10% (at least 1 from 10 examples, none below) the same way every time', () => {
    const split = splitLocalTest(data(40));
    expect([split.train.count, split.test.count]).toEqual([36, 4]);
    expect(Array.from(splitLocalTest(data(40)).test.labels)).toEqual(Array.from(split.test.labels));
    expect(splitLocalTest(data(10)).test.count).toBe(1);
    expect(splitLocalTest(data(9)).test.count).toBe(0);
    // Every example lands in exactly one part.
    const labels = [...split.train.labels, ...split.test.labels].sort();
    expect(labels).toEqual(Array.from(data(40).labels).sort());
  });

  it('joins files of one shape in order, refuses mixed shapes', () => {
    const joined = concatDatasets([data(2, [28, 28, 1], 0), data(3, [28, 28, 1], 5)], 'f');
    expect(Array.from(joined.labels)).toEqual([0, 1, 5, 6, 7]);
    expect(joined.images.length).toBe(5 * 784);
    expect(thrownBy(() => concatDatasets([data(1), data(1, [32, 32, 3])], 'f'))).toMatch(
      /different sizes/,
    );
  });
});
