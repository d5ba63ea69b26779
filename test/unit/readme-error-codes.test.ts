import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ERROR_CODES } from '../../shared/errors';

describe('README error code table', () => {
  test('lists every published error code with its meaning', () => {
    // Prettier pads table cells; compare with runs of spaces collapsed.
    const readme = readFileSync(join(__dirname, '..', '..', 'README.md'), 'utf8').replace(
      / +/g,
      ' ',
    );
    const missing = Object.entries(ERROR_CODES).filter(
      ([code, meaning]) => !readme.includes(`| \`${code}\` | ${meaning} |`),
    );
    expect(missing).toEqual([]);
  });
});
