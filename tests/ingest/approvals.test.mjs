// approvals.test.mjs: approval requests through the real ingest server (README "Approval
// requests", wire v3): a device's approval-request record reaches the console's queue, a
// console user answers it (CSRF-safe, stored with who and when), and the device reads the
// answer with its install's approval key in the body (the store keeps only the key's SHA-256);
// an expired request never answers yes; bad records and check bodies are refused naming the
// field.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { exec, isPgUrl, onPg, postBatch, randomInstall, request, sql, sqliteOnly, startServer, tempDir, storeSchemaVersion, pgSchemaVersion } from './helpers.mjs';
import { PASSWORD, consoleConfig } from './console-fixture.mjs';

// Both backends keep approval requests (SQLite schema 10, PostgreSQL schema 3): the suite's
// PostgreSQL run (LW_TEST_PG) runs these too.
let server, session;

before(async () => {
  const dir = tempDir();
  server = await startServer({ dir, args: ['--config', consoleConfig(dir, { approval_days: 7 }), '--rate-limit', 'off'] });
  const login = await request(server, 'POST', '/console/login', {
    headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ name: 'pm', password: PASSWORD }) });
  assert.equal(login.status, 200, login.text);
  const cookie = login.headers['set-cookie'][0].split(';')[0];
  const s = await request(server, 'GET', '/console/api/session', { headers: { Cookie: cookie } });
  session = { cookie, csrf: s.json.csrf };
});
after(async () => { await server?.cleanup(); });

const hex = (n) => randomBytes(n).toString('hex');

function requestRecord(over = {}) {
  return { kind: 'approval-request', t: Date.now(), install: over.install || randomInstall(), decision: hex(8),
    action: 'credit_10', reason: 'shown: milestone project_completed×3', segment: 'persona-2',
    attrs: { plan: 'enterprise', seats: '50-plus' }, key: hex(16), ...over };
}

const batch = (events, v = 3) => ({ v, batch_id: 'b-' + hex(8), write_key: 'shop-key', sent_at: Date.now(), events });

const consoleGet = (path) => request(server, 'GET', path, { headers: { Cookie: session.cookie } });
const answer = (id, decision, csrf = session.csrf) => request(server, 'POST', `/console/api/approvals/${id}`, {
  headers: { Cookie: session.cookie, 'Content-Type': 'application/json', ...(csrf ? { 'X-Loopwise-CSRF': csrf } : {}) },
  body: JSON.stringify({ decision }) });
const check = (body) => request(server, 'POST', '/v1/approvals', {
  headers: { 'Content-Type': 'text/plain' }, body: typeof body === 'string' ? body : JSON.stringify({ v: 1, write_key: 'shop-key', ...body }) });

async function queued(decision) {
  const r = await consoleGet('/console/api/approvals');
  assert.equal(r.status, 200, r.text);
  return r.json.approvals.find((a) => a.decision === decision);
}

test('an_approval_request_reaches_the_console_and_its_answer_only_the_device_holding_the_key', async () => {
  const rec = requestRecord();
  const stored = await postBatch(server, batch([rec]));
  assert.equal(stored.status, 200, stored.text);
  const a = await queued(rec.decision);
  assert.ok(a, 'the request is in the queue');
  assert.deepEqual(a.attrs, rec.attrs);
  assert.equal(a.action, 'credit_10');
  assert.equal(a.reason, rec.reason);
  assert.equal(a.answer, 'pending');
  assert.ok(a.expires_at - a.received_at === 7 * 86400000, 'expires after approval_days');
  assert.deepEqual((await check({ install: rec.install, key: rec.key })).json.answers,
    [{ decision: rec.decision, answer: 'pending', action: 'credit_10' }]);

  // No CSRF token: refused, nothing answered.
  const forged = await answer(a.id, 'approve', null);
  assert.equal(forged.status, 403);
  assert.equal((await queued(rec.decision)).answer, 'pending');

  const before = Date.now();
  const done = await answer(a.id, 'approve');
  assert.equal(done.status, 200, done.text);
  assert.equal(done.json.answered_by, 'pm');
  const after_ = await queued(rec.decision);
  assert.equal(after_.answer, 'approved');
  assert.equal(after_.answered_by, 'pm');
  assert.ok(after_.answered_at >= before && after_.answered_at <= Date.now());
  assert.match(server.stderr, /console action.*approve request/, 'the action is logged with who');
  // Answered once: a second answer is refused.
  assert.equal((await answer(a.id, 'decline')).status, 409);
  // The answer is a console action in the store, at the time the request shows; the refused
  // forgery and second answer are none.
  const actions = (await consoleGet('/console/api/actions')).json.actions.filter((x) => x.target === 'approval' && x.ref === a.id);
  assert.deepEqual(actions.map((x) => [x.user, x.action, x.at]), [['pm', 'approve request', after_.answered_at]]);

  // The device with its key reads the answer; another key (or another install) reads nothing.
  assert.deepEqual((await check({ install: rec.install, key: rec.key })).json.answers,
    [{ decision: rec.decision, answer: 'approved', action: 'credit_10' }]);
  assert.deepEqual((await check({ install: rec.install, key: hex(16) })).json.answers, []);
  assert.deepEqual((await check({ install: randomInstall(), key: rec.key })).json.answers, []);

  // The store holds the key's SHA-256, never the key.
  const rows = sql(server.db, `SELECT key_hash FROM approvals WHERE decision = '${rec.decision}'`);
  assert.equal(rows[0].key_hash, createHash('sha256').update(rec.key).digest('hex'));
  const dump = sql(server.db, `SELECT * FROM approvals`).map((r) => JSON.stringify(r)).join('\n');
  assert.ok(!dump.includes(rec.key), 'the key itself is not stored');

  // The device's approval-answer record fills the device's side of the row.
  const ack = { kind: 'approval-answer', t: Date.now(), install: rec.install, decision: rec.decision, action: 'credit_10', answer: 'approved' };
  assert.equal((await postBatch(server, batch([ack]))).status, 200);
  assert.equal((await queued(rec.decision)).device_answer, 'approved');
});

