/**
 * "browser": training images/second inside headless Chromium for each tfjs backend a tab can
 * use (WebGPU, WebGL, wasm with Cohort's kernels, plain JS), on the built-in CNNs, beside the
 * Node client's wasm figure and PyTorch measured in the same run; plus the backend the join
 * page's automatic choice picks here. The page is served with the coordinator's own headers
 * (COOP/COEP: cross-origin isolated, so wasm may use threads).
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { selectBackend } from '../../client-node/backend/select-backend';
import { SECURITY_HEADERS } from '../../coordinator/web/security-headers';
import { getModelSpec } from '../../shared/model/registry';
import type { TaskName } from '../../shared/model/registry';
import { summarizeModelSpec } from '../../shared/model/validate-spec';
import { CHROMIUM_ARGS, bundleForBrowser, findChromium } from '../helpers/browser-page';
import type { PageThroughput } from './browser-bench-page';
import { syntheticData } from './bench-data';
import type { BenchRow, BenchSuite, SuiteContext, SuiteResult } from './bench-types';
import { trainingImagesPerSecond } from './train-throughput';
import { locateTorchReference, runTorchReference } from './torch-reference';

const BATCH = 64;
const BACKENDS = ['webgpu', 'webgl', 'wasm', 'cpu'] as const;

/** Images timed per backend: plain JS and a software-rendered WebGL get fewer. */
function imagesFor(backend: (typeof BACKENDS)[number], quick: boolean): number {
  if (quick) return backend === 'wasm' ? 128 : 64;
  return backend === 'wasm' || backend === 'webgpu' ? 512 : 128;
}

export const browserSuite: BenchSuite = {
  name: 'browser',
  description:
    'training img/s in headless Chromium per backend (webgpu, webgl, wasm + Cohort kernels, cpu) ' +
    "on the mnist and cifar10 CNNs vs the Node client's wasm and PyTorch; the automatic choice",
  run: runBrowserSuite,
};

