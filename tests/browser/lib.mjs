// Helpers for the browser test: Debian's Chromium through playwright-core,
// child processes that announce "listening on HOST:PORT", and a static file
// server for development screenshots. Everything binds to loopback.
import { spawn } from 'node:child_process';
import { createReadStream, existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { extname, join, normalize, resolve, sep } from 'node:path';
import { createRequire } from 'node:module';

export const sourceRoot = process.env.GW_SOURCE_ROOT ?? resolve(new URL('../..', import.meta.url).pathname);
export const chromiumPath = process.env.GW_CHROMIUM ?? '/usr/bin/chromium';

// Flags that keep Chromium from talking to anything but the page under test.
const chromiumArgs = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

export function loadPlaywright() {
  const require = createRequire(join(sourceRoot, 'package.json'));
  return require('playwright-core');
}

// A fresh profile per run; close() kills the browser and removes the profile.
export async function launchChromium({ width = 1360, height = 900 } = {}) {
  const { chromium } = loadPlaywright();
  const profile = mkdtempSync(join(tmpdir(), 'gw-chromium-'));
  let context;
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath: chromiumPath,
      headless: true,
      args: chromiumArgs,
      viewport: { width, height },
      timeout: 60000,
    });
  } catch (e) {
    rmSync(profile, { recursive: true, force: true });
    throw e;
  }
  const page = context.pages()[0] ?? await context.newPage();
  return {
    context,
    page,
    async close() {
      try {
        await context.close();
      } finally {
        rmSync(profile, { recursive: true, force: true });
      }
    },
  };
}

// Starts a child and waits until a line of its output matches `ready` (a
// regexp whose first group is returned as `address`). Output lines are kept
// for later assertions. stop() sends SIGTERM, then SIGKILL after a grace time.
export function startProcess(cmd, args, { ready = /listening on (\S+)/, timeoutMs = 30000, env } = {}) {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: env ?? process.env });
    const lines = [];
    const waiters = [];
    let done = false;
    let exited = false;
    let exitInfo = null;

    const finish = (err, value) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (err) {
        if (!exited) child.kill('SIGKILL');
        reject(err);
      } else {
        resolvePromise(value);
      }
    };
    const proc = {
      child,
      lines,
      address: null,
      // Resolves with the first line matching re among those from index
      // `from` on, waiting for future lines if need be.
      waitForLine(re, ms = 30000, from = 0) {
        const seen = lines.slice(from).find((l) => re.test(l));
        if (seen) return Promise.resolve(seen);
        return new Promise((res, rej) => {
          const w = { re, res, timer: setTimeout(() => {
            waiters.splice(waiters.indexOf(w), 1);
            rej(new Error(`no output line matching ${re} within ${ms} ms; got:\n${lines.slice(-20).join('\n')}`));
          }, ms) };
          waiters.push(w);
        });
      },
      stop(graceMs = 5000) {
        if (exited) return Promise.resolve(exitInfo);
        return new Promise((res) => {
          const kill = setTimeout(() => child.kill('SIGKILL'), graceMs);
          child.once('exit', (code, signal) => { clearTimeout(kill); res({ code, signal }); });
          child.kill('SIGTERM');
        });
      },
    };
    const onLine = (line) => {
      lines.push(line);
      for (const w of [...waiters]) {
        if (w.re.test(line)) {
          clearTimeout(w.timer);
          waiters.splice(waiters.indexOf(w), 1);
          w.res(line);
        }
      }
      if (!proc.address) {
        const m = ready.exec(line);
        if (m) {
          proc.address = m[1];
          finish(null, proc);
        }
      }
    };
    for (const stream of [child.stdout, child.stderr]) {
      let partial = '';
      stream.setEncoding('utf8');
      stream.on('data', (chunk) => {
        partial += chunk;
        const parts = partial.split('\n');
        partial = parts.pop();
        for (const p of parts) onLine(p);
      });
    }
    const timer = setTimeout(() => finish(new Error(
      `${cmd} ${args.join(' ')}: not ready after ${timeoutMs} ms; output:\n${lines.slice(-20).join('\n')}`)), timeoutMs);
    child.on('error', (e) => finish(e));
    child.on('exit', (code, signal) => {
      exited = true;
      exitInfo = { code, signal };
      finish(new Error(`${cmd} ${args.join(' ')} exited (${signal ?? code}) before it was ready; output:\n`
        + lines.slice(-20).join('\n')));
    });
  });
}

const contentTypes = {
  '.html': 'text/html; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
};

// Development only: serves dir on a free loopback port.
export function serveStatic(dir) {
  const root = resolve(dir);
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    const file = normalize(join(root, path === '/' ? 'index.html' : path));
    if (!file.startsWith(root + sep) || !existsSync(file) || !statSync(file).isFile()) {
      res.writeHead(404).end('not found');
      return;
    }
    res.writeHead(200, { 'content-type': contentTypes[extname(file)] ?? 'application/octet-stream' });
    createReadStream(file).pipe(res);
  });
  return new Promise((res) => server.listen(0, '127.0.0.1', () => res({
    url: `http://127.0.0.1:${server.address().port}`,
    close: () => new Promise((r) => server.close(r)),
  })));
}
