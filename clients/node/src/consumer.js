'use strict';
// Consumer recipe (docs/protocol.md): group `scheduler` on podq:results:<scheduler_id>, own
// backlog first, then new entries; reclaim idle entries; dead-letter poison ones; dedupe on event_id.
const {
  RECORD_FIELD, RESULTS_GROUP, ProtocolError, decodeResult, resultsDeadStream, resultsStream,
} = require('./protocol');

function fieldsOf(flat) {
  const fields = new Map();
  for (let i = 0; i + 1 < (flat ?? []).length; i += 2) fields.set(flat[i].toString(), flat[i + 1]);
  return fields;
}

class ResultsConsumer {
  constructor(redis, { schedulerId, consumer, count = 100, blockMs = 1000, reclaimIdleMs = 60000, maxDeliveries = 5 }) {
    this.redis = redis;
    this.schedulerId = schedulerId;
    this.stream = resultsStream(schedulerId);
    this.consumer = consumer;
    this.count = count;
    this.blockMs = blockMs;
    this.reclaimIdleMs = reclaimIdleMs;
    this.maxDeliveries = maxDeliveries;
    this.handled = new Set();
    this.outstanding = new Map(); // entry id -> event id
    this.backlogDone = false;
    this.backlogCursor = '0';
    this.nextReclaim = 0;
  }

  async ensureGroup() {
    try {
      await this.redis.xgroup('CREATE', this.stream, RESULTS_GROUP, '0', 'MKSTREAM');
    } catch (err) {
      if (!String(err.message).includes('BUSYGROUP')) throw err;
    }
  }

  // The next results: own unacknowledged entries first, then reclaimed ones, then new ones.
  async read({ blockMs } = {}) {
    while (!this.backlogDone) {
      // Paged forward from the last backlog entry, so unacked results are not handed out twice.
      const reply = await this.redis.xreadgroupBuffer('GROUP', RESULTS_GROUP, this.consumer,
        'COUNT', this.count, 'STREAMS', this.stream, this.backlogCursor);
      const entries = reply ? reply[0][1] : [];
      this.backlogDone = entries.length === 0;
      if (entries.length) this.backlogCursor = entries[entries.length - 1][0].toString();
      const results = await this.handle(entries, { redelivered: true });
      if (results.length) return results;
    }
    if (Date.now() >= this.nextReclaim) {
      this.nextReclaim = Date.now() + Math.min(this.reclaimIdleMs / 2, 5000);
      const results = await this.reclaim();
      if (results.length) return results;
    }
    const block = blockMs ?? this.blockMs;
    const args = ['GROUP', RESULTS_GROUP, this.consumer, 'COUNT', this.count];
    if (block > 0) args.push('BLOCK', block);
    const reply = await this.redis.xreadgroupBuffer(...args, 'STREAMS', this.stream, '>');
    return this.handle(reply ? reply[0][1] : [], { redelivered: false });
  }

  async reclaim() {
    const claimed = [];
    let cursor = '0-0';
    do {
      const reply = await this.redis.xautoclaimBuffer(this.stream, RESULTS_GROUP, this.consumer,
        this.reclaimIdleMs, cursor, 'COUNT', this.count);
      cursor = reply[0].toString();
      claimed.push(...reply[1]);
    } while (cursor !== '0-0' && claimed.length < this.count);
    return this.handle(claimed, { redelivered: true });
  }

  async deliveryCounts(ids) {
    if (!ids.length) return new Map();
    const rows = await this.redis.xpending(this.stream, RESULTS_GROUP, '-', '+', 100000, this.consumer);
    const wanted = new Set(ids);
    return new Map(rows.filter((row) => wanted.has(row[0])).map((row) => [row[0], Number(row[3])]));
  }

  async handle(entries, { redelivered }) {
    const counts = redelivered ? await this.deliveryCounts(entries.map(([id]) => id.toString())) : new Map();
    const results = [];
    const ack = [];
    const dead = [];
    for (const [rawId, flat] of entries) {
      const entryId = rawId.toString();
      const fields = fieldsOf(flat);
      const payload = fields.get(RECORD_FIELD);
      if (!flat || flat.length === 0) { ack.push(entryId); continue; } // trimmed while pending
      const deliveries = counts.get(entryId) ?? 1;
      if (deliveries > this.maxDeliveries) {
        dead.push([entryId, payload, `delivered ${deliveries} times to group ${RESULTS_GROUP} without an ack (limit ${this.maxDeliveries})`]);
        continue;
      }
      let result;
      try {
        result = decodeResult(payload ?? Buffer.alloc(0));
      } catch (err) {
        if (!(err instanceof ProtocolError)) throw err;
        dead.push([entryId, payload, err.message]);
        continue;
      }
      const holder = [...this.outstanding].find(([, eventId]) => eventId === result.eventId)?.[0];
      if (this.handled.has(result.eventId) || (holder && holder !== entryId)) { ack.push(entryId); continue; }
      this.outstanding.set(entryId, result.eventId);
      results.push({ entryId, ...result });
    }
    if (dead.length || ack.length) {
      const multi = this.redis.multi();
      for (const [entryId, payload, reason] of dead) {
        multi.xadd(resultsDeadStream(this.schedulerId), '*', 'record', payload ?? '', 'reason', reason,
          'stream', this.stream, 'entry_id', entryId, 'group', RESULTS_GROUP, 'consumer', this.consumer);
      }
      multi.xack(this.stream, RESULTS_GROUP, ...ack, ...dead.map(([entryId]) => entryId));
      await multi.exec();
    }
    return results;
  }

  // Acknowledge handled results; their event ids count as handled from now on.
  async ack(results) {
    if (!results.length) return 0;
    const ids = results.map((result) => (typeof result === 'string' ? result : result.entryId));
    const acked = await this.redis.xack(this.stream, RESULTS_GROUP, ...ids);
    for (const id of ids) {
      const eventId = this.outstanding.get(id);
      if (eventId !== undefined) {
        this.outstanding.delete(id);
        this.handled.add(eventId);
      }
    }
    return acked;
  }
}

module.exports = { ResultsConsumer };
