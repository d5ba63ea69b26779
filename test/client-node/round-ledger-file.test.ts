import {
  chmodSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileRoundLedger, roundLedgerPath } from '../../client-node/round-ledger-file';
import { roundLedgerKey } from '../../shared/secagg/round-ledger';

let dir: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'cohort-ledger-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

const key = (i: number) => roundLedgerKey('ab'.repeat(16), 'mnist', `r${i}`);

describe('FileRoundLedger', () => {
  test('lives next to the identity file', () => {
    expect(roundLedgerPath('/home/me/.cohort/identity.json')).toBe(
      '/home/me/.cohort/identity.json.rounds',
    );
  });

  test('a missing file is an empty ledger, and nothing is created until a record', async () => {
    const path = join(dir, 'sub', 'identity.json.rounds');
    const ledger = await FileRoundLedger.open(path);
    expect(await ledger.has(key(1))).toBe(false);
    expect(() => statSync(path)).toThrow();
  });

  test('a record is on disk, owner-only, when it resolves, and survives a restart', async () => {
    const path = join(dir, 'sub', 'identity.json.rounds');
    const ledger = await FileRoundLedger.open(path);
    await ledger.record(key(1));
    await ledger.record(key(2));
    await ledger.record(key(1)); // already there: not written twice
    expect(readFileSync(path, 'utf8')).toBe(`${key(1)}\n${key(2)}\n`);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(await ledger.has(key(2))).toBe(true);

    const reopened = await FileRoundLedger.open(path);
    expect(await reopened.has(key(1))).toBe(true);
    expect(await reopened.has(key(2))).toBe(true);
    expect(await reopened.has(key(3))).toBe(false);
  });

  test('concurrent records all land, one line each', async () => {
    const path = join(dir, 'identity.json.rounds');
    const ledger = await FileRoundLedger.open(path);
    await Promise.all(Array.from({ length: 50 }, (_, i) => ledger.record(key(i))));
    const lines = readFileSync(path, 'utf8').trim().split('\n');
    expect(new Set(lines)).toEqual(new Set(Array.from({ length: 50 }, (_, i) => key(i))));
  });

  test('an existing file is tightened to 0600, blank lines and duplicates are tolerated', async () => {
    const path = join(dir, 'identity.json.rounds');
    writeFileSync(path, `${key(1)}\n\n${key(1)}\n${key(2)}`);
    chmodSync(path, 0o644);
    const ledger = await FileRoundLedger.open(path);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(ledger.size).toBe(2);
    expect(await ledger.has(key(2))).toBe(true);
  });

  test('keeps at least the newest `cap` keys, rewriting the file when it grows past them', async () => {
    const path = join(dir, 'identity.json.rounds');
    const ledger = await FileRoundLedger.open(path, { cap: 10 });
    for (let i = 0; i < 25; i++) await ledger.record(key(i));
    const lines = readFileSync(path, 'utf8').trim().split('\n');
    expect(lines.length).toBeGreaterThanOrEqual(10);
    expect(lines.length).toBeLessThanOrEqual(11);
    expect(lines.at(-1)).toBe(key(24));
    for (let i = 15; i < 25; i++) expect(await ledger.has(key(i))).toBe(true);
    expect(await ledger.has(key(0))).toBe(false);
    expect(statSync(path).mode & 0o777).toBe(0o600);

    // A file above the cap (e.g. written with a larger one) is trimmed at load.
    const trimmed = await FileRoundLedger.open(path, { cap: 3 });
    expect(trimmed.size).toBe(3);
    expect(readFileSync(path, 'utf8')).toBe(`${key(22)}\n${key(23)}\n${key(24)}\n`);
  });

  test('refuses keys that would not stay one line', async () => {
    const ledger = await FileRoundLedger.open(join(dir, 'identity.json.rounds'));
    await expect(ledger.record('a\nb')).rejects.toThrow(/one non-empty line/);
    await expect(ledger.record('')).rejects.toThrow(/one non-empty line/);
    // The ledger still works after a refused record.
    await ledger.record(key(1));
    expect(await ledger.has(key(1))).toBe(true);
  });

  test('a record that cannot be made durable rejects (the client must then not reveal)', async () => {
    const path = join(dir, 'identity.json.rounds');
    const ledger = await FileRoundLedger.open(path);
    mkdirSync(path); // the file cannot be opened for appending any more
    await expect(ledger.record(key(1))).rejects.toThrow();
    expect(await ledger.has(key(1))).toBe(false);
  });

  test('an unreadable ledger is refused at start-up', async () => {
    const blocker = join(dir, 'not-a-dir');
    writeFileSync(blocker, 'x');
    await expect(FileRoundLedger.open(join(blocker, 'identity.json.rounds'))).rejects.toThrow(
      /cannot read round ledger/,
    );
  });
});
