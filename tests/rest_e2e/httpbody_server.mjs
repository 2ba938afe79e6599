#!/usr/bin/env node
// The @grpc/grpc-js backend of the raw HttpBody stream checks in
// test_rest_e2e.py: rest.test.v1.RestTest.DownloadStream
// (schemas/test/rest_test.proto), a server stream of google.api.HttpBody.
// The request's `name` picks what the stream does, `level` is a delay in
// milliseconds before every message after the first:
//
//   parts   three messages with different content types (only the first
//           counts) and bytes that are not UTF-8, then OK
//   slow    three one-line messages, `level` ms apart, then OK
//   empty   no message, OK
//   before  NOT_FOUND before any message
//   after   one message, then DATA_LOSS
//   zeros   20000 messages without data, then "done\n": more empty messages
//           than the gateway's stream window holds
//
//   node httpbody_server.mjs --descriptor rest.pb
//
// The bound port is printed as "listening <port>" once calls are accepted.
// SIGTERM and SIGINT stop it at once.
import fs from 'node:fs';
import grpc from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';

const args = process.argv.slice(2);
const at = args.indexOf('--descriptor');
if (at < 0 || at + 1 >= args.length) {
  console.error('usage: httpbody_server.mjs --descriptor rest.pb');
  process.exit(2);
}
const def = protoLoader.loadFileDescriptorSetFromBuffer(fs.readFileSync(args[at + 1]), {
  keepCase: true, longs: Number, enums: Number, bytes: Buffer, defaults: false, oneofs: true,
});
const service = grpc.loadPackageDefinition(def).rest.test.v1.RestTest.service;

const PARTS = [
  { content_type: 'application/x-parts; v=1', data: Buffer.from([0x00, 0xff, 0xfe, 0x80, 0x0a]) },
  { content_type: 'text/ignored', data: Buffer.from('second\n') },
  { data: Buffer.from([0xc3, 0x28, 0xff]) },
];

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Resolves when the message is queued or the call went away.
function send(call, msg) {
  return new Promise((resolve) => {
    if (call.cancelled || call.destroyed) return resolve(false);
    if (call.write(msg)) return resolve(true);
    call.once('drain', () => resolve(true));
  });
}

async function downloadStream(call) {
  const { name = '', level = 0 } = call.request;
  switch (name) {
    case 'parts':
      for (const m of PARTS) await send(call, m);
      return call.end();
    case 'slow':
      for (let i = 0; i < 3; i++) {
        if (i) await sleep(level);
        await send(call, { content_type: 'text/plain', data: Buffer.from(`line ${i}\n`) });
      }
      return call.end();
    case 'empty':
      return call.end();
    case 'before':
      return call.emit('error', { code: grpc.status.NOT_FOUND, details: 'no file before' });
    case 'after':
      await send(call, { content_type: 'application/x-after', data: Buffer.from('first\n') });
      await sleep(level);
      return call.emit('error', { code: grpc.status.DATA_LOSS, details: 'disk went away' });
    case 'zeros':
      for (let i = 0; i < 20000; i++) {
        if (!(await send(call, i ? {} : { content_type: 'text/plain' }))) return undefined;
      }
      await send(call, { data: Buffer.from('done\n') });
      return call.end();
    default:
      return call.emit('error', { code: grpc.status.INVALID_ARGUMENT, details: `unknown ${name}` });
  }
}

// The other methods get grpc-js's UNIMPLEMENTED handlers.
const server = new grpc.Server();
server.addService(service, { DownloadStream: downloadStream });
server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => {
  if (err) {
    console.error(err.message);
    process.exit(1);
  }
  console.log(`listening ${port}`);
});
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));
