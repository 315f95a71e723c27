// Prints the plain closing line CI reads, "tests: N passed, N failed, N skipped", as the very last
// line, after the name of every skipped test (its name says why it was skipped): jest's own summary
// is written after every reporter's onRunComplete, so wait for exit.
const { writeSync } = require('node:fs');

class SummaryReporter {
  onRunComplete(_contexts, results) {
    const skipped = results.testResults.flatMap((file) =>
      file.testResults.filter((t) => t.status === 'pending').map((t) => `skipped: ${t.fullName}\n`),
    );
    const line = `tests: ${results.numPassedTests} passed, ${results.numFailedTests} failed, ${results.numPendingTests} skipped\n`;
    process.once('exit', () => writeSync(1, skipped.join('') + line));
  }
}
module.exports = SummaryReporter;
