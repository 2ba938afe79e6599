// Shared pieces of the gRPC-Web integration tests: code generation with
// protoc-gen-es into tests/node/gen (git-ignored), and starting real
// processes on loopback (backends and `grpcgate serve`) that the tests kill.
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const root = process.env.GW_SOURCE_ROOT || path.resolve(here, '..', '..');
export const grpcgate = process.env.GW_GRPCGATE || path.join(root, 'build', 'src', 'grpcgate');
export const demoDesc = process.env.GW_DEMO_DESC || path.join(root, 'build', 'schemas', 'demo.pb');

const googleapis = '/usr/share/gocode/src/github.com/grpc-ecosystem/grpc-gateway/third_party/googleapis';

// Generates ES modules for the demo API (and the google.api / google.rpc
// files it needs) into tests/node/gen. Several test runs may do this at
// once: each writes a private directory and renames it into place.
export function generate() {
  const gen = path.join(root, 'tests', 'node', 'gen');
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gw-gen-'));
  const plugin = path.join(root, 'node_modules', '.bin', 'protoc-gen-es');
  execFileSync('protoc', [
    `--plugin=protoc-gen-es=${plugin}`, `--es_out=${tmp}`,
    '--es_opt=target=js,import_extension=js',
    `-I${path.join(root, 'schemas')}`, `-I${path.join(root, 'schemas', 'third_party')}`,
    `-I${googleapis}`, '-I/usr/include',
    'demo/v1/user.proto', 'google/api/annotations.proto', 'google/api/http.proto',
    'google/api/httpbody.proto', 'google/rpc/status.proto', 'google/rpc/error_details.proto',
  ], { stdio: ['ignore', 'inherit', 'inherit'] });
  fs.mkdirSync(path.dirname(gen), { recursive: true });
  const old = `${gen}.old-${process.pid}`;
  try { fs.renameSync(gen, old); } catch { /* first run */ }
  try {
    fs.renameSync(tmp, gen);
  } catch {
    // A concurrent run put its copy in place first: same content, use it.
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  fs.rmSync(old, { recursive: true, force: true });
  return gen;
}

// Starts a process and resolves once a line of stdout matches re; returns
// { proc, match, stderr() }. The process is killed by stop().
export function start(cmd, args, re, opts = {}) {
  return new Promise((resolve, reject) => {
    const proc = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
    let out = '';
    let err = '';
    let done = false;
    const timer = setTimeout(() => {
      if (!done) { done = true; proc.kill('SIGKILL'); reject(new Error(`${cmd}: no '${re}' within 20 s; stderr: ${err}`)); }
    }, 20000);
    proc.stdout.on('data', (d) => {
      out += d;
      const m = out.match(re);
      if (m && !done) {
        done = true;
        clearTimeout(timer);
        resolve({ proc, match: m, stderr: () => err });
      }
    });
    proc.stderr.on('data', (d) => { err += d; });
    proc.on('exit', (code) => {
      if (!done) { done = true; clearTimeout(timer); reject(new Error(`${cmd} exited ${code}: ${err}`)); }
    });
  });
}

export async function stop(p, signal = 'SIGTERM') {
  if (!p || p.proc.exitCode !== null || p.proc.signalCode !== null) return p?.proc.exitCode;
  return new Promise((resolve) => {
    const t = setTimeout(() => p.proc.kill('SIGKILL'), 15000);
    p.proc.once('exit', (code, sig) => { clearTimeout(t); resolve(code ?? sig); });
    p.proc.kill(signal);
  });
}

// Backends: the embedded demo service or the grpc-js implementation.
export async function startBackend(kind) {
  if (kind === 'demo') {
    const p = await start(grpcgate, ['demo-service', '--listen', '127.0.0.1:0'], /listening on ([\d.]+):(\d+)/);
    return { ...p, url: `http://127.0.0.1:${p.match[2]}` };
  }
  const p = await start(process.execPath, [path.join(root, 'tests', 'node', 'grpcjs_server.mjs'), '--port', '0'], /listening (\d+)/);
  return { ...p, url: `http://127.0.0.1:${p.match[1]}` };
}

export async function startGateway(backendUrl, extraArgs = [], config = null) {
  const args = ['serve', '--listen', '127.0.0.1:0', '--backend', backendUrl,
    '--descriptor', demoDesc, '--workers', '2'];
  if (config) {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'gw-cfg-')), 'config.json');
    fs.writeFileSync(file, JSON.stringify(config));
    args.push('--config', file);
  }
  const p = await start(grpcgate, [...args, ...extraArgs], /listening on ([\d.]+):(\d+)/);
  return { ...p, url: `http://127.0.0.1:${p.match[2]}` };
}
