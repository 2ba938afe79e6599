// End-to-end Connect protocol: @connectrpc/connect-web's Connect transport
// (its default, over Node's fetch) and @connectrpc/connect-node's Connect
// transport over HTTP/1.1 → `grpcgate serve` → a real backend on loopback,
// once with the embedded demo service and once with @grpc/grpc-js. Binary
// (application/proto, application/connect+proto) and JSON, GET for the
// side-effect-free GetUser, client streaming with connect-node.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { generate, startBackend, startGateway, stop } from './grpcweb_harness.mjs';

const gen = generate();
const { createClient, ConnectError, Code } = await import('@connectrpc/connect');
const web = await import('@connectrpc/connect-web');
const nodeTransport = await import('@connectrpc/connect-node');
const { EchoService, UserService } = await import(`${gen}/demo/v1/user_pb.js`);
const { BadRequestSchema } = await import(`${gen}/google/rpc/error_details_pb.js`);

// A fetch that records what went on the wire (method, URL, headers).
function recordingFetch(log) {
  return async (url, init) => {
    log.push({ url: String(url), method: init?.method ?? 'GET', headers: new Headers(init?.headers) });
    return fetch(url, init);
  };
}

for (const backendKind of ['demo', 'grpcjs']) {
  for (const binary of [true, false]) {
    const mode = binary ? 'binary' : 'JSON';
    describe(`Connect (${mode}) via grpcgate → ${backendKind} backend`, () => {
      let backend;
      let gateway;
      let echo;
      let users;
      let getUsers;
      const wire = [];

      before(async () => {
        backend = await startBackend(backendKind);
        gateway = await startGateway(backend.url);
        const transport = web.createConnectTransport({
          baseUrl: gateway.url, useBinaryFormat: binary, fetch: recordingFetch(wire) });
        echo = createClient(EchoService, transport);
        users = createClient(UserService, transport);
        getUsers = createClient(UserService, web.createConnectTransport({
          baseUrl: gateway.url, useBinaryFormat: binary, useHttpGet: true,
          fetch: recordingFetch(wire) }));
      });

      after(async () => {
        assert.equal(await stop(gateway), 0, 'grpcgate serve exits 0 on SIGTERM');
        await stop(backend);
      });

      test('unary echo', async () => {
        wire.length = 0;
        const res = await echo.echo({ message: `hello Connect ${mode}`, number: 42n });
        assert.equal(res.message, `hello Connect ${mode}`);
        assert.equal(res.number, 42n);
        assert.equal(wire[0].method, 'POST');
        assert.equal(wire[0].headers.get('content-type'), binary ? 'application/proto' : 'application/json');
        assert.equal(wire[0].headers.get('connect-protocol-version'), '1');
      });

      test('server streaming: 1,000 messages', async () => {
        let n = 0;
        for await (const u of users.listUsers({ pageSize: 1000, follow: true })) {
          assert.ok(u.id > 0n);
          n++;
        }
        assert.equal(n, 1000);
      });

      test('server streaming arrives message by message', async () => {
        // Five messages 400 ms apart: the first must be here long before
        // the last (a gateway that buffered the stream would hand all five
        // over at once, after ~1.6 s).
        const t0 = Date.now();
        const times = [];
        for await (const u of users.listUsers({ pageSize: 5, follow: true, delay: { nanos: 400_000_000 } })) {
          assert.ok(u.name);
          times.push(Date.now() - t0);
        }
        assert.equal(times.length, 5);
        assert.ok(times[4] - times[0] >= 1200, `spread over the stream: ${times}`);
      });

      test('large server stream (Download 4 MiB)', async () => {
        let total = 0;
        for await (const c of echo.download({ totalBytes: 4n << 20n, chunkSize: 65536 })) total += c.data.length;
        assert.equal(total, 4 << 20);
      });

      test('every error code arrives with its message', async () => {
        for (let code = 1; code <= 16; code++) {
          const message = `failure ${code}: ünïcode & 100%`;
          await assert.rejects(echo.fail({ code, message }), (e) => {
            assert.ok(e instanceof ConnectError);
            assert.equal(e.code, code);
            assert.equal(e.rawMessage, message);
            return true;
          });
        }
      });

      test('an error mid-stream arrives in the end-of-stream message', async () => {
        // ListUsers with a role no user has is fine; an error mid-stream
        // comes from the deadline: 3 messages 300 ms apart, 450 ms allowed.
        const got = [];
        await assert.rejects((async () => {
          for await (const u of users.listUsers({ pageSize: 3, delay: { nanos: 300_000_000 } },
            { timeoutMs: 450 })) got.push(u);
        })(), (e) => { assert.equal(e.code, Code.DeadlineExceeded); return true; });
        assert.ok(got.length >= 1, 'messages before the error arrived');
      });

      test('error details with type, value (and debug on the wire)', async () => {
        await assert.rejects(echo.fail({ code: 3, message: 'bad input' }), (e) => {
          assert.equal(e.code, Code.InvalidArgument);
          const details = e.findDetails(BadRequestSchema);
          assert.equal(details.length, 1);
          assert.ok(details[0].fieldViolations.length >= 1);
          return true;
        });
        const res = await fetch(`${gateway.url}/demo.v1.EchoService/Fail`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'connect-protocol-version': '1' },
          body: JSON.stringify({ code: 3, message: 'bad input' }),
        });
        assert.equal(res.status, 400);
        assert.equal(res.headers.get('content-type'), 'application/json');
        const body = await res.json();
        assert.equal(body.code, 'invalid_argument');
        assert.equal(body.message, 'bad input');
        assert.equal(body.details[0].type, 'google.rpc.BadRequest');
        assert.match(body.details[0].value, /^[A-Za-z0-9+/]+$/, 'unpadded base64');
        assert.ok(body.details[0].debug.fieldViolations.length >= 1);
      });

      test('request and response metadata (headers and trailers)', async () => {
        let headers;
        let trailers;
        const res = await echo.echo({ message: 'md' }, {
          headers: { 'x-demo-trace': 'trace-123', 'x-demo-data-bin': Buffer.from([0, 1, 2, 255]).toString('base64') },
          onHeader: (h) => { headers = h; },
          onTrailer: (t) => { trailers = t; },
        });
        assert.equal(res.message, 'md');
        assert.equal(headers.get('x-demo-trace'), 'trace-123');
        assert.equal(trailers.get('x-demo-trace-trailer'), 'trace-123');
        const bin = Buffer.from(headers.get('x-demo-data-bin'), 'base64');
        assert.deepEqual([...bin], [0, 1, 2, 255]);
      });

      test('trailers of a stream arrive in the end-of-stream message', async () => {
        let trailers;
        const stream = users.listUsers({ pageSize: 2 }, {
          headers: { 'x-demo-trace': 'stream-7' },
          onTrailer: (t) => { trailers = t; },
        });
        let n = 0;
        for await (const u of stream) { assert.ok(u.id); n++; }
        assert.equal(n, 2);
        assert.equal(trailers.get('x-demo-trace-trailer'), 'stream-7');
      });

      test('a deadline that expires (client and gateway)', async () => {
        const t0 = Date.now();
        await assert.rejects(
          echo.echo({ message: 'slow', delay: { seconds: 5n } }, { timeoutMs: 300 }),
          (e) => { assert.equal(e.code, Code.DeadlineExceeded); return true; });
        assert.ok(Date.now() - t0 < 4000, 'the deadline cut the call short');
        // The gateway itself enforces Connect-Timeout-Ms (no client timer here).
        const res = await fetch(`${gateway.url}/demo.v1.EchoService/Echo`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'connect-protocol-version': '1', 'connect-timeout-ms': '300' },
          body: JSON.stringify({ message: 'slow', delay: '5s' }),
        });
        assert.equal(res.status, 504);
        assert.equal((await res.json()).code, 'deadline_exceeded');
      });

      test('useHttpGet: GetUser (NO_SIDE_EFFECTS) goes as GET', async () => {
        wire.length = 0;
        const u = await getUsers.getUser({ id: 1n });
        assert.equal(u.name, 'Ada Lovelace');
        assert.equal(wire[0].method, 'GET');
        const q = new URL(wire[0].url).searchParams;
        assert.equal(q.get('connect'), 'v1');
        assert.equal(q.get('encoding'), binary ? 'proto' : 'json');
        await assert.rejects(getUsers.getUser({ id: 999999n }), (e) => {
          assert.equal(e.code, Code.NotFound);
          return true;
        });
      });

      test('unknown method: 404 with a Connect error body', async () => {
        const res = await fetch(`${gateway.url}/demo.v1.EchoService/NoSuchMethod`, {
          method: 'POST',
          headers: { 'content-type': binary ? 'application/proto' : 'application/json', 'connect-protocol-version': '1' },
          body: binary ? new Uint8Array(0) : '{}',
        });
        assert.equal(res.status, 404);
        const body = await res.json();
        assert.equal(body.code, 'unimplemented');
        assert.match(body.message, /unknown method/);
      });
    });
  }

  describe(`Connect over HTTP/1.1 (connect-node) → ${backendKind}: client streaming`, () => {
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

    for (const binary of [true, false]) {
      test(`CreateUsers streams ${binary ? 'binary' : 'JSON'} messages`, async () => {
        const transport = nodeTransport.createConnectTransport({
          baseUrl: gateway.url, httpVersion: '1.1', useBinaryFormat: binary });
        const client = createClient(UserService, transport);
        async function* people() {
          for (let i = 0; i < 50; i++) {
            yield { name: `user ${i}`, email: `u${i}@example.com` };
          }
        }
        const res = await client.createUsers(people());
        assert.equal(res.created, 50);
        assert.equal(res.ids.length, 50);
      });
    }

    test('client streaming: a bad message fails the call in Connect form', async () => {
      const transport = nodeTransport.createConnectTransport({
        baseUrl: gateway.url, httpVersion: '1.1', useBinaryFormat: true });
      const client = createClient(UserService, transport);
      async function* people() {
        yield { name: 'ok', email: 'ok@example.com' };
        yield { name: '', email: 'nope' };
      }
      await assert.rejects(client.createUsers(people()), (e) => {
        assert.equal(e.code, Code.InvalidArgument);
        return true;
      });
    });
  });
}
