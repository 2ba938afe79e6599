// End-to-end grpc-websockets: @improbable-eng/grpc-web's WebsocketTransport
// (over `ws` as the global WebSocket) → `grpcgate serve` → a real backend on
// loopback, once with the embedded demo service and once with @grpc/grpc-js.
// Client streaming and bidi — what gRPC-Web over fetch cannot carry.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { startBackend, startGateway, stop } from './grpcweb_harness.mjs';
import { grpc, open, Chat, ChatMessage, CreateUsers, User } from './ws_harness.mjs';

const require = createRequire(import.meta.url);
const { WebSocket } = require('ws');

async function metric(url, name) {
  const res = await fetch(`${url}/metrics`);
  const text = await res.text();
  const m = text.match(new RegExp(`^${name} (\\d+)`, 'm'));
  return m ? Number(m[1]) : NaN;
}

async function until(what, f, ms = 20000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

for (const backendKind of ['demo', 'grpcjs']) {
  describe(`grpc-websockets via grpcgate → ${backendKind} backend`, () => {
    let backend;
    let gateway;

    before(async () => {
      backend = await startBackend(backendKind);
      gateway = await startGateway(backend.url);
    });

    after(async () => {
      assert.equal(await stop(gateway), 0, 'grpcgate serve exits 0 on SIGTERM');
      await stop(backend);
    });

    test('Chat: each reply before the next send, 10,000 round trips', { timeout: 60000 }, async () => {
      const r = open(gateway.url, Chat, { 'x-demo-echo': 'ws' });
      const n = 10000;
      for (let i = 1; i <= n; i++) {
        r.client.send(new ChatMessage({ text: `m${i}`, sequence: BigInt(i) }));
        assert.equal(await r.waitFor(i), i, `reply ${i} arrived`);
        const got = r.messages[i - 1].m;
        assert.equal(got.text, `m${i}`);
        assert.equal(got.sequence, BigInt(i));
        assert.equal(got.from, 'server');
      }
      r.client.finishSend();
      const end = await r.end;
      assert.equal(end.code, grpc.Code.OK, end.message);
      assert.equal(r.messages.length, n);
    });

    test('Chat: 10,000 messages each way without waiting, then half-close', { timeout: 60000 }, async () => {
      const r = open(gateway.url, Chat);
      const n = 10000;
      for (let i = 1; i <= n; i++)
        r.client.send(new ChatMessage({ text: 'x'.repeat(i % 200), sequence: BigInt(i) }));
      r.client.finishSend();
      const before = r.messages.length;
      const end = await r.end;
      assert.equal(end.code, grpc.Code.OK, end.message);
      assert.equal(r.messages.length, n);
      assert.ok(r.messages.length > before, 'replies arrived after the half-close');
      for (let i = 0; i < n; i++)
        assert.equal(r.messages[i].m.sequence, BigInt(i + 1), `reply ${i + 1} in order`);
    });

    test('Chat: half-close, then the replies still come', { timeout: 60000 }, async () => {
      const r = open(gateway.url, Chat);
      for (let i = 1; i <= 50; i++) r.client.send(new ChatMessage({ text: `h${i}` }));
      r.client.finishSend();
      const end = await r.end;
      assert.equal(end.code, grpc.Code.OK);
      assert.deepEqual(r.messages.map((m) => m.m.text),
        Array.from({ length: 50 }, (_, i) => `h${i + 1}`));
    });

    test('Chat: an error status mid-stream', { timeout: 60000 }, async () => {
      const r = open(gateway.url, Chat);
      r.client.send(new ChatMessage({ text: 'one' }));
      await r.waitFor(1);
      r.client.send(new ChatMessage({ text: '!abort' }));
      const end = await r.end;
      assert.equal(end.code, grpc.Code.Aborted);
      assert.equal(end.message, 'chat aborted on request');
      assert.equal(r.messages.length, 1);
      assert.equal(r.messages[0].m.text, 'one');
    });

    test('Chat: an expiring deadline ends the call DEADLINE_EXCEEDED', { timeout: 60000 }, async () => {
      const r = open(gateway.url, Chat, { 'grpc-timeout': '300m' });
      r.client.send(new ChatMessage({ text: 'before the deadline' }));
      await r.waitFor(1);
      const end = await r.end; // never half-closed: only the deadline ends it
      assert.equal(end.code, grpc.Code.DeadlineExceeded);
      assert.equal(r.messages.length, 1);
    });

    test('Chat: cancel from the client cancels the backend call', { timeout: 60000 }, async () => {
      const r = open(gateway.url, Chat);
      r.client.send(new ChatMessage({ text: 'then cancel' }));
      await r.waitFor(1);
      assert.ok(await metric(gateway.url, 'grpcgate_active_calls') >= 1);
      r.client.close();
      await until('no active calls', async () => (await metric(gateway.url, 'grpcgate_active_calls')) === 0);
    });

    test('CreateUsers: client streaming', { timeout: 60000 }, async () => {
      const r = open(gateway.url, CreateUsers);
      for (let i = 0; i < 25; i++)
        r.client.send(new User({ name: `ws user ${i}`, email: `ws${i}@example.com` }));
      r.client.finishSend();
      const end = await r.end;
      assert.equal(end.code, grpc.Code.OK, end.message);
      assert.equal(r.messages.length, 1);
      assert.equal(r.messages[0].m.created, 25);
      assert.equal(r.messages[0].m.ids.length, 25);
    });

    test('CreateUsers: an invalid user ends it INVALID_ARGUMENT', { timeout: 60000 }, async () => {
      const r = open(gateway.url, CreateUsers);
      r.client.send(new User({ name: '', email: 'not an address' }));
      r.client.finishSend();
      const end = await r.end;
      assert.equal(end.code, grpc.Code.InvalidArgument);
    });

    test('an unknown method ends with UNIMPLEMENTED, not a dropped socket', { timeout: 60000 }, async () => {
      const Nope = { ...Chat, methodName: 'Nope' };
      const r = open(gateway.url, Nope);
      r.client.send(new ChatMessage({ text: 'x' }));
      const end = await r.end;
      assert.equal(end.code, grpc.Code.Unimplemented);
      assert.match(end.message, /unknown method/);
    });
  });
}

describe('grpc-websockets: SIGTERM drain', () => {
  test('a call in flight finishes, then the socket closes with 1001', { timeout: 60000 }, async () => {
    const backend = await startBackend('demo');
    const gateway = await startGateway(backend.url, ['--workers', '1']);
    try {
      const ws = new WebSocket(`${gateway.url.replace('http', 'ws')}/demo.v1.UserService/Chat`,
        ['grpc-websockets']);
      await new Promise((resolve, reject) => { ws.on('open', resolve); ws.on('error', reject); });
      const chunks = [];
      let waiter = null;
      ws.on('message', (d) => { chunks.push(Buffer.from(d)); if (waiter) waiter(); });
      const closed = new Promise((resolve) => ws.on('close', (code) => resolve(code)));
      ws.send(Buffer.from('content-type: application/grpc-web+proto\r\n'));
      const msg = new ChatMessage({ text: 'in flight' }).serializeBinary();
      const frame = Buffer.alloc(6 + msg.length);
      frame[0] = 0; // data
      frame.writeUInt32BE(msg.length, 2);
      Buffer.from(msg).copy(frame, 6);
      ws.send(frame);
      await until('the first reply', async () => chunks.length >= 2);
      gateway.proc.kill('SIGTERM');
      await new Promise((r) => setTimeout(r, 300));
      ws.send(frame); // still served while draining
      await until('the second reply', async () => chunks.length >= 3);
      ws.send(Buffer.from([1])); // finish sending
      const code = await closed;
      assert.equal(code, 1001, 'closed as going away');
      const all = Buffer.concat(chunks).toString('latin1');
      assert.match(all, /grpc-status: 0/);
      assert.equal(await stop(gateway), 0);
    } finally {
      await stop(gateway);
      await stop(backend);
    }
  });
});

// JSON over WebSocket (no subprotocol): one ProtoJSON message per text
// frame each way, an empty text frame half-closes, the status comes last
// in the REST error shape, then a normal close.
async function jsonCall(base, path, messages, { finish = true } = {}) {
  const ws = new WebSocket(`${base.replace('http', 'ws')}${path}`);
  const got = [];
  ws.on('message', (d, isBinary) => got.push(isBinary ? { binary: d } : JSON.parse(d.toString())));
  const closed = new Promise((resolve) => ws.on('close', (code) => resolve(code)));
  await new Promise((resolve, reject) => { ws.on('open', resolve); ws.on('error', reject); });
  for (const m of messages) ws.send(typeof m === 'string' || Buffer.isBuffer(m) ? m : JSON.stringify(m));
  if (finish) ws.send('');
  const code = await closed;
  return { code, messages: got.slice(0, -1), status: got[got.length - 1] };
}

for (const backendKind of ['demo', 'grpcjs']) {
  describe(`JSON over WebSocket via grpcgate → ${backendKind} backend`, () => {
    let backend;
    let gateway;
    before(async () => {
      backend = await startBackend(backendKind);
      gateway = await startGateway(backend.url);
    });
    after(async () => {
      assert.equal(await stop(gateway), 0);
      await stop(backend);
    });

    test('Chat on its auto route: 1,000 messages each way', { timeout: 60000 }, async () => {
      const msgs = Array.from({ length: 1000 }, (_, i) => ({ text: `j${i}`, sequence: String(i) }));
      const r = await jsonCall(gateway.url, '/demo.v1.UserService/Chat', msgs);
      assert.equal(r.code, 1000);
      assert.equal(r.status.code, 0); // grpc-js says message 'OK', the demo ''
      assert.deepEqual(r.status.details, []);
      assert.equal(r.messages.length, 1000);
      assert.equal(r.messages[999].text, 'j999');
      assert.equal(r.messages[999].from, 'server');
    });

    test('CreateUsers on its REST path (POST /v1/users:batchCreate)', { timeout: 60000 }, async () => {
      const r = await jsonCall(gateway.url, '/v1/users:batchCreate',
        [{ name: 'J One', email: 'j1@example.com' }, { name: 'J Two', email: 'j2@example.com' }]);
      assert.equal(r.code, 1000);
      assert.equal(r.status.code, 0);
      assert.equal(r.messages.length, 1);
      assert.equal(r.messages[0].created, 2);
    });

    test('an error mid-stream arrives as the REST error shape', { timeout: 60000 }, async () => {
      const ws = new WebSocket(`${gateway.url.replace('http', 'ws')}/demo.v1.UserService/Chat`);
      const got = [];
      let wake = null;
      ws.on('message', (d) => { got.push(JSON.parse(d.toString())); if (wake) wake(); });
      const closed = new Promise((resolve) => ws.on('close', (code) => resolve(code)));
      await new Promise((resolve, reject) => { ws.on('open', resolve); ws.on('error', reject); });
      ws.send(JSON.stringify({ text: 'first' }));
      await until('the first reply', async () => got.length >= 1);
      ws.send(JSON.stringify({ text: '!abort' }));
      assert.equal(await closed, 1000);
      assert.equal(got.length, 2);
      assert.equal(got[0].text, 'first');
      assert.equal(got[1].code, 10);
      assert.equal(got[1].message, 'chat aborted on request');
    });

    test('bad JSON, a binary frame, an unknown path', { timeout: 60000 }, async () => {
      let r = await jsonCall(gateway.url, '/demo.v1.UserService/Chat', ['{"text": ']);
      assert.equal(r.status.code, 3);
      r = await jsonCall(gateway.url, '/demo.v1.UserService/Chat', [Buffer.from([1, 2, 3])], { finish: false });
      assert.equal(r.status.code, 3);
      assert.equal(r.code, 1003);
      r = await jsonCall(gateway.url, '/v1/nothing/here', [{}]);
      assert.equal(r.status.code, 12);
    });
  });
}
