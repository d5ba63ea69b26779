import type { Command } from 'commander';
import { InvalidArgumentError, Option } from 'commander';
import { CONFIG_KEYS } from '../config';
import type { CoordinatorConfigInput } from '../config';
import type {
  CommandName,
  CommandOption,
  OptionName,
  OptionSpec,
  OptionType,
  OptionValues,
} from '../options';
import { COMMAND_OPTIONS, OPTIONS, attributeOf, resolveDefault } from '../options';
import { integerFlag, numberFlag, onOffFlag, secondsFlag } from './parse';

/**
 * Turns the options table (coordinator/options.ts) into commander options, and commander's
 * parsed values back into options by name: the commands declare no flag of their own.
 */

function parserFor(type: OptionType): ((value: string) => unknown) | undefined {
  switch (type.kind) {
    case 'integer':
      return integerFlag(type.min, type.max);
    case 'number':
      return numberFlag(type.min, type.max, type.exclusiveMin ?? false);
    case 'seconds':
      return secondsFlag;
    case 'on-off':
      return onOffFlag;
    case 'text': {
      const { pattern, patternHelp, validate } = type;
      if (!pattern && !validate) return undefined;
      return (value: string) => {
        if (pattern && !pattern.test(value)) {
          throw new InvalidArgumentError(patternHelp ?? 'invalid value');
        }
        try {
          validate?.(value);
        } catch (error) {
          throw new InvalidArgumentError((error as Error).message);
        }
        return value;
      };
    }
    default:
      return undefined;
  }
}

/** How a default reads: a value (shown as code in the README) or a note in words. */
export interface DefaultDescription {
  readonly text: string;
  readonly isValue: boolean;
}

/** How a command's default for an option reads in `--help` and the README. */
export function describeDefault(
  spec: OptionSpec,
  use: CommandOption,
): DefaultDescription | undefined {
  const ownDefault = use.default !== undefined;
  const value = resolveDefault(ownDefault ? use.default : spec.default);
  const label = use.defaultLabel ?? (ownDefault ? undefined : spec.defaultLabel);
  if (label !== undefined) return { text: label, isValue: true };
  if (value === undefined) {
    const note = use.defaultNote ?? spec.defaultNote;
    return note !== undefined ? { text: note, isValue: false } : undefined;
  }
  if (spec.type.kind === 'seconds') return { text: String(Number(value) / 1000), isValue: true };
  if (typeof value === 'boolean') return { text: value ? 'on' : 'off', isValue: true };
  return { text: String(value), isValue: true };
}

/** One table option as a commander option, for one command. */
function commanderOption(use: CommandOption): Option {
  const spec: OptionSpec = OPTIONS[use.name];
  const flags = spec.placeholder ? `${spec.flag} ${spec.placeholder}` : spec.flag;
  const option = new Option(flags, spec.help);
  const parse = parserFor(spec.type);
  if (parse) option.argParser(parse);
  if (spec.type.kind === 'choice') option.choices(spec.type.choices);
  if (spec.required) option.makeOptionMandatory();
  const value = resolveDefault(use.default ?? spec.default);
  const described = describeDefault(spec, use);
  if (value !== undefined) {
    // Commander prints plain values itself; say how the others read.
    const plainValue = typeof value !== 'boolean' && described?.text === String(value);
    option.default(value, plainValue ? undefined : described?.text);
  } else if (described) {
    option.default(undefined, described.text);
  }
  return option;
}

/** Adds every option the table lists for `name` to `command`. */
export function addTableOptions(command: Command, name: CommandName): Command {
  for (const use of COMMAND_OPTIONS[name]) command.addOption(commanderOption(use));
  return command;
}

/** Commander's parsed values, renamed to the table's option names. */
export function tableValues(name: CommandName, parsed: Record<string, unknown>): OptionValues {
  const values: Record<string, unknown> = {};
  for (const use of COMMAND_OPTIONS[name]) {
    const value = parsed[attributeOf(OPTIONS[use.name].flag)];
    if (value !== undefined) values[use.name] = value;
  }
  return values;
}

/** The coordinator config fields among parsed values (the rest are the command's own). */
export function configOf(values: OptionValues): CoordinatorConfigInput {
  const config: Record<string, unknown> = {};
  for (const key of CONFIG_KEYS) {
    const value = values[key as OptionName];
    if (value !== undefined) config[key] = value;
  }
  return config;
}
