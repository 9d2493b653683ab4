// pg.test.mjs: the PostgreSQL backend beyond the common suite (which src/scripts/test.sh also runs
// against it): several replicas on one database stay exactly-once, a replica killed under load
// loses no acknowledged batch, a PostgreSQL outage answers 503 and then recovers with nothing
// acknowledged lost, replicas starting together migrate once, and the learning tools read the
// same records from either backend. Needs LW_TEST_PG (a connection string) and, for the outage,
// LW_TEST_PG_DIR (the throwaway cluster's folder, src/scripts/pg-cluster.sh); the test script
// provides both.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { root, binary, startServer, postBatch, freshBatch, sql, storeFor, tempDir, onPg, stats, pgSchemaVersion } from './helpers.mjs';

const skip = !onPg && 'needs LW_TEST_PG (src/scripts/test.sh starts a throwaway cluster and sets it)';
const quick = ['--rate-limit', 'off', '--k-anonymity', '1'];

// A fresh store (its own schema) on the test database.
const freshStore = () => storeFor(join(tempDir(), 'pg.db'));

function count(db, query) {
  return Number(sql(db, query)[0].n);
}

// Post until a 200 comes back (503 while the store is away, connection errors from a killed
// replica): the client's retry loop.
async function postUntilStored(servers, batch) {
  for (let attempt = 0; ; attempt++) {
    const server = servers[attempt % servers.length];
    try {
      const r = await postBatch(server, batch);
      if (r.status === 200) return r.json;
      assert.equal(r.status, 503, r.text);
    } catch (e) {
      if (!['ECONNREFUSED', 'ECONNRESET', 'EPIPE'].includes(e.code)) throw e;
    }
  }
}

// Load: `workers` loops posting fresh batches to servers in turn until stop() is called; every
// acknowledged (200, stored) batch_id is kept, every answer counted.
function load(servers, workers = 8) {
  const agent = new http.Agent({ keepAlive: false });
  const acked = new Set();
  const answers = { 200: 0, 503: 0, refused: 0 };
  const waiters = [];
  let running = true;
  const notify = () => {
    for (let i = waiters.length - 1; i >= 0; i--) if (waiters[i].test()) waiters.splice(i, 1)[0].ok();
  };
  const loops = Array.from({ length: workers }, async (_, w) => {
    for (let i = w; running; i++) {
      const server = servers[i % servers.length];
      if (server.gone) continue;
      const b = freshBatch();
      try {
        const r = await postBatch(server, b, {});
        if (r.status === 200 && r.json.stored === 5) acked.add(b.batch_id), answers[200]++;
        else if (r.status === 503) answers[503]++;
        else assert.fail(`unexpected answer ${r.status}: ${r.text}`);
      } catch (e) {
        if (!['ECONNREFUSED', 'ECONNRESET', 'EPIPE'].includes(e.code)) throw e;
        answers.refused++;
      }
      notify();
    }
  });
  return {
    acked, answers,
    // Resolves once test() holds (checked after every answer).
    until(testFn) {
      return new Promise((ok) => { if (testFn()) ok(); else waiters.push({ test: testFn, ok }); });
    },
    async stop() {
      running = false;
      await Promise.all(loops);
      agent.destroy();
    },
  };
}

function cluster(cmd) {
  return new Promise((ok, fail) => {
    const child = spawn('bash', [join(root, 'src/scripts/pg-cluster.sh'), cmd, process.env.LW_TEST_PG_DIR], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d) => { err += d; });
    child.on('exit', (code) => (code === 0 ? ok() : fail(new Error(`pg-cluster.sh ${cmd}: ${err}`))));
  });
}

