// csp.test.mjs: the script tag on a page under the strict Content-Security-Policy web/README.md
// gives, against a real ingest server: a normal first load logs no error, makes no failed
// request and fetches neither the prompt nor the transport chunk; the prompt then shows styled
// (the dialog's computed styles) with no CSP violation, and the host events fire.
//
//   node --test tests/web/csp.test.mjs      (after: bash src/scripts/build.sh)
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { daytimeZone, dist, freePort, ingestBin, launchBrowser, prompting, requireBuilt, root, sql, startDemo, startIngest, tempDir, waitFor } from './helpers.mjs';
import { compileConfig } from '../../src/tools/native-tools.mjs';
import { serveDir } from './static.mjs';

requireBuilt(join(dist, 'loopwise.js'), join(dist, 'loopwise-queue.js'), ingestBin);
// The pages are served prompting() (helpers.mjs) in place of the shipped config: the rules then
// prompt at the milestone on every fresh install.
const cfg = prompting(), lwc = Buffer.from(compileConfig(cfg));
const PROJECTS = cfg.milestones.find((m) => m.event === 'project_completed').after;
// The policy of web/README.md, the endpoint in connect-src.
const policy = (endpoint) => `default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; connect-src 'self' ${endpoint}`;
const readmePolicy = () => /Content-Security-Policy: (.*)/.exec(readFileSync(join(root, 'web/README.md'), 'utf8'))[1];

let tmp, browser, ingest, site;
before(async () => {
  tmp = tempDir('lw-csp-');
  for (const f of readdirSync(dist)) copyFileSync(join(dist, f), join(tmp.dir, f));
  writeFileSync(join(tmp.dir, 'referral.lwc'), lwc);
  browser = await launchBrowser();
  ingest = await startIngest(join(tmp.dir, 'ingest.db'), await freePort());
  // The page: queue file, tag, and the host's own script (which records CSP violations and events).
  writeFileSync(join(tmp.dir, 'index.html'), `<!doctype html><title>strict CSP</title>
<script src="/loopwise-queue.js"></script>
<script src="/loopwise.js" data-endpoint="${ingest.base}" data-write-key="demo-site-key" async></script>
<script src="/host.js"></script><h1>host</h1>`);
  writeFileSync(join(tmp.dir, 'favicon.ico'), ''); // the browser asks for it: no 404 in the console
  writeFileSync(join(tmp.dir, 'host.js'), `window.seen = { violations: [], events: [] };
document.addEventListener('securitypolicyviolation', (e) => seen.violations.push(e.violatedDirective + ' ' + e.blockedURI));
for (const t of ['ready', 'decision', 'shown', 'shared', 'dismissed', 'error']) Loopwise.q.push(['on', t, () => seen.events.push(t)]);
`);
  site = await serveDir(tmp.dir, { 'content-security-policy': policy(ingest.base) });
});
after(async () => {
  await browser?.close();
  await ingest?.stop();
  await site?.stop();
  tmp?.remove();
});

// A fresh device on the page: console errors, failed requests and every URL asked for.
async function open(ctx) {
  const page = await ctx.newPage();
  page.errors = [];
  page.failed = [];
  page.urls = [];
  page.on('console', (m) => { if (m.type() === 'error') page.errors.push(m.text()); });
  page.on('pageerror', (e) => page.errors.push('pageerror: ' + e.message));
  page.on('requestfailed', (q) => page.failed.push(q.url() + ' ' + (q.failure() || {}).errorText));
  page.on('response', (r) => { if (r.status() >= 400) page.failed.push(r.url() + ' HTTP ' + r.status()); });
  page.on('request', (q) => page.urls.push(new URL(q.url()).pathname));
  page.modelAnswered = page.waitForResponse((r) => r.url().includes('/v1/model'));
  page.modelAnswered.catch(() => {}); // awaited by the first test only
  await page.goto(site.url);
  await page.waitForFunction(() => window.seen && window.seen.events.includes('ready') || window.seen.events.includes('error'));
  return page;
}

test('the_readme_gives_the_policy_this_test_runs_under', () => {
  assert.equal(readmePolicy(), policy('https://ingest.example'));
});

test('a_first_load_under_the_strict_policy_logs_nothing_and_fails_no_request', async () => {
  const ctx = await browser.newContext({ timezoneId: daytimeZone() });
  try {
    const page = await open(ctx);
    // Started: the model asked from the server (whose answer, with no model yet, must not be an error).
    await page.modelAnswered;
    assert.deepEqual(await page.evaluate(() => window.seen), { violations: [], events: ['ready'] });
    assert.deepEqual(page.errors, []);
    assert.deepEqual(page.failed, []);
    assert.deepEqual(page.urls.filter((u) => /loopwise-(prompt|net)/.test(u)), [], 'no prompt or transport chunk on a first load');
  } finally {
    await ctx.close();
  }
});

