// The web demo in a real browser: Debian's headless Chromium, driven by
// playwright-core, opens the page served by grpcgate and uses it like a
// person would — a unary lookup, a failing create whose BadRequest detail
// must show per field, and a live server stream that is cancelled, after
// which the demo service must report the cancellation.
//
//   node tests/browser/web_demo.test.mjs [--web-dir DIR] [--out DIR]
//
// Uses Node's built-in test runner (node:test). Exits 77 (meson: SKIP) with
// the reason only when Chromium is missing (optional: GW_SETUP_BROWSER=0,
// on docs/testing.md's allow-list); a missing playwright-core or gateway
// feature is a failure.
//
// The gateway comes from `grpcgate demo --listen 127.0.0.1:0`, or with
// GW_BROWSER_MODE=serve from `grpcgate demo-service` plus
// `grpcgate serve --static`.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromiumPath, launchChromium, loadPlaywright, serveStatic, sourceRoot, startProcess } from './lib.mjs';

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
loadPlaywright(); // from node_modules (scripts/setup): missing is a failure
assert.ok(existsSync(grpcgate), `${grpcgate} not built`);

// Every child is killed even if the runner dies before its after() hooks.
const children = [];
process.on('exit', () => {
  for (const c of children) if (c.child.exitCode === null && c.child.signalCode === null) c.child.kill('SIGKILL');
});

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

const tempDir = mkdtempSync(join(tmpdir(), 'gw-browser-test-'));
process.on('exit', () => rmSync(tempDir, { recursive: true, force: true }));

async function startService() {
  const service = await startProcess(grpcgate, ['demo-service', '--listen', '127.0.0.1:0'], { timeoutMs: 60000 });
  children.push(service);
  return service;
}

async function startServe(service, extra) {
  const gateway = await startProcess(grpcgate, ['serve', '--listen', '127.0.0.1:0', '--workers', '1',
    '--backend', `http://${service.address}`, '--descriptor', demoDesc, ...extra], { timeoutMs: 60000 });
  children.push(gateway);
  return gateway;
}

// Same origin: the page served by the gateway itself — `grpcgate demo`, or
// with GW_BROWSER_MODE=serve, demo-service + `serve --static`. Either must
// serve the page: a failure to start is the test's failure.
async function startSameOrigin() {
  if ((process.env.GW_BROWSER_MODE ?? 'demo') !== 'serve') {
    const demo = await startProcess(grpcgate, ['demo', '--listen', '127.0.0.1:0', '--static', webDir],
      { timeoutMs: 60000 });
    children.push(demo);
    return { pageUrl: `http://${demo.address}/`, gatewayUrl: `http://${demo.address}`, backendLog: demo,
      processes: [demo] };
  }
  const service = await startService();
  const gateway = await startServe(service, ['--static', webDir]);
  return { pageUrl: `http://${gateway.address}/`, gatewayUrl: `http://${gateway.address}`, backendLog: service,
    processes: [gateway, service] };
}

// Cross-origin: the page from a plain static server on another port, calling
// a gateway configured to allow that origin (CORS), as docs/web-demo.md says:
// `grpcgate demo --config`, or demo-service + `serve --config` with
// GW_BROWSER_MODE=serve.
async function startCrossOrigin() {
  const pageServer = await serveStatic(webDir);
  const config = join(tempDir, 'cors.json');
  writeFileSync(config, JSON.stringify({ cors: { allowed_origins: [pageServer.url] } }));
  if ((process.env.GW_BROWSER_MODE ?? 'demo') !== 'serve') {
    const demo = await startProcess(grpcgate, ['demo', '--listen', '127.0.0.1:0', '--config', config],
      { timeoutMs: 60000 });
    children.push(demo);
    const gatewayUrl = `http://${demo.address}`;
    return { pageUrl: `${pageServer.url}/?gateway=${encodeURIComponent(gatewayUrl)}`, gatewayUrl,
      pageOrigin: pageServer.url, backendLog: demo, processes: [demo], pageServer };
  }
  const service = await startService();
  const gateway = await startServe(service, ['--config', config]);
  const gatewayUrl = `http://${gateway.address}`;
  return { pageUrl: `${pageServer.url}/?gateway=${encodeURIComponent(gatewayUrl)}`, gatewayUrl,
    pageOrigin: pageServer.url, backendLog: service, processes: [gateway, service], pageServer };
}

