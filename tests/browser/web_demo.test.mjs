// The web demo in a real browser: Debian's headless Chromium, driven by
// playwright-core, opens the page served by grpcgate and uses it like a
// person would — a unary lookup, a failing create whose BadRequest detail
// must show per field, and a live server stream that is cancelled, after
// which the demo service must report the cancellation.
//
//   node tests/browser/web_demo.test.mjs [--web-dir DIR] [--out DIR]
//
// Uses Node's built-in test runner (node:test). Exits 77 (meson: SKIP) with
// the reason when Chromium, playwright-core or a serving gateway is missing.
//
// The gateway comes from `grpcgate demo --listen 127.0.0.1:0`; if that
// command is not implemented in this build, from `grpcgate demo-service` plus
// `grpcgate serve --static`. GW_BROWSER_MODE=demo|serve forces one.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromiumPath, launchChromium, loadPlaywright, sourceRoot, startProcess } from './lib.mjs';

const SKIP = 77;
const args = process.argv.slice(2);
const opt = (name) => {
  const i = args.indexOf(name);
  return i >= 0 && i + 1 < args.length ? resolve(args[i + 1]) : null;
};
const outDir = opt('--out') ?? resolve('.');
const grpcgate = process.env.GW_GRPCGATE ?? join(sourceRoot, 'build/src/grpcgate');
const demoDesc = process.env.GW_DEMO_DESC ?? join(sourceRoot, 'build/schemas/demo.pb');

function skip(reason) {
  console.log(`SKIP: ${reason}`);
  process.exit(SKIP);
}

if (!existsSync(chromiumPath)) skip(`${chromiumPath} not found (apt-get install chromium, or scripts/setup)`);
try {
  loadPlaywright();
} catch {
  skip('playwright-core is not installed (npm ci at the source root, or scripts/setup)');
}
if (!existsSync(grpcgate)) skip(`${grpcgate} not built`);

// Every child is killed even if the runner dies before its after() hooks.
const children = [];
process.on('exit', () => {
  for (const c of children) if (c.child.exitCode === null && c.child.signalCode === null) c.child.kill('SIGKILL');
});

const notImplemented = (e) => /not implemented/i.test(String(e?.message ?? e));

// The page: the bundle the build made, or one made now into a temp dir.
let webDir = opt('--web-dir');
let tempWebDir = null;
if (!webDir || !existsSync(join(webDir, 'index.html'))) {
  tempWebDir = mkdtempSync(join(tmpdir(), 'gw-web-demo-'));
  const b = spawnSync(process.execPath, [join(sourceRoot, 'web-demo/build.mjs'), '--out', tempWebDir],
    { stdio: 'inherit' });
  if (b.status !== 0) {
    rmSync(tempWebDir, { recursive: true, force: true });
    throw new Error('web-demo/build.mjs failed');
  }
  webDir = tempWebDir;
}

// Returns { url, backendLog, gateway, service } or skips.
async function startStack() {
  const mode = process.env.GW_BROWSER_MODE ?? 'auto';
  if (mode !== 'serve') {
    try {
      const demo = await startProcess(grpcgate, ['demo', '--listen', '127.0.0.1:0', '--static', webDir],
        { ready: /listening on (\S+)/, timeoutMs: 60000 });
      children.push(demo);
      return { url: `http://${demo.address}/`, backendLog: demo, gateway: demo, service: null };
    } catch (e) {
      if (mode === 'demo' || !notImplemented(e)) throw e;
    }
  }
  let service;
  try {
    service = await startProcess(grpcgate, ['demo-service', '--listen', '127.0.0.1:0'], { timeoutMs: 60000 });
  } catch (e) {
    if (notImplemented(e)) skip('grpcgate demo-service is not implemented in this build yet');
    throw e;
  }
  children.push(service);
  let gateway;
  try {
    gateway = await startProcess(grpcgate, ['serve', '--listen', '127.0.0.1:0', '--workers', '1',
      '--backend', `http://${service.address}`, '--descriptor', demoDesc, '--static', webDir],
    { timeoutMs: 60000 });
  } catch (e) {
    await service.stop();
    if (notImplemented(e)) skip('grpcgate serve is not implemented in this build yet');
    throw e;
  }
  children.push(gateway);
  return { url: `http://${gateway.address}/`, backendLog: service, gateway, service };
}

const stack = await startStack();
mkdirSync(outDir, { recursive: true });

