#!/usr/bin/env node
// An independent implementation of the demo API (schemas/demo/v1/user.proto)
// on @grpc/grpc-js + @grpc/proto-loader, used by the integration tests as
// the second real backend next to `grpcgate demo-service`. It implements the
// semantics of the demo API (schemas/demo/v1/user.proto; summarised in
// docs/upstream.md) exactly as the C demo service does, including metadata echo, error details, deadlines and
// cancellation.
//
//   node tests/node/grpcjs_server.mjs [--host 127.0.0.1] [--port N]
//        [--tls-cert FILE --tls-key FILE [--tls-client-ca FILE]]
//        [--unix PATH] [--reflection] [--max-connection-age-ms N]
//
// --port 0 (the default) picks a free port; the bound port is printed as
// "listening <port>" on stdout once the server accepts calls. --unix PATH
// listens on a unix socket instead and prints "listening unix:PATH".
// --tls-client-ca requires client certificates signed by that CA (mTLS).
// --max-connection-age-ms makes grpc-js send GOAWAY to every connection
// after that age (in-flight calls get 60 s to finish). SIGTERM and SIGINT
// stop it at once.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import grpc from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..', '..');

function parseArgs(argv) {
  const o = { host: '127.0.0.1', port: 0, reflection: false, maxAgeMs: 0 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--host') o.host = next();
    else if (a === '--port') o.port = Number(next());
    else if (a === '--tls-cert') o.cert = next();
    else if (a === '--tls-key') o.key = next();
    else if (a === '--tls-client-ca') o.clientCa = next();
    else if (a === '--unix') o.unix = next();
    else if (a === '--reflection') o.reflection = true;
    else if (a === '--max-connection-age-ms') o.maxAgeMs = Number(next());
    else throw new Error(`unknown option ${a}`);
  }
  if (!Number.isInteger(o.port) || o.port < 0 || o.port > 65535) throw new Error('bad --port');
  if (!!o.cert !== !!o.key) throw new Error('--tls-cert and --tls-key go together');
  if (o.clientCa && !o.cert) throw new Error('--tls-client-ca needs --tls-cert/--tls-key');
  return o;
}

const includeDirs = [
  path.join(root, 'schemas'),
  path.join(root, 'schemas', 'third_party'),
  '/usr/share/gocode/src/github.com/grpc-ecosystem/grpc-gateway/third_party/googleapis',
  '/usr/include',
];
const loaderOptions = {
  keepCase: true,
  longs: Number,
  enums: Number,
  bytes: Buffer,
  defaults: false,
  oneofs: true,
  includeDirs,
};

// ---- reflection from the real descriptor set ------------------------------
// proto-loader regroups files by package ("demo_v1.proto") and drops their
// imports, so @grpc/reflection fed with its package definition hands out
// files that clients like `buf curl` cannot link. Instead we give
// @grpc/reflection the real files, compiled by protoc with every import,
// and serve their original bytes (keeping options such as google.api.http).
function splitFileDescriptorSet(buf) {
  const files = [];
  let off = 0;
  const varintAt = () => {
    let v = 0;
    let shift = 0;
    for (;;) {
      const b = buf[off++];
      v += (b & 0x7f) * 2 ** shift;
      if (!(b & 0x80)) return v;
      shift += 7;
    }
  };
  while (off < buf.length) {
    const key = varintAt();
    if (key !== 0x0a) throw new Error('unexpected field in FileDescriptorSet');
    const len = varintAt();
    files.push(buf.subarray(off, off + len));
    off += len;
  }
  return files;
}

function fileName(bytes) {
  // FileDescriptorProto.name is field 1 and comes first in protoc's output.
  if (bytes[0] !== 0x0a) return null;
  let off = 1;
  let len = 0;
  let shift = 0;
  for (;;) {
    const b = bytes[off++];
    len += (b & 0x7f) * 2 ** shift;
    if (!(b & 0x80)) break;
    shift += 7;
  }
  return Buffer.from(bytes.subarray(off, off + len)).toString('utf8');
}

