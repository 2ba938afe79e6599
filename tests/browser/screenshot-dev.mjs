// Development tool, not a test: renders the web demo and saves a screenshot
// after a lookup, a failing create and part of a stream.
//   node tests/browser/screenshot-dev.mjs --serve web-demo/dist out.png   (mock build)
//   node tests/browser/screenshot-dev.mjs --url http://127.0.0.1:8080/ out.png
import { launchChromium, serveStatic } from './lib.mjs';

const [mode, target, out = 'shot.png'] = process.argv.slice(2);
const server = mode === '--serve' ? await serveStatic(target) : null;
const url = server ? `${server.url}/${process.env.QUERY ?? ""}` : target;
const b = await launchChromium({ width: Number(process.env.W ?? 1360), height: Number(process.env.H ?? 900) });
try {
  const { page } = b;
  page.on('console', (m) => console.log(`console: ${m.text()}`));
  page.on('pageerror', (e) => console.log(`pageerror: ${e.message}`));
  await page.goto(url);
  await page.click('#lookup-submit');
  await page.waitForSelector('#lookup-status.status-ok, #lookup-status.status-err');
  await page.click('#create-invalid');
  await page.click('#create-submit');
  await page.waitForSelector('#create-status.status-err, #create-status.status-ok');
  await page.click('#stream-start');
  await page.waitForSelector('#stream-items li:nth-child(6)', { timeout: 20000 });
  if (process.env.CANCEL) await page.click('#stream-cancel');
  await page.waitForTimeout(300);
  await page.screenshot({ path: out, fullPage: !!process.env.FULL });
  console.log(`saved ${out}`);
} finally {
  await b.close();
  await server?.close();
}
