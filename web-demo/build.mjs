#!/usr/bin/env node
// Builds the web demo: generates TypeScript for the demo API with
// protoc + protoc-gen-es, then bundles the page with esbuild. Works offline:
// everything comes from the root node_modules and Debian's protoc.
//
//   node web-demo/build.mjs [--out DIR] [--mock] [--check]
//
//   --out DIR  where index.html, favicon.svg and assets/ go (default web-demo/dist)
//   --mock     development only: bundle an in-memory fake of the demo service
//              instead of the gRPC-Web transport, to work on the layout without
//              a gateway. Never used by the build or the tests.
//   --check    also type-check the sources with tsc (slower; for development)
//
// The bundle and the style sheet get content-hashed names,
// DIR/assets/app-XXXXXXXX.js and style-XXXXXXXX.css, that grpcgate serves
// with a one-year immutable Cache-Control (docs/static.md); index.html is
// written from index.html.in with those names filled in, and is itself
// revalidated on every load. The generated code lands in DIR/.gen; none of
// it is committed.
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, relative, resolve } from 'node:path';
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

// The rule grpcgate uses to give a file a year of immutable caching
// (gw_static_is_hashed_name in src/server/static.c): "-", eight of [A-Z0-9]
// with at least one letter, then ".". esbuild's [hash] is eight characters
// of A-Z and 2-7; should one ever be digits only, the build stops here
// rather than ship a name the server would revalidate every minute.
const hashedName = /-(?=[A-Z0-9]{8}\.)(?![0-9]{8}\.)[A-Z0-9]{8}\./;

// A fresh assets/ each time: old hashes must not pile up in the build tree
// (or be installed). app.js and style.css are what builds before hashing
// wrote; removing them keeps an old build directory from serving them.
const assets = join(out, 'assets');
rmSync(assets, { recursive: true, force: true });
for (const f of ['app.js', 'style.css']) rmSync(join(out, f), { force: true });

const esbuild = await import(join(modules, 'esbuild/lib/main.js'));
let result;
try {
  result = await esbuild.build({
    entryPoints: {
      app: join(here, 'src', mock ? 'dev-mock.ts' : 'app.ts'),
      style: join(here, 'style.css'),
    },
    outdir: assets,
    entryNames: '[name]-[hash]',
    bundle: true,
    format: 'esm',
    target: ['es2020'],
    minify: !mock,
    sourcemap: false,
    legalComments: 'none',
    logLevel: 'warning',
    nodePaths: [modules],
    alias: { 'gw-gen': gen },
    metafile: true,
    absWorkingDir: out,
  });
} catch (e) {
  fail(`esbuild failed: ${e.message}`);
}

// The output of each entry point, as index.html refers to it.
const names = {};
for (const [file, meta] of Object.entries(result.metafile.outputs)) {
  if (!meta.entryPoint) continue;
  const name = basename(file);
  const key = name.endsWith('.css') ? 'style.css' : 'app.js';
  if (!hashedName.test(name)) fail(`${name}: not a name grpcgate recognises as hashed`);
  names[key] = relative(out, join(assets, name)).split('\\').join('/');
}
if (!names['app.js'] || !names['style.css']) fail('esbuild did not write app and style');

const template = readFileSync(join(here, 'index.html.in'), 'utf8');
const html = template.replace(/\{\{([a-z.]+)\}\}/g, (m, key) => {
  if (!names[key]) fail(`index.html.in: unknown placeholder ${m}`);
  return names[key];
});
writeFileSync(join(out, 'index.html'), html);
copyFileSync(join(here, 'favicon.svg'), join(out, 'favicon.svg'));
console.log(`web-demo: built ${out} (${names['app.js']}, ${names['style.css']})` +
  `${mock ? ' (mock backend, development only)' : ''}`);
