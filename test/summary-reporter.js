/**
 * Prints one plain closing line after jest's own summary ("jest: N passed, N failed, N
 * skipped"), the format CI tooling reads in any language, preceded by the name of every
 * skipped test: a suite that did not run here (no PostgreSQL, no Chromium) says so by name
 * and why, instead of disappearing into a count.
 */
class SummaryReporter {
  onRunComplete(_contexts, results) {
    const skipped = results.numPendingTests + results.numTodoTests;
    const names = results.testResults.flatMap((file) =>
      file.testResults
        .filter((test) => test.status === 'pending' || test.status === 'todo')
        .map((test) => `  skipped: ${test.fullName}`),
    );
    if (names.length > 0) process.stdout.write(`\n${names.join('\n')}`);
    process.stdout.write(
      `\njest: ${results.numPassedTests} passed, ${results.numFailedTests} failed, ${skipped} skipped\n`,
    );
  }
}

module.exports = SummaryReporter;
