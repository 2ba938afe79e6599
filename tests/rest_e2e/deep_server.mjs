#!/usr/bin/env node
// A @grpc/grpc-js backend for the depth checks of test_depth_e2e.py: it
// answers demo.v1.UserService GetUser and ListUsers with crafted wire bytes
// (no protobuf library in between), so it can send a User nested deeper than
// the gateway's limit — as a buggy or hostile backend might.
//
//   GetUser {id: D}          one User whose message depth is exactly D
//   ListUsers {page_size: D} a User of depth 1, one of depth D, one of depth 1
//
// Depth counts message levels as docs/codec.md does: the User is 1, its
// `preferences` Struct 2, each JSON object below it a Value + Struct (2
// more), the innermost scalar a Value (1).
//
//   node deep_server.mjs     prints "listening <port>" once calls are accepted
import grpc from '@grpc/grpc-js';

function varint(n) {
  const out = [];
  let v = BigInt(n);
  do {
    let b = Number(v & 0x7fn);
    v >>= 7n;
    if (v) b |= 0x80;
    out.push(b);
  } while (v);
  return Buffer.from(out);
}

function len(tag, body) {
  return Buffer.concat([varint(tag), varint(body.length), body]);
}

// A Struct of j nested objects {"a": {"a": ...}}: the innermost holds
// "a": true when scalar, else is empty.
function struct(j, scalar) {
  if (j === 1 && !scalar) return Buffer.alloc(0);
  const value = j === 1 ? Buffer.from([0x20, 0x01]) // Value.bool_value = true
    : len(0x2a, struct(j - 1, scalar));              // Value.struct_value
  const entry = Buffer.concat([len(0x0a, Buffer.from('a')), len(0x12, value)]);
  return len(0x0a, entry);                           // Struct.fields entry
}

// A User {id, preferences} exactly `depth` message levels deep (depth >= 1).
function user(id, depth) {
  const head = Buffer.concat([Buffer.from([0x08]), varint(id)]);
  if (depth < 2) return head;
  // depth 2j: j objects, the innermost empty; depth 2j + 1: around a scalar.
  const j = Math.floor(depth / 2);
  return Buffer.concat([head, len(19 * 8 + 2, struct(j, depth % 2 === 1))]);
}

// The first varint field of a request (GetUserRequest.id, ListUsersRequest
// .page_size are both field 1).
function field1(buf) {
  if (buf.length < 2 || buf[0] !== 0x08) return 0;
  let v = 0, shift = 0;
  for (let i = 1; i < buf.length; i++) {
    v += (buf[i] & 0x7f) * 2 ** shift;
    shift += 7;
    if (!(buf[i] & 0x80)) break;
  }
  return v;
}

const raw = (b) => b;
const method = (name, responseStream) => ({
  path: `/demo.v1.UserService/${name}`, requestStream: false, responseStream,
  requestSerialize: raw, requestDeserialize: raw, responseSerialize: raw, responseDeserialize: raw,
});

const server = new grpc.Server();
server.addService({ GetUser: method('GetUser', false), ListUsers: method('ListUsers', true) }, {
  GetUser(call, cb) {
    cb(null, user(7, field1(call.request)));
  },
  ListUsers(call) {
    const d = field1(call.request);
    call.write(user(1, 1));
    call.write(user(2, d));
    call.write(user(3, 1));
    call.end();
  },
});
server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => {
  if (err) {
    console.error(err.message);
    process.exit(1);
  }
  console.log(`listening ${port}`);
});
for (const s of ['SIGTERM', 'SIGINT']) process.on(s, () => process.exit(0));
