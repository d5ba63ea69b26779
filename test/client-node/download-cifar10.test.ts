import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { pack } from 'tar-stream';
import { CIFAR10_MD5, downloadCifar10 } from '../../client-node/data/download-cifar10';
import { loadTaskData } from '../../client-node/data/load-task-data';
import { isCohortError } from '../../shared/errors';
import { cifarRecords, tempFolder } from './data-fixtures';

/** A tar.gz in the official layout: cifar-10-batches-bin/{data_batch_1,2,test_batch}.bin + meta. */
async function tinyArchive(): Promise<Buffer> {
  const tar = pack();
  const chunks: Buffer[] = [];
  tar.on('data', (chunk: unknown) => chunks.push(chunk as Buffer));
  const ended = new Promise<void>((resolve) => tar.on('end', () => resolve()));
  tar.entry({ name: 'cifar-10-batches-bin/', type: 'directory' });
  tar.entry(
    { name: 'cifar-10-batches-bin/data_batch_1.bin' },
    Buffer.from(cifarRecords([0, 1, 2])),
  );
  // ~0.9 MB, so the download arrives in many chunks and reports progress several times.
  const many = Array.from({ length: 300 }, (_, i) => i % 10);
  tar.entry({ name: 'cifar-10-batches-bin/data_batch_2.bin' }, Buffer.from(cifarRecords(many)));
  tar.entry({ name: 'cifar-10-batches-bin/test_batch.bin' }, Buffer.from(cifarRecords([5, 6])));
  tar.entry({ name: 'cifar-10-batches-bin/batches.meta.txt' }, 'airplane\nautomobile\n');
  tar.entry({ name: 'cifar-10-batches-bin/../../escape.bin' }, 'must not be written');
  tar.finalize();
  await ended;
  // Large enough for several progress lines.
  return gzipSync(Buffer.concat(chunks), { level: 0 });
}

function md5(bytes: Buffer): string {
  return createHash('md5').update(bytes).digest('hex');
}

