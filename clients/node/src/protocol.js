'use strict';
// podq wire protocol 1.0, as written in docs/protocol.md: names, records, job_id, checks.
const crypto = require('node:crypto');
const { encode, decode } = require('@msgpack/msgpack');
const { firstProblem } = require('./wellformed');

const SCHEMA_MAJOR = 1;
const SCHEMA = '1.0';
const MAX_RECORD_BYTES = 256 * 1024;
const RECORD_FIELD = 'record';
const JOBS_STREAM = 'podq:jobs';
const CONTROL_STREAM = 'podq:control';
const RESULTS_GROUP = 'scheduler';
const TERMINAL = new Set(['succeeded', 'failed', 'lost', 'revoked']);
const STATES = new Set(['pending', 'running', ...TERMINAL, 'adopted']);
const CONTROL_OPS = new Set(['revoke', 'mark_done', 'delete', 'adopt']);
const TRACEPARENT_ANNOTATION = 'podq.io/traceparent';
const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;
const TRACEPARENT_MAX_LEN = 55;

class ProtocolError extends Error {}

const resultsStream = (schedulerId) => `podq:results:${schedulerId}`;
const resultsDeadStream = (schedulerId) => `podq:results:${schedulerId}:dead`;

function normalizeKey(key) {
  const out = {
    dag_id: key.dag_id,
    task_id: key.task_id,
    run_id: key.run_id,
    try_number: key.try_number ?? 1,
    map_index: key.map_index ?? -1,
  };
  // launch_id (optional): one launch of the try; written only when set.
  if (key.launch_id !== undefined && key.launch_id !== null) out.launch_id = key.launch_id;
  for (const name of ['dag_id', 'task_id', 'run_id']) {
    if (typeof out[name] !== 'string' || out[name].length === 0 || [...out[name]].length > 250) {
      throw new ProtocolError(`task_key.${name}: a string of 1-250 characters is required`);
    }
  }
  if (!Number.isInteger(out.try_number) || out.try_number < 0) {
    throw new ProtocolError('task_key.try_number: an integer >= 0 is required');
  }
  if (!Number.isInteger(out.map_index) || out.map_index < -1) {
    throw new ProtocolError('task_key.map_index: an integer >= -1 is required');
  }
  if ('launch_id' in out && (typeof out.launch_id !== 'string' || out.launch_id.length === 0
      || [...out.launch_id].length > 128)) {
    throw new ProtocolError('task_key.launch_id: a string of 1-128 characters is required');
  }
  return out;
}

// job_id: first 32 lower-case hex characters of SHA-256 over the UTF-8 of
// scheduler_id, dag_id, task_id, run_id, try_number, map_index (and launch_id, when the key has one)
// joined by U+001F.
function deriveJobId(schedulerId, key) {
  const k = normalizeKey(key);
  const parts = [schedulerId, k.dag_id, k.task_id, k.run_id, String(k.try_number), String(k.map_index)];
  if ('launch_id' in k) parts.push(k.launch_id);
  const text = parts.join('\x1f');
  return crypto.createHash('sha256').update(text, 'utf8').digest('hex').slice(0, 32);
}

// Pod name: `<slug>-<first 16 characters of job_id>`; the slug is `<dag_id>-<task_id>` with only
// ASCII A-Z lower-cased, every run of characters outside a-z0-9- made one '-', repeated '-'
// collapsed, cut to 46 characters and trimmed of '-' ('podq' when nothing is left).
function podNameFor(jobId, key) {
  const asciiLower = `${key.dag_id}-${key.task_id}`.replace(/[A-Z]/g, (c) => c.toLowerCase());
  // The u flag makes [^...] match whole code points, so a character outside the BMP is one run too.
  let slug = asciiLower.replace(/[^a-z0-9-]+/gu, '-').replace(/-{2,}/g, '-').replace(/^-+|-+$/g, '');
  const suffix = jobId.slice(0, 16);
  slug = slug.slice(0, 63 - suffix.length - 1).replace(/-+$/, '') || 'podq';
  return `${slug}-${suffix}`;
}

