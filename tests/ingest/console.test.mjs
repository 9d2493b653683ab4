// console.test.mjs: the product manager's console's API on a real loopwise-ingest (README "The
// console"): login and its cookie, sessions and CSRF, loopback-only without users, the funnel
// against a known dataset (Wilson intervals checked against the formula here), the CSV equal to
// the JSON table, and the review queue deciding what reaches the reward list.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { exec, startServer, tempDir, request } from './helpers.mjs';
import { CONSOLE_SECRET, PASSWORD, consoleConfig, expected, expectedChannels, hashPassword, load, plan, rateBase, referee_, wilson } from './console-fixture.mjs';

let server, rows;
before(async () => {
  const dir = tempDir();
  server = await startServer({ dir, args: ['--config', consoleConfig(dir), '--rate-limit', 'off'] });
  rows = plan();
  await load(server, rows);
});
after(async () => { await server?.cleanup(); });

const login = (name = 'pm', password = PASSWORD) =>
  request(server, 'POST', '/console/login', { headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ name, password }) });
const cookieOf = (res) => res.headers['set-cookie'][0].split(';')[0];

async function session() {
  const res = await login();
  assert.equal(res.status, 200, res.text);
  const cookie = cookieOf(res);
  const s = await request(server, 'GET', '/console/api/session', { headers: { Cookie: cookie } });
  assert.equal(s.status, 200, s.text);
  return { cookie, csrf: s.json.csrf };
}

test('login_sets_an_httponly_samesite_strict_session_cookie', async () => {
  const res = await login();
  assert.equal(res.status, 200, res.text);
  const set = res.headers['set-cookie'][0];
  assert.match(set, /^lw_console=pm\.\d+\.[0-9a-f]{64};/);
  assert.match(set, /; HttpOnly/);
  assert.match(set, /; SameSite=Strict/);
  assert.match(set, /; Path=\/console/);
  assert.equal((await login('pm', 'wrong')).status, 401);
  assert.equal((await login('nobody', PASSWORD)).status, 401);
  assert.match(server.stderr, /"msg":"console action".*"user":"pm".*"action":"login"/);
});

test('the_api_refuses_requests_without_a_valid_session', async () => {
  assert.equal((await request(server, 'GET', '/console/api/report')).status, 401);
  const { cookie } = await session();
  const forged = cookie.replace(/pm\.(\d+)\./, (m, t) => `pm.${Number(t) + 100000}.`);
  assert.equal((await request(server, 'GET', '/console/api/report', { headers: { Cookie: forged } })).status, 401, 'a longer expiry breaks the signature');
  const renamed = cookie.replace('lw_console=pm.', 'lw_console=other.');
  assert.equal((await request(server, 'GET', '/console/api/report', { headers: { Cookie: renamed } })).status, 401);
  assert.equal((await request(server, 'GET', '/console/api/report', { headers: { Cookie: cookie } })).status, 200);
});

test('a_write_without_the_csrf_token_is_refused', async () => {
  const { cookie, csrf } = await session();
  const body = JSON.stringify({ decision: 'approve' });
  const none = await request(server, 'POST', '/console/api/reviews/1', { headers: { Cookie: cookie, 'Content-Type': 'application/json' }, body });
  assert.equal(none.status, 403);
  assert.equal(none.json.field, 'X-Loopwise-CSRF');
  const other = await session(); // another session's token does not fit this one
  const wrong = await request(server, 'POST', '/console/api/reviews/1', { headers: { Cookie: cookie, 'X-Loopwise-CSRF': other.csrf === csrf ? '0'.repeat(64) : other.csrf }, body });
  assert.equal(wrong.status, 403);
  const logout = await request(server, 'POST', '/console/logout', { headers: { Cookie: cookie }, body: '{}' });
  assert.equal(logout.status, 403, 'logout is a write too');
});

test('console_answers_carry_a_strict_content_security_policy', async () => {
  const page = await request(server, 'GET', '/console');
  assert.equal(page.status, 200, page.text);
  assert.match(page.headers['content-security-policy'], /default-src 'self'; script-src 'self'; style-src 'self'/);
  assert.doesNotMatch(page.text, /<script>|<style>| style=/, 'no inline script or style');
  const js = await request(server, 'GET', '/console/console.js');
  assert.equal(js.status, 200);
  assert.match(js.headers['content-type'], /javascript/);
  assert.match(js.text, /uPlot|uplot/, 'uPlot is bundled, not fetched from a CDN');
  assert.equal((await request(server, 'GET', '/console/../etc/passwd')).status, 404);
});