const sameOrigin = await startSameOrigin();
const crossOrigin = await startCrossOrigin();
// The same page switched to the Connect protocol (?transport=connect, what
// the header's switch does), cross-origin: the hardest case for CORS.
const crossOriginConnect = await startCrossOrigin();
crossOriginConnect.pageUrl += '&transport=connect';
crossOriginConnect.transport = 'connect';
mkdirSync(outDir, { recursive: true });

// The same checks for either way of loading the page.
function pageSuite(name, stack, screenshot) {
  describe(name, { timeout: 240000 }, () => {
    let browser;
    let page;
    const pageErrors = [];
    const responses = new Map(); // URL -> { status, headers } of what the page loaded

    const rpcs = []; // { method, url, contentType } of every call to the gateway

    before(async () => {
      browser = await launchChromium({ width: 1360, height: 900 });
      page = browser.page;
      page.setDefaultTimeout(30000);
      page.on('pageerror', (e) => pageErrors.push(e.message));
      page.on('request', (r) => {
        if (r.url().includes('/demo.v1.'))
          rpcs.push({ method: r.method(), url: r.url(), contentType: r.headers()['content-type'] ?? '' });
      });
      page.on('response', (r) => responses.set(r.url(), { status: r.status(), headers: r.headers() }));
      const res = await page.goto(stack.pageUrl);
      assert.equal(res.status(), 200, `GET ${stack.pageUrl}`);
    });

    after(async () => {
      try {
        if (page) await page.screenshot({ path: join(outDir, screenshot), fullPage: true });
      } finally {
        await browser?.close();
      }
    });

    test('page loads its bundle and names the gateway', async () => {
      await page.waitForFunction(() => document.getElementById('gateway-url')?.textContent !== '–');
      assert.equal(await page.textContent('#gateway-url'), stack.gatewayUrl);
      assert.equal(await page.textContent('#origin-mode'),
        stack.pageOrigin ? `cross-origin from ${stack.pageOrigin} (CORS)` : 'same origin');
      assert.equal(await page.textContent('#lookup-curl'), `curl -s ${stack.gatewayUrl}/v1/users/1`);
    });

    // The build names the bundle and style sheet by content hash, and
    // grpcgate caches such names for a year (docs/static.md); the page
    // itself is revalidated on every load.
    test('page loads its content-hashed bundle and style sheet', async () => {
      const script = await page.getAttribute('script[type=module]', 'src');
      const css = await page.getAttribute('link[rel=stylesheet]', 'href');
      assert.match(script, /^assets\/app-[A-Z0-9]{8}\.js$/);
      assert.match(css, /^assets\/style-[A-Z0-9]{8}\.css$/);
      const base = new URL(stack.pageUrl);
      for (const name of [script, css]) {
        const url = new URL(name, base).href;
        const res = responses.get(url);
        assert.ok(res, `the page did not load ${url}: ${[...responses.keys()].join(' ')}`);
        assert.equal(res.status, 200, url);
        if (!stack.pageOrigin)
          assert.equal(res.headers['cache-control'], 'public, max-age=31536000, immutable', url);
      }
      if (!stack.pageOrigin)
        assert.equal(responses.get(new URL('/', base).href)?.headers['cache-control'], 'no-cache');
    });

    test('the transport switch names the protocol in use', async () => {
      const want = stack.transport ?? 'grpc-web';
      assert.equal(await page.inputValue('#transport'), want);
      assert.match(await page.textContent('#client-desc'),
        want === 'connect' ? /Connect transport/ : /gRPC-Web transport/);
      const routes = await page.$$eval('.route .verb-rpc', (els) => els.map((e) => e.textContent));
      assert.deepEqual([...new Set(routes)], [want === 'connect' ? 'Connect' : 'gRPC-Web']);
    });

    test('unary lookup of a missing user shows NOT_FOUND', async () => {
      await page.fill('#lookup-id', '4242');
      await page.click('#lookup-submit');
      await page.waitForSelector('#lookup-status.status-err');
      assert.equal(await page.textContent('#lookup-status [data-testid=code]'), 'NOT_FOUND (5)');
      assert.match(await page.textContent('#lookup-status'), /user 4242 not found/);
      assert.equal(await page.textContent('#lookup-reply-status'), 'HTTP 404');
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

    test('failing create: INVALID_ARGUMENT with a field error under name and under email', async () => {
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

    // What the page claims about REST: its curl commands, run by bash as a
    // reader would paste them, give the bodies shown in the reply panes.
    test('the curl panels are right: same bodies over REST', async () => {
      for (const pane of ['lookup', 'create']) {
        const line = await page.textContent(`#${pane}-curl`);
        const r = spawnSync('bash', ['-c', line], { encoding: 'utf8', timeout: 60000 });
        assert.equal(r.status, 0, `${line}\n${r.stderr}`);
        assert.deepEqual(JSON.parse(r.stdout), JSON.parse(await page.textContent(`#${pane}-reply`)), line);
      }
    });

    test('live stream: items arrive one by one, Cancel reaches the backend', async () => {
      const delayMs = 300;
      const total = 60;
      await page.fill('#stream-size', String(total));
      await page.fill('#stream-delay', String(delayMs));
      assert.equal(await page.textContent('#stream-curl'),
        `curl -sN '${stack.gatewayUrl}/v1/users?pageSize=${total}&delay=0.3s&follow=true'`);
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

      const logFrom = stack.backendLog.lines.length;
      await page.click('#stream-cancel');
      await page.waitForSelector('#stream-items[data-state="cancelled"]');
      assert.equal(await page.textContent('#stream-status [data-testid=code]'), 'CANCELLED (1)');
      const received = await page.locator('#stream-items li').count();
      assert.ok(received >= 5 && received < total, `received ${received} of ${total}`);

      // The demo service logs a client cancellation (docs/demo-service.md).
      await stack.backendLog.waitForLine(
        /demo: call \/demo\.v1\.UserService\/ListUsers cancelled by client/, 30000, logFrom);
    });

    test('the calls went out in the chosen protocol', () => {
      assert.ok(rpcs.length >= 4, `calls seen: ${JSON.stringify(rpcs)}`);
      for (const r of rpcs) {
        if (stack.transport === 'connect') {
          if (r.url.includes('/GetUser')) {
            // GetUser is NO_SIDE_EFFECTS: connect-web's useHttpGet sends GET.
            assert.equal(r.method, 'GET', r.url);
            assert.match(r.url, /[?&]connect=v1(&|$)/);
          } else {
            assert.match(r.contentType, /^application\/(proto|connect\+proto)$/, JSON.stringify(r));
          }
        } else {
          assert.match(r.contentType, /^application\/grpc-web/, JSON.stringify(r));
        }
      }
    });

    test('Chat panel: bidi over a WebSocket, each reply before the next send', async () => {
      const replies = () => page.locator('#chat-items li[data-testid=chat-reply]').count();
      for (let i = 1; i <= 3; i++) {
        await page.fill('#chat-text', `hi ${i}`);
        await page.click('#chat-send');
        await page.waitForFunction((n) =>
          document.querySelectorAll('#chat-items li[data-testid=chat-reply]').length >= n, i);
        // The call is still open while replies arrive (bidi, not buffered).
        assert.equal(await page.getAttribute('#chat-items', 'data-state'), 'open');
      }
      assert.equal(await replies(), 3);
      assert.deepEqual(await page.$$eval('#chat-items li[data-testid=chat-reply]', (lis) => lis.map((li) => li.textContent)),
        ['server: hi 1', 'server: hi 2', 'server: hi 3']);
      await page.click('#chat-finish');
      await page.waitForSelector('#chat-items[data-state="closed"]');
      await page.waitForSelector('#chat-status.status-ok');
      assert.equal(await page.textContent('#chat-status [data-testid=code]'), 'OK (0)');
      // A new call from the same panel; the server ends it with an error.
      await page.fill('#chat-text', '!abort');
      await page.click('#chat-send');
      await page.waitForSelector('#chat-status.status-err');
      assert.equal(await page.textContent('#chat-status [data-testid=code]'), 'ABORTED (10)');
    });

    test('no script errors on the page', () => {
      assert.deepEqual(pageErrors, []);
    });

    test('gateway and service stop cleanly on SIGTERM', async () => {
      for (const p of stack.processes) {
        const what = p.child.spawnargs.slice(1, 2).join(' ');
        const { code, signal } = await p.stop(15000);
        assert.equal(signal, null, `${what} killed by ${signal}`);
        assert.equal(code, 0, `${what} exit status; last output:\n${p.lines.slice(-10).join('\n')}`);
      }
      await stack.pageServer?.close();
    });
  });
}

pageSuite('same origin: the page served by grpcgate', sameOrigin, 'web-demo.png');
pageSuite('cross-origin: the page elsewhere, the gateway allowing it by CORS', crossOrigin, 'web-demo-cors.png');
pageSuite('cross-origin over Connect: the transport switch set to Connect', crossOriginConnect,
  'web-demo-connect.png');

after(() => {
  if (tempWebDir) rmSync(tempWebDir, { recursive: true, force: true });
});