// Why `value` is not a valid job.traceparent (docs/protocol.md, the job record), or null when it is
// (null and undefined too: the field is optional).
function traceparentProblem(value) {
  if (value === undefined || value === null) return null;
  if (typeof value !== 'string') return 'job.traceparent: expected a string';
  if (value.length === 0) return 'job.traceparent: must not be empty';
  if (value.length > TRACEPARENT_MAX_LEN) {
    return `job.traceparent: longer than ${TRACEPARENT_MAX_LEN} characters (${value.length})`;
  }
  const match = TRACEPARENT.exec(value);
  if (!match) {
    return 'job.traceparent: not a W3C traceparent (00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>, lower case)';
  }
  if (match[1] === '0'.repeat(32) || match[2] === '0'.repeat(16)) {
    return 'job.traceparent: an all-zero trace id or parent id is invalid';
  }
  return null;
}

function pack(record) {
  const bytes = Buffer.from(encode(record, { ignoreUndefined: true }));
  if (bytes.length > MAX_RECORD_BYTES) {
    throw new ProtocolError(`${record.kind}: record is ${bytes.length} bytes, over the ${MAX_RECORD_BYTES}-byte limit`);
  }
  return bytes;
}

const PRIORITY_MIN = -(2 ** 31);
const PRIORITY_MAX = 2 ** 31 - 1;

// Why `value` is not a valid job.priority (docs/protocol.md, the job record), or null when it is
// (undefined or null: no priority, 0).
function priorityProblem(value) {
  if (value === undefined || value === null) return null;
  if (!Number.isInteger(value)) return `job.priority: expected an integer, got ${typeof value === 'number' ? 'float' : typeof value}`;
  if (value < PRIORITY_MIN) return `job.priority: must be >= ${PRIORITY_MIN}, got ${value}`;
  if (value > PRIORITY_MAX) return `job.priority: must be <= ${PRIORITY_MAX}, got ${value}`;
  return null;
}

// A job record; returns { jobId, bytes }. Optional fields left undefined are omitted (traceparent too:
// without one, intake starts a trace for the job; priority when it is 0, the default; cluster too:
// without one, intake's routing decides).
function encodeJob({ schedulerId, taskKey, command, namespace, podTemplate, podOverride, submittedAt, traceparent,
  priority, cluster }) {
  if (typeof schedulerId !== 'string' || schedulerId.length === 0 || [...schedulerId].length > 250) {
    throw new ProtocolError('scheduler_id: a string of 1-250 characters is required');
  }
  const key = normalizeKey(taskKey);
  const problem = traceparentProblem(traceparent) ?? priorityProblem(priority);
  if (problem !== null) throw new ProtocolError(problem);
  if (cluster !== undefined && cluster !== null
      && (typeof cluster !== 'string' || cluster.length === 0 || [...cluster].length > 63)) {
    throw new ProtocolError('job.cluster: a string of 1-63 characters is required');
  }
  const jobId = deriveJobId(schedulerId, key);
  const record = {
    schema: SCHEMA, kind: 'job', job_id: jobId, scheduler_id: schedulerId, task_key: key,
    command, namespace, pod_template: podTemplate, pod_override: podOverride,
    submitted_at: submittedAt ?? Date.now() / 1000, traceparent: traceparent ?? undefined,
    priority: priority ? priority : undefined,
    cluster: cluster ?? undefined,
  };
  return { jobId, bytes: pack(record) };
}

function encodeControl({ op, schedulerId, jobId, newSchedulerId, deleteOptions, reason }) {
  if (!CONTROL_OPS.has(op)) throw new ProtocolError(`control.op: unknown value '${op}'`);
  if (op !== 'adopt' && !jobId) throw new ProtocolError('control.job_id: required field is missing');
  if (op === 'adopt' && !newSchedulerId) throw new ProtocolError('control.new_scheduler_id: required field is missing');
  return pack({
    schema: SCHEMA, kind: 'control', op, scheduler_id: schedulerId, job_id: jobId,
    new_scheduler_id: newSchedulerId, delete_options: deleteOptions, reason,
    requested_at: Date.now() / 1000,
  });
}

