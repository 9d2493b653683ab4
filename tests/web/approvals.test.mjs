// approvals.test.mjs: an approval request travelling from a device to the console and back to
// its prompt across a reload of the device's page (README "Approval requests"), in Chromium,
// with the shipped web/dist against a real loopwise-ingest on loopback. The device is the demo page; the console is the server's
// own page (loopback console: no users, the CSRF token from its session). The account needs
// approval because the shipped config's approval rule holds prompts for seats 50-plus.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import {
  daytimeZone, dist, freePort, root, ingestBin, launchBrowser, prompting, requireBuilt, sql, startDemo, startIngest,
  tempDir, waitFor,
} from './helpers.mjs';
import { compileConfig } from '../../src/tools/native-tools.mjs';

requireBuilt(join(dist, 'loopwise.js'), join(dist, 'loopwise.wasm'), join(root, 'web/console/dist/console.js'), ingestBin);
const cfg = prompting(); // the rules prompt at every milestone
const PROJECTS = cfg.milestones.find((m) => m.event === 'project_completed').after;
const DIALOG = 'loopwise-prompt [role=dialog]';
const artifacts = process.env.LW_ARTIFACTS || join(root, 'build/artifacts/console');

let browser, demo, ingest, tmp;
before(async () => {
  mkdirSync(artifacts, { recursive: true });
  tmp = tempDir();
  browser = await launchBrowser();
  demo = await startDemo(dist);
  ingest = await startIngest(join(tmp.dir, 'ingest.db'), await freePort());
});
after(async () => {
  await browser?.close();
  await demo?.stop();
  await ingest?.stop();
  tmp?.remove();
});

// A fresh device whose account needs approval; consent given unless told otherwise. Resolves
// to its page and the decision the approval rule held.
async function heldDevice({ consent = true } = {}) {
  const ctx = await browser.newContext({ timezoneId: daytimeZone() });
  await ctx.route(demo.url + 'dist/loopwise.lwm', (r) => r.fulfill({ status: 200, body: '' }));
  await ctx.route(demo.url + 'dist/referral.lwc',
    (r) => r.fulfill({ contentType: 'application/octet-stream', body: Buffer.from(compileConfig(cfg)) }));
  const page = await ctx.newPage();
  page.errors = [];
  page.on('pageerror', (e) => page.errors.push(e.message));
  await page.goto(`${demo.url}?endpoint=${encodeURIComponent(ingest.base)}`);
  await page.waitForSelector('body[data-lw="ready"]');
  await page.evaluate(async (c) => {
    if (c) await window.Loopwise.consent(true);
    await window.Loopwise.attribute('plan', 'enterprise');
    await window.Loopwise.attribute('seats', '50-plus');
  }, consent);
  for (let i = 0; i < PROJECTS; i++) await page.getByRole('button', { name: 'Complete a project', exact: true }).click();
  const d = await waitFor('the held decision', async () => {
    const x = await page.evaluate(() => window.Loopwise.explain());
    return x && x.code === 'approval' ? x : null;
  });
  assert.equal(await page.locator(DIALOG).count(), 0, 'held: no prompt yet');
  return { ctx, page, d };
}

const row = (decision) => sql(ingest.db, `SELECT * FROM approvals WHERE decision = '${decision}'`)[0];

// The console page at `width`, on its approvals page.
async function consolePage(width) {
  const ctx = await browser.newContext({ viewport: { width, height: 900 } });
  const page = await ctx.newPage();
  const problems = [];
  page.on('pageerror', (e) => problems.push(e.message));
  await page.goto(`${ingest.base}/console`);
  await page.waitForSelector('body[data-ready="funnel"]');
  await page.click('#nav button[data-page="approvals"]');
  await page.waitForSelector('body[data-ready="approvals"]');
  return { ctx, page, problems };
}

// The device's next check: any later call (here a track() that is no milestone).
const nextCall = (page) => page.evaluate(() => window.Loopwise.track('invite_sent'));

