import { createCipheriv, createHash } from 'node:crypto';
import { PRG_CHUNK_ELEMENTS, expandMask } from '../../shared/secagg/prg';
import type { BrowserBundle, BundlePage } from '../helpers/browser-page';
import { bundleForBrowser, describeWithChromium, openBundlePage } from '../helpers/browser-page';
import type { MaskRequest, MaskSummary } from './fixtures/mask-page';
import { summarizeMask } from './fixtures/mask-page';

/**
 * Secure aggregation only works if a browser client and the Node coordinator expand the same
 * seed into the same mask. This suite runs the real shared/secagg/prg.ts in Chromium and checks
 * its output against Node's and against fixed known-answer vectors.
 *
 * The vectors were computed once with node:crypto alone (see referenceMask below):
 * key = first 32 bytes of SHA-512(encodeFields('cohort/secagg/v1/prg-key', [seed])), where a
 * field is 1 tag byte (1 = text, 0 = bytes), a 4-byte big-endian length and the bytes; then
 * AES-256-CTR over zero bytes with a zero 16-byte initial counter; element i is the
 * little-endian uint32 at keystream bytes 4i..4i+3.
 */

const SEED_ZERO = '00'.repeat(32);
const SEED_COUNTING = '000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f';
const SEED_RANDOM = 'fd2d327c2a869070acf59d82faa3f6281351f9d40212070c8fe3fe2cd60e1ed3';

interface KnownAnswer extends MaskSummary {
  seedHex: string;
}

const KNOWN_ANSWERS: readonly KnownAnswer[] = [
  {
    seedHex: SEED_ZERO,
    length: 1,
    first: [4053749356],
    last: [4053749356],
    sha256: 'b48a339632d33dbc629a4c8bb2e6d577f81ba46e01534d81ab2b44ab8a377528',
  },
  {
    seedHex: SEED_ZERO,
    length: 4,
    first: [4053749356, 2433745953, 74590626, 251667563],
    last: [4053749356, 2433745953, 74590626, 251667563],
    sha256: 'e64850494f8b721a4e5ee1992e3d2ebbfc1a16f8c522cbe9b3b2ad7ba526c590',
  },
  {
    seedHex: SEED_ZERO,
    length: 5,
    first: [4053749356, 2433745953, 74590626, 251667563, 3919264665],
    last: [4053749356, 2433745953, 74590626, 251667563, 3919264665],
    sha256: 'ac31676ef947af99fd644b58587a5bdcc1097d1575621977297adc06fd43c2b2',
  },
  {
    seedHex: SEED_ZERO,
    length: 37,
    first: [
      4053749356, 2433745953, 74590626, 251667563, 3919264665, 2237588545, 1286347330, 2309289354,
    ],
    last: [
      1203522246, 2552205573, 4089910255, 1683863801, 3195327715, 117081198, 2461187, 2497037276,
    ],
    sha256: '7148cd3d214d46137f8a5b2726dd5a894866244a595aef1ba7a9e142dfc89140',
  },
  {
    seedHex: SEED_COUNTING,
    length: 5,
    first: [3823574027, 2980561612, 3895594050, 2442334484, 488113680],
    last: [3823574027, 2980561612, 3895594050, 2442334484, 488113680],
    sha256: '929a9e9708fdaa7621eb868d280d5e509e6ac467c252a15deb09245196885772',
  },
  {
    // PRG_CHUNK_ELEMENTS + 3: the last 8 elements straddle the module's chunk boundary.
    seedHex: SEED_COUNTING,
    length: 1048579,
    first: [
      3823574027, 2980561612, 3895594050, 2442334484, 488113680, 4236990573, 1666633156, 2188970151,
    ],
    last: [
      204538653, 3977843587, 2445074752, 1660709818, 201345472, 502193996, 2172707823, 3843999594,
    ],
    sha256: '015d5d3acc78a98b92407984b571016f0b774ca84d681e25edb161a2a349808a',
  },
  {
    seedHex: SEED_RANDOM,
    length: 4,
    first: [3420761070, 330115035, 27258207, 2386027486],
    last: [3420761070, 330115035, 27258207, 2386027486],
    sha256: 'b09283fd80dc5e67cbc107242117ec6766871ee9c986c9d8c05f19c95d7c94ca',
  },
  {
    seedHex: SEED_RANDOM,
    length: 1000,
    first: [
      3420761070, 330115035, 27258207, 2386027486, 1650244027, 3301646219, 3096183700, 2173074580,
    ],
    last: [
      3531740962, 583213912, 1377412687, 2126500805, 252662176, 1449482310, 3497940289, 1904345055,
    ],
    sha256: '0efda593f0642ab5b284f7bbc70d3e111ac4eafac78767fc7213cf556f457bb8',
  },
];

