// console-fairness.test.mjs: the console's fairness audit (GET /console/api/fairness and its
// CSV) against a known dataset stored through the real server: per value of the config's
// fairness attribute (plan, in models/referral.json) the counts, each rate's 95% Wilson
// interval from the formula, and the flags; the same flags and counts as the trainer's audit
// (loopwise-eval --audit over the same store), since both use loopwise/audit.h.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join, resolve } from 'node:path';
import { exec, onPg, request, root, sql, startServer, tempDir } from './helpers.mjs';
import { FAIRNESS_FLAGS as FLAGS, FAIRNESS_PLAN as PLAN, consoleConfig, loadFairness, wilson } from './console-fixture.mjs';

let server;

before(async () => {
  const dir = tempDir();
  // No console users: the console answers loopback clients, as this test is.
  server = await startServer({ dir, args: ['--config', consoleConfig(dir, { console_users: undefined }), '--rate-limit', 'off'] });
  await loadFairness(server);
});
after(async () => { await server?.cleanup(); });

test('the_fairness_page_gives_each_value_its_rates_with_wilson_intervals_and_the_audits_flags', async () => {
  const r = await request(server, 'GET', '/console/api/fairness');
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.attribute, 'plan');
  assert.match(r.json.method, /Wilson/);
  assert.deepEqual(r.json.rows.map((x) => x.value), Object.keys(PLAN), 'every allowed value, in the config order');
  for (const row of r.json.rows) {
    const [n, prompts, shares] = PLAN[row.value];
    assert.deepEqual([row.decisions, row.prompts, row.shares, row.conversions], [n, prompts, shares, 0], row.value);
    for (const [m, k, of] of [['exposure', prompts, n], ['share', shares, prompts]]) {
      const [lo, hi] = wilson(k, of);
      assert.ok(Math.abs(row[m].lo - lo) < 1e-9 && Math.abs(row[m].hi - hi) < 1e-9, `${row.value} ${m} interval`);
      assert.equal(row[m].rate, of ? k / of : null);
    }
    assert.deepEqual(row.flags, FLAGS[row.value], `${row.value} flags`);
    assert.equal(row.flagged, FLAGS[row.value].length > 0);
  }

  // The CSV has the same rows.
  const csv = await request(server, 'GET', '/console/api/fairness.csv');
  assert.equal(csv.status, 200);
  assert.match(csv.headers['content-type'], /text\/csv/);
  const lines = csv.text.trim().split('\r\n').map((l) => l.split(','));
  const head = lines[0];
  assert.equal(lines.length - 1, r.json.rows.length);
  lines.slice(1).forEach((line, i) => {
    const row = Object.fromEntries(head.map((h, j) => [h, line[j]]));
    const want = r.json.rows[i];
    assert.equal(row.key, want.key);
    assert.equal(Number(row.decisions), want.decisions);
    assert.equal(row.flagged, want.flagged ? '1' : '0');
    if (want.decisions) assert.ok(Math.abs(Number(row.exposure_lo) - want.exposure.lo) < 1e-6);
  });
});

test('the_fairness_page_flags_what_the_trainers_audit_flags', { skip: onPg && 'loopwise-eval reads the SQLite file here' }, async () => {
  const eval_ = resolve(root, process.env.LW_NATIVE_DIR || 'build/native', 'src/tools/loopwise-eval');
  const out = spawnSync(eval_, ['--data', server.db, '--config', join(root, 'models/referral.json'), '--site', 'shop',
    '--audit', '--quiet'], { encoding: 'utf8' });
  assert.equal(out.status, 0, out.stderr);
  const page = (await request(server, 'GET', '/console/api/fairness')).json.rows;
  for (const row of page) {
    const line = out.stdout.split('\n').find((l) => l.startsWith(row.key + ' '));
    assert.ok(line, `the trainer's audit has ${row.key}:\n${out.stdout}`);
    const cols = line.trim().split(/\s+/);
    assert.equal(Number(cols[1]), row.decisions, `${row.key} decisions`);
    assert.equal(Number(cols[2]), row.prompts, `${row.key} prompts`);
    assert.equal(line.includes('BELOW 0.8'), row.flagged, `${row.key}: the same flag in both`);
  }
});

// SQLite (store schema 12) and PostgreSQL (its schema 6): the writer keeps the audit's segments
// for the config's attribute and values (rollup_fairness, the server's spec at start), and the
// page reads those rollup rows, not a walk: a row changed in the store moves the page's figure,
// and changed back, moves it back.
test('the_fairness_page_reads_the_writers_rollups_kept_for_the_configs_segments', async () => {
  assert.deepEqual(sql(server.db, 'SELECT attribute, vals FROM rollup_fairness'),
    [{ attribute: 'plan', vals: Object.keys(PLAN).map((v) => `${v.length}:${v}`).join('') }]);
  const total = Object.values(PLAN).reduce((a, [n]) => a + n, 0);
  assert.deepEqual(sql(server.db, 'SELECT sum(decisions) AS n FROM rollup_days WHERE fair <> 0'), [{ n: total }]);
  const free = async () => (await request(server, 'GET', '/console/api/fairness')).json.rows.find((r) => r.value === 'free');
  const one = "(site, day, action, segment, mode, fair) = (SELECT site, day, action, segment, mode, fair FROM rollup_days WHERE fair = 1 LIMIT 1)";
  exec(server.db, `UPDATE rollup_days SET decisions = decisions + 1000 WHERE ${one}`);
  try {
    assert.equal((await free()).decisions, PLAN.free[0] + 1000);
  } finally {
    exec(server.db, `UPDATE rollup_days SET decisions = decisions - 1000 WHERE ${one}`);
  }
  assert.equal((await free()).decisions, PLAN.free[0]);
});
