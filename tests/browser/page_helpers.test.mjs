// The web demo's pure helpers (web-demo/src/curl.ts, status.ts), compiled
// on the fly with esbuild and checked against tables: the curl lines the
// page shows, the shell quoting they rely on, and the gRPC → HTTP mapping.
//
//   node tests/browser/page_helpers.test.mjs
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { sourceRoot } from './lib.mjs';

let esbuild;
try {
  esbuild = createRequire(join(sourceRoot, 'package.json'))('esbuild');
} catch {
  console.log('SKIP: esbuild is not installed (npm ci at the source root, or scripts/setup)');
  process.exit(77);
}

async function load(entry) {
  const out = await esbuild.build({
    entryPoints: [join(sourceRoot, 'web-demo/src', entry)],
    bundle: true, format: 'esm', write: false, logLevel: 'silent',
  });
  return import(`data:text/javascript;base64,${Buffer.from(out.outputFiles[0].text).toString('base64')}`);
}

const curl = await load('curl.ts');
const status = await load('status.ts');

test('shellQuote: plain words stay bare, anything else is single-quoted', () => {
  const table = [
    ['http://127.0.0.1:8080/v1/users/1', 'http://127.0.0.1:8080/v1/users/1'],
    ['a b', "'a b'"],
    ['', "''"],
    ["it's", "'it'\\''s'"],
    ['{"a":1}', `'{"a":1}'`],
    ['$HOME', "'$HOME'"],
    ['x&y', "'x&y'"],
  ];
  for (const [input, want] of table) assert.equal(curl.shellQuote(input), want, input);
});

test('shellQuote: bash gives back exactly the original string', () => {
  const inputs = ["it's", 'a b', '$(rm -rf /)', '`x`', 'new\nline', '"q"', "'''", 'ünïcødé', '\\'];
  for (const s of inputs) {
    const r = spawnSync('bash', ['-c', `printf %s ${curl.shellQuote(s)}`], { encoding: 'utf8' });
    assert.equal(r.stdout, s, JSON.stringify(s));
  }
});

test('durationJson: google.protobuf.Duration JSON strings', () => {
  const table = [[0, '0s'], [400, '0.4s'], [1000, '1s'], [1500, '1.5s'], [5, '0.005s'], [2250, '2.25s']];
  for (const [ms, want] of table) assert.equal(curl.durationJson(ms), want, String(ms));
});

test('curl lines for each panel', () => {
  const base = 'http://127.0.0.1:8080';
  assert.equal(curl.curlGetUser(base, '2'), 'curl -s http://127.0.0.1:8080/v1/users/2');
  assert.equal(curl.curlGetUser(base, 'a b'), 'curl -s http://127.0.0.1:8080/v1/users/a%20b');
  assert.equal(curl.curlListUsers(base, 12, 400), "curl -sN 'http://127.0.0.1:8080/v1/users?pageSize=12&delay=0.4s&follow=true'");
  assert.equal(curl.curlCreateUser(base, { name: "O'Neil", email: 'o@x' }), [
    'curl -s -X POST http://127.0.0.1:8080/v1/users \\',
    "  -H 'Content-Type: application/json' \\",
    "  -d '{",
    `    "name": "O'\\''Neil",`,
    '    "email": "o@x"',
    "  }'",
  ].join('\n'));
});

test('the POST line is one curl invocation with the JSON body intact', () => {
  const body = { name: "O'Neil $x", email: 'o@x', role: 'ROLE_ADMIN' };
  // Replace curl by a function that prints its last argument.
  const line = curl.curlCreateUser('http://h', body).replace(/^curl/, 'f() { printf %s "${@: -1}"; }; f');
  const r = spawnSync('bash', ['-c', line], { encoding: 'utf8' });
  assert.deepEqual(JSON.parse(r.stdout), body);
});

test('gRPC code names and the HTTP status REST clients get', () => {
  const table = [
    [0, 'OK', 200], [1, 'CANCELLED', 499], [2, 'UNKNOWN', 500], [3, 'INVALID_ARGUMENT', 400],
    [4, 'DEADLINE_EXCEEDED', 504], [5, 'NOT_FOUND', 404], [6, 'ALREADY_EXISTS', 409],
    [7, 'PERMISSION_DENIED', 403], [8, 'RESOURCE_EXHAUSTED', 429], [9, 'FAILED_PRECONDITION', 400],
    [10, 'ABORTED', 409], [11, 'OUT_OF_RANGE', 400], [12, 'UNIMPLEMENTED', 501], [13, 'INTERNAL', 500],
    [14, 'UNAVAILABLE', 503], [15, 'DATA_LOSS', 500], [16, 'UNAUTHENTICATED', 401], [17, 'CODE_17', 500],
  ];
  for (const [code, name, http] of table) {
    assert.equal(status.codeName(code), name);
    assert.equal(status.httpStatus(code), http, name);
  }
});

test('formatMs', () => {
  const table = [[0.42, '0.4 ms'], [9.96, '10.0 ms'], [12.4, '12 ms'], [9999, '9999 ms'], [12345, '12.3 s']];
  for (const [ms, want] of table) assert.equal(status.formatMs(ms), want, String(ms));
});