test('an_approved_request_travels_from_the_device_to_the_console_and_back_to_its_prompt', async () => {
  const { ctx, page, d } = await heldDevice();
  const req = await waitFor('the request in the store', () => row(d.id));
  assert.equal(req.state, 'pending');
  assert.equal(req.action, d.action);
  assert.deepEqual(JSON.parse(req.attrs), { plan: 'enterprise', seats: '50-plus' }, 'the attributes approval.send names');
  const key = await page.evaluate(() => Object.entries(localStorage).find(([k]) => k.endsWith(':k'))[1]);
  assert.match(key, /^[0-9a-f]{32}$/);
  assert.notEqual(req.key_hash, key, 'the server keeps a hash of the key');

  // A check before the answer hears "pending" (a later call asks again, see loopwise.js).
  await nextCall(page);
  // The page goes away and comes back: the held decision is in the snapshot, not only in memory.
  await page.reload();
  await page.waitForSelector('body[data-lw="ready"]');

  const { ctx: cctx, page: cp, problems } = await consolePage(1280);
  try {
    const tr = `#approvals tr[data-decision="${d.id}"]`;
    assert.equal(await cp.textContent(`${tr} td[data-col="state"]`), 'pending');
    assert.match(await cp.textContent(`${tr} td[data-col="account"]`), /plan: enterprise, seats: 50-plus/);
    await cp.screenshot({ path: join(artifacts, 'approvals-1280.png'), fullPage: true });
    // Approve with the keyboard.
    await cp.focus(`${tr} button[data-decision="approve"]`);
    await cp.keyboard.press('Enter');
    await cp.waitForFunction((sel) => document.body.dataset.ready === 'approvals' &&
      document.querySelector(sel + ' td[data-col="state"]')?.textContent === 'approved', tr);
    assert.match(await cp.textContent(`${tr} td[data-col="answered"]`), /^loopback, \d{4}-/);
    assert.deepEqual(problems, []);
  } finally {
    await cctx.close();
  }

  await nextCall(page);
  await page.locator(DIALOG).waitFor();
  const shown = await page.evaluate(() => window.Loopwise.explain());
  assert.equal(await page.evaluate(() => localStorage.length && Object.entries(localStorage).find(([k]) => k.endsWith(':k'))[1]), key,
    'the same approval key after the reload');
  assert.equal(shown.id, d.id);
  assert.equal(shown.prompt, true);
  await waitFor('the device\'s answer record', () => row(d.id).device_answer === 'approved');
  assert.deepEqual(page.errors, []);
  await ctx.close();
});

test('a_declined_request_never_shows_its_prompt', async () => {
  const { ctx, page, d } = await heldDevice();
  await waitFor('the request in the store', () => row(d.id));
  const { ctx: cctx, page: cp } = await consolePage(390);
  try {
    const tr = `#approvals tr[data-decision="${d.id}"]`;
    await cp.click(`${tr} button[data-decision="decline"]`);
    await cp.waitForFunction((sel) => document.body.dataset.ready === 'approvals' &&
      document.querySelector(sel + ' td[data-col="state"]')?.textContent === 'declined', tr);
    const overflow = await cp.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `the approvals page fits 390 px (overflow ${overflow} px)`);
    await cp.screenshot({ path: join(artifacts, 'approvals-390.png'), fullPage: true });
  } finally {
    await cctx.close();
  }
  await nextCall(page);
  await waitFor('the device\'s answer record', () => row(d.id).device_answer === 'declined');
  assert.equal(await page.locator(DIALOG).count(), 0);
  assert.match((await page.evaluate(() => window.Loopwise.explain())).reason, /declined/);
  await ctx.close();
});

test('an_expired_request_never_shows_its_prompt_even_if_approved', async () => {
  const { ctx, page, d } = await heldDevice();
  await waitFor('the request in the store', () => row(d.id));
  sql(ingest.db, `UPDATE approvals SET state = 'approved', answered_by = 'x', answered_at = 1,` +
    ` received_at = received_at - 8 * 86400000 WHERE decision = '${d.id}'`);
  const { ctx: cctx, page: cp } = await consolePage(1280);
  try {
    const tr = `#approvals tr[data-decision="${d.id}"]`;
    assert.equal(await cp.textContent(`${tr} td[data-col="state"]`), 'expired');
    assert.equal(await cp.locator(`${tr} button`).count(), 0, 'nothing to answer');
  } finally {
    await cctx.close();
  }
  await nextCall(page);
  await waitFor('the device\'s answer record', () => row(d.id).device_answer === 'expired');
  assert.equal(await page.locator(DIALOG).count(), 0);
  await ctx.close();
});

test('no_approval_request_leaves_the_device_without_consent', async () => {
  const { ctx, page, d } = await heldDevice({ consent: false });
  // The decision itself is collected (the shipped config collects by default) and reaches the
  // store; the request, which carries account attributes, does not.
  await waitFor('the held decision in the store', () => sql(ingest.db, `SELECT 1 FROM events WHERE decision = '${d.id}'`).length === 1);
  assert.equal(await page.evaluate(() => window.Loopwise.status().then((s) => s.pending)), 0, 'nothing left to send');
  assert.equal(row(d.id), undefined);
  assert.equal(sql(ingest.db, `SELECT count(*) AS n FROM events WHERE kind LIKE 'approval%' AND decision = '${d.id}'`)[0].n, 0);
  await ctx.close();
});
