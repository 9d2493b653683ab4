// contract.test.mjs: the v1 wire contract end to end against the real server on loopback.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { root, startServer, postBatch, request, stats, freshBatch, validBatch, sql, onPg } from './helpers.mjs';

const cases = JSON.parse(readFileSync(join(root, 'tests/cases/ingest/invalid-batches.json'), 'utf8'));

// Build a body from a case: valid-batch.json with times near now, then the case's edits.
function bodyOf(c) {
  if ('raw' in c) return Buffer.from(c.raw, 'utf8');
  if ('raw_repeat' in c) return Buffer.from(c.raw_repeat[0].repeat(c.raw_repeat[1]), 'utf8');
  const b = freshBatch();
  b.events = structuredClone(validBatch.events).map((e, i) => ({ ...e, t: Date.now() - 10000 + i }));
  for (const [path, value] of c.set || []) {
    let o = b;
    for (const k of path.slice(0, -1)) o = o[k];
    o[path.at(-1)] = value;
  }
  for (const path of c.delete || []) {
    let o = b;
    for (const k of path.slice(0, -1)) o = o[k];
    delete o[path.at(-1)];
  }
  if (c.repeat) b.events = Array.from({ length: c.repeat[1] }, () => structuredClone(b.events[c.repeat[0]]));
  let text = JSON.stringify(b);
  if (c.raw_replace) text = text.replace(c.raw_replace[0], c.raw_replace[1]);
  let buf = Buffer.from(text, 'utf8');
  for (const [marker, hex] of Object.entries(c.bytes || {})) {
    const at = buf.indexOf(marker);
    assert.ok(at >= 0, `marker ${marker} not in body`);
    buf = Buffer.concat([buf.subarray(0, at), Buffer.from(hex, 'hex'), buf.subarray(at + marker.length)]);
  }
  return buf;
}

let server;
before(async () => { server = await startServer({ args: ['--k-anonymity', '1'] }); });
after(async () => { await server.cleanup(); });

test('valid_batch_from_cases_is_stored_with_its_event_count', async () => {
  const batch = structuredClone(validBatch);
  batch.batch_id = 'contract-valid-1';
  const r = await postBatch(server, batch);
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(r.json, { stored: 5, refused: 0 });
  const s = await stats(server);
  assert.ok(s.outcomes >= 5);
});

test('v2_batch_is_stored_with_its_tokens_and_channels', async () => {
  const batch = JSON.parse(readFileSync(join(root, 'tests/cases/ingest/valid-batch-v2.json'), 'utf8'));
  batch.batch_id = 'contract-valid-v2';
  batch.sent_at = Date.now();
  batch.events.forEach((e, i) => { e.t = Date.now() - 10000 + i; });
  const r = await postBatch(server, batch);
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(r.json, { stored: 5, refused: 0 });
  const rows = sql(server.db, "SELECT e.kind, e.code, e.token, e.channel FROM events e JOIN batches b ON e.batch = b.id"
    + " WHERE b.batch_id = 'contract-valid-v2' ORDER BY e.id");
  assert.deepEqual(rows, batch.events.map((e) => ({ kind: e.kind, code: e.code ?? null, token: e.token ?? null, channel: e.channel ?? null })));
});

test('v3_batch_is_stored_with_its_approval_records_counted_in_stats', async () => {
  const batch = JSON.parse(readFileSync(join(root, 'tests/cases/ingest/valid-batch-v3.json'), 'utf8'));
  batch.batch_id = 'contract-valid-v3';
  batch.sent_at = Date.now();
  batch.events.forEach((e, i) => { e.t = Date.now() - 10000 + i; });
  const before = await stats(server);
  const r = await postBatch(server, batch);
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(r.json, { stored: 5, refused: 0 });
  const rows = sql(server.db, "SELECT e.kind FROM events e JOIN batches b ON e.batch = b.id"
    + " WHERE b.batch_id = 'contract-valid-v3' ORDER BY e.id");
  assert.deepEqual(rows.map((x) => x.kind), batch.events.map((e) => e.kind));
  const after_ = await stats(server);
  assert.equal(after_.outcomes, before.outcomes + 5, 'the top-level outcomes total counts them');
});