test('two_replicas_given_the_same_retried_batches_at_once_store_each_once', { skip }, async () => {
  const db = freshStore();
  const a = await startServer({ db, args: quick });
  const b = await startServer({ db, args: quick });
  try {
    const batches = Array.from({ length: 120 }, () => freshBatch());
    const answers = [];
    // Each batch goes to both replicas at the same moment, three times over (a client retrying
    // after lost acknowledgements), 12 batches in flight.
    for (let i = 0; i < batches.length; i += 12) {
      const group = batches.slice(i, i + 12);
      const rounds = group.flatMap((batch) => [0, 1, 2].flatMap(() => [a, b].map((s) => postUntilStored([s], batch).then((j) => answers.push([batch.batch_id, j])))));
      await Promise.all(rounds);
    }
    const stored = new Map();
    for (const [id, j] of answers) if (!j.duplicate) stored.set(id, (stored.get(id) || 0) + 1);
    for (const batch of batches) assert.equal(stored.get(batch.batch_id), 1, `${batch.batch_id} acknowledged as stored once`);
    assert.equal(count(db, 'SELECT count(*) AS n FROM batches'), batches.length);
    assert.equal(count(db, 'SELECT count(*) AS n FROM events'), batches.length * 5);
    const sa = await stats(a), sb = await stats(b);
    assert.equal(sa.outcomes, batches.length * 5);
    assert.deepEqual(sa, sb, 'both replicas answer the same stats');
  } finally {
    await a.cleanup();
    await b.cleanup();
  }
});

test('sigkill_of_one_replica_under_load_loses_no_acknowledged_batch', { skip }, async () => {
  const db = freshStore();
  const a = await startServer({ db, args: quick });
  const b = await startServer({ db, args: quick });
  const l = load([a, b]);
  try {
    await l.until(() => l.acked.size >= 150);
    a.child.kill('SIGKILL');
    await a.exited;
    a.gone = true;
    const before = l.acked.size;
    await l.until(() => l.acked.size >= before + 150); // the other replica carries on
    await l.stop();
    const ids = new Set(sql(db, 'SELECT batch_id FROM batches').map((r) => r.batch_id));
    for (const id of l.acked) assert.ok(ids.has(id), `acknowledged batch ${id} is stored`);
    const evs = count(db, 'SELECT count(*) AS n FROM events');
    assert.equal(evs, ids.size * 5, 'every stored batch has all its events');
  } finally {
    await l.stop();
    await a.stop('SIGKILL');
    await b.cleanup();
  }
});

test('a_postgresql_restart_under_load_answers_503_then_recovers_and_keeps_every_acknowledged_batch',
  { skip: skip || (!process.env.LW_TEST_PG_DIR && 'needs LW_TEST_PG_DIR (the cluster folder)') }, async () => {
    const db = freshStore();
    const a = await startServer({ db, args: quick });
    const b = await startServer({ db, args: quick });
    const l = load([a, b]);
    try {
      await l.until(() => l.acked.size >= 100);
      await cluster('stop-server'); // connections are terminated; replicas stay up
      const before503 = l.answers[503];
      await l.until(() => l.answers[503] >= before503 + 4); // both replicas answer 503 while it is away
      const health = await new Promise((ok, fail) => http.get(`${a.url}/healthz`, (r) => { r.resume(); ok(r.statusCode); }).on('error', fail));
      assert.equal(health, 503, '/healthz says the store is away');
      await cluster('start-server');
      const after = l.acked.size;
      await l.until(() => l.acked.size >= after + 100); // recovery: writes are acknowledged again
      await l.stop();
      const ids = new Set(sql(db, 'SELECT batch_id FROM batches').map((r) => r.batch_id));
      for (const id of l.acked) assert.ok(ids.has(id), `acknowledged batch ${id} is stored`);
      assert.equal(count(db, 'SELECT count(*) AS n FROM events'), ids.size * 5);
      assert.ok(a.child.exitCode === null && b.child.exitCode === null, 'the replicas stayed up');
    } finally {
      await l.stop();
      await a.cleanup();
      await b.cleanup();
    }
  });

test('replicas_starting_together_migrate_the_schema_once', { skip }, async () => {
  const db = freshStore();
  const servers = await Promise.all([0, 1, 2, 3].map(() => startServer({ db, args: quick })));
  try {
    assert.deepEqual(sql(db, 'SELECT version FROM lw_schema'), [{ version: pgSchemaVersion }]);
    for (const s of servers) assert.equal((await postBatch(s, freshBatch())).status, 200);
    assert.equal(count(db, 'SELECT count(*) AS n FROM batches'), 4);
  } finally {
    for (const s of servers) await s.cleanup();
  }
});

