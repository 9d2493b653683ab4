// helpers.mjs: start a real loopwise-ingest on loopback for a test, and talk to it.
// The binary is the one the build produced: $LW_NATIVE_DIR (default build/native) under the repo.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';

export const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const binary = resolve(root, process.env.LW_NATIVE_DIR || 'build/native', 'src/ingest/loopwise-ingest');
/* The SQLite store's schema version, as include/loopwise/store.h defines it. */
export const storeSchemaVersion = Number(
  /#define LW_STORE_SCHEMA_VERSION (\d+)/.exec(readFileSync(join(root, 'include/loopwise/store.h'), 'utf8'))[1]);
/* The PostgreSQL store's, as the same header defines it. */
export const pgSchemaVersion = Number(
  /#define LW_STORE_PG_SCHEMA_VERSION (\d+)/.exec(readFileSync(join(root, 'include/loopwise/store.h'), 'utf8'))[1]);
export const validBatch = JSON.parse(readFileSync(join(root, 'tests/cases/ingest/valid-batch.json'), 'utf8'));

export function tempDir() {
  return mkdtempSync(join(tmpdir(), 'lw-ingest-'));
}

// The backend the suite runs against: SQLite files (the default), or, with LW_TEST_PG set to a
// PostgreSQL connection string (src/scripts/test.sh sets it to its throwaway cluster), that
// database: each store path gets a schema of its own there (the same path, the same schema, so a
// restart finds its data), and the server gets a connection string selecting it.
export const pgBase = process.env.LW_TEST_PG || '';
export const onPg = pgBase !== '';
// For tests of SQLite files themselves (their migrations, damage, WAL): skipped on PostgreSQL.
export const sqliteOnly = onPg ? 'a SQLite file test (the suite runs on PostgreSQL)' : false;

function psql(url, args, input) {
  const r = spawnSync('psql', [url, '-X', '-q', '-v', 'ON_ERROR_STOP=1', ...args], { encoding: 'utf8', input });
  if (r.status !== 0) throw new Error(`psql: ${r.stderr}`);
  return r.stdout;
}

// The store for a path: the path itself on SQLite, a connection string on PostgreSQL.
export function storeFor(path) {
  if (!onPg) return path;
  const schema = 'lwt_' + createHash('sha256').update(path).digest('hex').slice(0, 20);
  psql(pgBase, ['-c', `CREATE SCHEMA IF NOT EXISTS ${schema}`]);
  return `${pgBase}${pgBase.includes('?') ? '&' : '?'}options=-csearch_path%3D${schema}`;
}

export function isPgUrl(s) {
  return /^postgres(ql)?:\/\//.test(s);
}

// Start the server with --port 0 and resolve once it prints its port. Options: dir (temp dir
// holding the database; made when absent), args (extra flags), env (extra variables), db (the
// store: a file, or a postgres:// string used as it is), sqlite (a SQLite file whatever the suite's
// backend).
export async function startServer({ dir = tempDir(), args = [], env = {}, db, sqlite = false } = {}) {
  const file = db || join(dir, 'outcomes.db');
  const dbPath = isPgUrl(file) || sqlite ? file : storeFor(file);
  const child = spawn(binary, ['--db', dbPath, '--port', '0', ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d) => { stderr += d; });
  const port = await new Promise((ok, fail) => {
    let out = '';
    const timer = setTimeout(() => fail(new Error(`server did not start: ${stderr}`)), 10000);
    child.stdout.on('data', (d) => {
      out += d;
      const m = /port (\d+)/.exec(out);
      if (m) { clearTimeout(timer); ok(Number(m[1])); }
    });
    child.on('exit', (code) => { clearTimeout(timer); fail(new Error(`server exited ${code}: ${stderr}`)); });
  });
  const exited = new Promise((ok) => child.on('exit', (code, signal) => ok({ code, signal })));
  const server = {
    child, port, dir, db: dbPath, exited,
    url: `http://127.0.0.1:${port}`,
    get stderr() { return stderr; },
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
    // Stop with SIGTERM and insist on a clean exit: status 0 and no sanitizer report.
    async cleanup() {
      const { code, signal } = await server.stop();
      rmSync(dir, { recursive: true, force: true });
      checkClean(stderr, code, signal);
    },
  };
  return server;
}

export function checkClean(stderr, code, signal) {
  if (/AddressSanitizer|LeakSanitizer|runtime error:/.test(stderr)) throw new Error(`sanitizer report:\n${stderr}`);
  if (code !== 0) throw new Error(`server exited with ${code ?? signal}:\n${stderr.slice(-2000)}`);
}

// One HTTP request with full control over headers and body (Buffer or string). Resolves with
// { status, headers, text, json }. A fresh connection per call unless agent is given.
export function request(server, method, path, { headers = {}, body, agent = false } = {}) {
  return new Promise((ok, fail) => {
    const req = http.request({ host: '127.0.0.1', port: server.port, method, path, headers, agent }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json;
        try { json = JSON.parse(text); } catch { json = undefined; }
        ok({ status: res.statusCode, headers: res.headers, text, json });
      });
    });
    req.on('error', fail);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

export function postBatch(server, batch, headers = {}) {
  const body = typeof batch === 'string' || Buffer.isBuffer(batch) ? batch : JSON.stringify(batch);
  return request(server, 'POST', '/v1/outcomes', { headers: { 'Content-Type': 'text/plain', ...headers }, body });
}

export async function stats(server, { site, headers = {} } = {}) {
  const r = await request(server, 'GET', site ? `/v1/stats?site=${site}` : '/v1/stats', { headers });
  if (r.status !== 200) throw new Error(`stats answered ${r.status}: ${r.text}`);
  return r.json;
}

// A copy of the valid batch with a fresh batch_id and times near now, so no clock rule trips.
export function freshBatch({ installs = 1, events = 5, id } = {}) {
  const now = Date.now();
  const b = structuredClone(validBatch);
  b.batch_id = id || 'b-' + randomBytes(8).toString('hex');
  b.sent_at = now;
  const base = b.events;
  const keys = Array.from({ length: installs }, randomInstall);
  // A code belongs to the install that first shared it: each fresh install gets its own.
  const codes = keys.map(randomCode);
  b.events = [];
  for (let i = 0; i < events; i++) {
    const e = structuredClone(base[i % base.length]);
    e.t = now - 1000 + i;
    e.install = keys[i % installs];
    if (e.code) e.code = codes[i % installs];
    b.events.push(e);
  }
  return b;
}

export function randomCode() {
  return 'R' + randomBytes(5).toString('hex').toUpperCase();
}

export function randomInstall() {
  return randomBytes(16).toString('hex');
}

// Read the store with the sqlite3 command-line tool (Debian's sqlite3 package), or psql for a
// PostgreSQL store (rows as JSON objects either way).
// Everything the store holds, as text: sqlite3's .dump, or every table's rows as JSON.
export function dumpStore(dbPath) {
  if (!isPgUrl(dbPath)) return spawnSync('sqlite3', [dbPath, '.dump'], { encoding: 'utf8' }).stdout;
  const tables = sql(dbPath, 'SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY tablename');
  return tables.map(({ tablename }) => tablename + ' ' + JSON.stringify(sql(dbPath, `SELECT * FROM ${tablename}`))).join('\n');
}

// Run a statement that returns no rows (an UPDATE, a DROP) on either backend.
export function exec(dbPath, statement) {
  if (isPgUrl(dbPath)) return void psql(dbPath, ['-c', statement]);
  const r = spawnSync('sqlite3', [dbPath, statement], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`sqlite3: ${r.stderr}`);
}

// After a server was killed: resolves once nothing it started can still change the store. On
// SQLite that is at once (its writes die with it). On PostgreSQL a backend may still be finishing
// a COMMIT the server sent before it died, so this waits (up to 30 s) until none of the server's
// connections (application_name "loopwise", store_pg.c) is left.
export async function settled(dbPath) {
  if (!isPgUrl(dbPath)) return;
  const left = () => sql(dbPath, "SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = 'loopwise' AND datname = current_database()")[0].n;
  for (const end = Date.now() + 30000; left() > 0;) {
    if (Date.now() > end) throw new Error('the killed server\'s PostgreSQL connections are still open after 30 s');
    await new Promise((r) => setTimeout(r, 100));
  }
}

export function sql(dbPath, query) {
  if (isPgUrl(dbPath)) {
    const out = psql(dbPath, ['-At', '-c', `SELECT coalesce(json_agg(q), '[]') FROM (${query}) q`]);
    return JSON.parse(out.trim() || '[]');
  }
  const r = spawnSync('sqlite3', ['-json', dbPath, query], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`sqlite3: ${r.stderr}`);
  return r.stdout.trim() ? JSON.parse(r.stdout) : [];
}
