'use strict';
// The Node walk against cases written by podq's Python walk: `node test/wellformed.js CASES.json`,
// CASES.json a list of {hex, problem} (problem null for well-formed bytes).
const assert = require('node:assert/strict');
const fs = require('node:fs');
const { firstProblem } = require('../src');

const cases = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
let failed = 0;
for (const { hex, problem } of cases) {
  try {
    assert.equal(firstProblem(Buffer.from(hex, 'hex'), 'job'), problem);
  } catch (err) {
    failed += 1;
    if (failed <= 5) process.stdout.write(`FAIL ${hex}: ${err.message}\n`);
  }
}
process.stdout.write(`wellformed: ${cases.length - failed} passed, ${failed} failed\n`);
process.exitCode = failed ? 1 : 0;
