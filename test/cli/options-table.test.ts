import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { buildProgram } from '../../coordinator/cli/main';
import { configOf, tableValues } from '../../coordinator/cli/command-options';
import {
  README_TABLES,
  readmeBlock,
  renderTable,
  tableCells,
} from '../../coordinator/cli/options-readme';
import { CONFIG_KEYS, resolveCoordinatorConfig } from '../../coordinator/config';
import type { CommandName, OptionName, OptionSpec } from '../../coordinator/options';
import { COMMAND_OPTIONS, OPTIONS, resolveDefault } from '../../coordinator/options';

/**
 * The options table is the single source of every flag, the config schema's defaults and
 * ranges, and the README's option tables. These tests fail when any of them drifts from it:
 * the bug they guard against is a bare `cohort coordinator` refused because the CLI's
 * default --min-clients (2) was not the schema's (3).
 */

const README = readFileSync(join(__dirname, '..', '..', 'README.md'), 'utf8');

function commandOf(path: string[]): Command {
  let command: Command = buildProgram();
  for (const name of path) command = command.commands.find((c) => c.name() === name)!;
  return command;
}

const COMMAND_PATHS: Record<CommandName, string[]> = {
  coordinator: ['coordinator'],
  client: ['client'],
  simulate: ['simulate'],
  demo: ['demo'],
  model: ['model', 'spec'],
  'keys-registrar': ['keys', 'registrar'],
  'keys-certify': ['keys', 'certify'],
};

/** Parses `args` with a command's real options, without running its action. */
function parse(name: CommandName, args: string[]): Record<string, unknown> {
  const command = commandOf(COMMAND_PATHS[name]);
  command.action(() => undefined);
  command.exitOverride();
  command.configureOutput({ writeErr: () => undefined, writeOut: () => undefined });
  command.parse(args, { from: 'user' });
  return command.opts();
}

describe('the options table', () => {
  it.each(Object.keys(README_TABLES))(
    'README table %s is the one generated from it (run `npm run docs:options`)',
    (name) => {
      const block = readmeBlock(README, name);
      expect(block).toBeDefined();
      expect(tableCells(block!)).toEqual(tableCells(renderTable(README_TABLES[name]!)));
    },
  );

  it.each(Object.keys(COMMAND_PATHS) as CommandName[])(
    'is exactly the flags of `cohort %s`, with its defaults',
    (name) => {
      const command = commandOf(COMMAND_PATHS[name]);
      const flags = command.options.map((o) => o.long).sort();
      const declared = COMMAND_OPTIONS[name].map((o) => OPTIONS[o.name].flag).sort();
      expect(flags).toEqual(declared);
      for (const use of COMMAND_OPTIONS[name]) {
        const spec: OptionSpec = OPTIONS[use.name];
        const option = command.options.find((o) => o.long === spec.flag)!;
        expect([spec.flag, option.defaultValue]).toEqual([
          spec.flag,
          resolveDefault(use.default ?? spec.default),
        ]);
      }
    },
  );

  it('gives the config schema the same defaults as the coordinator command', () => {
    const schemaDefaults = resolveCoordinatorConfig({}) as Record<string, unknown>;
    const command = COMMAND_OPTIONS.coordinator;
    let compared = 0;
    for (const key of CONFIG_KEYS) {
      const use = command.find((o) => o.name === key);
      if (!use) continue;
      const spec: OptionSpec = OPTIONS[use.name];
      const tableDefault = resolveDefault(spec.default);
      if (key === 'experiment') continue; // defaults to the task, resolved by the schema
      expect([key, schemaDefaults[key]]).toEqual([key, tableDefault]);
      compared++;
    }
    expect(compared).toBeGreaterThan(25);
    // Every config field is an option of the coordinator command.
    const names = command.map((o) => o.name as string);
    expect(CONFIG_KEYS.filter((k) => !names.includes(k))).toEqual([]);
  });

  it('a bare `cohort coordinator` resolves to a config the coordinator accepts (secure, min 3)', () => {
    const config = resolveCoordinatorConfig(
      configOf(tableValues('coordinator', parse('coordinator', []))),
    );
    expect(config).toMatchObject({ minClients: 3, secureAggregation: true, port: 8080 });
  });

  it('maps every flag onto its config field (e.g. --lr, --clip, --round-timeout in seconds)', () => {
    const values = tableValues(
      'coordinator',
      parse('coordinator', [
        '--lr',
        '0.05',
        '--clip',
        '2',
        '--round-timeout',
        '1.5',
        '--evaluate-timeout',
        '30',
        '--min-clients',
        '4',
        '--max-message-bytes',
        '5000000',
      ]),
    );
    expect(resolveCoordinatorConfig(configOf(values))).toMatchObject({
      learningRate: 0.05,
      clipRange: 2,
      roundTimeoutMs: 1500,
      evaluateTimeoutMs: 30_000,
      minClients: 4,
      maxMessageBytes: 5_000_000,
    });
  });

  it('the CLI and the schema accept and refuse the same integer ranges', () => {
    const integers = COMMAND_OPTIONS.coordinator
      .map((o) => o.name)
      .filter((name: OptionName) => CONFIG_KEYS.includes(name))
      .filter((name: OptionName) => OPTIONS[name].type.kind === 'integer');
    expect(integers.length).toBeGreaterThan(8);
    for (const name of integers) {
      const spec: OptionSpec = OPTIONS[name];
      if (spec.type.kind !== 'integer') continue;
      const below = spec.type.min - 1;
      expect(() => parse('coordinator', [spec.flag, String(below)])).toThrow();
      expect(() => resolveCoordinatorConfig({ [name]: below })).toThrow(/CONFIG_INVALID/);
      // Plain, with one client: the smallest value of each range is valid on its own.
      const smallest = { secureAggregation: false, minClients: 1, [name]: spec.type.min };
      expect(() => resolveCoordinatorConfig(smallest)).not.toThrow();
    }
  });
});