test('funnel_per_variant_and_segment_matches_the_dataset_with_wilson_intervals', async () => {
  const { cookie } = await session();
  const res = await request(server, 'GET', '/console/api/report?site=shop', { headers: { Cookie: cookie } });
  assert.equal(res.status, 200, res.text);
  const rep = res.json;
  assert.match(rep.interval, /Wilson/);
  const costs = { credit_10: 10, month_free: 25, none: 0 };
  for (const [table, keyOf] of [['variants', (r) => r.variant], ['segments', (r) => r.segment], ['modes', (r) => r.mode]]) {
    const want = expected(rows, keyOf);
    assert.deepEqual(rep.tables[table].map((r) => r.key).sort(), [...want.keys()].sort(), table);
    for (const got of rep.tables[table]) {
      const w = want.get(got.key);
      for (const s of ['decisions', 'prompts', 'shares', 'landings', 'conversions', 'retained'])
        assert.equal(got[s], w[s], `${table} ${got.key} ${s}`);
      assert.equal(got.referred, w.referred, `${table} ${got.key} referred`);
      assert.equal(got.referred_retained, w.retainedCustomers);
      const stages = ['decisions', 'prompts', 'shares', 'landings', 'conversions', 'retained'];
      for (let i = 1; i < stages.length; i++) {
        const [lo, hi] = wilson(w[stages[i]], w[rateBase(stages, i)]);
        const r = got.rates[stages[i]];
        assert.ok(Math.abs(r.lo - lo) < 1e-9 && Math.abs(r.hi - hi) < 1e-9, `${table} ${got.key} ${stages[i]}: [${r.lo}, ${r.hi}] vs [${lo}, ${hi}]`);
      }
      if (table === 'variants') {
        assert.equal(got.incentive_cost, costs[got.key] * w.referred);
        if (w.referred) assert.equal(got.cost_per_referred, costs[got.key]);
      }
    }
  }
  // The shared decisions by channel (the decision's first share): shares -> landings ->
  // conversions -> retained, each rate with its Wilson interval; no decisions or prompts columns.
  const byChannel = expectedChannels(rows);
  assert.deepEqual(rep.tables.channels.map((r) => r.key), [...byChannel.keys()].sort(), 'channels');
  for (const got of rep.tables.channels) {
    const w = byChannel.get(got.key), stages = ['shares', 'landings', 'conversions', 'retained'];
    for (const s of stages) assert.equal(got[s], w[s], `channel ${got.key} ${s}`);
    assert.equal(got.decisions, undefined);
    assert.equal(got.referred, w.referred);
    assert.equal(got.referred_retained, w.retainedCustomers);
    for (let i = 1; i < stages.length; i++) {
      const [lo, hi] = wilson(w[stages[i]], w[rateBase(stages, i)]);
      const r = got.rates[stages[i]];
      assert.ok(Math.abs(r.lo - lo) < 1e-9 && Math.abs(r.hi - hi) < 1e-9, `channel ${got.key} ${stages[i]} interval`);
    }
  }
  const d = rep.learning.differences.find((x) => x.arm === 'model' && x.against === 'holdout' && x.measure === 'conversions');
  const m = expected(rows, (r) => r.mode);
  assert.equal(d.arm_k, m.get('model').conversions);
  assert.equal(d.against_n, m.get('holdout').decisions);
  assert.ok(d.lo <= d.difference && d.difference <= d.hi);
  assert.equal(rep.config.variants[0].id, 'credit_10', 'the config in force');
});

// A conversion the host reports with a code and token whose referee's landing was never
// recorded (no consent on the referee's device) makes a row's conversions exceed its landings:
// each rate is over a stage it is a subset of (conversions over shares), so every interval is
// finite and within [0, 1], in the JSON and in the CSV.
// The channels table comes from the writer's rollups on both backends (SQLite schema 12,
// PostgreSQL 6: rollup_funnel keyed by the decision's channel), not from a walk: a rollup row
// changed in the store moves the table's figure, and changed back, moves it back.
test('the_channels_table_reads_the_writers_rollups', async () => {
  const { cookie } = await session();
  const shares = async (key) => {
    const res = await request(server, 'GET', '/console/api/report?site=shop', { headers: { Cookie: cookie } });
    assert.equal(res.status, 200, res.text);
    return res.json.tables.channels.find((r) => r.key === key).shares;
  };
  const key = [...expectedChannels(rows).keys()].filter((k) => k !== '(none)').sort()[0];
  const before = await shares(key);
  assert.ok(before > 0, `channel ${key} has shares`);
  const one = `(site, day, action, segment, mode, channel, fair) = (SELECT site, day, action, segment, mode, channel, fair`
    + ` FROM rollup_funnel WHERE site = 'shop' AND channel = '${key}' AND day >= 0 AND shares > 0 LIMIT 1)`;
  exec(server.db, `UPDATE rollup_funnel SET shares = shares + 1000 WHERE ${one}`);
  try {
    assert.equal(await shares(key), before + 1000);
  } finally {
    exec(server.db, `UPDATE rollup_funnel SET shares = shares - 1000 WHERE ${one}`);
  }
  assert.equal(await shares(key), before);
});