test('a_declined_request_answers_declined', async () => {
  const rec = requestRecord();
  assert.equal((await postBatch(server, batch([rec]))).status, 200);
  const a = await queued(rec.decision);
  const bad = await answer(a.id, 'reject'); // the review queue's word, not this one's
  assert.equal(bad.status, 400);
  assert.equal(bad.json.field, 'decision');
  assert.equal((await answer(a.id, 'decline')).status, 200);
  assert.equal((await check({ install: rec.install, key: rec.key })).json.answers[0].answer, 'declined');
});

test('an_expired_request_shows_as_expired_and_never_answers_yes', async () => {
  const pending = requestRecord(), approved = requestRecord();
  assert.equal((await postBatch(server, batch([pending, approved]))).status, 200);
  const b = await queued(approved.decision);
  assert.equal((await answer(b.id, 'approve')).status, 200);
  // Both arrived 8 days ago (the server's receive time decides, not the device's clock).
  exec(server.db, `UPDATE approvals SET received_at = received_at - 8 * 86400000 WHERE decision IN ('${pending.decision}', '${approved.decision}')`);
  const a = await queued(pending.decision);
  assert.equal(a.answer, 'expired');
  assert.equal((await queued(approved.decision)).answer, 'expired', 'an old yes is not a yes');
  const late = await answer(a.id, 'approve');
  assert.equal(late.status, 409);
  assert.match(late.json.error, /expired/);
  assert.equal((await check({ install: pending.install, key: pending.key })).json.answers[0].answer, 'expired');
  assert.equal((await check({ install: approved.install, key: approved.key })).json.answers[0].answer, 'expired');
});

test('forgetting_an_install_deletes_its_approval_requests', async () => {
  const rec = requestRecord();
  assert.equal((await postBatch(server, batch([rec]))).status, 200);
  assert.ok(await queued(rec.decision));
  const f = await request(server, 'POST', '/v1/forget', { headers: { 'Content-Type': 'text/plain' },
    body: JSON.stringify({ v: 1, write_key: 'shop-key', install: rec.install }) });
  assert.equal(f.status, 200, f.text);
  assert.equal(await queued(rec.decision), undefined);
});