async function runBrowserSuite(context: SuiteContext): Promise<SuiteResult> {
  const lookup = findChromium();
  const columns = [
    { key: 'model', label: 'model' },
    { key: 'params', label: 'params' },
    { key: 'where', label: 'runs in' },
    { key: 'backend', label: 'backend' },
    { key: 'images', label: 'images timed' },
    { key: 'imgPerSec', label: 'img/s' },
    { key: 'vsTorch', label: 'vs torch' },
    { key: 'note', label: 'note' },
  ];
  if (!('executablePath' in lookup)) {
    return { columns, rows: [], notes: [`skipped: ${lookup.missing} (apt-get install chromium)`] };
  }
  const bundle = await bundleForBrowser(
    'test/bench/browser-bench-page.ts',
    'CohortBenchPage',
    context.repoRoot,
  );
  const wasmDir = join(
    context.repoRoot,
    'node_modules',
    '@tensorflow',
    'tfjs-backend-wasm',
    'dist',
  );
  const html =
    '<!doctype html><html><head><meta charset="utf-8"><title>cohort bench</title>' +
    '<link rel="icon" href="data:,"><script src="/bench.js"></script></head><body></body></html>';
  const server = createServer((req, res) => {
    const url = req.url ?? '/';
    const send = (type: string, body: string | Buffer) => {
      res.writeHead(200, { ...SECURITY_HEADERS, 'Content-Type': type });
      res.end(body);
    };
    if (url === '/') return send('text/html; charset=utf-8', html);
    if (url === '/bench.js') return send('text/javascript', bundle.code);
    const wasm = /^\/assets\/(tfjs-backend-wasm[a-z-]*\.wasm)$/.exec(url);
    if (wasm) return send('application/wasm', readFileSync(join(wasmDir, wasm[1]!)));
    res.writeHead(404, SECURITY_HEADERS);
    res.end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const browser = await chromium.launch({
    executablePath: lookup.executablePath,
    headless: true,
    args: [...CHROMIUM_ARGS.filter((a) => a !== '--disable-gpu'), '--enable-unsafe-webgpu'],
  });
  const rows: BenchRow[] = [];
  const notes: string[] = [];
  const chosen: Record<string, string> = {};
  const torchReference = locateTorchReference(context.repoRoot);
  try {
    const page = await browser.newPage();
    await page.goto(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
    const call = <T>(fn: string, ...args: unknown[]) =>
      page.evaluate<T>(
        `globalThis.CohortBenchPage.${fn}(${args.map((a) => JSON.stringify(a)).join(', ')})`,
      );
    const isolated = await page.evaluate<boolean>('crossOriginIsolated');
    const threads = await page.evaluate<number>('navigator.hardwareConcurrency');
    notes.push(`page cross-origin isolated: ${isolated}; navigator.hardwareConcurrency ${threads}`);
    for (const task of ['mnist', 'cifar10'] as TaskName[]) {
      const spec = getModelSpec(task);
      const params = summarizeModelSpec(spec).parameters;
      context.progress(`browser: ${task} PyTorch reference`);
      const torchImages = context.quick ? 128 : 512;
      const torch = await runTorchReference(torchReference, spec, {
        threads: 1,
        batch: BATCH,
        images: torchImages,
        epochs: 1,
      });
      const torchRate = torch.ok ? torch.imgPerSec : null;
      rows.push({
        model: task,
        params,
        where: 'python',
        backend: torch.ok ? `PyTorch ${torch.torchVersion}, 1 thread` : 'PyTorch',
        images: torchImages,
        imgPerSec: torchRate,
        vsTorch: torch.ok ? 1 : null,
        note: torch.ok ? 'reference' : `skipped: ${torch.reason}`,
      });
      context.progress(`browser: ${task} Node wasm`);
      const nodeImages = context.quick ? 128 : 512;
      const nodeRate = await nodeWasmThroughput(task, nodeImages);
      rows.push({
        model: task,
        params,
        where: 'Node',
        backend: 'wasm + Cohort kernels',
        images: nodeImages,
        imgPerSec: nodeRate,
        vsTorch: torchRate !== null ? nodeRate / torchRate : null,
        note: 'the Node client without tfjs-node',
      });
      for (const backend of BACKENDS) {
        const images = imagesFor(backend, context.quick);
        context.progress(`browser: ${task} ${backend} in Chromium (${images} images)`);
        // A fresh page per backend: a backend the page let go cannot be started again.
        await page.reload();
        const result = await call<PageThroughput>('throughput', task, backend, images, BATCH);
        rows.push({
          model: task,
          params,
          where: 'Chromium',
          backend: backend === 'wasm' ? 'wasm + Cohort kernels' : backend,
          images: result.imgPerSec !== null ? images : null,
          imgPerSec: result.imgPerSec,
          vsTorch:
            result.imgPerSec !== null && torchRate !== null ? result.imgPerSec / torchRate : null,
          note:
            result.error !== null
              ? `unavailable: ${result.error.slice(0, 80)}`
              : (result.detail ?? ''),
        });
      }
      context.progress(`browser: ${task} automatic choice`);
      await page.reload();
      const auto = await call<{ backend: string; reason: string }>('autoChoice', task);
      chosen[task] = auto.backend;
      notes.push(`automatic choice for ${task}: ${auto.backend} (${auto.reason})`);
    }
  } finally {
    await browser.close();
    server.closeAllConnections();
    server.close();
  }
  notes.push(
    `Each row trains one untimed warm-up batch, then times trainLocally over the images (batch ${BATCH}, SGD). ` +
      'Headless Chromium without a GPU runs WebGL on SwiftShader and WebGPU (--enable-unsafe-webgpu) on a software adapter: both lose to wasm there.',
    'vs torch = img/s / PyTorch img/s (1 thread) on the same model in this run.',
  );
  return { columns, rows, notes, details: { automaticChoice: chosen, batch: BATCH } };
}

/** The Node client's figure: trainLocally on the wasm backend with Cohort's kernels. */
async function nodeWasmThroughput(task: TaskName, images: number): Promise<number> {
  await selectBackend({ preferred: 'wasm' });
  const spec = getModelSpec(task);
  return trainingImagesPerSecond(spec, syntheticData(spec, images).data, {
    batch: BATCH,
    epochs: 1,
  });
}
