/**
 * A StrykerJS ignorer: mutants inside the human-readable message of a thrown error or of a
 * log line are not generated. Callers branch on error codes (which stay mutated: a wrong code
 * is a bug the tests catch), never on prose, so a mutated message is not a behaviour change a
 * test should pin; counting those mutants would only reward tests that snapshot wording.
 */

interface CalleeNode {
  type: string;
  name?: string;
  property?: { type: string; name?: string };
}

/** The part of Babel's NodePath this ignorer reads. */
interface PathLike {
  node: { type: string; callee?: CalleeNode };
  parentPath: PathLike | null;
  key: string | number | null;
  listKey?: string | undefined;
}

const ERROR_TYPES = new Set(['CohortError', 'Error', 'TypeError', 'RangeError']);
const LOG_METHODS = new Set(['debug', 'info', 'warn', 'error', 'log']);

/** Which argument of a call or `new` expression holds the message, if it is one. */
function messageArgumentIndex(callee: CalleeNode, isNew: boolean): number | null {
  if (isNew && callee.type === 'Identifier' && ERROR_TYPES.has(callee.name ?? '')) {
    return callee.name === 'CohortError' ? 1 : 0;
  }
  const method = callee.property?.name;
  if (!isNew && callee.type === 'MemberExpression' && method && LOG_METHODS.has(method)) return 0;
  return null;
}

export const errorAndLogMessages = {
  shouldIgnore(path: PathLike): string | undefined {
    const parent = path.parentPath?.node;
    if (!parent?.callee || path.listKey !== 'arguments' || typeof path.key !== 'number') {
      return undefined;
    }
    const index = messageArgumentIndex(parent.callee, parent.type === 'NewExpression');
    if (index === null || path.key !== index) return undefined;
    return 'message text of an error or log line (codes are asserted, prose is not)';
  },
};

/** Registered with StrykerJS as the `error-and-log-messages` ignorer. */
export const strykerPlugins = [
  { kind: 'Ignore', name: 'error-and-log-messages', value: errorAndLogMessages },
];
