// console-webhooks.test.mjs: approved conversions posted to the host as signed webhooks (README
// "Webhooks"), against a test receiver on loopback: the signature verified the documented way,
// only counting or approved conversions sent, retries while the receiver fails, a failed
// delivery sent again from the console, and one delivery per conversion with two servers on one
// database (the lease) and across a restart.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import { join } from 'node:path';
import { startServer, tempDir, request, sqliteOnly, storeSchemaVersion } from './helpers.mjs';
import { PASSWORD, consoleConfig, referee_ } from './console-fixture.mjs';

// Both backends deliver (store schema 8; PostgreSQL schema 2): the suite's PostgreSQL run
// (LW_TEST_PG) runs these too, but the SQLite file's own migration.
const webhooks = {};

const WEBHOOK_SECRET = 'webhook-secret-0123456789abcdef0123456789';

// The verification snippet of the README, as a host would write it.
function verify(secret, header, body, toleranceS = 300) {
  const parts = Object.fromEntries(header.split(',').map((kv) => kv.split('=')));
  const t = Number(parts.t);
  if (!Number.isInteger(t) || Math.abs(Date.now() / 1000 - t) > toleranceS) return false;
  const want = createHmac('sha256', secret).update(`${t}.${body}`).digest();
  const got = Buffer.from(parts.v1 || '', 'hex');
  return got.length === want.length && timingSafeEqual(got, want);
}

// A receiver that answers fail(n) (the nth request, from 1) or 200, and keeps every request.
async function receiver(fail = () => 0) {
  const seen = [];
  const srv = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      seen.push({ headers: req.headers, body, json: JSON.parse(body) });
      const status = fail(seen.length) || 200;
      res.writeHead(status, { 'Content-Type': 'text/plain' }).end(status === 200 ? 'ok' : 'no');
    });
  });
  await new Promise((ok) => srv.listen(0, '127.0.0.1', ok));
  return { seen, url: `http://127.0.0.1:${srv.address().port}/hooks`, close: () => new Promise((ok) => srv.close(ok)) };
}

async function waitFor(what, fn, ms = 30000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const cleanups = [];
after(async () => { for (const c of cleanups.reverse()) await c(); });

async function serve(hook, extra = {}, { dir = tempDir(), db } = {}) {
  const config = consoleConfig(dir, { webhook_url: hook.url, webhook_secret: WEBHOOK_SECRET, webhook_poll_ms: 20,
    webhook_retry_s: 1, webhook_lease_s: 30, webhook_timeout_s: 5, ...extra });
  const server = await startServer({ dir, db, args: ['--config', config, '--rate-limit', 'off'] });
  return server;
}

async function consoleSession(server) {
  const res = await request(server, 'POST', '/console/login', { headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ name: 'pm', password: PASSWORD }) });
  const cookie = res.headers['set-cookie'][0].split(';')[0];
  const csrf = (await request(server, 'GET', '/console/api/session', { headers: { Cookie: cookie } })).json.csrf;
  return { cookie, csrf };
}

const convert = async (server, code, referee) => {
  const r = await referee_(server, { v: 1, site: 'shop', code, referee, event: 'conversion' });
  assert.equal(r.status, 200, r.text);
  return r.json;
};
const newCode = () => 'H' + randomBytes(5).toString('hex').toUpperCase();