test('bad_approval_records_and_checks_are_refused_naming_the_field', async () => {
  const cases = [
    [batch([requestRecord({ key: undefined })]), 'events[0].key', /required/],
    [batch([requestRecord({ key: 'ABC' })]), 'events[0].key', /32/],
    [batch([requestRecord({ attrs: undefined })]), 'events[0].attrs', /required/],
    [batch([requestRecord({ attrs: ['plan'] })]), 'events[0].attrs', /object/],
    [batch([requestRecord({ attrs: { a: '1', b: '2', c: '3', d: '4', e: '5' } })]), 'events[0].attrs', /at most 4/],
    [batch([requestRecord({ attrs: { plan: 'Jane Doe <jane@example.com>' } })]), 'events[0].attrs.plan', /characters/],
    [batch([requestRecord({ action: 'none' })]), 'events[0].action', /variant/],
    [batch([requestRecord({ reason: undefined })]), 'events[0].reason', /required/],
    [batch([requestRecord({ p: 0.5 })]), 'events[0].p', /not allowed/],
    [batch([requestRecord()], 2), 'events[0].kind', /approval-request is not in batch version 2 \(added in version 3\)/],
    [batch([{ kind: 'approval-answer', t: Date.now(), install: randomInstall(), decision: hex(8) }], 1), 'events[0].kind', /not in batch version 1/],
    [batch([{ kind: 'share', t: Date.now(), install: randomInstall(), decision: hex(8), code: 'K7QX2M9PLA', token: hex(16), channel: 'copy', key: hex(16) }], 2), 'events[0].key', /not in batch version 2/],
    [batch([{ kind: 'approval-answer', t: Date.now(), install: randomInstall(), decision: hex(8), answer: 'pending' }]), 'events[0].answer', /approved, declined or expired/],
    [batch([{ kind: 'approval-answer', t: Date.now(), install: randomInstall(), decision: hex(8) }]), 'events[0].answer', /required/],
    [batch([{ kind: 'decision', t: Date.now(), install: randomInstall(), decision: hex(8), action: 'none', p: 1, mode: 'rules', reason: '', answer: 'approved' }]), 'events[0].answer', /not allowed/],
  ];
  for (const [body, field, message] of cases) {
    for (const e of body.events) for (const k of Object.keys(e)) if (e[k] === undefined) delete e[k];
    const r = await postBatch(server, body);
    assert.equal(r.status, 400, `${field}: ${r.text}`);
    assert.equal(r.json.field, field, r.text);
    assert.match(r.json.error, message, r.text);
  }
  const checks = [
    [{ install: randomInstall(), key: 'short' }, 'key'],
    [{ install: 'x', key: hex(16) }, 'install'],
    [{ install: randomInstall() }, 'key'],
    [{ install: randomInstall(), key: hex(16), url: 'x' }, 'url'],
    [{ install: randomInstall(), key: hex(16), write_key: 'no-such-key' }, 'write_key'],
  ];
  for (const [body, field] of checks) {
    const r = await check(body);
    assert.ok(r.status >= 400 && r.status < 500, `${field}: ${r.status} ${r.text}`);
    assert.equal(r.json.field, field, r.text);
  }
});

test('a_schema_9_store_is_migrated_with_its_approvals_table', { skip: sqliteOnly }, async () => {
  const dir = tempDir();
  const db = join(dir, 'v9.db');
  const first = await startServer({ dir, db });
  await first.stop();
  exec(db, 'DROP TABLE approvals; DROP TABLE rollup_dec; DROP TABLE rollup_funnel; DROP TABLE console_actions; PRAGMA user_version = 9;');
  const again = await startServer({ dir, db, args: ['--config', consoleConfig(dir)] });
  try {
    assert.equal(sql(db, 'PRAGMA user_version')[0].user_version, storeSchemaVersion);
    const rec = requestRecord();
    assert.equal((await postBatch(again, batch([rec]))).status, 200);
    assert.equal(sql(db, `SELECT state FROM approvals WHERE decision = '${rec.decision}'`)[0].state, 'pending');
  } finally {
    await again.cleanup();
  }
});

test('a_postgresql_schema_2_store_is_migrated_with_deliveries_and_approvals', { skip: !onPg && 'a PostgreSQL test' }, async () => {
  const dir = tempDir();
  const first = await startServer({ dir });
  assert.ok(isPgUrl(first.db));
  await first.stop();
  // schema 2: without step 3's tables, step 4's funnel (the console's, test_rollups.c), step 5's
  // actions and step 6's channels and fairness segments (rollup_days back to 2's key)
  exec(first.db, 'DROP TABLE approvals; DROP TABLE deliveries; DROP TABLE rollup_dec; DROP TABLE rollup_funnel;'
    + ' DROP AGGREGATE total(double precision); DROP TABLE console_actions; DROP FUNCTION lw_fair(text, bytea);'
    + ' DROP TABLE rollup_fairness, rollup_fair_segments; DELETE FROM rollup_days; ALTER TABLE rollup_days DROP COLUMN fair;'
    + ' ALTER TABLE rollup_days ADD PRIMARY KEY(site, day, action, segment, mode); UPDATE lw_schema SET version = 2;');
  const again = await startServer({ dir, db: first.db, args: ['--config', consoleConfig(dir)] });
  try {
    assert.deepEqual(sql(again.db, 'SELECT version FROM lw_schema'), [{ version: pgSchemaVersion }]);
    const rec = requestRecord();
    assert.equal((await postBatch(again, batch([rec]))).status, 200);
    assert.equal(sql(again.db, `SELECT state FROM approvals WHERE decision = '${rec.decision}'`)[0].state, 'pending');
  } finally {
    await again.cleanup();
  }
});
