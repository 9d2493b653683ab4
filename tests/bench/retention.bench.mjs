// retention.bench.mjs: retention and forget over a big SQLite store (issue 15, "rollups follow
// forget and retention"). The store is tests/ingest/bench_fill's (console.bench.mjs's generator:
// 90 days of sessions received one day after another from 2025-09-01); loopwise-ingest (release
// build) then serves it with a retention that cuts the first 30 days (a third of the events), so
// its writer's first purge pass deletes them, with their rollups, while a client posts fresh
// batches one after another; then one install is forgotten (POST /v1/forget), five times, each a
// different install. Prints name=value lines, suffixed with the store's size (_1m, _10m):
//   retention_s_<n>               the purge pass, start to end (the server's "retention purge"
//                                 log line: duration_ms), with retention_deleted_events_<n>
//   retention_writer_p99_ms_<n>   p99 (and _max_) of POST /v1/outcomes answered while the pass
//                                 ran (retention_writes_<n> of them): how long the writer is held
//   forget_ms_<n>                 median of the five forgets (forget_max_ms_<n> the slowest)
//   retention_fill_events, retention_fill_s, retention_db_mb
// LW_BENCH_RETENTION_EVENTS sets the size (default 1,000,000; 10,000,000 for the 10m figures).
// LW_BENCH_RETENTION_DB names a store bench_fill built already: it is copied, the copy purged.
// LW_BENCH_RETENTION_PG=URL: the PostgreSQL backend instead, filled into that (empty) database;
// every figure's name then ends in _pg_<n> (retention_db_mb: the database's size).
import { execFileSync, spawn } from 'node:child_process';
import { copyFileSync, existsSync, statSync, rmSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { binary, freshBatch, postBatch, request, sql } from '../ingest/helpers.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const fill = resolve(root, process.env.LW_NATIVE_DIR || 'build/native', 'tests/ingest/bench_fill');
for (const f of [binary, fill]) {
  if (!existsSync(f)) {
    console.error(`retention.bench.mjs: ${f} missing; run npm run build`);
    process.exit(1);
  }
}
const events = Number(process.env.LW_BENCH_RETENTION_EVENTS || 1_000_000);
const pg = process.env.LW_BENCH_RETENTION_PG || '';
const size = (pg ? 'pg_' : '') + (events % 1_000_000 === 0 ? `${events / 1_000_000}m` : String(events));
const out = (name, value) => console.log(`${name}=${typeof value === 'number' ? Math.round(value * 1000) / 1000 : value}`);
const dir = mkdtempSync(join(tmpdir(), 'lw-retention-bench-'));
const db = pg || join(dir, 'outcomes.db');
const DAY = 86400000;
const START_MS = 1756684800000; /* bench_fill.c START_MS: 2025-09-01 */

if (process.env.LW_BENCH_RETENTION_DB && !pg) {
  copyFileSync(process.env.LW_BENCH_RETENTION_DB, db);
} else {
  const filled = execFileSync(fill, [db, String(events)], { encoding: 'utf8', maxBuffer: 1 << 20 });
  for (const line of filled.trim().split('\n')) {
    const [k, v] = line.split('=');
    out(`retention_${k}`, Number(v));
  }
}
out('retention_db_mb', pg ? Number(sql(db, 'SELECT pg_database_size(current_database()) AS n')[0].n) / 1048576
  : statSync(db).size / 1048576);

const q = (xs, p) => { const s = [...xs].sort((a, b) => a - b); return s.length ? s[Math.min(s.length - 1, Math.ceil(p * s.length) - 1)] : NaN; };
const ms = (t0) => Number(process.hrtime.bigint() - t0) / 1e6;

// Batches received before day 30 expire: bench_fill received day d's batches at START + d days.
const retentionDays = (Date.now() - (START_MS + 30 * DAY)) / DAY;
const child = spawn(binary, ['--db', db, '--port', '0', '--rate-limit', 'off', '--log-level', 'info',
  '--retention-days', String(retentionDays)], { stdio: ['ignore', 'pipe', 'pipe'] });
let stderr = '';
let purged = null;
const purgeDone = new Promise((ok) => {
  child.stderr.on('data', (d) => {
    stderr += d;
    const m = /^.*"msg":"retention purge".*$/m.exec(stderr);
    if (m && !purged) { purged = JSON.parse(m[0]); ok(); }
  });
});
// The server checks every page of the file at start (quick_check) before its writer starts:
// wait for the "port" line however long it takes (no timer).
const server = { port: await new Promise((ok, fail) => {
  let text = '';
  child.stdout.on('data', (d) => { text += d; const m = /port (\d+)/.exec(text); if (m) ok(Number(m[1])); });
  child.on('exit', (code) => fail(new Error(`loopwise-ingest exited ${code}: ${stderr.slice(-2000)}`)));
}) };
const tPort = process.hrtime.bigint();
try {
  // One client posting fresh batches back to back while the pass runs (the first purge starts
  // with the writer, before the port line).
  const writes = [];
  while (!purged) {
    const t0 = process.hrtime.bigint();
    const r = await postBatch(server, freshBatch({ installs: 2, events: 20 }));
    if (r.status !== 200) throw new Error(`outcomes: ${r.status} ${r.text}`);
    writes.push(ms(t0)); /* begun before the pass's log line was read */
  }
  await purgeDone;
  const during = writes;
  const passMs = purged.duration_ms ?? ms(tPort); /* a build whose log line has no duration */
  out(`retention_s_${size}`, passMs / 1000);
  out(`retention_deleted_events_${size}`, purged.deleted_events);
  if (purged.steps !== undefined) out(`retention_steps_${size}`, purged.steps);
  out(`retention_writes_${size}`, during.length);
  out(`retention_writer_p99_ms_${size}`, q(during, 0.99));
  out(`retention_writer_max_ms_${size}`, Math.max(...during));

  const forgets = [];
  for (let i = 1; i <= 5; i++) {
    const install = (7919 * i).toString(16).padStart(32, '0'); /* bench_fill's install keys: %032llx */
    const t0 = process.hrtime.bigint();
    const r = await request(server, 'POST', '/v1/forget', { headers: { 'Content-Type': 'text/plain' },
      body: JSON.stringify({ v: 1, write_key: 'demo-site-key', install }) });
    forgets.push(ms(t0));
    if (r.status !== 200 || !(r.json.deleted > 0)) throw new Error(`forget ${install}: ${r.status} ${r.text}`);
  }
  out(`forget_ms_${size}`, q(forgets, 0.5));
  out(`forget_max_ms_${size}`, Math.max(...forgets));
} finally {
  child.kill('SIGTERM');
  await new Promise((ok) => (child.exitCode !== null ? ok() : child.on('exit', ok)));
  rmSync(dir, { recursive: true, force: true });
}
