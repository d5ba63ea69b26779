import type { Dataset } from '../../shared/data/dataset';
import { selectExamples } from '../../shared/data/dataset';
import { datasetToIdx } from '../../shared/data/idx';
import { createRng } from '../../shared/random';
import type { SampleInfo } from '../../shared/protocol/web';

/** One public shard, as the two IDX files a tab downloads. */
export interface EncodedShard {
  images: Uint8Array;
  labels: Uint8Array;
}

/**
 * Public sample data cut into equal shards for browser demos (`/join?sample=1`): a seeded
 * shuffle, then consecutive slices, so every shard has every class in about its share and a
 * restart serves the same shards. Only the examples on offer are copied and kept (a few
 * thousand, not the whole source set); shards are encoded on first request and kept.
 */
export class SampleShards {
  readonly info: SampleInfo;
  /** The offered examples, shard after shard. */
  private readonly offered: Dataset;
  private readonly encoded = new Map<number, EncodedShard>();

  constructor(
    data: Dataset,
    options: { shards: number; shardSize: number; seed: number; description: string },
  ) {
    const order = Array.from({ length: data.count }, (_, i) => i);
    createRng(options.seed).shuffle(order);
    const shardSize = Math.min(options.shardSize, data.count);
    const shards =
      shardSize === 0 ? 0 : Math.min(options.shards, Math.floor(data.count / shardSize));
    this.offered = selectExamples(data, order.slice(0, shards * shardSize));
    this.info = {
      shards,
      examplesPerShard: shards > 0 ? shardSize : 0,
      description: options.description,
    };
  }

  /** The shard's IDX files, or null when there is no such shard. */
  shard(index: number): EncodedShard | null {
    if (!Number.isInteger(index) || index < 0 || index >= this.info.shards) return null;
    let shard = this.encoded.get(index);
    if (!shard) {
      const size = this.info.examplesPerShard;
      shard = datasetToIdx(
        selectExamples(
          this.offered,
          Array.from({ length: size }, (_, i) => index * size + i),
        ),
      );
      this.encoded.set(index, shard);
    }
    return shard;
  }
}

/** No sample data on offer. */
export const NO_SAMPLE: SampleInfo = { shards: 0, examplesPerShard: 0, description: '' };