test('a_counted_conversion_arrives_signed_with_its_idempotency_key', webhooks, async () => {
  const hook = await receiver();
  const server = await serve(hook);
  cleanups.push(() => server.cleanup(), hook.close);
  const code = newCode();
  const report = await convert(server, code, 'ref-1');
  await waitFor('the webhook', () => hook.seen.length === 1);
  const [got] = hook.seen;
  assert.ok(verify(WEBHOOK_SECRET, got.headers['loopwise-signature'], got.body), 'the signature verifies');
  assert.equal(verify('another secret of thirty-two characters!!', got.headers['loopwise-signature'], got.body), false);
  assert.equal(verify(WEBHOOK_SECRET, got.headers['loopwise-signature'], got.body.replace(code, newCode())), false, 'a changed body does not');
  assert.equal(got.headers['idempotency-key'], `shop:${report.id}`);
  assert.equal(got.json.id, got.headers['idempotency-key']);
  assert.equal(got.json.code, code);
  assert.equal(got.json.type, 'conversion');
  const { cookie } = await consoleSession(server);
  const log = await waitFor('the delivery log', async () => {
    const r = (await request(server, 'GET', '/console/api/deliveries?site=shop', { headers: { Cookie: cookie } })).json;
    return r.deliveries[0]?.state === 'delivered' && r;
  });
  assert.equal(log.deliveries[0].attempts, 1);
  assert.equal(log.deliveries[0].last_status, 200);
});

test('a_flagged_conversion_is_sent_only_once_approved', webhooks, async () => {
  const hook = await receiver();
  const server = await serve(hook);
  cleanups.push(() => server.cleanup(), hook.close);
  const code = newCode();
  await convert(server, code, 'a');
  await convert(server, code, 'b');
  const flagged = await convert(server, code, 'c'); // velocity_max 2: waits for review
  assert.equal(flagged.state, 'flagged');
  await waitFor('the two counted ones', () => hook.seen.length === 2);
  const { cookie, csrf } = await consoleSession(server);
  // Another counted conversion after it proves the sender ran past the flagged one.
  await convert(server, newCode(), 'd');
  await waitFor('the later one', () => hook.seen.length === 3);
  assert.ok(!hook.seen.some((s) => s.json.report === flagged.id), 'the flagged one is held');
  const ok = await request(server, 'POST', `/console/api/reviews/${flagged.id}?site=shop`, {
    headers: { Cookie: cookie, 'X-Loopwise-CSRF': csrf, 'Content-Type': 'application/json' }, body: '{"decision":"approve"}' });
  assert.equal(ok.status, 200, ok.text);
  await waitFor('the approved one', () => hook.seen.some((s) => s.json.report === flagged.id));
});

test('a_failing_receiver_is_retried_with_backoff_until_it_answers', webhooks, async () => {
  const hook = await receiver((n) => (n <= 2 ? 500 : 0));
  const server = await serve(hook);
  cleanups.push(() => server.cleanup(), hook.close);
  await convert(server, newCode(), 'r');
  await waitFor('the third attempt', () => hook.seen.length === 3);
  assert.deepEqual(hook.seen.map((s) => s.headers['loopwise-attempt']), ['1', '2', '3']);
  assert.equal(new Set(hook.seen.map((s) => s.headers['idempotency-key'])).size, 1, 'one key across retries');
  for (const s of hook.seen) assert.ok(verify(WEBHOOK_SECRET, s.headers['loopwise-signature'], s.body));
  const { cookie } = await consoleSession(server);
  const d = await waitFor('delivered', async () => {
    const r = (await request(server, 'GET', '/console/api/deliveries?site=shop', { headers: { Cookie: cookie } })).json.deliveries[0];
    return r?.state === 'delivered' && r;
  });
  assert.equal(d.attempts, 3);
});

