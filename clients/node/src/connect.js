'use strict';
// Opening Redis from a PODQ_REDIS_URL, with the same four schemes podq's services take
// (docs/operations.md, "Redis"):
//   redis://[[user]:password@]host[:port][/db]          one server
//   rediss://...                                        the same over TLS
//   redis+sentinel://[[user]:password@]host[:port][,host[:port]...]/<master>[/db]
//                                                       the primary the Sentinels name (default port 26379)
//   rediss+sentinel://...                               the same, TLS to the Sentinels and the primary
// TLS options mirror PODQ_REDIS_TLS_CA_FILE / _CERT_FILE / _KEY_FILE / _CHECK_HOSTNAME, and
// PODQ_REDIS_SENTINEL_PASSWORD is the Sentinels' own password (the URL's is the primary's).
const fs = require('node:fs');
const Redis = require('ioredis');

const SCHEMES = {
  'redis:': { tls: false, sentinel: false },
  'rediss:': { tls: true, sentinel: false },
  'redis+sentinel:': { tls: false, sentinel: true },
  'rediss+sentinel:': { tls: true, sentinel: true },
};

function parseRedisUrl(url) {
  const match = /^([a-z+]+:)\/\/(?:([^@/]*)@)?([^/]*)(\/.*)?$/i.exec(url || '');
  if (!match) throw new Error('PODQ_REDIS_URL: expected scheme://host..., got nothing usable');
  const scheme = SCHEMES[match[1].toLowerCase()];
  if (!scheme) {
    throw new Error(`PODQ_REDIS_URL: unknown scheme ${match[1]}//; use one of ${Object.keys(SCHEMES).map((s) => `${s}//`).join(', ')}`);
  }
  let username;
  let password;
  if (match[2] !== undefined) {
    const [user, ...rest] = match[2].split(':');
    username = user ? decodeURIComponent(user) : undefined;
    password = rest.length ? decodeURIComponent(rest.join(':')) : undefined;
  }
  const defaultPort = scheme.sentinel ? 26379 : 6379;
  const hosts = match[3].split(',').map((item) => {
    const bracket = /^\[([^\]]+)\](?::(\d+))?$/.exec(item);
    const [host, port] = bracket ? [bracket[1], bracket[2]] : item.split(':');
    if (!host) throw new Error('PODQ_REDIS_URL: a host is missing');
    return { host, port: port ? Number(port) : defaultPort };
  });
  const path = (match[4] || '').split('/').filter(Boolean);
  if (scheme.sentinel && !path.length) {
    throw new Error('PODQ_REDIS_URL: a Sentinel URL names the master after the hosts (redis+sentinel://host:26379,.../<master>[/db])');
  }
  if (!scheme.sentinel && hosts.length > 1) {
    throw new Error('PODQ_REDIS_URL: several hosts are Sentinels (redis+sentinel://)');
  }
  const master = scheme.sentinel ? path.shift() : undefined;
  const db = path.length ? Number(path[0]) : 0;
  if (!Number.isInteger(db)) throw new Error('PODQ_REDIS_URL: the database must be a number');
  return { ...scheme, hosts, master, db, username, password };
}

function tlsOptions({ caFile, certFile, keyFile, checkHostname = true } = {}) {
  const read = (name, file) => {
    try {
      return fs.readFileSync(file);
    } catch (err) {
      throw new Error(`${name}: cannot read ${file}: ${err.code || err.message}`);
    }
  };
  if (Boolean(certFile) !== Boolean(keyFile)) {
    throw new Error(certFile ? 'PODQ_REDIS_TLS_KEY_FILE is unset: the client certificate needs its key'
      : 'PODQ_REDIS_TLS_CERT_FILE is unset: PODQ_REDIS_TLS_KEY_FILE is the key of a client certificate');
  }
  const options = {};
  if (caFile) options.ca = read('PODQ_REDIS_TLS_CA_FILE', caFile);
  if (certFile) {
    options.cert = read('PODQ_REDIS_TLS_CERT_FILE', certFile);
    options.key = read('PODQ_REDIS_TLS_KEY_FILE', keyFile);
  }
  if (!checkHostname) options.checkServerIdentity = () => undefined;
  return options;
}

// An ioredis client for `url`; `tls` as for tlsOptions, `extra` goes to ioredis as it is.
function connect(url, { tls = {}, sentinelPassword, ...extra } = {}) {
  const target = parseRedisUrl(url);
  const tlsConfig = target.tls ? tlsOptions(tls) : undefined;
  const common = { db: target.db, username: target.username, password: target.password, ...extra };
  if (!target.sentinel) {
    const [{ host, port }] = target.hosts;
    return new Redis({ host, port, tls: tlsConfig, ...common });
  }
  return new Redis({
    sentinels: target.hosts,
    name: target.master,
    sentinelPassword,
    tls: tlsConfig,
    sentinelTLS: tlsConfig,
    enableTLSForSentinelMode: Boolean(tlsConfig),
    ...common,
  });
}

// connect() with the PODQ_REDIS_* variables of `env` (PODQ_REDIS_URL unless `url` is given).
function connectFromEnv(env = process.env, { url, ...extra } = {}) {
  const truthy = (value) => !['0', 'false', 'no', 'off'].includes(String(value).trim().toLowerCase());
  return connect(url ?? env.PODQ_REDIS_URL, {
    tls: {
      caFile: env.PODQ_REDIS_TLS_CA_FILE || undefined,
      certFile: env.PODQ_REDIS_TLS_CERT_FILE || undefined,
      keyFile: env.PODQ_REDIS_TLS_KEY_FILE || undefined,
      checkHostname: env.PODQ_REDIS_TLS_CHECK_HOSTNAME === undefined ? true : truthy(env.PODQ_REDIS_TLS_CHECK_HOSTNAME),
    },
    sentinelPassword: env.PODQ_REDIS_SENTINEL_PASSWORD || undefined,
    ...extra,
  });
}

module.exports = { parseRedisUrl, connect, connectFromEnv };
