import type { z } from 'zod';
import { CohortError } from '../errors';

/**
 * Parses an untrusted network payload against its schema. Every inbound message is
 * `unknown` until this returns: TypeScript types say nothing about what a peer sent.
 * Failures become CohortError MESSAGE_INVALID naming the first offending field, so the
 * sender learns what was wrong and the receiver's state is never touched.
 */
export function parseMessage<S extends z.ZodType>(
  schema: S,
  value: unknown,
  what: string,
): z.infer<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const path = issue && issue.path.length > 0 ? issue.path.join('.') : '(root)';
  throw new CohortError('MESSAGE_INVALID', `${what}: ${path}: ${issue?.message ?? 'invalid'}`);
}
