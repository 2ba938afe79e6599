// `grpcgate demo` on a free port: the curl commands it prints must work as
// printed. Each printed line is run by bash, exactly as a reader would paste
// it, and its output checked; then Ctrl-C (SIGINT) must stop the process
// with status 0.
//
//   node tests/browser/demo_curl.test.mjs
//
// Exits 77 (meson: SKIP) only when curl is not installed (scripts/setup
// installs it; a strict run fails that skip). Everything about grpcgate
// itself — the binary, `grpcgate demo`, its REST routes, its page — is
// asserted: a regression there fails the test.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { sourceRoot, startProcess } from './lib.mjs';

const SKIP = 77;
const grpcgate = process.env.GW_GRPCGATE ?? join(sourceRoot, 'build/src/grpcgate');

function skip(reason) {
  console.log(`SKIP: ${reason}`);
  process.exit(SKIP);
}

assert.ok(existsSync(grpcgate), `${grpcgate} not built`);
if (spawnSync('curl', ['--version']).status !== 0) skip('curl is not installed (scripts/setup)');

const demo = await startProcess(grpcgate, ['demo', '--listen', '127.0.0.1:0', '--workers', '1'],
  { timeoutMs: 60000 });
process.on('exit', () => {
  if (demo.child.exitCode === null && demo.child.signalCode === null) demo.child.kill('SIGKILL');
});
after(async () => {
  await demo.stop();
});

// The banner comes after the "listening on" line; its last line says how to stop.
await demo.waitForLine(/Ctrl-C stops everything/, 30000);
const base = `http://${demo.address}`;

const curlLines = demo.lines.filter((l) => /^\s+curl /.test(l)).map((l) => l.trim());

function run(line) {
  const r = spawnSync('bash', ['-c', line], { encoding: 'utf8', timeout: 60000 });
  assert.equal(r.error, undefined, `${line}: ${r.error}`);
  assert.equal(r.status, 0, `${line}: exit ${r.status}\n${r.stderr}`);
  return r.stdout;
}

test('banner: three curl commands for this gateway', () => {
  assert.equal(curlLines.length, 3, demo.lines.join('\n'));
  for (const l of curlLines) assert.ok(l.includes(`${base}/v1/users`), l);
});

test('printed GET returns user 1', () => {
  const line = curlLines.find((l) => / -s http/.test(l) && !/-X POST/.test(l));
  assert.ok(line, 'a GET line');
  const user = JSON.parse(run(line));
  assert.equal(user.id, '1');
  assert.equal(user.name, 'Ada Lovelace');
});

test('printed POST creates a user', () => {
  const line = curlLines.find((l) => /-X POST/.test(l));
  assert.ok(line, 'a POST line');
  const user = JSON.parse(run(line));
  assert.equal(user.name, 'Katherine Johnson');
  assert.equal(user.email, 'katherine@example.com');
  assert.ok(Number(user.id) > 3, `new id ${user.id}`);
});

test('printed stream returns one NDJSON result line per message', () => {
  const line = curlLines.find((l) => /curl -sN/.test(l));
  assert.ok(line, 'a stream line');
  const pageSize = Number(/pageSize=(\d+)/.exec(line)?.[1]);
  assert.ok(pageSize > 0, line);
  const out = run(line).trimEnd().split('\n');
  assert.equal(out.length, pageSize, out.join('\n'));
  for (const l of out) {
    const m = JSON.parse(l);
    assert.ok(m.result && typeof m.result.name === 'string' && m.result.name !== '', l);
  }
  assert.equal(JSON.parse(out[0]).result.name, 'Ada Lovelace');
});

test('the printed page URL serves the web demo', async () => {
  const open = demo.lines.find((l) => /Open the web demo:/.test(l));
  assert.ok(open, `no "Open the web demo:" line in the banner:\n${demo.lines.join('\n')}`);
  const url = /(http:\/\/\S+)/.exec(open)[1];
  assert.equal(url, `${base}/`);
  const res = await fetch(url);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/html/);
  assert.match(await res.text(), /<title>grpcgate/);
});

test('a second demo on the same port refuses to start', () => {
  const r = spawnSync(grpcgate, ['demo', '--listen', demo.address], { encoding: 'utf8', timeout: 30000 });
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, /is in use/);
});

test('Ctrl-C stops the demo with status 0', async () => {
  const { code, signal } = await new Promise((res) => {
    demo.child.once('exit', (c, s) => res({ code: c, signal: s }));
    demo.child.kill('SIGINT');
  });
  assert.equal(signal, null);
  assert.equal(code, 0, demo.lines.slice(-10).join('\n'));
});