test('v1_batch_is_still_stored_without_tokens', async () => {
  const batch = structuredClone(validBatch);
  batch.batch_id = 'contract-valid-v1-again';
  assert.deepEqual((await postBatch(server, batch)).json, { stored: 5, refused: 0 });
  const rows = sql(server.db, "SELECT COUNT(*) AS n FROM events e JOIN batches b ON e.batch = b.id"
    + " WHERE b.batch_id = 'contract-valid-v1-again' AND e.token IS NULL AND e.channel IS NULL");
  assert.equal(rows[0].n, 5);
});

test('batches_of_every_size_are_stored_whole_and_in_order', async () => {
  for (const n of [1, 7, 8, 9, 19, 500]) {
    const b = freshBatch({ events: n });
    const r = await postBatch(server, b);
    assert.deepEqual(r.json, { stored: n, refused: 0 }, `${n} events`);
    const rows = sql(server.db, `SELECT e.t FROM events e JOIN batches b ON e.batch = b.id WHERE b.batch_id = '${b.batch_id}' ORDER BY e.id`);
    assert.deepEqual(rows.map((x) => x.t), b.events.map((e) => e.t), `${n} events`);
  }
});

test('retried_batch_id_is_acknowledged_as_duplicate_and_stored_once', async () => {
  const batch = freshBatch();
  const before_ = (await stats(server)).outcomes;
  assert.deepEqual((await postBatch(server, batch)).json, { stored: 5, refused: 0 });
  const again = await postBatch(server, batch);
  assert.equal(again.status, 200);
  assert.deepEqual(again.json, { stored: 0, duplicate: true });
  assert.equal((await stats(server)).outcomes, before_ + 5);
});

test('stats_count_each_kind_per_variant', async () => {
  const s0 = await stats(server);
  const row0 = s0.variants.find((v) => v.action === 'credit_10') || { decisions: 0, impressions: 0, copies: 0, dismissals: 0 };
  const batch = freshBatch();
  await postBatch(server, batch);
  const s1 = await stats(server);
  const row = s1.variants.find((v) => v.action === 'credit_10');
  assert.equal(row.decisions - row0.decisions, 1);
  assert.equal(row.impressions - row0.impressions, 1);
  assert.equal(row.copies - row0.copies, 1);
  assert.equal(row.dismissals - row0.dismissals, 1);
  assert.equal(row.shares, row.shares); // present
  for (const k of ['decisions', 'impressions', 'shares', 'copies', 'dismissals', 'conversions']) assert.equal(typeof row[k], 'number', k);
  assert.ok(s1.variants.find((v) => v.action === 'none').decisions >= 1);
  assert.equal(s1.outcomes, s0.outcomes + 5);
});

test('referral_codes_are_counted_per_code', async () => {
  const b = freshBatch();
  b.events[1] = { kind: 'landing', t: Date.now() - 50, install: b.events[0].install, code: 'ZZCODE42' };
  b.events[4] = { kind: 'conversion', t: Date.now() - 40, install: b.events[0].install, code: 'ZZCODE42' };
  assert.equal((await postBatch(server, b)).status, 200);
  const row = (await stats(server)).codes.find((c) => c.code === 'ZZCODE42');
  assert.equal(row.landings, 1);
  assert.equal(row.conversions, 1);
});

for (const c of cases.cases) {
  test(`refuses_${c.name}_with_400_naming_${c.field || 'the_body'}`, async () => {
    const before_ = (await stats(server)).outcomes;
    const r = await postBatch(server, bodyOf(c));
    assert.equal(r.status, 400, r.text);
    assert.equal(r.headers['content-type'], 'application/json');
    assert.equal(r.json.field, c.field, r.text);
    if (c.error) assert.ok(r.json.error.includes(c.error), `error "${r.json.error}" lacks "${c.error}"`);
    assert.equal((await stats(server)).outcomes, before_, 'a refused batch changed the store');
  });
}

