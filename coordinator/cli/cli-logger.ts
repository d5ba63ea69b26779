/* eslint-disable no-console -- the CLI's job is to print */
import createDebug from 'debug';
import type { Logger } from '../logger';

/**
 * The coordinator log as an operator sees it: warnings (refused registrations, rejected or
 * dropped clients) on stderr, details only with DEBUG=cohort:*.
 */
export function cliLogger(): Logger {
  const info = createDebug('cohort:coordinator:info');
  const debug = createDebug('cohort:coordinator:debug');
  return {
    info: (line) => info(line),
    warn: (line) => console.error(`warning: ${line}`),
    debug: (line) => debug(line),
  };
}