test('a_postgresql_store_of_a_newer_schema_or_with_foreign_tables_is_refused_untouched', { skip }, async () => {
  const newer = freshStore();
  spawnSync('psql', [newer, '-X', '-q', '-c', 'CREATE TABLE lw_schema(version integer NOT NULL); INSERT INTO lw_schema VALUES (99)']);
  let r = spawnSync(binary, ['--db', newer, '--port', '0'], { encoding: 'utf8', timeout: 20000 });
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /schema version 99 is newer than this build/);
  assert.deepEqual(sql(newer, 'SELECT version FROM lw_schema'), [{ version: 99 }]);
  const foreign = freshStore();
  spawnSync('psql', [foreign, '-X', '-q', '-c', 'CREATE TABLE someone_elses(x int)']);
  r = spawnSync(binary, ['--db', foreign, '--port', '0'], { encoding: 'utf8', timeout: 20000 });
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /tables but no Loopwise schema version/);
  assert.equal(count(foreign, "SELECT count(*) AS n FROM pg_tables WHERE schemaname = current_schema()"), 1);
});

test('the_learning_tools_read_the_same_records_from_either_backend', { skip }, async () => {
  const pgDb = freshStore();
  const pgServer = await startServer({ db: pgDb, args: quick });
  const sqliteDir = tempDir();
  const sqliteServer = await startServer({ db: join(sqliteDir, 'same.db'), sqlite: true, args: quick });
  const tools = join(binary, '../../tools');
  try {
    const batches = Array.from({ length: 40 }, () => freshBatch({ installs: 2, events: 10 }));
    for (const b of batches) {
      assert.equal((await postBatch(pgServer, b)).status, 200);
      assert.equal((await postBatch(sqliteServer, b)).status, 200);
    }
    const run = (args) => {
      const r = spawnSync(join(tools, 'loopwise-eval'), args, { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      return r.stdout.replace(/^peak_rss_mb=.*$/m, '');
    };
    const common = ['--actions', 'credit_10,none', '--policy', 'uniform', '--policy', 'always:credit_10', '--quiet'];
    const fromPg = run(['--data', pgDb, ...common]);
    const fromSqlite = run(['--data', sqliteServer.db, '--format', 'sqlite', ...common]);
    const decisions = count(pgDb, "SELECT count(*) AS n FROM events WHERE kind = 'decision'");
    assert.ok(decisions >= 80, `${decisions} decisions stored`);
    assert.match(fromPg, new RegExp(`^records=${decisions} `), fromPg);
    assert.equal(fromPg, fromSqlite);
    // The audit reads the store too (decisions, then referrers).
    const audit = ['--actions', 'credit_10,none', '--audit', '--segment', 'plan^pro', '--quiet'];
    assert.equal(run(['--data', pgDb, ...audit]), run(['--data', sqliteServer.db, ...audit]));
    // The trainer: the same training from either store (the model files differ only in the data
    // source they name).
    const train = (data, out) => {
      const r = spawnSync(join(tools, 'loopwise-train'), ['--data', data, '--actions', 'credit_10,none', '--seed', '1', '--model-id', '1', '--quiet', '--out', out], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      return r.stdout.replace(/^peak_rss_mb=.*$/m, '').replace(/^wrote .*$/m, '');
    };
    const models = tempDir();
    const trained = train(pgDb, join(models, 'pg.lwm'));
    assert.match(trained, new RegExp(`records=${decisions} `));
    assert.equal(trained, train(sqliteServer.db, join(models, 'sqlite.lwm')));
    assert.ok(readFileSync(join(models, 'pg.lwm')).length > 0);
    assert.deepEqual(await stats(pgServer), await stats(sqliteServer), 'the same stats from either backend');
  } finally {
    await pgServer.cleanup();
    await sqliteServer.cleanup();
  }
});

test('an_unreachable_postgresql_store_is_refused_at_start_naming_the_connection', async () => {
  const dir = tempDir();
  const r = spawnSync(binary, ['--db', `postgresql://lwpg@/lw?host=${join(dir, 'no-server-here')}`, '--port', '0'],
    { encoding: 'utf8', timeout: 20000 });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /could not start.*connecting to PostgreSQL/);
});

test('the_servers_log_keeps_the_connection_strings_password_out', { skip }, async () => {
  // The test cluster trusts local connections, so any password is accepted and must not be logged.
  const db = freshStore().replace('postgresql://lwpg@', 'postgresql://lwpg:hunter2secret@');
  const server = await startServer({ db, args: quick });
  try {
    assert.equal((await postBatch(server, freshBatch())).status, 200);
    assert.match(server.stderr, /"db":"postgresql:\/\/lwpg:\*\*\*@/);
    assert.ok(!server.stderr.includes('hunter2secret'));
  } finally {
    await server.cleanup();
  }
});
