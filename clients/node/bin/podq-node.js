#!/usr/bin/env node
'use strict';
// A small command line over the client, for humans and for podq's test suite.
//   podq-node submit  --redis URL --scheduler-id S --jobs '[{"taskKey": {...}, "command": [...]}]'
//   podq-node revoke  --redis URL --scheduler-id S --job-id ID [--reason TEXT]
//   podq-node consume --redis URL --scheduler-id S --consumer C --expect-terminal N [--timeout SEC]
// Every line printed is one JSON object.
const { Producer, ResultsConsumer, checkTlsFromEnv, connectFromEnv } = require('../src');

function parseArgs(argv) {
  const [command, ...rest] = argv;
  const options = {};
  for (let i = 0; i < rest.length; i += 2) {
    if (!rest[i].startsWith('--')) throw new Error(`unexpected argument ${rest[i]}`);
    options[rest[i].slice(2)] = rest[i + 1];
  }
  return { command, options };
}

const print = (value) => process.stdout.write(`${JSON.stringify(value)}\n`);

async function submit(redis, options) {
  const jobs = JSON.parse(options.jobs).map((job) => ({ schedulerId: options['scheduler-id'], ...job }));
  for (const submitted of await new Producer(redis).submit(jobs)) print(submitted);
}

async function revoke(redis, options) {
  const entryId = await new Producer(redis).revoke({
    schedulerId: options['scheduler-id'], jobId: options['job-id'], reason: options.reason,
  });
  print({ jobId: options['job-id'], entryId });
}

async function consume(redis, options) {
  const consumer = new ResultsConsumer(redis, {
    schedulerId: options['scheduler-id'],
    consumer: options.consumer,
    blockMs: 500,
    reclaimIdleMs: Number(options['reclaim-idle-ms'] ?? 60000),
  });
  await consumer.ensureGroup();
  const expected = Number(options['expect-terminal']);
  const deadline = Date.now() + Number(options.timeout ?? 60) * 1000;
  const terminal = new Set();
  while (terminal.size < expected) {
    if (Date.now() > deadline) {
      print({ error: `timed out with ${terminal.size} of ${expected} jobs terminal` });
      return 1;
    }
    const batch = await consumer.read();
    for (const result of batch) {
      print(result);
      if (result.terminal) terminal.add(result.jobId);
    }
    await consumer.ack(batch);
  }
  return 0;
}

async function main() {
  const { command, options } = parseArgs(process.argv.slice(2));
  const handlers = { submit, revoke, consume };
  if (!handlers[command]) throw new Error(`unknown command ${command} (submit, revoke, consume)`);
  // --redis or PODQ_REDIS_URL (redis://, rediss://, redis+sentinel://, rediss+sentinel://), with the
  // PODQ_REDIS_TLS_* and PODQ_REDIS_SENTINEL_PASSWORD variables.
  await checkTlsFromEnv(process.env, { url: options.redis });
  const redis = connectFromEnv(process.env, { url: options.redis, maxRetriesPerRequest: 20 });
  try {
    return (await handlers[command](redis, options)) ?? 0;
  } finally {
    redis.disconnect();
  }
}

main().then((code) => { process.exitCode = code; }, (err) => {
  process.stderr.write(`podq-node: ${err.stack || err}\n`);
  process.exitCode = 2;
});
