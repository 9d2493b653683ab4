// durability.test.mjs: acknowledged means on disk, exactly once, across retries, SIGKILL,
// SIGTERM and a schema migration.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import net from 'node:net';
import http from 'node:http';
import { join } from 'node:path';
import { root, binary, startServer, postBatch, stats, freshBatch, settled, sql, tempDir, checkClean, sqliteOnly, storeSchemaVersion } from './helpers.mjs';

// Post every batch in `batches` with `concurrency` keep-alive connections; resolves with the
// list of batch ids whose POST answered 200 (stored or duplicate).
async function load(server, batches, concurrency, { stopWhen } = {}) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const acked = [];
  const errors = [];
  let next = 0;
  async function worker() {
    while (next < batches.length && !(stopWhen && stopWhen())) {
      const b = batches[next++];
      const body = JSON.stringify(b);
      try {
        const r = await new Promise((ok, fail) => {
          const req = http.request({ host: '127.0.0.1', port: server.port, method: 'POST', path: '/v1/outcomes', agent,
            headers: { 'Content-Type': 'text/plain', 'Content-Length': Buffer.byteLength(body) } }, (res) => {
            let text = '';
            res.on('data', (c) => { text += c; });
            res.on('end', () => ok({ status: res.statusCode, text }));
          });
          req.on('error', fail);
          req.end(body);
        });
        if (r.status === 200) acked.push({ id: b.batch_id, reply: JSON.parse(r.text) });
        else errors.push(r);
      } catch (e) {
        errors.push(e);
      }
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker));
  agent.destroy();
  return { acked, errors };
}

test('retry_storm_stores_each_batch_exactly_once', async () => {
  const server = await startServer({ args: ['--rate-limit', 'off'] });
  try {
    const unique = Array.from({ length: 100 }, () => freshBatch());
    // Every batch five times, shuffled, over 32 connections: copies race in one group commit.
    const storm = unique.flatMap((b) => [b, b, b, b, b]).sort(() => Math.random() - 0.5);
    const { acked, errors } = await load(server, storm, 32);
    assert.equal(errors.length, 0, JSON.stringify(errors.slice(0, 3)));
    assert.equal(acked.length, 500);
    const stored = acked.filter((a) => !a.reply.duplicate);
    assert.equal(stored.length, 100, 'each batch answered "stored" exactly once');
    assert.ok(stored.every((a) => a.reply.stored === 5));
    assert.equal((await stats(server)).outcomes, 500);
    assert.equal(sql(server.db, 'SELECT count(*) AS n FROM batches')[0].n, 100);
  } finally {
    await server.cleanup();
  }
});

