'use strict';
// The well-formedness rule of docs/protocol.md ("Framing"): read the msgpack bytes in order and
// report the first problem, with the path of the map, array item or string it is in.
const MAX_DEPTH = 1024;
const PLAIN_KEY = /^[A-Za-z_][A-Za-z0-9_]*$/;
const utf8 = new TextDecoder('utf-8', { fatal: true });

class Problem extends Error {
  constructor(path, problem) {
    super(`${path}: ${problem}`);
  }
}

const childPath = (path, key) => (PLAIN_KEY.test(key) ? `${path}.${key}` : `${path}['${key}']`);

const LENGTH_PREFIXED = {
  0xd9: ['string', 1], 0xda: ['string', 2], 0xdb: ['string', 4],
  0xc4: ['binary', 1], 0xc5: ['binary', 2], 0xc6: ['binary', 4],
  0xc7: ['extension', 1], 0xc8: ['extension', 2], 0xc9: ['extension', 4],
  0xdc: ['array', 2], 0xdd: ['array', 4], 0xde: ['map', 2], 0xdf: ['map', 4],
};
const FIXED = {
  0xc0: ['nil', 0], 0xc2: ['bool', 0], 0xc3: ['bool', 0], 0xca: ['float', 4], 0xcb: ['float', 8],
  0xcc: ['integer', 1], 0xcd: ['integer', 2], 0xce: ['integer', 4], 0xcf: ['integer', 8],
  0xd0: ['integer', 1], 0xd1: ['integer', 2], 0xd2: ['integer', 4], 0xd3: ['integer', 8],
  0xd4: ['extension', 2], 0xd5: ['extension', 3], 0xd6: ['extension', 5], 0xd7: ['extension', 9],
  0xd8: ['extension', 17],
};

function text(bytes) {
  try {
    return utf8.decode(bytes);
  } catch {
    return null;
  }
}

// "<path>: <problem>" for the first problem of `bytes` in byte order, or null.
function firstProblem(bytes, root) {
  let pos = 0;
  const take = (size) => {
    if (pos + size > bytes.length) throw new Problem(root, 'not valid msgpack (incomplete record)');
    const chunk = bytes.subarray(pos, pos + size);
    pos += size;
    return chunk;
  };
  const uint = (size) => take(size).reduce((value, byte) => value * 256 + byte, 0);
  const header = () => {
    const byte = uint(1);
    if (byte <= 0x7f || byte >= 0xe0) return ['integer', 0, null];
    if (byte <= 0x8f) return ['map', byte & 0x0f, null];
    if (byte <= 0x9f) return ['array', byte & 0x0f, null];
    if (byte <= 0xbf) return ['string', 0, take(byte & 0x1f)];
    if (byte in FIXED) {
      take(FIXED[byte][1]);
      return [FIXED[byte][0], 0, null];
    }
    if (byte in LENGTH_PREFIXED) {
      const [kind, size] = LENGTH_PREFIXED[byte];
      const length = uint(size);
      if (kind === 'array' || kind === 'map') return [kind, length, null];
      if (kind === 'extension') take(1);
      const payload = take(length);
      return [kind, 0, kind === 'string' ? payload : null];
    }
    throw new Problem(root, 'not valid msgpack (invalid format byte)');
  };
  // One frame per open map or array.
  const stack = [];
  try {
    for (;;) {
      const frame = stack[stack.length - 1];
      const readingKey = frame !== undefined && frame.isMap && frame.valuePath === null;
      let path = root;
      if (frame !== undefined) {
        if (frame.isMap) path = readingKey ? frame.path : frame.valuePath;
        else path = `${frame.path}[${frame.done}]`;
      }
      const [kind, count, payload] = header();
      if (readingKey) {
        if (kind !== 'string') throw new Problem(path, `map keys must be strings, got ${kind}`);
        const key = text(payload);
        if (key === null) throw new Problem(path, 'a map key is not valid UTF-8');
        if (frame.seen.has(key)) throw new Problem(path, `duplicate map key '${key}'`);
        frame.seen.add(key);
        frame.valuePath = childPath(frame.path, key);
        continue;
      }
      if (kind === 'extension') throw new Problem(path, 'msgpack extension types are not allowed');
      if (kind === 'string' && text(payload) === null) throw new Problem(path, 'a string is not valid UTF-8');
      if (kind === 'map' || kind === 'array') {
        if (stack.length >= MAX_DEPTH) throw new Problem(root, 'not valid msgpack (nested too deeply)');
        if (count) {
          stack.push({ isMap: kind === 'map', count, done: 0, path, seen: new Set(), valuePath: null });
          continue;
        }
      }
      // One value done: close every container it completes.
      while (stack.length) {
        const top = stack[stack.length - 1];
        top.done += 1;
        top.valuePath = null;
        if (top.done < top.count) break;
        stack.pop();
      }
      if (!stack.length) break;
    }
  } catch (err) {
    if (err instanceof Problem) return err.message;
    throw err;
  }
  if (pos !== bytes.length) return `${root}: not valid msgpack (extra bytes after the record)`;
  return null;
}

module.exports = { MAX_DEPTH, childPath, firstProblem };
