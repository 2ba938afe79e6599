// End-to-end gRPC-Web: @connectrpc/connect-web's gRPC-Web transport (a real
// client library, over Node's fetch) → `grpcgate serve` → a real backend on
// loopback, once with the embedded demo service and once with the
// @grpc/grpc-js implementation. Binary mode is the transport as shipped;
// text mode is the same transport with a fetch wrapper that speaks
// application/grpc-web-text on the wire; +json is useBinaryFormat: false.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { generate, startBackend, startGateway, stop } from './grpcweb_harness.mjs';

const gen = generate();
const { createClient, ConnectError, Code } = await import('@connectrpc/connect');
const { createGrpcWebTransport } = await import('@connectrpc/connect-web');
const { create } = await import('@bufbuild/protobuf');
const { EchoService, UserService } = await import(`${gen}/demo/v1/user_pb.js`);
const { BadRequestSchema } = await import(`${gen}/google/rpc/error_details_pb.js`);

// A fetch that turns the binary gRPC-Web request into text mode and the
// text-mode response back into binary, so the library sees binary while
// the wire carries base64 both ways (several padded chunks included).
function textModeFetch(seen) {
  return async (url, init) => {
    const body = Buffer.from(await new Response(init.body).arrayBuffer());
    const headers = new Headers(init.headers);
    headers.set('content-type', 'application/grpc-web-text');
    headers.set('accept', 'application/grpc-web-text');
    // Split into two separately padded base64 chunks.
    const cut = Math.min(1, body.length);
    const text = body.subarray(0, cut).toString('base64') + body.subarray(cut).toString('base64');
    const res = await fetch(url, { ...init, body: text, headers });
    seen.contentType = res.headers.get('content-type');
    const raw = await res.text();
    // Each flush is its own padded base64 chunk: decode group by group.
    const parts = [];
    for (let i = 0; i < raw.length; i += 4) parts.push(Buffer.from(raw.slice(i, i + 4), 'base64'));
    const outHeaders = new Headers(res.headers);
    outHeaders.set('content-type', 'application/grpc-web+proto');
    return new Response(Buffer.concat(parts), { status: res.status, headers: outHeaders });
  };
}

for (const backendKind of ['demo', 'grpcjs']) {
  describe(`gRPC-Web via grpcgate → ${backendKind} backend`, () => {
    let backend;
    let gateway;
    let echo;
    let users;
    let jsonEcho;
    let textEcho;
    let textUsers;
    const textSeen = {};

    before(async () => {
      backend = await startBackend(backendKind);
      gateway = await startGateway(backend.url);
      const transport = createGrpcWebTransport({ baseUrl: gateway.url, useBinaryFormat: true });
      echo = createClient(EchoService, transport);
      users = createClient(UserService, transport);
      jsonEcho = createClient(EchoService,
        createGrpcWebTransport({ baseUrl: gateway.url, useBinaryFormat: false }));
      const textTransport = createGrpcWebTransport({
        baseUrl: gateway.url, useBinaryFormat: true, fetch: textModeFetch(textSeen) });
      textEcho = createClient(EchoService, textTransport);
      textUsers = createClient(UserService, textTransport);
    });

    after(async () => {
      assert.equal(await stop(gateway), 0, 'grpcgate serve exits 0 on SIGTERM');
      await stop(backend);
    });

    test('unary echo (binary)', async () => {
      const res = await echo.echo({ message: 'hello gRPC-Web', number: 42n });
      assert.equal(res.message, 'hello gRPC-Web');
      assert.equal(res.number, 42n);
    });

    test('unary echo (text mode)', async () => {
      const res = await textEcho.echo({ message: 'in base64', number: 7n });
      assert.equal(res.message, 'in base64');
      assert.equal(res.number, 7n);
      assert.equal(textSeen.contentType, 'application/grpc-web-text+proto');
    });

    test('unary echo (+json)', async () => {
      const res = await jsonEcho.echo({ message: 'as JSON', number: 9n });
      assert.equal(res.message, 'as JSON');
      assert.equal(res.number, 9n);
    });

    test('server streaming: 1,000 messages', async () => {
      let n = 0;
      for await (const u of users.listUsers({ pageSize: 1000, follow: true })) {
        assert.ok(u.id > 0n);
        n++;
      }
      assert.equal(n, 1000);
    });

    test('server streaming in text mode', async () => {
      let n = 0;
      for await (const u of textUsers.listUsers({ pageSize: 50, follow: true })) { assert.ok(u.name); n++; }
      assert.equal(n, 50);
    });

    test('large server stream (Download 4 MiB)', async () => {
      let total = 0;
      for await (const c of echo.download({ totalBytes: 4n << 20n, chunkSize: 65536 })) total += c.data.length;
      assert.equal(total, 4 << 20);
    });

    test('every error status arrives with its message', async () => {
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

    test('error details via grpc-status-details-bin', async () => {
      await assert.rejects(echo.fail({ code: 3, message: 'bad input' }), (e) => {
        assert.equal(e.code, Code.InvalidArgument);
        const details = e.findDetails(BadRequestSchema);
        assert.equal(details.length, 1);
        assert.ok(details[0].fieldViolations.length >= 1);
        return true;
      });
    });

    test('request and response metadata', async () => {
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

    test('a deadline that expires', async () => {
      const t0 = Date.now();
      await assert.rejects(
        echo.echo({ message: 'slow', delay: { seconds: 5n } }, { timeoutMs: 300 }),
        (e) => { assert.equal(e.code, Code.DeadlineExceeded); return true; });
      assert.ok(Date.now() - t0 < 4000, 'the deadline cut the call short');
    });

    test('unknown method is UNIMPLEMENTED', async () => {
      const res = await fetch(`${gateway.url}/demo.v1.EchoService/NoSuchMethod`, {
        method: 'POST', headers: { 'content-type': 'application/grpc-web+proto' },
        body: Buffer.from([0, 0, 0, 0, 0]),
      });
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('grpc-status'), '12');
      assert.match(res.headers.get('grpc-message'), /unknown method/);
    });
  });
}
