// helpers.mjs: what the browser tests and the web benchmark share: Chromium, the demo static
// server over the shipped web/dist, a real ingest server on a temporary SQLite file, and polling.
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const dist = join(root, 'web/dist');

// The shipped config (models/referral.json), and the same without its "not now" exploration
// (explore.not_now): with it the rules answer "not now" at a milestone about 1 time in 20 (15 of
// 400 fresh installs), so a test that waits for a prompt under the shipped config fails at that
// rate. Tests that need a prompt serve prompting() in its place; `over` replaces top-level fields.
export const shipped = JSON.parse(readFileSync(join(root, 'models/referral.json'), 'utf8'));
export const prompting = (over = {}) => ({ ...shipped, explore: { ...shipped.explore, not_now: 0 }, ...over });
export const nativeDir = resolve(root, process.env.LW_NATIVE_DIR || 'build/native');
export const ingestBin = join(nativeDir, 'src/ingest/loopwise-ingest');

// Fail early with the command that fixes it, rather than with a browser timeout.
export function requireBuilt(...files) {
  for (const f of files) {
    if (!existsSync(f)) throw new Error(`${f} is missing: run 'bash src/scripts/build.sh' first`);
  }
}

export function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.LW_CHROMIUM || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
}

export function freePort() {
  return new Promise((ok, fail) => {
    const s = createServer().once('error', fail).listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => ok(port));
    });
  });
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Poll fn until it returns something truthy; fail with `what` and the last value otherwise.
export async function waitFor(what, fn, ms = 15000) {
  const end = Date.now() + ms;
  let last;
  for (;;) {
    try { last = await fn(); } catch (e) { last = e; }
    if (last && !(last instanceof Error)) return last;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}; last: ${last instanceof Error ? last.message : JSON.stringify(last)}`);
    await sleep(100);
  }
}

// A child process that is killed by stop() and whose output is kept for failure messages.
function child(cmd, args) {
  const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  p.out = '';
  p.stdout.on('data', (d) => { p.out += d; });
  p.stderr.on('data', (d) => { p.out += d; });
  p.stop = () => new Promise((ok) => {
    if (p.exitCode !== null || p.signalCode !== null) return ok();
    p.once('exit', () => ok());
    p.kill('SIGTERM');
    setTimeout(() => p.kill('SIGKILL'), 3000).unref();
  });
  return p;
}

// The demo server over web/dist (the shipped files); resolves to { url, stop }.
export async function startDemo(distDir = dist) {
  const p = child(process.execPath, [join(root, 'web/demo/serve.mjs'), '0', '--dist', distDir]);
  const url = await waitFor('the demo server to print its URL', () => (p.out.match(/http:\/\/\S+/) || [])[0], 10000);
  return { url, stop: p.stop, proc: p };
}

// A real ingest server on 127.0.0.1:port storing into db; resolves once it answers /v1/stats.
// args: more flags (e.g. ['--models-dir', dir]).
export async function startIngest(db, port, args = []) {
  const p = child(ingestBin, ['--db', db, '--port', String(port), ...args]);
  const base = `http://127.0.0.1:${port}`;
  await waitFor(`the ingest server on ${base} (${ingestBin})`, async () => {
    if (p.exitCode !== null) throw new Error('ingest exited: ' + p.out);
    return (await fetch(base + '/v1/stats')).ok;
  }, 10000);
  return { base, port, db, stop: p.stop, proc: p };
}

export function tempDir(prefix = 'lw-web-') {
  const d = mkdtempSync(join(tmpdir(), prefix));
  return { dir: d, remove: () => rmSync(d, { recursive: true, force: true }) };
}

// Rows of a query on the ingest database, read with the sqlite3 CLI (WAL readers do not block).
export function sql(db, query) {
  const out = execFileSync('sqlite3', ['-json', db, query], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
  return out ? JSON.parse(out) : [];
}

// An IANA zone where it is now between 10:00 and 18:59, so the config's quiet hours never
// suppress a prompt whatever time the tests run.
export function daytimeZone() {
  const zones = ['UTC', 'Europe/Berlin', 'Asia/Kolkata', 'Asia/Tokyo', 'Pacific/Auckland', 'Pacific/Kiritimati',
    'Pacific/Honolulu', 'America/Los_Angeles', 'America/New_York', 'America/Sao_Paulo'];
  for (const timeZone of zones) {
    const h = Number(new Intl.DateTimeFormat('en-GB', { hour: 'numeric', hourCycle: 'h23', timeZone }).format(new Date()));
    if (h >= 10 && h <= 18) return timeZone;
  }
  return 'UTC';
}

// The test entry (test-entry.js: window.LoopwiseTest) as minified script text, built once.
let testScriptText;
export async function testScript() {
  if (!testScriptText) {
    const { bundleScript } = await import('../../web/bundle.mjs');
    testScriptText = await bundleScript(join(root, 'tests/web/test-entry.js'));
  }
  return testScriptText;
}

// The demo's stand-in host backend (web/demo/backend.mjs) on a free port; resolves to { url, stop }.
export async function startBackend(ingestBase, secret) {
  const p = spawn(process.execPath, [join(root, 'web/demo/backend.mjs'), '0', '--ingest', ingestBase],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LW_DEMO_SECRET: secret } });
  let out = '';
  p.stdout.on('data', (d) => { out += d; });
  p.stderr.on('data', (d) => { out += d; });
  const url = (await waitFor('the backend to print its URL', () => (out.match(/http:\/\/\S+/) || [])[0], 10000)).replace(/\/$/, '');
  const stop = () => new Promise((ok) => {
    if (p.exitCode !== null || p.signalCode !== null) return ok();
    p.once('exit', () => ok());
    p.kill('SIGTERM');
  });
  return { url, stop };
}

// A page for the console at a width, with the problems it logs: script errors and console errors
// other than the refused requests a test expects (`allowed`).
export async function consolePage(browser, width, allowed = /status of 401/) {
  const context = await browser.newContext({ viewport: { width, height: 900 }, acceptDownloads: true });
  const page = await context.newPage();
  const problems = [];
  page.on('console', (m) => { if (m.type() === 'error' && !allowed.test(m.text())) problems.push(m.text()); });
  page.on('pageerror', (e) => problems.push(e.message));
  return { context, page, problems };
}

// The console's login with the keyboard only (tests/web/console*.test.mjs): the form, the name,
// Tab, the password, Enter; resolves once the funnel page is drawn.
export async function consoleLogin(page, url, password, name = 'pm') {
  await page.goto(`${url}/console`);
  await page.waitForSelector('body[data-ready="login"]');
  await page.focus('#login input[name="name"]');
  await page.keyboard.type(name);
  await page.keyboard.press('Tab');
  await page.keyboard.type(password);
  await page.keyboard.press('Enter');
  await page.waitForSelector('body[data-ready="funnel"]');
}