async function serve(
  body: Buffer,
): Promise<{ url: string; hits: () => number; close: () => Promise<void> }> {
  let hits = 0;
  const server: Server = createServer((req, res) => {
    hits++;
    if (req.url === '/moved') {
      res.writeHead(302, { location: '/cifar-10-binary.tar.gz' }).end();
      return;
    }
    if (req.url !== '/cifar-10-binary.tar.gz') {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-length': body.length, 'content-type': 'application/gzip' });
    res.end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/cifar-10-binary.tar.gz`,
    hits: () => hits,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

let cache: ReturnType<typeof tempFolder>;
beforeEach(() => {
  cache = tempFolder();
});
afterEach(() => cache.cleanup());

describe('downloadCifar10', () => {
  it('downloads with progress, verifies, extracts, then reuses the cache', async () => {
    const archive = await tinyArchive();
    const server = await serve(archive);
    try {
      const lines: string[] = [];
      const options = {
        cacheDir: cache.dir,
        url: server.url,
        md5: md5(archive),
        log: (l: string) => lines.push(l),
      };
      const folder = await downloadCifar10(options);
      expect(folder).toBe(join(cache.dir, 'cifar-10-batches-bin'));
      expect(
        readdirSync(folder)
          .filter((n) => !n.startsWith('.'))
          .sort(),
      ).toEqual(['batches.meta.txt', 'data_batch_1.bin', 'data_batch_2.bin', 'test_batch.bin']);
      expect(readFileSync(join(folder, 'test_batch.bin'))).toEqual(
        Buffer.from(cifarRecords([5, 6])),
      );
      expect(existsSync(join(cache.dir, '..', 'escape.bin'))).toBe(false);
      expect(lines.filter((l) => /^\s+\d+% \(/.test(l)).length).toBeGreaterThanOrEqual(5);
      expect(lines.join('\n')).toMatch(/checksum OK/);
      // Only the extracted folder remains (no archive or partial files).
      expect(readdirSync(cache.dir)).toEqual(['cifar-10-batches-bin']);

      await downloadCifar10(options);
      expect(server.hits()).toBe(1);
      expect(lines[lines.length - 1]).toMatch(/using cached CIFAR-10/);
    } finally {
      await server.close();
    }
  });

  it('follows a redirect', async () => {
    const archive = await tinyArchive();
    const server = await serve(archive);
    try {
      const folder = await downloadCifar10({
        cacheDir: cache.dir,
        url: server.url.replace('cifar-10-binary.tar.gz', 'moved'),
        md5: md5(archive),
        log: () => undefined,
      });
      expect(server.hits()).toBe(2);
      expect(existsSync(join(folder, 'data_batch_1.bin'))).toBe(true);
    } finally {
      await server.close();
    }
  });

  it('is what loadTaskData uses for cifar10, reusing a completed cache without the network', async () => {
    // A cache left by an earlier complete download of the official archive.
    cache.write('cifar-10-batches-bin/data_batch_1.bin', cifarRecords([1, 2, 3]));
    cache.write('cifar-10-batches-bin/test_batch.bin', cifarRecords([4]));
    cache.write('cifar-10-batches-bin/.cohort-complete', new TextEncoder().encode(CIFAR10_MD5));
    const lines: string[] = [];
    const { train, test } = await loadTaskData('cifar10', {
      cacheDir: cache.dir,
      log: (l) => lines.push(l),
    });
    expect(lines).toEqual([`using cached CIFAR-10 in ${join(cache.dir, 'cifar-10-batches-bin')}`]);
    expect(Array.from(train.labels)).toEqual([1, 2, 3]);
    expect(test.count).toBe(1);
  });

  it('rejects a checksum mismatch and leaves no cache behind', async () => {
    const archive = await tinyArchive();
    const server = await serve(archive);
    try {
      const error = await downloadCifar10({
        cacheDir: cache.dir,
        url: server.url,
        md5: '0'.repeat(32),
        log: () => undefined,
      }).catch((e: unknown) => e);
      expect(isCohortError(error, 'DATA_DOWNLOAD_FAILED')).toBe(true);
      expect(String(error)).toMatch(/checksum mismatch/);
      expect(String(error)).toMatch(/--data/);
      expect(readdirSync(cache.dir)).toEqual([]);
    } finally {
      await server.close();
    }
  });

  it('fails clearly when the server is unreachable or answers 404', async () => {
    const server = await serve(Buffer.alloc(0));
    const missing = server.url.replace('cifar-10-binary.tar.gz', 'nope');
    const notFound = await downloadCifar10({
      cacheDir: cache.dir,
      url: missing,
      log: () => undefined,
    }).catch((e: unknown) => e);
    expect(String(notFound)).toMatch(/HTTP 404/);
    await server.close();
    const refused = await downloadCifar10({
      cacheDir: cache.dir,
      url: server.url,
      log: () => undefined,
    }).catch((e: unknown) => e);
    expect(isCohortError(refused, 'DATA_DOWNLOAD_FAILED')).toBe(true);
    expect(String(refused)).toMatch(/ECONNREFUSED/);
    expect(String(refused)).toMatch(/pass --data <folder> with local CIFAR-10/);
  });

  it('rejects a corrupt archive', async () => {
    const garbage = Buffer.concat([
      gzipSync(Buffer.from('not a tar file at all')),
      Buffer.alloc(10),
    ]);
    const server = await serve(garbage);
    try {
      const error = await downloadCifar10({
        cacheDir: cache.dir,
        url: server.url,
        md5: md5(garbage),
        log: () => undefined,
      }).catch((e: unknown) => e);
      expect(isCohortError(error, 'DATA_DOWNLOAD_FAILED')).toBe(true);
      expect(readdirSync(cache.dir)).toEqual([]);
    } finally {
      await server.close();
    }
  });
});
