// WebSocket figures for docs/performance.md (not a test: run by hand).
//
//   node bench/ws/ws_bench.mjs [--idle N] [--streams S] [--messages M]
//
// 1. Idle calls: N grpc-websockets Chat calls, each opened (handshake,
//    header block, one message answered) and then left idle; the gateway's
//    RSS (from /proc) before and after gives the memory per open call.
// 2. Throughput: S Chat streams on one worker, each sending M small
//    messages with up to 64 in flight, counting replies; messages per second
//    each way and the gateway's CPU time per message (from /proc/PID/stat).
// Runs `grpcgate serve --workers 1` against the embedded demo service.
import fs from 'node:fs';
import { createRequire } from 'node:module';
import { startBackend, startGateway, stop } from '../../tests/node/grpcweb_harness.mjs';

const require = createRequire(import.meta.url);
const { WebSocket } = require('ws');

const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : def;
};
const IDLE = opt('--idle', 1000);
const STREAMS = opt('--streams', 8);
const MESSAGES = opt('--messages', 20000);

const rssKiB = (pid) => Number(fs.readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+)/)[1]);
const cpuTicks = (pid) => {
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return Number(f[11]) + Number(f[12]); // utime + stime
};
const TICK = 100; // USER_HZ

// ChatMessage { text = 1 } as protobuf, framed for grpc-websockets.
function chatFrame(text) {
  const t = Buffer.from(text);
  const msg = Buffer.concat([Buffer.from([0x0a, t.length]), t]);
  const f = Buffer.alloc(6 + msg.length);
  f[0] = 0;
  f.writeUInt32BE(msg.length, 2);
  msg.copy(f, 6);
  return f;
}
const HEADERS = Buffer.from('content-type: application/grpc-web+proto\r\nx-grpc-web: 1\r\n');

function openChat(base) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${base.replace('http', 'ws')}/demo.v1.UserService/Chat`, ['grpc-websockets'],
      { perMessageDeflate: false });
    ws.on('error', reject);
    ws.on('open', () => { ws.send(HEADERS); resolve(ws); });
  });
}

// Counts gRPC message frames (flag 0) in the byte stream of one socket.
function counter(ws) {
  const c = { frames: 0, buf: Buffer.alloc(0), waiters: [] };
  ws.on('message', (d) => {
    c.buf = c.buf.length ? Buffer.concat([c.buf, d]) : Buffer.from(d);
    let off = 0;
    while (c.buf.length - off >= 5) {
      const n = c.buf.readUInt32BE(off + 1);
      if (c.buf.length - off < 5 + n) break;
      if (c.buf[off] === 0) c.frames++;
      off += 5 + n;
    }
    c.buf = c.buf.subarray(off);
    const w = c.waiters;
    c.waiters = [];
    for (const f of w) f();
  });
  c.until = (n) => new Promise((resolve) => {
    const check = () => (c.frames >= n ? resolve() : c.waiters.push(check));
    check();
  });
  return c;
}

const backend = await startBackend('demo');
const gw = await startGateway(backend.url, ['--workers', '1'],
  { limits: { max_connections: IDLE + 100 }, websocket: { ping_interval_ms: 0 } });
const pid = gw.proc.pid;
try {
  // ---- idle calls ----
  const warm = await openChat(gw.url);
  const wc = counter(warm);
  warm.send(chatFrame('warm'));
  await wc.until(1);
  await new Promise((r) => setTimeout(r, 500));
  const before = rssKiB(pid);
  const socks = [];
  for (let i = 0; i < IDLE; i++) {
    const ws = await openChat(gw.url);
    const c = counter(ws);
    ws.send(chatFrame(`idle ${i}`));
    await c.until(1);
    socks.push(ws);
  }
  await new Promise((r) => setTimeout(r, 1000));
  const after = rssKiB(pid);
  console.log(`idle: ${IDLE} open Chat calls: RSS ${before} KiB -> ${after} KiB, ` +
    `${((after - before) * 1024 / IDLE / 1024).toFixed(1)} KiB per call`);
  for (const ws of socks) ws.terminate();
  warm.terminate();
  await new Promise((r) => setTimeout(r, 1000));

  // ---- throughput ----
  const streams = [];
  for (let i = 0; i < STREAMS; i++) {
    const ws = await openChat(gw.url);
    streams.push({ ws, c: counter(ws) });
  }
  const frame = chatFrame('hello, chat');
  const t0 = process.hrtime.bigint();
  const cpu0 = cpuTicks(pid);
  await Promise.all(streams.map(async ({ ws, c }) => {
    let sent = 0;
    const WINDOW = 64;
    while (sent < MESSAGES) {
      const upto = Math.min(MESSAGES, c.frames + WINDOW);
      for (; sent < upto; sent++) ws.send(frame);
      await c.until(Math.min(MESSAGES, sent - WINDOW / 2));
    }
    await c.until(MESSAGES);
  }));
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = (cpuTicks(pid) - cpu0) / TICK;
  const total = STREAMS * MESSAGES;
  console.log(`chat: ${STREAMS} streams x ${MESSAGES} messages in ${secs.toFixed(2)} s: ` +
    `${Math.round(total / secs)} messages/s each way; gateway CPU ${cpu.toFixed(2)} s = ` +
    `${(cpu * 1e6 / total).toFixed(1)} us per message (both directions)`);
  for (const { ws } of streams) ws.terminate();
} finally {
  await stop(gw);
  await stop(backend);
}
