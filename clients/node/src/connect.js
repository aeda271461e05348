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
const tlsSocket = require('node:tls');
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

// One TLS handshake and PING to the first host of a TLS URL, before any client retries: a certificate
// problem is a setting problem, reported at once with the setting's name (as podq's services do).
// Resolves when fine or when the host cannot be reached (an outage, left to the client's retries).
function checkTls(url, { tls = {}, timeoutMs = 10000 } = {}) {
  const target = parseRedisUrl(url);
  if (!target.tls) return Promise.resolve();
  const options = tlsOptions(tls);
  const [{ host, port }] = target.hosts;
  const where = `${host}:${port}`;
  return new Promise((resolve, reject) => {
    let settled = false;
    const finish = (error) => {
      if (settled) return;
      settled = true;
      socket.destroy();
      if (error) reject(error); else resolve();
    };
    const socket = tlsSocket.connect({ host, port, servername: host, ...options, timeout: timeoutMs }, () => {
      socket.write('PING\r\n');
    });
    let reply = '';
    socket.on('data', (chunk) => { reply += chunk; finish(); });
    socket.on('timeout', () => finish(new Error(`PODQ_REDIS_URL: rediss:// (TLS), but the server at ${where} did not answer the TLS handshake in time`)));
    socket.on('end', () => finish(reply ? undefined : new Error(options.cert
      ? `PODQ_REDIS_TLS_CERT_FILE: the server at ${where} closed the connection after the TLS handshake: it does not accept the client certificate`
      : `PODQ_REDIS_TLS_CERT_FILE: the server at ${where} closed the connection after the TLS handshake: it requires a client certificate`)));
    socket.on('error', (err) => {
      const code = err.code || '';
      if (code === 'CERT_HAS_EXPIRED') finish(new Error(`PODQ_REDIS_URL: the TLS certificate of the server at ${where} has expired`));
      else if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') finish(new Error(`PODQ_REDIS_TLS_CHECK_HOSTNAME: the TLS certificate of the server at ${where} does not name that host (${err.message})`));
      else if (/CERT|SIGNATURE|ISSUER/.test(code)) finish(new Error(`PODQ_REDIS_TLS_CA_FILE: the TLS certificate of the server at ${where} is not signed by ${tls.caFile || "the system's CAs"} (${code})`));
      else if (/ECONNREFUSED|ENOTFOUND|EHOSTUNREACH|ETIMEDOUT|ECONNRESET/.test(code)) finish();
      else finish(new Error(`PODQ_REDIS_URL: TLS with the server at ${where} failed: ${err.message}`));
    });
  });
}

function envOptions(env) {
  const truthy = (value) => !['0', 'false', 'no', 'off'].includes(String(value).trim().toLowerCase());
  return {
    tls: {
      caFile: env.PODQ_REDIS_TLS_CA_FILE || undefined,
      certFile: env.PODQ_REDIS_TLS_CERT_FILE || undefined,
      keyFile: env.PODQ_REDIS_TLS_KEY_FILE || undefined,
      checkHostname: env.PODQ_REDIS_TLS_CHECK_HOSTNAME === undefined ? true : truthy(env.PODQ_REDIS_TLS_CHECK_HOSTNAME),
    },
    sentinelPassword: env.PODQ_REDIS_SENTINEL_PASSWORD || undefined,
  };
}

// connect() with the PODQ_REDIS_* variables of `env` (PODQ_REDIS_URL unless `url` is given).
function connectFromEnv(env = process.env, { url, ...extra } = {}) {
  return connect(url ?? env.PODQ_REDIS_URL, { ...envOptions(env), ...extra });
}

// checkTls() with the PODQ_REDIS_* variables of `env`.
function checkTlsFromEnv(env = process.env, { url } = {}) {
  return checkTls(url ?? env.PODQ_REDIS_URL, { tls: envOptions(env).tls });
}

module.exports = { parseRedisUrl, connect, connectFromEnv, checkTls, checkTlsFromEnv };
