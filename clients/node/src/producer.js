'use strict';
// Producer recipe (docs/protocol.md): XADD podq:jobs * record <msgpack job>; revoke via podq:control.
const { CONTROL_STREAM, JOBS_STREAM, RECORD_FIELD, encodeControl, encodeJob } = require('./protocol');

class Producer {
  constructor(redis) {
    this.redis = redis;
  }

  // Submit jobs in one pipeline; returns [{ jobId, entryId }] in order.
  async submit(jobs) {
    const encoded = jobs.map((job) => encodeJob(job));
    const pipeline = this.redis.pipeline();
    for (const { bytes } of encoded) pipeline.xadd(JOBS_STREAM, '*', RECORD_FIELD, bytes);
    const replies = await pipeline.exec();
    return encoded.map(({ jobId }, index) => {
      const [err, entryId] = replies[index];
      if (err) throw err;
      return { jobId, entryId };
    });
  }

  async control(fields) {
    return this.redis.xadd(CONTROL_STREAM, '*', RECORD_FIELD, encodeControl(fields));
  }

  async revoke({ schedulerId, jobId, reason }) {
    return this.control({ op: 'revoke', schedulerId, jobId, reason });
  }
}

module.exports = { Producer };
