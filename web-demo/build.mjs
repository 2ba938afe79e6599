#!/usr/bin/env node
// Builds the web demo: generates TypeScript for the demo API with
// protoc + protoc-gen-es, then bundles the page with esbuild. Works offline:
// everything comes from the root node_modules and Debian's protoc.
//
//   node web-demo/build.mjs [--out DIR] [--mock] [--check]
//
//   --out DIR  where index.html, style.css and app.js go (default web-demo/dist)
//   --mock     development only: bundle an in-memory fake of the demo service
//              instead of the gRPC-Web transport, to work on the layout without
//              a gateway. Never used by the build or the tests.
//   --check    also type-check the sources with tsc (slower; for development)
//
// The generated code lands in DIR/.gen and is not committed.
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '..');
const modules = join(root, 'node_modules');

function usage(msg) {
  if (msg) console.error(`web-demo/build.mjs: ${msg}`);
  console.error('usage: node web-demo/build.mjs [--out DIR] [--mock] [--check]');
  process.exit(2);
}

let out = join(here, 'dist');
let mock = false;
let check = false;
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  const a = argv[i];
  if (a === '--out') {
    if (i + 1 >= argv.length) usage('--out needs a directory');
    out = resolve(argv[++i]);
  } else if (a === '--mock') {
    mock = true;
  } else if (a === '--check') {
    check = true;
  } else {
    usage(`unknown argument '${a}'`);
  }
}

function fail(msg) {
  console.error(`web-demo/build.mjs: ${msg}`);
  process.exit(1);
}

const plugin = join(modules, '.bin', 'protoc-gen-es');
if (!existsSync(plugin) || !existsSync(join(modules, 'esbuild')))
  fail(`${modules} lacks protoc-gen-es or esbuild: run scripts/setup (npm ci) first`);

// The same include roots as the top-level meson.build uses for the gateway.
const googleapisCandidates = [
  '/usr/share/gocode/src/github.com/grpc-ecosystem/grpc-gateway/third_party/googleapis',
  '/usr/share/gocode/src/github.com/gogo/googleapis',
];
const googleapis = googleapisCandidates.find((d) => existsSync(join(d, 'google/api/annotations.proto')));
if (!googleapis) fail('google/api/annotations.proto not found: run scripts/setup');

const gen = join(out, '.gen');
rmSync(gen, { recursive: true, force: true });
mkdirSync(gen, { recursive: true });

// protoc-gen-es writes only the files named here, so every non-WKT import of
// user.proto is listed; error_details.proto is not imported by the API but
// the page decodes google.rpc.BadRequest details with it.
const protos = [
  'demo/v1/user.proto',
  'google/api/annotations.proto',
  'google/api/http.proto',
  'google/api/httpbody.proto',
  'google/rpc/error_details.proto',
];
const protoc = spawnSync('protoc', [
  `--plugin=protoc-gen-es=${plugin}`,
  `--es_out=${gen}`,
  '--es_opt=target=ts',
  `-I${join(root, 'schemas')}`,
  `-I${join(root, 'schemas/third_party')}`,
  `-I${googleapis}`,
  '-I/usr/include',
  ...protos,
], { stdio: 'inherit' });
if (protoc.error) fail(`cannot run protoc: ${protoc.error.message}`);
if (protoc.status !== 0) fail('protoc failed');

// The tsconfig is written here, not committed, because the generated code's
// place depends on --out; esbuild itself is told the same through `alias`.
if (check) {
  const tsconfig = join(out, 'tsconfig.check.json');
  writeFileSync(tsconfig, JSON.stringify({
    compilerOptions: {
      target: 'ES2020', module: 'ESNext', moduleResolution: 'Bundler', lib: ['ES2020', 'DOM', 'DOM.Iterable'],
      strict: true, noEmit: true, skipLibCheck: true, typeRoots: [],
      baseUrl: out, paths: { 'gw-gen/*': [join(gen, '*')], '*': [join(modules, '*')] },
    },
    include: [join(here, 'src', '*.ts')],
  }, null, 2));
  const tsc = spawnSync(process.execPath, [join(modules, 'typescript/bin/tsc'), '-p', tsconfig], { stdio: 'inherit' });
  if (tsc.status !== 0) fail('type check failed');
}

const esbuild = await import(join(modules, 'esbuild/lib/main.js'));
try {
  await esbuild.build({
    entryPoints: [join(here, 'src', mock ? 'dev-mock.ts' : 'app.ts')],
    outfile: join(out, 'app.js'),
    bundle: true,
    format: 'esm',
    target: ['es2020'],
    minify: !mock,
    sourcemap: false,
    legalComments: 'none',
    logLevel: 'warning',
    nodePaths: [modules],
    alias: { 'gw-gen': gen },
  });
} catch (e) {
  fail(`esbuild failed: ${e.message}`);
}

for (const f of ['index.html', 'style.css', 'favicon.svg'])
  copyFileSync(join(here, f), join(out, f));
console.log(`web-demo: built ${out}${mock ? ' (mock backend, development only)' : ''}`);