describe('web demo in headless Chromium', { timeout: 240000 }, () => {
  let browser;
  let page;
  const pageErrors = [];

  before(async () => {
    browser = await launchChromium({ width: 1360, height: 900 });
    page = browser.page;
    page.setDefaultTimeout(30000);
    page.on('pageerror', (e) => pageErrors.push(e.message));
    const res = await page.goto(stack.url);
    assert.equal(res.status(), 200, `GET ${stack.url}`);
  });

  after(async () => {
    try {
      if (page) await page.screenshot({ path: join(outDir, 'web-demo.png'), fullPage: true });
    } finally {
      await browser?.close();
      if (tempWebDir) rmSync(tempWebDir, { recursive: true, force: true });
    }
  });

  test('page loads its bundle and names the gateway', async () => {
    await page.waitForFunction(() => document.getElementById('gateway-url')?.textContent !== '–');
    assert.equal(await page.textContent('#gateway-url'), new URL(stack.url).origin);
    assert.equal(await page.textContent('#origin-mode'), 'same origin');
    assert.match(await page.textContent('#lookup-curl'), /^curl -s http:\/\/127\.0\.0\.1:\d+\/v1\/users\/1$/);
  });

  test('unary lookup: GetUser 2 shows Alan Turing', async () => {
    await page.fill('#lookup-id', '2');
    await page.click('#lookup-submit');
    await page.waitForSelector('#lookup-status.status-ok, #lookup-status.status-err');
    assert.equal(await page.textContent('#lookup-status [data-testid=code]'), 'OK (0)',
      await page.textContent('#lookup-status'));
    assert.match(await page.textContent('[data-testid=user-card]'), /Alan Turing/);
    const reply = JSON.parse(await page.textContent('#lookup-reply'));
    assert.equal(reply.id, '2');
    assert.equal(reply.name, 'Alan Turing');
  });

  test('unary lookup of a missing user shows NOT_FOUND', async () => {
    await page.fill('#lookup-id', '4242');
    await page.click('#lookup-submit');
    await page.waitForSelector('#lookup-status.status-err');
    assert.equal(await page.textContent('#lookup-status [data-testid=code]'), 'NOT_FOUND (5)');
    assert.equal(await page.textContent('#lookup-reply-status'), 'HTTP 404');
  });

  test('failing create: INVALID_ARGUMENT with a field error for name and for email', async () => {
    await page.click('#create-invalid');
    assert.equal(await page.inputValue('#create-name'), '');
    assert.equal(await page.inputValue('#create-email'), 'not-an-email');
    await page.click('#create-submit');
    await page.waitForSelector('#create-status.status-err, #create-status.status-ok');
    assert.equal(await page.textContent('#create-status [data-testid=code]'), 'INVALID_ARGUMENT (3)');
    for (const field of ['name', 'email']) {
      const el = await page.waitForSelector(`#create-form .field-error[data-field="${field}"]`);
      assert.ok(await el.isVisible(), `${field} error visible`);
      assert.notEqual((await el.textContent()).trim(), '', `${field} error has a description`);
      assert.equal(await page.getAttribute(`#create-${field}`, 'aria-invalid'), 'true');
    }
    const status = JSON.parse(await page.textContent('#create-reply'));
    assert.equal(status.code, 3);
    assert.equal(status.details[0]['@type'], 'type.googleapis.com/google.rpc.BadRequest');
    assert.deepEqual(status.details[0].fieldViolations.map((v) => v.field).sort(), ['email', 'name']);
  });

  test('valid create returns the new user', async () => {
    await page.fill('#create-name', 'Katherine Johnson');
    await page.fill('#create-email', 'katherine@example.com');
    await page.click('#create-submit');
    await page.waitForSelector('#create-status.status-ok, #create-status.status-err');
    assert.equal(await page.textContent('#create-status [data-testid=code]'), 'OK (0)',
      await page.textContent('#create-status'));
    assert.equal(await page.locator('#create-form .field-error').count(), 0);
    const user = JSON.parse(await page.textContent('#create-reply'));
    assert.equal(user.name, 'Katherine Johnson');
    assert.ok(Number(user.id) > 3, `new id ${user.id}`);
  });

  test('live stream: items arrive one by one, Cancel reaches the backend', async () => {
    const delayMs = 300;
    const total = 60;
    await page.fill('#stream-size', String(total));
    await page.fill('#stream-delay', String(delayMs));
    await page.click('#stream-start');
    await page.waitForSelector('#stream-items li:nth-child(5)');
    // The fifth message is on screen while the call is still open: the
    // messages were delivered as they were sent, not buffered to the end.
    assert.equal(await page.getAttribute('#stream-items', 'data-state'), 'streaming');
    const times = (await page.$$eval('#stream-items li', (lis) => lis.map((li) => Number(li.dataset.t))))
      .slice(0, 5);
    for (let i = 1; i < times.length; i++)
      assert.ok(times[i] > times[i - 1], `arrival times increase: ${times.join(', ')}`);
    // The service waits `delay` between messages, so five of them cannot
    // arrive within less than one delay of each other (a lower bound only).
    assert.ok(times[4] - times[0] >= delayMs, `arrival times spread out: ${times.join(', ')}`);

    const before = stack.backendLog.lines.length;
    await page.click('#stream-cancel');
    await page.waitForSelector('#stream-items[data-state="cancelled"]');
    assert.equal(await page.textContent('#stream-status [data-testid=code]'), 'CANCELLED (1)');
    const received = await page.locator('#stream-items li').count();
    assert.ok(received >= 5 && received < total, `received ${received} of ${total}`);

    // The demo service logs client cancellations to stderr.
    const line = await stack.backendLog.waitForLine(/cancel/i, 30000, before);
    assert.match(line, /ListUsers/, `the logged cancellation names the call: ${line}`);
  });

  test('no script errors on the page', () => {
    assert.deepEqual(pageErrors, []);
  });
});

describe('shutdown', () => {
  test('gateway and service stop cleanly on SIGTERM', async () => {
    for (const p of [stack.gateway, stack.service]) {
      if (!p) continue;
      const { code, signal } = await p.stop(10000);
      assert.equal(signal, null, `${p.child.spawnargs.slice(1, 2)} killed by ${signal}`);
      assert.equal(code, 0, `${p.child.spawnargs.slice(1, 2)} exit status; last output:\n`
        + p.lines.slice(-10).join('\n'));
    }
  });
});