for (const c of cases.valid) {
  test(`accepts_${c.name}`, async () => {
    const r = await postBatch(server, bodyOf(c));
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.stored, 5);
  });
}

test('records_dated_beyond_the_clock_skew_allowance_are_stored_with_the_receive_time_beside_them', async () => {
  // A device whose clock is a year ahead: its records are kept (never refused for that alone),
  // and the server's receive time is stored beside each one dated beyond the allowance.
  const b = freshBatch();
  const ahead = Date.now() + 365 * 86400000;
  b.sent_at = ahead;
  b.events[4].t = ahead;
  const before_ = Date.now();
  const r = await postBatch(server, b);
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(r.json, { stored: 5, refused: 0 });
  const rows = sql(server.db, `SELECT e.t, e.received_at FROM events e JOIN batches b ON e.batch = b.id WHERE b.batch_id = '${b.batch_id}' ORDER BY e.id`);
  assert.equal(rows.length, 5);
  assert.equal(rows[4].t, ahead, 'the device time is kept as sent');
  assert.ok(rows[4].received_at >= before_ && rows[4].received_at <= Date.now(), JSON.stringify(rows[4]));
  assert.deepEqual(rows.slice(0, 4).map((x) => x.received_at), [null, null, null, null], 'records within the allowance need none');
});

test('invalid_utf8_never_reaches_the_store', async () => {
  // PostgreSQL text cannot hold invalid UTF-8 at all: look for the marker and a replacement character.
  const rows = sql(server.db, onPg
    ? "SELECT count(*) AS n FROM events WHERE reason LIKE '%@BAD@%' OR position(chr(65533) in reason) > 0"
    : "SELECT count(*) AS n FROM events WHERE reason GLOB '*@BAD@*' OR hex(reason) GLOB '*FF*'");
  assert.equal(rows[0].n, 0);
});

test('unknown_write_key_is_401', async () => {
  const b = freshBatch();
  b.write_key = 'no-such-key';
  const r = await postBatch(server, b);
  assert.equal(r.status, 401);
  assert.equal(r.json.field, 'write_key');
});

test('healthz_answers_ok', async () => {
  const r = await request(server, 'GET', '/healthz');
  assert.equal(r.status, 200);
  assert.deepEqual(r.json, { ok: true });
});

test('unknown_path_is_404_and_wrong_method_is_405_with_allow', async () => {
  assert.equal((await request(server, 'GET', '/nope')).status, 404);
  const r = await request(server, 'GET', '/v1/outcomes');
  assert.equal(r.status, 405);
  assert.match(r.headers.allow, /POST/);
});

test('store_keeps_no_address_user_agent_or_user_id', async () => {
  const b = freshBatch();
  await postBatch(server, b, { 'User-Agent': 'SecretBrowser/9.9', 'X-Forwarded-For': '203.0.113.77' });
  const dump = JSON.stringify(sql(server.db, 'SELECT * FROM events')) + JSON.stringify(sql(server.db, 'SELECT * FROM batches'));
  assert.ok(!dump.includes('127.0.0.1'));
  assert.ok(!dump.includes('SecretBrowser'));
  assert.ok(!dump.includes('203.0.113.77'));
  const cols = sql(server.db, onPg
    ? "SELECT column_name AS name FROM information_schema.columns WHERE table_schema = current_schema() AND table_name IN ('events', 'batches')"
    : "SELECT name FROM pragma_table_info('events') UNION SELECT name FROM pragma_table_info('batches')").map((r) => r.name);
  assert.ok(cols.includes('install') && cols.includes('batch_id'), 'the column list was read');
  for (const bad of ['ip', 'address', 'user_agent', 'ua', 'user_id']) assert.ok(!cols.includes(bad), bad);
  assert.ok(!server.stderr.includes('127.0.0.1:'), 'a client address reached the log');
  assert.ok(!server.stderr.includes('SecretBrowser'));
});
