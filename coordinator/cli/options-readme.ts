/* eslint-disable no-console -- a docs generator run from npm */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CommandName, CommandOption, OptionName, OptionSpec } from '../options';
import {
  CLIENT_OPTIONS,
  COMMAND_OPTIONS,
  COORDINATOR_ONLY,
  OPTIONS,
  ROUND_OPTIONS,
  SIMULATION_ONLY,
} from '../options';
import { describeDefault } from './command-options';

/**
 * The README's option tables, generated from the options table so the documentation cannot
 * drift from the CLI. Each table sits between `<!-- options:NAME -->` and
 * `<!-- /options:NAME -->`; `npm run docs:options` rewrites them, and
 * test/cli/options-table.test.ts fails when the README holds anything else.
 */

/** A README table: which options, and the commands whose defaults it shows. */
interface ReadmeTable {
  readonly options: readonly OptionName[];
  readonly commands: readonly CommandName[];
}

/** The tables the README shows, by marker name. */
export const README_TABLES: Record<string, ReadmeTable> = {
  round: { options: ROUND_OPTIONS, commands: ['coordinator', 'simulate', 'demo'] },
  coordinator: { options: COORDINATOR_ONLY, commands: ['coordinator'] },
  simulate: { options: SIMULATION_ONLY, commands: ['simulate', 'demo'] },
  client: { options: CLIENT_OPTIONS, commands: ['client'] },
};

const cell = (text: string): string => text.replace(/\|/g, '\\|');

/** `--rounds N`, `--task mnist|cifar10`, `--keep-alive`. */
function flagCell(spec: OptionSpec): string {
  if (spec.type.kind === 'choice')
    return `\`${cell(`${spec.flag} ${spec.type.choices.join('|')}`)}\``;
  if (!spec.placeholder) return `\`${spec.flag}\``;
  const value = spec.placeholder.replace(/^<|>$/g, '');
  return `\`${cell(`${spec.flag} ${spec.type.kind === 'on-off' ? value : value.toUpperCase()}`)}\``;
}

/** The default for the first command, then where another command's differs. */
function defaultCell(name: OptionName, commands: readonly CommandName[]): string {
  const spec: OptionSpec = OPTIONS[name];
  const labels = commands.map((command) => {
    if (spec.required) return '(required)';
    const use = COMMAND_OPTIONS[command].find((o: CommandOption) => o.name === name)!;
    const described = describeDefault(spec, use);
    if (!described) return '—';
    return described.isValue ? `\`${described.text}\`` : described.text;
  });
  const first = labels[0]!;
  const differing = commands
    .map((command, i) => ({ command, label: labels[i]! }))
    .filter((o, i) => i > 0 && o.label !== first)
    .map((o) => `\`${o.command}\`: ${o.label}`)
    .join(', ');
  return cell(differing ? `${first} (${differing})` : first);
}

/** One README table, as Markdown rows (prettier aligns them). */
export function renderTable(table: ReadmeTable): string {
  const rows = table.options.map((name) => {
    const spec: OptionSpec = OPTIONS[name];
    return `| ${flagCell(spec)} | ${defaultCell(name, table.commands)} | ${cell(spec.doc ?? spec.help)} |`;
  });
  return ['| flag | default | meaning |', '| --- | --- | --- |', ...rows].join('\n');
}

const marker = (name: string) =>
  new RegExp(`(<!-- options:${name} -->)[\\s\\S]*?(<!-- /options:${name} -->)`);

/** The README with every generated table replaced by its current rendering. */
export function withGeneratedTables(readme: string): string {
  let out = readme;
  for (const [name, table] of Object.entries(README_TABLES)) {
    if (!marker(name).test(out)) throw new Error(`README has no <!-- options:${name} --> block`);
    out = out.replace(
      marker(name),
      (_m, open: string, close: string) => `${open}\n\n${renderTable(table)}\n\n${close}`,
    );
  }
  return out;
}

/** A table's rows as trimmed cells, separator rows dropped: what prettier's alignment keeps. */
export function tableCells(markdown: string): string[][] {
  return markdown
    .split('\n')
    .filter((line) => line.trim().startsWith('|'))
    .map((line) =>
      line
        .trim()
        .replace(/^\||\|$/g, '')
        .split(/(?<!\\)\|/)
        .map((c) => c.trim()),
    )
    .filter((cells) => !cells.every((c) => /^:?-+:?$/.test(c)));
}

/** The text between a table's markers in the README. */
export function readmeBlock(readme: string, name: string): string | undefined {
  return marker(name).exec(readme)?.[0];
}

async function main(): Promise<void> {
  const path = join(__dirname, '..', '..', '..', 'README.md');
  const prettier = await import('prettier');
  const generated = withGeneratedTables(readFileSync(path, 'utf8'));
  const options = (await prettier.resolveConfig(path)) ?? {};
  writeFileSync(path, await prettier.format(generated, { ...options, filepath: path }));
  console.log(`README.md: ${Object.keys(README_TABLES).length} option tables regenerated`);
}

if (require.main === module) {
  main().catch((error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  });
}
