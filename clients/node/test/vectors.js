'use strict';
// The Node client against podq's conformance vectors (docs/vectors/vectors.json).
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { decode } = require('@msgpack/msgpack');
const {
  ProtocolError, decodeRecord, decodeResult, deriveJobId, encodeJob, firstProblem, podNameFor, priorityProblem,
  traceparentProblem,
} = require('../src');

const data = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', '..', 'docs', 'vectors', 'vectors.json'), 'utf8'));
let passed = 0;
let failed = 0;

function check(name, fn) {
  try {
    fn();
    passed += 1;
  } catch (err) {
    failed += 1;
    process.stdout.write(`FAIL ${name}: ${err.message}\n`);
  }
}

for (const item of data.job_ids) {
  check(`job_id ${item.job_id}`, () => assert.equal(deriveJobId(item.scheduler_id, item.task_key), item.job_id));
  check(`pod_name ${item.pod_name}`, () => assert.equal(podNameFor(item.job_id, item.task_key), item.pod_name));
}

// The problems the byte-order well-formedness rule names (docs/protocol.md, framing).
const WELLFORMED = ['not valid msgpack', 'duplicate map key', 'map keys must be strings', 'not valid UTF-8',
  'msgpack extension types are not allowed'];

for (const vector of data.vectors) {
  const bytes = Buffer.from(vector.hex, 'hex');
  if (vector.valid && vector.kind === 'result') {
    check(vector.name, () => {
      const result = decodeResult(bytes);
      assert.equal(result.eventId, vector.decoded.event_id);
      assert.equal(result.state, vector.decoded.state);
      assert.equal(result.terminal, vector.decoded.terminal);
      assert.deepEqual(result.taskKey, vector.decoded.task_key);
      assert.deepEqual(result.failureDetails, vector.decoded.failure_details);
      const reason = vector.decoded.pending_reason;
      assert.deepEqual(result.pendingReason, reason ? { reason: reason.reason, message: reason.message ?? null } : null);
      assert.equal(result.cluster, vector.decoded.cluster ?? null);
    });
  } else if (vector.valid && vector.kind === 'job') {
    check(vector.name, () => {
      const record = decodeRecord(bytes, 'job');
      const d = vector.decoded;
      assert.equal(deriveJobId(record.scheduler_id, record.task_key), d.job_id);
      // Re-encoding the documented meaning gives a record podq reads the same way.
      const { jobId, bytes: ours } = encodeJob({
        schedulerId: d.scheduler_id, taskKey: d.task_key, command: d.command,
        namespace: d.namespace ?? undefined, podTemplate: d.pod_template ?? undefined,
        podOverride: d.pod_override ?? undefined, submittedAt: d.submitted_at, traceparent: record.traceparent,
        priority: record.priority,
        cluster: d.cluster ?? undefined,
      });
      assert.equal(jobId, d.job_id);
      const mine = decode(ours);
      for (const [name, value] of Object.entries(d)) {
        if (value !== null) assert.deepEqual(mine[name], value, name);
      }
      // traceparent: carried when the job has one, and no key at all when it has none.
      assert.equal(traceparentProblem(record.traceparent), null);
      assert.equal(mine.traceparent, d.traceparent);
      assert.equal('traceparent' in mine, 'traceparent' in d);
      assert.equal('cluster' in mine, 'cluster' in d);
      // priority: written when not 0, as podq writes it.
      assert.equal(priorityProblem(record.priority), null);
      assert.equal(mine.priority, d.priority);
      assert.equal('priority' in mine, 'priority' in d);
    });
  } else if (!vector.valid && vector.name.startsWith('priority-')) {
    check(vector.name, () => {
      const record = decodeRecord(bytes, 'job');
      assert.equal(priorityProblem(record.priority), vector.error);
      assert.throws(() => encodeJob({ schedulerId: record.scheduler_id, taskKey: record.task_key,
        priority: record.priority }), { name: 'Error', message: vector.error });
    });
  } else if (!vector.valid && vector.name.startsWith('traceparent-')) {
    check(vector.name, () => {
      const record = decodeRecord(bytes, 'job');
      assert.equal(traceparentProblem(record.traceparent), vector.error);
      assert.throws(() => encodeJob({ schedulerId: record.scheduler_id, taskKey: record.task_key,
        traceparent: record.traceparent }), { name: 'Error', message: vector.error });
    });
  } else if (!vector.valid && vector.stage === 'decode' && vector.name.startsWith('schema-major')) {
    check(vector.name, () => assert.throws(() => decodeRecord(bytes, vector.kind), ProtocolError));
  }
  if (!vector.valid && vector.stage === 'decode') {
    check(`${vector.name} (well-formedness)`, () => {
      const problem = firstProblem(bytes, vector.kind);
      if (WELLFORMED.some((text) => vector.error.includes(text))) {
        assert.equal(problem, vector.error);
        assert.throws(() => decodeRecord(bytes, vector.kind), { message: vector.error });
      } else {
        assert.equal(problem, null); // well-formed bytes, refused by a field rule
      }
    });
  } else {
    check(`${vector.name} (well-formed)`, () => assert.equal(firstProblem(bytes, vector.kind), null));
  }
}

check('traceparent vectors present', () => {
  const names = data.vectors.map((v) => v.name);
  for (const name of ['job-traceparent', 'traceparent-upper-case', 'traceparent-zero-trace-id']) {
    assert.ok(names.includes(name), name);
  }
});

check('a result carries the job\'s traceparent from its annotations', () => {
  const vector = data.vectors.find((v) => v.name === 'result-running');
  const raw = decode(Buffer.from(vector.hex, 'hex'));
  const tp = data.vectors.find((v) => v.name === 'job-traceparent').decoded.traceparent;
  const { encode } = require('@msgpack/msgpack');
  const bytes = Buffer.from(encode({ ...raw, annotations: { 'podq.io/traceparent': tp } }));
  assert.equal(decodeResult(bytes).traceparent, tp);
  assert.equal(decodeResult(Buffer.from(vector.hex, 'hex')).traceparent, null);
});

check('newer minor accepted', () => {
  const vector = data.vectors.find((v) => v.name === 'result-newer-minor');
  assert.equal(decodeResult(Buffer.from(vector.hex, 'hex')).state, 'succeeded');
});

process.stdout.write(`vectors: ${passed} passed, ${failed} failed\n`);
process.exitCode = failed ? 1 : 0;