test('past_its_retry_window_a_delivery_is_failed_and_can_be_sent_again_from_the_console', webhooks, async () => {
  let down = true;
  const hook = await receiver(() => (down ? 503 : 0));
  const server = await serve(hook, { webhook_max_age_s: 1 });
  cleanups.push(() => server.cleanup(), hook.close);
  await convert(server, newCode(), 'f');
  const { cookie, csrf } = await consoleSession(server);
  const list = async () => (await request(server, 'GET', '/console/api/deliveries?site=shop', { headers: { Cookie: cookie } })).json.deliveries;
  const failed = await waitFor('failed', async () => (await list()).find((d) => d.state === 'failed'));
  assert.equal(failed.last_status, 503);
  assert.match(failed.last_error, /503/);
  const resend = (headers) => request(server, 'POST', `/console/api/deliveries/${failed.id}?site=shop`, { headers: { Cookie: cookie, ...headers }, body: '{}' });
  assert.equal((await resend({})).status, 403, 'a write needs the CSRF token');
  assert.equal(failed.resent_by, '', 'not sent again yet');
  assert.equal(failed.resent_at, 0);
  down = false;
  const t0 = Date.now();
  const again = await resend({ 'X-Loopwise-CSRF': csrf });
  assert.equal(again.status, 200, again.text);
  const t1 = Date.now();
  const sent = await waitFor('delivered after the resend', async () => (await list()).find((d) => d.id === failed.id && d.state === 'delivered'));
  assert.equal((await resend({ 'X-Loopwise-CSRF': csrf })).status, 409, 'a delivered one is not sent again');
  assert.match(server.stderr, /"action":"resend"/);
  // Who sent it again and when, in the store: the delivery log's row and the action log.
  assert.equal(sent.resent_by, 'pm');
  assert.ok(sent.resent_at >= t0 && sent.resent_at <= t1, `resent_at ${sent.resent_at} within [${t0}, ${t1}]`);
  const actions = (await request(server, 'GET', '/console/api/actions?site=shop', { headers: { Cookie: cookie } })).json.actions
    .filter((a) => a.target === 'delivery' && a.ref === failed.id);
  assert.deepEqual(actions.map((a) => [a.user, a.action, a.at]), [['pm', 'resend', sent.resent_at]]);
});

test('two_servers_on_one_database_deliver_each_conversion_once_also_across_a_restart', webhooks, async () => {
  const hook = await receiver();
  const dir = tempDir();
  const db = join(dir, 'shared.db');
  const a = await serve(hook, {}, { dir, db });
  let b = await serve(hook, {}, { dir: tempDir(), db });
  cleanups.push(() => a.cleanup(), hook.close);
  const reports = [];
  for (let i = 0; i < 20; i++) reports.push(await convert(i % 2 ? a : b, newCode(), `two-${i}`));
  await waitFor('all twenty', () => new Set(hook.seen.map((s) => s.json.id)).size === 20);
  await b.cleanup();
  b = await serve(hook, {}, { dir: tempDir(), db });
  cleanups.push(() => b.cleanup());
  const last = await convert(b, newCode(), 'after-restart');
  await waitFor('the one after the restart', () => hook.seen.some((s) => s.json.report === last.id));
  const keys = hook.seen.map((s) => s.json.id);
  assert.equal(keys.length, 21, `each conversion once: ${keys.length} posts for 21 conversions`);
  assert.equal(new Set(keys).size, 21);
});

test('a_schema_7_store_is_migrated_to_8_with_its_deliveries_table', { skip: sqliteOnly }, async () => {
  const { sql } = await import('./helpers.mjs');
  const dir = tempDir();
  const db = join(dir, 'v7.db');
  const first = await startServer({ dir, db });
  await first.stop();
  // Schema 8 only adds the deliveries table, 9 the rollups, 10 the approvals, 11 the funnel and 12 the console actions:
  // without them, and marked 7, the file is a schema-7 store.
  sql(db, 'DROP TABLE deliveries; DROP TABLE rollup_site; DROP TABLE rollup_keys; DROP TABLE rollup_installs;'
    + ' DROP TABLE rollup_days; DROP TABLE rollup_dec; DROP TABLE rollup_funnel; DROP INDEX events_shares;'
    + ' DROP INDEX events_decisions; DROP TABLE approvals; DROP TABLE console_actions; PRAGMA user_version = 7;');
  assert.equal(sql(db, "SELECT count(*) AS n FROM sqlite_master WHERE name = 'deliveries'")[0].n, 0);
  const hook = await receiver();
  const server = await serve(hook, {}, { dir, db });
  cleanups.push(() => server.cleanup(), hook.close);
  assert.equal(sql(db, 'PRAGMA user_version')[0].user_version, storeSchemaVersion);
  await convert(server, newCode(), 'migrated');
  await waitFor('a delivery from the migrated store', () => hook.seen.length === 1);
});