function realDescriptorFiles() {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'grpcjs-reflect-'));
  const out = path.join(tmp, 'demo.pb');
  try {
    execFileSync('protoc', [
      ...includeDirs.map((d) => `-I${d}`), '--include_imports', `--descriptor_set_out=${out}`,
      'demo/v1/user.proto', 'google/rpc/status.proto', 'google/rpc/error_details.proto',
    ], { stdio: ['ignore', 'ignore', 'pipe'] });
    return splitFileDescriptorSet(fs.readFileSync(out));
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

async function addReflection(server) {
  const { ReflectionService } = await import('@grpc/reflection');
  const files = realDescriptorFiles();
  const reflection = new ReflectionService({ descriptors: { fileDescriptorProtos: files } });
  // Serve the original bytes rather than @grpc/reflection's re-encoding,
  // which would drop extension options it does not know.
  const raw = new Map(files.map((f) => [fileName(f), f]));
  for (const impl of [reflection.v1, reflection.v1Alpha]) {
    if (!impl || !impl.files || !(impl.fileEncodings instanceof Map)) continue;
    for (const [name, file] of Object.entries(impl.files)) {
      if (raw.has(name)) impl.fileEncodings.set(file, raw.get(name));
    }
  }
  reflection.addToServer(server);
}

// ---- google.rpc.Status / BadRequest, encoded by hand (tiny, and keeps this
// ---- server independent of the descriptor plumbing under test) -----------
function varint(n) {
  const out = [];
  let v = BigInt.asUintN(64, BigInt(n));
  do {
    let b = Number(v & 0x7fn);
    v >>= 7n;
    if (v) b |= 0x80;
    out.push(b);
  } while (v);
  return Buffer.from(out);
}
function field(num, wire, payload) {
  const key = varint((num << 3) | wire);
  if (wire === 0) return Buffer.concat([key, varint(payload)]);
  const body = Buffer.isBuffer(payload) ? payload : Buffer.from(payload, 'utf8');
  return Buffer.concat([key, varint(body.length), body]);
}
function badRequest(violations) {
  return Buffer.concat(violations.map((v) =>
    field(1, 2, Buffer.concat([field(1, 2, v.field), field(2, 2, v.description)]))));
}
function statusDetails(code, message, badRequestBytes) {
  const parts = [];
  if (code) parts.push(field(1, 0, code));
  if (message) parts.push(field(2, 2, message));
  if (badRequestBytes) {
    const any = Buffer.concat([
      field(1, 2, 'type.googleapis.com/google.rpc.BadRequest'),
      field(2, 2, badRequestBytes),
    ]);
    parts.push(field(3, 2, any));
  }
  return Buffer.concat(parts);
}

// ---- metadata echo ----------------------------------------------------------
function echoMetadata(call) {
  const headers = new grpc.Metadata();
  const trailers = new grpc.Metadata();
  const md = call.metadata.getMap();
  for (const key of Object.keys(md)) {
    if (!key.startsWith('x-demo-')) continue;
    for (const v of call.metadata.get(key)) {
      headers.add(key, v);
      const tkey = key.endsWith('-bin') ? `${key.slice(0, -4)}-trailer-bin` : `${key}-trailer`;
      trailers.add(tkey, v);
    }
  }
  return { headers, trailers };
}

function grpcError(code, message, trailers, badRequestBytes) {
  const md = trailers ? trailers.clone() : new grpc.Metadata();
  if (badRequestBytes) md.set('grpc-status-details-bin', statusDetails(code, message, badRequestBytes));
  const err = new Error(message);
  err.code = code;
  err.details = message;
  err.metadata = md;
  return err;
}

// ---- time ---------------------------------------------------------------------
function durationMs(d) {
  if (!d) return 0;
  return Number(d.seconds || 0) * 1000 + Number(d.nanos || 0) / 1e6;
}
function nowTimestamp() {
  const ms = Date.now();
  return { seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1e6 };
}
function remainingMs(call) {
  const d = call.getDeadline();
  if (d === Infinity || d === undefined || d === null) return Infinity;
  const t = d instanceof Date ? d.getTime() : Number(d);
  if (!Number.isFinite(t)) return Infinity;
  return t - Date.now();
}
// Sleeps ms unless the call is cancelled or its deadline comes first.
// Resolves 'ok', 'deadline' (at the deadline) or 'cancelled'.
function sleep(call, ms) {
  return new Promise((resolve) => {
    if (call.cancelled) return resolve('cancelled');
    const left = remainingMs(call);
    let wait = ms;
    let outcome = 'ok';
    if (left < ms) {
      wait = Math.max(0, left);
      outcome = 'deadline';
    }
    if (wait <= 0 && outcome === 'ok') return resolve('ok');
    const onCancel = () => {
      clearTimeout(timer);
      resolve('cancelled');
    };
    const timer = setTimeout(() => {
      call.removeListener('cancelled', onCancel);
      resolve(outcome);
    }, wait);
    call.once('cancelled', onCancel);
  });
}
const deadlineError = (trailers) =>
  grpcError(grpc.status.DEADLINE_EXCEEDED, 'deadline exceeded', trailers);

// Writes with backpressure; resolves false if the call went away.
function writeMsg(call, msg) {
  return new Promise((resolve) => {
    if (call.cancelled) return resolve(false);
    if (call.write(msg)) return resolve(true);
    const done = (ok) => {
      call.removeListener('drain', onDrain);
      call.removeListener('cancelled', onCancel);
      resolve(ok);
    };
    const onDrain = () => done(true);
    const onCancel = () => done(false);
    call.once('drain', onDrain);
    call.once('cancelled', onCancel);
  });
}

// ---- the store ---------------------------------------------------------------------
const ROLE = { UNSPECIFIED: 0, VIEWER: 1, EDITOR: 2, ADMIN: 3 };
function ts(iso) {
  const ms = Date.parse(iso);
  return { seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1e6 };
}
const users = new Map();
const deleted = new Map();
let nextId = 4;
function seed() {
  users.set(1, {
    id: 1, name: 'Ada Lovelace', email: 'ada@example.com', role: ROLE.ADMIN, active: true,
    age: 36, score: 99.5, tags: ['math', 'poetry'], labels: { team: 'engine' },
    address: { street: "12 St James's Square", city: 'London', country: 'UK' },
    phone: '+44 20 0000 0001', nickname: 'Ada', created_at: ts('2024-01-02T03:04:05.678Z'),
    karma: 42,
  });
  users.set(2, {
    id: 2, name: 'Alan Turing', email: 'alan@example.com', role: ROLE.EDITOR, active: true,
    age: 41, created_at: ts('2024-02-03T04:05:06Z'), slack_handle: '@alan',
  });
  users.set(3, {
    id: 3, name: 'Grace Hopper', email: 'grace@example.com', role: ROLE.VIEWER, active: false,
    age: 85, created_at: ts('2024-03-04T05:06:07Z'),
  });
}
seed();

const USER_FIELDS = [
  'name', 'email', 'role', 'active', 'age', 'score', 'avatar', 'tags', 'labels', 'address',
  'phone', 'slack_handle', 'nickname', 'created_at', 'session_ttl', 'display_name',
  'login_count', 'preferences', 'previous_addresses', 'role_history', 'revision', 'karma',
];
const ADDRESS_FIELDS = ['street', 'city', 'country'];

function clean(u) {
  // proto-loader's decoded objects carry the oneof's virtual field.
  const out = { ...u };
  delete out.contact;
  return out;
}
function validate(u) {
  const v = [];
  if (!u.name) v.push({ field: 'name', description: 'name is required' });
  if (!u.email || !String(u.email).includes('@')) v.push({ field: 'email', description: "email must contain '@'" });
  return v;
}
function createUser(input) {
  const u = clean(input);
  u.id = nextId++;
  if (!u.created_at) u.created_at = nowTimestamp();
  users.set(u.id, u);
  return u;
}
function setField(dst, src, f) {
  if (src[f] === undefined || src[f] === null) delete dst[f];
  else dst[f] = src[f];
  if (f === 'phone' && dst.phone !== undefined) delete dst.slack_handle;
  if (f === 'slack_handle' && dst.slack_handle !== undefined) delete dst.phone;
}
function initials(name) {
  return String(name || '?').split(/\s+/).filter(Boolean).map((w) => w[0].toUpperCase()).join('').slice(0, 3) || '?';
}
function avatarSvg(u) {
  const text = initials(u.name).replace(/&/g, '&amp;').replace(/</g, '&lt;');
  return Buffer.from(
    '<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64" viewBox="0 0 64 64">' +
    '<circle cx="32" cy="32" r="32" fill="#4a6fa5"/>' +
    `<text x="32" y="40" font-family="sans-serif" font-size="24" fill="#fff" text-anchor="middle">${text}</text>` +
    '</svg>', 'utf8');
}

// Download's byte pattern: chunk at offset o is pattern[o & 0xff ..].
const MAX_CHUNK = 1024 * 1024;
const pattern = Buffer.alloc(MAX_CHUNK + 256);
for (let i = 0; i < pattern.length; i++) pattern[i] = i & 0xff;

// ---- handlers -----------------------------------------------------------------------------
// Every handler: echo headers first, then the work.
function unary(fn) {
  return (call, callback) => {
    const { headers, trailers } = echoMetadata(call);
    call.sendMetadata(headers);
    Promise.resolve()
      .then(() => fn(call, trailers))
      .then((res) => {
        if (!call.cancelled) callback(null, res, trailers);
      }, (err) => {
        if (call.cancelled) return;
        if (err && err.code !== undefined) callback(err);
        else callback(grpcError(grpc.status.INTERNAL, String(err && err.message || err), trailers));
      });
  };
}

function streaming(fn) {
  return (call) => {
    const { headers, trailers } = echoMetadata(call);
    call.sendMetadata(headers);
    Promise.resolve()
      .then(() => fn(call, trailers))
      .then(() => {
        if (!call.cancelled) call.end(trailers);
      }, (err) => {
        if (call.cancelled) return;
        // grpc-js turns an 'error' event on a server stream into its status.
        if (err && err.code !== undefined) call.emit('error', err);
        else call.emit('error', grpcError(grpc.status.INTERNAL, String(err && err.message || err), trailers));
      });
  };
}

const notFound = (id, trailers) => grpcError(grpc.status.NOT_FOUND, `user ${id} not found`, trailers);

const userService = {
  GetUser: unary((call, trl) => {
    const id = Number(call.request.id || 0);
    const u = users.get(id);
    if (!u) throw notFound(id, trl);
    return u;
  }),
  CreateUser: unary((call, trl) => {
    const v = validate(call.request);
    if (v.length) throw grpcError(grpc.status.INVALID_ARGUMENT, 'invalid user', trl, badRequest(v));
    return createUser(call.request);
  }),
  UpdateUser: unary((call, trl) => {
    const req = call.request;
    const src = clean(req.user || {});
    const id = Number(src.id || 0);
    const u = users.get(id);
    if (!u) throw notFound(id, trl);
    const paths = (req.update_mask && req.update_mask.paths) || [];
    const next = { ...u };
    if (paths.length === 0) {
      for (const f of USER_FIELDS) if (f !== 'created_at') setField(next, src, f);
    } else {
      for (const p of paths) {
        const dot = p.indexOf('.');
        if (dot < 0 && USER_FIELDS.includes(p)) {
          setField(next, src, p);
        } else if (dot > 0 && p.slice(0, dot) === 'address' && ADDRESS_FIELDS.includes(p.slice(dot + 1))) {
          const f = p.slice(dot + 1);
          next.address = { ...(next.address || {}) };
          setField(next.address, src.address || {}, f);
        } else {
          throw grpcError(grpc.status.INVALID_ARGUMENT, `unknown field in update_mask: ${p}`, trl);
        }
      }
    }
    next.id = id;
    next.created_at = u.created_at;
    users.set(id, next);
    return next;
  }),
  DeleteUser: unary((call, trl) => {
    const id = Number(call.request.id || 0);
    const u = users.get(id);
    if (!u) throw notFound(id, trl);
    users.delete(id);
    deleted.set(id, u);
    return {};
  }),
  UndeleteUser: unary((call, trl) => {
    const id = Number(call.request.id || 0);
    const u = deleted.get(id);
    if (!u) throw notFound(id, trl);
    deleted.delete(id);
    users.set(id, u);
    return u;
  }),
  ListUsers: streaming(async (call, trl) => {
    const req = call.request;
    const pageSize = Number(req.page_size || 0);
    if (pageSize > 100000 || pageSize < 0)
      throw grpcError(grpc.status.INVALID_ARGUMENT, 'page_size must be between 0 and 100000', trl);
    const delay = durationMs(req.delay);
    const role = Number(req.role || 0);
    const pick = () => [...users.values()].sort((a, b) => a.id - b.id)
      .filter((u) => role === 0 || u.role === role);
    let list = pick();
    // A page ends at the last user; follow cycles until pageSize were sent.
    const total = pageSize === 0 ? list.length
      : (req.follow ? pageSize : Math.min(pageSize, list.length));
    if (list.length === 0) return;
    for (let i = 0; i < total; i++) {
      if (i > 0 && delay > 0) {
        const r = await sleep(call, delay);
        if (r === 'cancelled') return;
        if (r === 'deadline') throw deadlineError(trl);
      }
      if (!(await writeMsg(call, list[i % list.length]))) return;
    }
  }),
  CreateUsers: (call, callback) => {
    const { headers, trailers } = echoMetadata(call);
    call.sendMetadata(headers);
    const ids = [];
    let failed = false;
    call.on('data', (u) => {
      if (failed) return;
      const v = validate(u);
      if (v.length) {
        failed = true;
        callback(grpcError(grpc.status.INVALID_ARGUMENT, 'invalid user', trailers, badRequest(v)));
        return;
      }
      ids.push(createUser(u).id);
    });
    call.on('end', () => {
      if (!failed && !call.cancelled) callback(null, { created: ids.length, ids }, trailers);
    });
    call.on('error', () => {});
  },
  Chat: (call) => {
    const { headers, trailers } = echoMetadata(call);
    call.sendMetadata(headers);
    let done = false;
    call.on('data', (m) => {
      if (call.cancelled || done) return;
      if (m.text === '!abort') {
        // A status in the middle of the stream (as the demo service does).
        done = true;
        call.emit('error', grpcError(grpc.status.ABORTED, 'chat aborted on request', trailers));
        return;
      }
      call.write({ text: m.text || '', from: 'server', sent_at: nowTimestamp(), sequence: Number(m.sequence || 0) });
    });
    call.on('end', () => {
      if (!call.cancelled && !done) call.end(trailers);
    });
    call.on('error', () => {});
  },
  GetAvatar: unary((call, trl) => {
    const id = Number(call.request.id || 0);
    const u = users.get(id);
    if (!u) throw notFound(id, trl);
    return { content_type: 'image/svg+xml', data: avatarSvg(u) };
  }),
  SetAvatar: unary((call, trl) => {
    const id = Number(call.request.id || 0);
    const u = users.get(id);
    if (!u) throw notFound(id, trl);
    const data = (call.request.avatar && call.request.avatar.data) || Buffer.alloc(0);
    if (data.length > 1024 * 1024)
      throw grpcError(grpc.status.INVALID_ARGUMENT, `avatar is larger than ${1024 * 1024} bytes (${data.length})`, trl);
    u.avatar = Buffer.from(data);
    return u;
  }),
};

async function echo(call, trl) {
  const r = await sleep(call, durationMs(call.request.delay));
  if (r === 'deadline') throw deadlineError(trl);
  if (r === 'cancelled') throw grpcError(grpc.status.CANCELLED, 'cancelled', trl);
  return { message: call.request.message || '', number: Number(call.request.number || 0) };
}

const echoService = {
  Echo: unary(echo),
  Unbound: unary(echo),
  Fail: unary(async (call, trl) => {
    const req = call.request;
    const r = await sleep(call, durationMs(req.delay));
    if (r === 'deadline') throw deadlineError(trl);
    if (r === 'cancelled') throw grpcError(grpc.status.CANCELLED, 'cancelled', trl);
    const code = Number(req.code || 0);
    if (code === 0) return { message: req.message || '' };
    if (code < 0 || code > 16) throw grpcError(grpc.status.UNKNOWN, req.message || '', trl);
    const details = code === grpc.status.INVALID_ARGUMENT
      ? badRequest([{ field: 'code', description: 'requested failure' }]) : null;
    throw grpcError(code, req.message || '', trl, details);
  }),
  Download: streaming(async (call, trl) => {
    const total = Number(call.request.total_bytes || 0);
    let chunk = Number(call.request.chunk_size || 0) || 16384;
    if (chunk < 0 || chunk > MAX_CHUNK)
      throw grpcError(grpc.status.INVALID_ARGUMENT, `chunk_size must be between 0 and ${MAX_CHUNK}`, trl);
    if (total < 0) throw grpcError(grpc.status.INVALID_ARGUMENT, 'total_bytes must not be negative', trl);
    // Test hook for the stream sweep (tests/streams): metadata
    // x-sweep-sizes "n1,n2,..." sends chunks of exactly those data lengths
    // instead (0 allowed; offset and data left out when 0 or empty, so a
    // first empty chunk is a 0-byte message). Absent: the demo semantics.
    const script = call.metadata.get('x-sweep-sizes');
    if (script.length) {
      let off = 0;
      for (const s of String(script[0]).split(',')) {
        const n = Number(s);
        if (!Number.isInteger(n) || n < 0 || n > MAX_CHUNK)
          throw grpcError(grpc.status.INVALID_ARGUMENT, `bad x-sweep-sizes entry ${s}`, trl);
        const msg = {};
        if (off) msg.offset = off;
        if (n) msg.data = pattern.subarray(off & 0xff, (off & 0xff) + n);
        if (!(await writeMsg(call, msg))) return;
        off += n;
      }
      return;
    }
    for (let off = 0; off < total; off += chunk) {
      const n = Math.min(chunk, total - off);
      const start = off & 0xff;
      const data = pattern.subarray(start, start + n);
      if (!(await writeMsg(call, { offset: off, data }))) return;
    }
  }),
};

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const pkgDef = protoLoader.loadSync([path.join(root, 'schemas/demo/v1/user.proto')], loaderOptions);
  const proto = grpc.loadPackageDefinition(pkgDef);
  const serverOptions = {};
  if (opts.maxAgeMs > 0) {
    serverOptions['grpc.max_connection_age_ms'] = opts.maxAgeMs;
    serverOptions['grpc.max_connection_age_grace_ms'] = 60000;
  }
  const server = new grpc.Server(serverOptions);
  server.addService(proto.demo.v1.UserService.service, userService);
  server.addService(proto.demo.v1.EchoService.service, echoService);
  if (opts.reflection) await addReflection(server);
  const creds = opts.cert
    ? grpc.ServerCredentials.createSsl(opts.clientCa ? fs.readFileSync(opts.clientCa) : null, [{
      cert_chain: fs.readFileSync(opts.cert), private_key: fs.readFileSync(opts.key),
    }], !!opts.clientCa)
    : grpc.ServerCredentials.createInsecure();
  let target;
  if (opts.unix) target = `unix:${path.resolve(opts.unix)}`;
  else target = opts.host.includes(':') ? `[${opts.host}]:${opts.port}` : `${opts.host}:${opts.port}`;
  server.bindAsync(target, creds, (err, port) => {
    if (err) {
      process.stderr.write(`grpcjs_server: cannot listen on ${target}: ${err.message}\n`);
      process.exit(1);
    }
    process.stdout.write(opts.unix ? `listening ${target}\n` : `listening ${port}\n`);
  });
  const stop = () => {
    server.forceShutdown();
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((e) => {
  process.stderr.write(`grpcjs_server: ${e.stack || e}\n`);
  process.exit(1);
});
