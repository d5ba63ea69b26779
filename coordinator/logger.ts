import createDebug from 'debug';

/**
 * The coordinator's log sink. Library code never calls console directly: the CLI decides
 * where lines go (terminal, JSON, silence in tests), and `DEBUG=cohort:*` shows the rest.
 */
export interface Logger {
  info(line: string): void;
  warn(line: string): void;
  debug(line: string): void;
}

/** A logger that only writes through `debug` namespaces (quiet unless DEBUG=cohort:*). */
export function debugLogger(namespace: string): Logger {
  const info = createDebug(`${namespace}:info`);
  const warn = createDebug(`${namespace}:warn`);
  const debug = createDebug(`${namespace}:debug`);
  return { info: (l) => info(l), warn: (l) => warn(l), debug: (l) => debug(l) };
}