test('batch_whose_answer_was_lost_is_acknowledged_as_duplicate_on_retry', async () => {
  const server = await startServer({ args: ['--rate-limit', 'off'] });
  try {
    const batch = freshBatch();
    const body = JSON.stringify(batch);
    // Send the whole request and hang up at once, before the answer can arrive.
    const sock = net.connect(server.port, '127.0.0.1');
    await new Promise((r) => sock.once('connect', r));
    sock.end(`POST /v1/outcomes HTTP/1.1\r\nHost: x\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
    sock.destroy();
    let n = 0;
    for (let i = 0; i < 50 && n === 0; i++) {
      await new Promise((r) => setTimeout(r, 50));
      n = sql(server.db, `SELECT count(*) AS n FROM batches WHERE batch_id = '${batch.batch_id}'`)[0].n;
    }
    assert.equal(n, 1, 'the first attempt was committed');
    const retry = await postBatch(server, batch);
    assert.equal(retry.status, 200);
    assert.deepEqual(retry.json, { stored: 0, duplicate: true });
    assert.equal(sql(server.db, 'SELECT count(*) AS n FROM events')[0].n, 5);
  } finally {
    await server.cleanup();
  }
});

test('sigkill_during_load_loses_no_acknowledged_batch_and_stores_none_twice', async () => {
  const dir = tempDir();
  const server = await startServer({ dir, args: ['--rate-limit', 'off'] });
  const batches = Array.from({ length: 20000 }, () => freshBatch());
  let killed = false;
  const running = load(server, batches, 48, { stopWhen: () => killed });
  await new Promise((r) => setTimeout(r, 1500));
  server.child.kill('SIGKILL');
  killed = true;
  const { signal } = await server.exited;
  assert.equal(signal, 'SIGKILL');
  const { acked } = await running;
  assert.ok(acked.length > 50, `only ${acked.length} batches acknowledged before the kill`);

  // What is on disk after the crash (sqlite3 replays the WAL on open; on PostgreSQL once the
  // killed server's backends have finished what it had sent: settled()).
  await settled(server.db);
  const rows = sql(server.db, 'SELECT batch_id, n_events, (SELECT count(*) FROM events e WHERE e.batch = b.id) AS n FROM batches b');
  const onDisk = new Map(rows.map((r) => [r.batch_id, r]));
  assert.equal(onDisk.size, rows.length, 'a batch_id is stored twice');
  for (const a of acked) {
    const r = onDisk.get(a.id);
    assert.ok(r, `acknowledged batch ${a.id} is not on disk`);
    assert.equal(r.n, 5, `batch ${a.id} has ${r.n} events`);
  }
  for (const r of rows) assert.equal(r.n, r.n_events, 'a batch was stored partially');

  // Restart and retry everything that was attempted: acknowledged or committed-but-unanswered
  // batches must come back as duplicates, nothing stored twice.
  const again = await startServer({ dir, args: ['--rate-limit', 'off', '--k-anonymity', '1'] });
  try {
    const attempted = batches.filter((b) => onDisk.has(b.batch_id));
    const retry = await load(again, attempted.slice(0, 500), 16);
    assert.ok(retry.acked.every((a) => a.reply.duplicate === true), 'a stored batch was stored again');
    assert.equal((await stats(again)).outcomes, 5 * onDisk.size);
  } finally {
    await again.cleanup();
  }
});

test('sigterm_drains_in_flight_requests_then_closes_the_database', async () => {
  const server = await startServer({ args: ['--rate-limit', 'off'] });
  const batch = freshBatch();
  const body = Buffer.from(JSON.stringify(batch));
  // A request in flight: headers and half the body sent before SIGTERM, the rest after.
  const sock = net.connect(server.port, '127.0.0.1');
  await new Promise((r) => sock.once('connect', r));
  let answer = '';
  sock.on('data', (d) => { answer += d; });
  sock.write(`POST /v1/outcomes HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`);
  sock.write(body.subarray(0, 100));
  await new Promise((r) => setTimeout(r, 200));
  server.child.kill('SIGTERM');
  await new Promise((r) => setTimeout(r, 300));
  // New connections are refused while the old one drains.
  await assert.rejects(new Promise((ok, fail) => {
    const c = net.connect(server.port, '127.0.0.1');
    c.on('connect', () => { c.destroy(); ok(); });
    c.on('error', fail);
  }));
  sock.end(body.subarray(100));
  await new Promise((r) => sock.on('close', r));
  assert.match(answer, /^HTTP\/1\.1 200/);
  assert.match(answer, /"stored":5/);
  const { code, signal } = await server.exited;
  checkClean(server.stderr, code, signal);
  assert.equal(sql(server.db, `SELECT count(*) AS n FROM batches WHERE batch_id = '${batch.batch_id}'`)[0].n, 1);
  // A clean close checkpoints the WAL into the database and removes it.
  assert.ok(!existsSync(server.db + '-wal') || statSync(server.db + '-wal').size === 0, 'WAL left behind');
});

test('database_from_schema_v1_is_migrated_and_kept', { skip: sqliteOnly }, async () => {
  const dir = tempDir();
  const db = join(dir, 'old.db');
  const made = spawnSync('sqlite3', [db], { input: readFileSync(join(root, 'tests/ingest/fixtures/schema-v1.sql')) });
  assert.equal(made.status, 0, String(made.stderr));
  const server = await startServer({ dir, db, args: ['--k-anonymity', '1', '--retention-days', '0'] });
  try {
    assert.equal(sql(db, 'PRAGMA user_version')[0].user_version, storeSchemaVersion);
    const s = await stats(server);
    assert.equal(s.outcomes, 5);
    assert.equal(s.batches, 2);
    assert.equal(s.variants.find((v) => v.action === 'credit_10').impressions, 1);
    assert.equal(s.codes.find((c) => c.code === 'K7QX2M9PLA').copies, 1);
    // A retry of a batch stored before the migration is still recognised.
    const retry = freshBatch({ id: 'v1-batch-a' });
    assert.deepEqual((await postBatch(server, retry)).json, { stored: 0, duplicate: true });
    assert.deepEqual((await postBatch(server, freshBatch())).json, { stored: 5, refused: 0 });
    assert.equal((await stats(server)).outcomes, 10);
  } finally {
    await server.cleanup();
  }
});

test('database_from_schema_v2_is_migrated_and_kept', { skip: sqliteOnly }, async () => {
  const dir = tempDir();
  const db = join(dir, 'v2.db');
  const made = spawnSync('sqlite3', [db], { input: readFileSync(join(root, 'tests/ingest/fixtures/schema-v2.sql')) });
  assert.equal(made.status, 0, String(made.stderr));
  const server = await startServer({ dir, db, args: ['--k-anonymity', '1', '--retention-days', '0'] });
  try {
    assert.equal(sql(db, 'PRAGMA user_version')[0].user_version, storeSchemaVersion);
    // Every row kept, events renumbered from their batch, in their old order.
    assert.deepEqual(sql(db, 'SELECT id, batch, kind FROM events ORDER BY id').map((r) => [r.id, r.batch, r.kind]), [
      [1024, 1, 'decision'], [1025, 1, 'impression'], [1026, 1, 'copy'],
      [2048, 2, 'decision'], [2049, 2, 'dismiss'],
      [3072, 3, 'decision'], [3073, 3, 'share']]);
    // x as stored since schema 5: (u32 hash, i32 value × 256) little-endian pairs: [[1,0.5]].
    assert.equal(sql(db, "SELECT hex(x) AS x FROM events WHERE id = 1024")[0].x, '0100000080000000');
    const indexes = sql(db, "SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL").map((r) => r.name);
    assert.deepEqual(indexes.sort(), ['approvals_install', 'console_actions_ref', 'deliveries_due', 'events_code', 'events_decisions', 'events_shares',
      'events_site_install', 'events_token', 'referees_referee', 'referees_token', 'rollup_dec_converted', 'rollup_keys_installs']);
    const s = await stats(server);
    assert.equal(s.outcomes, 5);
    assert.equal(s.batches, 2);
    assert.equal(s.segments.find((x) => x.segment === 'seg').shares, 1);
    assert.deepEqual((await postBatch(server, freshBatch({ id: 'v2-batch-c' }))).json, { stored: 0, duplicate: true });
    const fresh = freshBatch();
    assert.deepEqual((await postBatch(server, fresh)).json, { stored: 5, refused: 0 });
    const id = sql(db, `SELECT id FROM batches WHERE batch_id = '${fresh.batch_id}'`)[0].id;
    assert.equal(id, 4);
    assert.deepEqual(sql(db, `SELECT id FROM events WHERE batch = ${id} ORDER BY id`).map((r) => r.id), [4096, 4097, 4098, 4099, 4100]);
  } finally {
    await server.cleanup();
  }
});

test('database_from_a_newer_schema_is_refused_untouched', async () => {
  const dir = tempDir();
  const db = join(dir, 'future.db');
  spawnSync('sqlite3', [db, 'PRAGMA user_version = 99; CREATE TABLE future(x);']);
  const r = spawnSync(binary, ['--db', db, '--port', '0'], { encoding: 'utf8', timeout: 10000 });
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /newer than this build/);
  assert.equal(sql(db, 'PRAGMA user_version')[0].user_version, 99);
});