test('a_conversion_without_a_recorded_landing_keeps_every_rate_and_interval_finite', async () => {
  const { cookie } = await session();
  const rep = (await request(server, 'GET', '/console/api/report?site=shop', { headers: { Cookie: cookie } })).json;
  const over = Object.values(rep.tables).flat().filter((r) => r.conversions > r.landings);
  assert.ok(over.some((r) => r.key === 'whatsapp'), 'the dataset has a channel with more conversions than landings');
  for (const [table, rows_] of Object.entries(rep.tables)) for (const r of rows_) for (const [s, q] of Object.entries(r.rates)) {
    assert.ok(Number.isFinite(q.lo) && Number.isFinite(q.hi) && q.lo >= 0 && q.lo <= q.hi && q.hi <= 1, `${table} ${r.key} ${s}: [${q.lo}, ${q.hi}]`);
    assert.ok(q.k <= q.n, `${table} ${r.key} ${s}: ${q.k} of ${q.n}`);
    if (q.n) assert.ok(q.rate >= 0 && q.rate <= 1, `${table} ${r.key} ${s} rate ${q.rate}`);
  }
  assert.match(rep.interval, /conversions as a share of shares/);
  for (const table of Object.keys(rep.tables)) {
    const csv = await request(server, 'GET', `/console/api/report.csv?site=shop&table=${table}`, { headers: { Cookie: cookie } });
    assert.equal(csv.status, 200);
    assert.doesNotMatch(csv.text, /nan|inf/i, table);
  }
});

// A minimal CSV reader: no field of ours is quoted.
const parseCsv = (text) => text.trim().split('\r\n').map((l) => l.split(','));

test('csv_export_equals_the_json_table', async () => {
  const { cookie } = await session();
  const rep = (await request(server, 'GET', '/console/api/report?site=shop', { headers: { Cookie: cookie } })).json;
  for (const table of ['variants', 'segments', 'modes', 'weeks', 'channels']) {
    const stages = ['decisions', 'prompts', 'shares', 'landings', 'conversions', 'retained'].slice(table === 'channels' ? 2 : 0);
    assert.ok(rep.tables[table].length > 0, table);
    const csv = await request(server, 'GET', `/console/api/report.csv?site=shop&table=${table}`, { headers: { Cookie: cookie } });
    assert.equal(csv.status, 200, csv.text);
    assert.match(csv.headers['content-type'], /^text\/csv/);
    const [head, ...lines] = parseCsv(csv.text);
    assert.equal(lines.length, rep.tables[table].length);
    lines.forEach((cells, i) => {
      const row = Object.fromEntries(head.map((h, j) => [h, cells[j]]));
      const j = rep.tables[table][i];
      assert.equal(row.key, j.key);
      for (const s of stages) assert.equal(Number(row[s]), j[s]);
      assert.deepEqual(head.filter((h) => h === 'decisions' || h === 'prompts').length, table === 'channels' ? 0 : 2);
      for (const s of stages.slice(1)) {
        if (j.rates[s].rate === null) { assert.equal(row[`${s}_rate`], ''); continue; }
        assert.ok(Math.abs(Number(row[`${s}_lo`]) - j.rates[s].lo) < 1e-6);
        assert.ok(Math.abs(Number(row[`${s}_hi`]) - j.rates[s].hi) < 1e-6);
      }
      assert.equal(Number(row.referred), j.referred);
      assert.ok(Math.abs(Number(row.incentive_cost) - j.incentive_cost) < 0.005);
    });
  }
  assert.equal((await request(server, 'GET', '/console/api/report.csv?table=nope', { headers: { Cookie: cookie } })).status, 404);
});

