import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const ROOT = join(__dirname, '..', '..');

describe("README 'Guarantees' table", () => {
  test('names only tests that exist, and every row names one', () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const section = /\n## Guarantees\n([\s\S]*?)\n## /.exec(readme)?.[1] ?? '';
    const rows = section.split('\n').filter((l) => l.startsWith('| **') || /^\| [A-Z]/.test(l));
    expect(rows.length).toBeGreaterThan(10);
    for (const row of rows) expect(row).toMatch(/`test\/[^`]+`/);
    const named = [...section.matchAll(/`(test\/[^`]+)`/g)].map((m) => m[1]!);
    expect(named.filter((path) => !existsSync(join(ROOT, path)))).toEqual([]);
  });
});