test('the_prompt_is_styled_under_the_strict_policy_and_the_events_fire', async () => {
  const ctx = await browser.newContext({ timezoneId: daytimeZone() });
  try {
    // The rules decide (the default model answered with no bytes, as in e2e.test.mjs).
    await ctx.route(/\/loopwise\.lwm$/, (r) => r.fulfill({ status: 200, body: '' }));
    await ctx.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: site.url.slice(0, -1) });
    const page = await open(ctx);
    for (let i = 0; i < PROJECTS; i++) await page.evaluate(() => window.Loopwise.track('project_completed'));
    const dialog = page.locator('loopwise-prompt [role=dialog]');
    await dialog.waitFor();
    const style = await dialog.evaluate((d) => {
      const s = getComputedStyle(d), b = getComputedStyle(d.parentNode);
      const share = getComputedStyle(d.querySelector('button.p'));
      return { bg: s.backgroundColor, radius: s.borderTopLeftRadius, backdrop: b.position, z: b.zIndex, shareBg: share.backgroundColor };
    });
    assert.deepEqual(style, { bg: 'rgb(255, 255, 255)', radius: '12px', backdrop: 'fixed', z: '2147483647', shareBg: 'rgb(34, 85, 238)' });
    // The outcomes are checked where they land, the server's database, not through Playwright's
    // response events (which can miss a keepalive fetch's answer: microsoft/playwright#27901).
    // The copy needs the page focused (the Clipboard API refuses an unfocused document, and the
    // prompt then shows its field to copy from, which no test can press Ctrl+C in).
    await page.bringToFront();
    await page.getByRole('button', { name: 'Copy link', exact: true }).click();
    await waitFor('the shared event', () => page.evaluate(() => window.seen.events.includes('shared') ||
      document.querySelector('loopwise-prompt').shadowRoot.querySelector('input') && new Error('the clipboard was refused: the copy field is shown')), 30000);
    const decision = (await page.evaluate(() => window.Loopwise.explain())).id;
    await waitFor('the copy stored by the server', () => sql(ingest.db, `SELECT kind FROM events WHERE decision = '${decision}'`).some((r) => r.kind === 'copy') ||
      page.evaluate(() => new Error(JSON.stringify(window.Loopwise.status()))), 30000);
    const seen = await page.evaluate(() => window.seen);
    assert.deepEqual(seen.violations, []);
    assert.deepEqual(seen.events.filter((e, i, a) => a.indexOf(e) === i), ['ready', 'decision', 'shown', 'shared']);
    assert.deepEqual(page.errors, []);
    assert.ok(page.urls.includes('/loopwise-prompt.js') && page.urls.includes('/loopwise-net.js'), 'the chunks loaded when needed');
  } finally {
    await ctx.close();
  }
});

// The demo under the same policy (web/demo/strict.html, a <meta> policy for npm run demo's ingest
// on 127.0.0.1:8080): requests to that address are answered by this test's ingest server, so the
// policy sees the URL the page names.
test('the_strict_demo_page_starts_and_prompts_without_a_violation', async () => {
  const demo = await startDemo(dist);
  const ctx = await browser.newContext({ timezoneId: daytimeZone() });
  try {
    await ctx.route('http://127.0.0.1:8080/**', async (r) => {
      const u = new URL(r.request().url());
      r.fulfill({ response: await r.fetch({ url: ingest.base + u.pathname + u.search }) });
    });
    await ctx.route(/\/loopwise\.lwm$/, (r) => r.fulfill({ status: 200, body: '' }));
    await ctx.route(/\/dist\/referral\.lwc$/, (r) => r.fulfill({ contentType: 'application/octet-stream', body: lwc }));
    const page = await ctx.newPage();
    const errors = [];
    page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
    await page.addInitScript(() => {
      window.violations = [];
      document.addEventListener('securitypolicyviolation', (e) => window.violations.push(e.violatedDirective + ' ' + e.blockedURI));
    });
    await page.goto(demo.url + 'strict.html');
    await page.waitForSelector('body[data-lw]');
    assert.equal(await page.getAttribute('body', 'data-lw'), 'ready', JSON.stringify(errors));
    for (let i = 0; i < PROJECTS; i++) await page.getByRole('button', { name: 'Complete a project', exact: true }).click();
    await page.locator('loopwise-prompt [role=dialog]').waitFor();
    assert.equal(await page.locator('loopwise-prompt [role=dialog]').evaluate((d) => getComputedStyle(d).borderTopLeftRadius), '12px');
    assert.deepEqual(await page.evaluate(() => window.violations), []);
    assert.deepEqual(errors, []);
  } finally {
    await ctx.close();
    await demo.stop();
  }
});