test('a_flagged_conversion_reaches_the_reward_list_only_once_approved_in_the_console', async () => {
  const { cookie, csrf } = await session();
  const code = 'V' + randomBytes(5).toString('hex').toUpperCase();
  const states = [];
  for (let i = 0; i < 4; i++) states.push((await referee_(server, { v: 1, site: 'shop', code, referee: `${code}-${i}`, event: 'conversion' })).json);
  assert.deepEqual(states.map((s) => s.state), ['counted', 'counted', 'flagged', 'flagged']);
  const rewards = async () => (await request(server, 'GET', '/console/api/rewards?site=shop', { headers: { Cookie: cookie } })).json.attributions.find((a) => a.code === code);
  assert.equal((await rewards()).conversions, 2);
  const queue = await request(server, 'GET', '/console/api/reviews?site=shop', { headers: { Cookie: cookie } });
  const mine = queue.json.reviews.filter((r) => r.code === code);
  assert.equal(mine.length, 2);
  assert.equal(mine[0].reason, 'velocity', 'the evidence: which rule flagged it');
  const decide = (id, decision) => request(server, 'POST', `/console/api/reviews/${id}?site=shop`, {
    headers: { Cookie: cookie, 'X-Loopwise-CSRF': csrf, 'Content-Type': 'application/json' }, body: JSON.stringify({ decision }) });
  const t0 = Date.now();
  assert.equal((await decide(states[2].id, 'approve')).status, 200);
  assert.equal((await decide(states[3].id, 'reject')).status, 200);
  assert.equal((await decide(states[3].id, 'approve')).status, 409);
  const t1 = Date.now();
  assert.equal((await rewards()).conversions, 3, 'the approved one counts, the rejected one never');
  assert.match(server.stderr, new RegExp(`"msg":"console action".*"user":"pm".*"action":"approve".*"id":${states[2].id}`));
  assert.match(server.stderr, new RegExp(`"action":"reject".*"id":${states[3].id}`));
  // Who decided and when is in the store, so another replica on the same store (no shared log,
  // its own process) answers it: the console's action log.
  const dir = tempDir();
  const replica = await startServer({ dir, db: server.db, args: ['--config', consoleConfig(dir), '--rate-limit', 'off'] });
  try {
    const res = await request(replica, 'GET', '/console/api/actions?site=shop', { headers: { Cookie: cookie } });
    assert.equal(res.status, 200, res.text);
    const of = (id) => res.json.actions.filter((a) => a.target === 'review' && a.ref === id);
    for (const [id, action] of [[states[2].id, 'approve'], [states[3].id, 'reject']]) {
      const rows = of(id);
      assert.equal(rows.length, 1, `one action on review ${id} (the refused second decision is not one): ${res.text}`);
      assert.equal(rows[0].user, 'pm');
      assert.equal(rows[0].action, action);
      assert.equal(rows[0].site, 'shop');
      assert.ok(rows[0].at >= t0 && rows[0].at <= t1, `at ${rows[0].at} within [${t0}, ${t1}]`);
    }
    const csv = await request(replica, 'GET', '/console/api/actions.csv?site=shop', { headers: { Cookie: cookie } });
    assert.equal(csv.status, 200, csv.text);
    assert.match(csv.text, new RegExp(`^\\d+,pm,reject,review,${states[3].id}$`, 'm'));
  } finally {
    await replica.cleanup();
  }
});

test('without_console_users_the_console_answers_loopback_clients_only', async () => {
  const dir = tempDir();
  const local = await startServer({ dir });
  try {
    const s = await request(local, 'GET', '/console/api/session');
    assert.equal(s.status, 200, s.text);
    assert.equal(s.json.user, 'loopback');
    assert.equal((await request(local, 'GET', '/console/api/session', { headers: { 'X-Forwarded-For': '203.0.113.9' } })).status, 403);
    assert.equal((await request(local, 'POST', '/console/api/reviews/1', { body: '{"decision":"approve"}' })).status, 403, 'CSRF token needed on loopback too');
    const withToken = await request(local, 'POST', '/console/api/reviews/1', { headers: { 'X-Loopwise-CSRF': s.json.csrf }, body: '{"decision":"approve"}' });
    assert.equal(withToken.status, 404, 'past CSRF: no such report');
    assert.equal((await request(local, 'POST', '/console/login', { body: '{"name":"a","password":"b"}' })).status, 404);
  } finally {
    await local.cleanup();
  }
});

test('console_users_without_a_shared_secret_are_refused_at_start', async () => {
  const dir = tempDir();
  const path = join(dir, 'c.json');
  writeFileSync(path, JSON.stringify({ console_users: `pm:${hashPassword('x')}` }));
  await assert.rejects(startServer({ dir, args: ['--config', path] }), /console_secret/);
  writeFileSync(path, JSON.stringify({ console_users: 'pm:plaintext', console_secret: CONSOLE_SECRET }));
  await assert.rejects(startServer({ dir, args: ['--config', path] }), /console_users: user pm/);
});
