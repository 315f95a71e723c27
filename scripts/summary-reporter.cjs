// Prints the plain closing line CI reads, "tests: N passed, N failed, N skipped", as the very last
// line: jest's own summary is written after every reporter's onRunComplete, so wait for exit.
const { writeSync } = require('node:fs');

class SummaryReporter {
  onRunComplete(_contexts, results) {
    const line = `tests: ${results.numPassedTests} passed, ${results.numFailedTests} failed, ${results.numPendingTests} skipped\n`;
    process.once('exit', () => writeSync(1, line));
  }
}
module.exports = SummaryReporter;
