#!/usr/bin/env node
// A misbehaving HTTP/2 (h2c prior knowledge) backend for the upstream fault
// tests, built on node:http2 so that every frame it sends is under the
// test's control. The request path picks the behaviour:
//
//   /fault.Fault/Http503       503 with an HTML body
//   /fault.Fault/Html200       200 text/html (not gRPC)
//   /fault.Fault/NoStatus      a gRPC message, then END_STREAM without trailers
//   /fault.Fault/RefusedOnce   RST_STREAM(REFUSED_STREAM) the first time, then OK
//   /fault.Fault/Calm          RST_STREAM(ENHANCE_YOUR_CALM)
//   /fault.Fault/Gzip          one gzip-compressed message, then OK
//   /fault.Fault/GzipBomb      a small gzip message inflating to 16 MiB
//   /fault.Fault/BigHeaders    response headers larger than 16 KiB
//   /fault.Fault/Slow          OK after 200 ms (with --max-streams: pool tests)
//   /fault.Fault/Headers       OK; the message lists the request's te,
//                              content-type, grpc-accept-encoding, grpc-timeout
//   anything else              grpc-status 12 (UNIMPLEMENTED)
//
// Prints "listening <port>" once bound (port 0 picks a free one).
// --max-streams N advertises SETTINGS_MAX_CONCURRENT_STREAMS = N.
import http2 from 'node:http2';
import zlib from 'node:zlib';

let port = 0;
let maxStreams = 0;
for (let i = 2; i < process.argv.length; i++) {
  if (process.argv[i] === '--port') port = Number(process.argv[++i]);
  else if (process.argv[i] === '--max-streams') maxStreams = Number(process.argv[++i]);
}

function frame(payload, compressed = false) {
  const b = Buffer.alloc(5 + payload.length);
  b[0] = compressed ? 1 : 0;
  b.writeUInt32BE(payload.length, 1);
  payload.copy(b, 5);
  return b;
}

let refusedOnce = false;
const { NGHTTP2_REFUSED_STREAM, NGHTTP2_ENHANCE_YOUR_CALM } = http2.constants;

const server = http2.createServer(maxStreams ? { settings: { maxConcurrentStreams: maxStreams } } : {});
let openStreams = 0;
let peakStreams = 0;
server.on('stream', (stream, headers) => {
  const path = headers[':path'];
  const name = String(path).replace(/^\/fault\.Fault\//, '');
  stream.on('error', () => {});
  const ok = (extraHeaders, body) => {
    stream.respond({ ':status': 200, 'content-type': 'application/grpc', ...extraHeaders },
      { waitForTrailers: true });
    stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
    stream.end(body);
  };
  // Let the request body arrive before answering, like a real server.
  stream.resume();
  const answer = () => {
    switch (name) {
      case 'Http503':
        stream.respond({ ':status': 503, 'content-type': 'text/html' });
        stream.end('<html><body><h1>503 Service Unavailable</h1>\nbackend overloaded</body></html>');
        return;
      case 'Html200':
        stream.respond({ ':status': 200, 'content-type': 'text/html; charset=utf-8' });
        stream.end('<!doctype html><p>hello</p>');
        return;
      case 'NoStatus':
        stream.respond({ ':status': 200, 'content-type': 'application/grpc' });
        stream.end(frame(Buffer.from('orphan')));
        return;
      case 'RefusedOnce':
        if (!refusedOnce) {
          refusedOnce = true;
          stream.close(NGHTTP2_REFUSED_STREAM);
          return;
        }
        ok({}, frame(Buffer.from('second try')));
        return;
      case 'Slow':
        openStreams++;
        peakStreams = Math.max(peakStreams, openStreams);
        setTimeout(() => {
          openStreams--;
          ok({ 'x-peak-streams': String(peakStreams) }, frame(Buffer.from('slow')));
        }, 200);
        return;
      case 'Headers': {
        const h = ['te', 'content-type', 'grpc-accept-encoding', 'grpc-timeout']
          .map((k) => `${k}=${headers[k] === undefined ? '-' : headers[k]}`).join(' ');
        ok({}, frame(Buffer.from(h)));
        return;
      }
      case 'Calm':
        stream.close(NGHTTP2_ENHANCE_YOUR_CALM);
        return;
      case 'Gzip':
        ok({ 'grpc-encoding': 'gzip' }, frame(zlib.gzipSync(Buffer.from('inflated hello')), true));
        return;
      case 'GzipBomb':
        ok({ 'grpc-encoding': 'gzip' }, frame(zlib.gzipSync(Buffer.alloc(16 * 1024 * 1024)), true));
        return;
      case 'BigHeaders':
        ok({ 'x-big': 'x'.repeat(20000) }, frame(Buffer.from('unreachable')));
        return;
      default:
        stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '12',
          'grpc-message': `unknown fault ${name}` }, { endStream: true });
    }
  };
  if (stream.readableEnded) answer();
  else stream.on('end', answer);
});
server.on('sessionError', () => {});
server.listen(port, '127.0.0.1', () => {
  process.stdout.write(`listening ${server.address().port}\n`);
});
const stop = () => process.exit(0);
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