function requireString(map, name, where, { required = true } = {}) {
  const value = map[name];
  if (value === undefined || value === null) {
    if (required) throw new ProtocolError(`${where}.${name}: required field is missing`);
    return null;
  }
  if (typeof value !== 'string') throw new ProtocolError(`${where}.${name}: expected a string`);
  return value;
}

function isMap(value) {
  return value !== null && typeof value === 'object' && !Array.isArray(value) && !(value instanceof Uint8Array);
}

// Decode a record of `kind`: check the framing and the schema's major version; unknown fields stay ignored.
function decodeRecord(bytes, kind) {
  if (bytes.length > MAX_RECORD_BYTES) {
    throw new ProtocolError(`${kind}: record is ${bytes.length} bytes, over the ${MAX_RECORD_BYTES}-byte limit`);
  }
  const problem = firstProblem(bytes, kind); // duplicate keys, extension types, bad UTF-8, ...
  if (problem !== null) throw new ProtocolError(problem);
  const data = decode(bytes);
  if (!isMap(data)) throw new ProtocolError(`${kind}: expected a map`);
  const schema = requireString(data, 'schema', kind);
  const match = /^(\d+)\.(\d+)$/.exec(schema);
  if (!match) throw new ProtocolError(`${kind}.schema: expected 'MAJOR.MINOR', got '${schema}'`);
  if (Number(match[1]) !== SCHEMA_MAJOR) {
    throw new ProtocolError(`${kind}.schema: major version ${match[1]} is not supported (this client reads ${SCHEMA_MAJOR}.x)`);
  }
  const found = requireString(data, 'kind', kind);
  if (found !== kind) throw new ProtocolError(`${kind}.kind: expected '${kind}', got '${found}'`);
  return data;
}

// A result as a plain object with the documented fields (terminal derived from state).
function decodeResult(bytes) {
  const data = decodeRecord(bytes, 'result');
  const state = requireString(data, 'state', 'result');
  if (!STATES.has(state)) throw new ProtocolError(`result.state: unknown value '${state}'`);
  const taskKey = data.task_key;
  if (!isMap(taskKey)) throw new ProtocolError('result.task_key: expected a map');
  const annotations = data.annotations ?? {};
  return {
    eventId: requireString(data, 'event_id', 'result'),
    jobId: requireString(data, 'job_id', 'result'),
    schedulerId: requireString(data, 'scheduler_id', 'result'),
    taskKey: normalizeKey(taskKey),
    source: requireString(data, 'source', 'result'),
    state,
    terminal: TERMINAL.has(state),
    podName: requireString(data, 'pod_name', 'result', { required: false }),
    namespace: requireString(data, 'namespace', 'result', { required: false }),
    annotations,
    traceparent: annotations[TRACEPARENT_ANNOTATION] ?? null, // the job's trace context, on every result
    resourceVersion: requireString(data, 'resource_version', 'result', { required: false }),
    failureDetails: isMap(data.failure_details) ? data.failure_details : null,
    pendingReason: pendingReasonOf(data.pending_reason), // why a pending job waits (a later pending: a new reason)
    emittedAt: data.emitted_at ?? 0,
    cluster: requireString(data, 'cluster', 'result', { required: false }), // the cluster of the job's pod
  };
}

function pendingReasonOf(value) {
  if (value === undefined || value === null) return null;
  if (!isMap(value)) throw new ProtocolError('result.pending_reason: expected a map');
  return {
    reason: requireString(value, 'reason', 'result.pending_reason'),
    message: requireString(value, 'message', 'result.pending_reason', { required: false }),
  };
}

module.exports = {
  SCHEMA, MAX_RECORD_BYTES, RECORD_FIELD, JOBS_STREAM, CONTROL_STREAM, RESULTS_GROUP, TERMINAL,
  ProtocolError, resultsStream, resultsDeadStream, deriveJobId, podNameFor, traceparentProblem, priorityProblem, encodeJob,
  encodeControl,
  decodeRecord, decodeResult,
};
