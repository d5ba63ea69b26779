/**
 * Suites that need something a machine may lack (PostgreSQL, Chromium) declare it here, so the
 * outcome is honest everywhere: where the requirement is met the suite runs; where it is not,
 * jest reports the suite as skipped (never as passed) under a name that says why; and under
 * CI (CI=true), which installs every requirement, a missing one is a failed test.
 */

/** What a suite needs, found or not: `reason` says what is missing and how to provide it. */
export type Requirement<T> = { met: true; value: T } | { met: false; reason: string };

/**
 * Declares `title` as a suite that runs only when `requirement` is met. `requiredInCi: false`
 * is for what CI does not promise either (the team's data beside the checkout): skipped there too.
 */
export function describeRequiring<T>(
  title: string,
  requirement: Requirement<T>,
  body: (value: T) => void,
  { requiredInCi = true }: { requiredInCi?: boolean } = {},
): void {
  if (requirement.met) {
    describe(title, () => body(requirement.value));
    return;
  }
  if (requiredInCi && process.env.CI === 'true') {
    describe(title, () => {
      test(`requirement present in CI`, () => {
        throw new Error(`"${title}" cannot run in CI: ${requirement.reason}`);
      });
    });
    return;
  }
  describe(title, () => {
    // The one sanctioned skip: it names what is missing, and CI turns it into a failure.
    // eslint-disable-next-line no-restricted-syntax
    test.skip(`DID NOT RUN: ${requirement.reason}`, () => undefined);
  });
}