/** Extra requests without vectors: small chunk sizes force many WebCrypto calls per mask. */
const CHUNKED_REQUESTS: readonly MaskRequest[] = [
  { seedHex: SEED_COUNTING, length: 13, chunkElements: 4 },
  { seedHex: SEED_RANDOM, length: 1000, chunkElements: 8 },
  { seedHex: SEED_ZERO, length: 0 },
];

const summaryOf = (k: KnownAnswer): MaskSummary => ({
  length: k.length,
  first: k.first,
  last: k.last,
  sha256: k.sha256,
});

/** The documented construction rebuilt from node:crypto only, independent of shared/. */
function referenceMask(seedHex: string, length: number): Uint32Array {
  const field = (tag: number, bytes: Buffer): Buffer => {
    const header = Buffer.alloc(5);
    header[0] = tag;
    header.writeUInt32BE(bytes.length, 1);
    return Buffer.concat([header, bytes]);
  };
  const encoded = Buffer.concat([
    field(1, Buffer.from('cohort/secagg/v1/prg-key', 'utf8')),
    field(0, Buffer.from(seedHex, 'hex')),
  ]);
  const key = createHash('sha512').update(encoded).digest().subarray(0, 32);
  const cipher = createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
  const stream = cipher.update(Buffer.alloc(Math.ceil(length / 4) * 16));
  const out = new Uint32Array(length);
  for (let i = 0; i < length; i++) out[i] = stream.readUInt32LE(4 * i);
  return out;
}

describeWithChromium(
  'mask generator: Node and Chromium agree (known-answer vectors)',
  (chromium) => {
    let bundle: BrowserBundle;
    let browser: BundlePage | undefined;

    beforeAll(async () => {
      bundle = await bundleForBrowser('test/browser/fixtures/mask-page.ts', 'CohortMaskPage');
      browser = await openBundlePage(chromium, bundle);
    }, 60_000);

    afterAll(async () => {
      await browser?.close();
    });

    it('bundles the real prg.ts for the browser without Node built-ins', () => {
      expect(bundle.inputs).toContain('shared/secagg/prg.ts');
      expect(bundle.inputs.filter((f) => f.startsWith('node:'))).toEqual([]);
      // tweetnacl's optional require('crypto') (dead code where crypto.getRandomValues exists)
      // is the only import a package "browser" map may switch off.
      expect(bundle.disabledImports).toEqual([
        'node_modules/tweetnacl/nacl-fast.js -> (disabled):crypto',
      ]);
    });

    it('runs in a secure context with WebCrypto', async () => {
      await expect(browser!.call('pageEnvironment')).resolves.toEqual({
        isSecureContext: true,
        hasSubtle: true,
      });
      // The boundary-crossing vector (length PRG_CHUNK_ELEMENTS + 3) must really cross it there.
      await expect(browser!.call('prgChunkElements')).resolves.toBe(PRG_CHUNK_ELEMENTS);
      expect(KNOWN_ANSWERS.some((k) => k.length === PRG_CHUNK_ELEMENTS + 3)).toBe(true);
    });

    it('node:crypto reference reproduces the hard-coded vectors', async () => {
      for (const k of KNOWN_ANSWERS) {
        expect(await summarizeMask(referenceMask(k.seedHex, k.length))).toEqual(summaryOf(k));
      }
    });

    it("Node's expandMask gives the known answers", async () => {
      for (const k of KNOWN_ANSWERS) {
        const mask = await expandMask(Buffer.from(k.seedHex, 'hex'), k.length);
        expect(await summarizeMask(mask)).toEqual(summaryOf(k));
      }
    });

    it("Chromium's expandMask gives the known answers", async () => {
      const requests: MaskRequest[] = KNOWN_ANSWERS.map((k) => ({
        seedHex: k.seedHex,
        length: k.length,
      }));
      const fromBrowser = await browser!.call<MaskSummary[]>('summarizeMasks', requests);
      expect(fromBrowser).toEqual(KNOWN_ANSWERS.map(summaryOf));
      expect(browser!.pageErrors).toEqual([]);
    });

    it('Chromium and Node agree with small chunk sizes and zero length', async () => {
      const fromBrowser = await browser!.call<MaskSummary[]>('summarizeMasks', CHUNKED_REQUESTS);
      const fromNode: MaskSummary[] = [];
      for (const r of CHUNKED_REQUESTS) {
        const mask = await expandMask(Buffer.from(r.seedHex, 'hex'), r.length, r.chunkElements);
        expect(Array.from(mask)).toEqual(Array.from(referenceMask(r.seedHex, r.length)));
        fromNode.push(await summarizeMask(mask));
      }
      expect(fromBrowser).toEqual(fromNode);
      expect(fromBrowser[2]).toEqual({
        length: 0,
        first: [],
        last: [],
        sha256: createHash('sha256').digest('hex'),
      });
    });
  },
);
