// console.bench.mjs: the console's report (GET /console/api/report, what every page load of
// /console fetches) and GET /v1/stats over a store of 10 million events (issue 15, "Fast on big
// stores"). The store is built through the store interface, not HTTP (tests/ingest/bench_fill.c:
// 90 days of sessions, about 3% of prompts shared), then loopwise-ingest (release build) serves
// it on loopback. Prints name=value lines:
//   console_p99_ms_10m    p99 of 40 report loads after one warm-up (target: at most 1,000 ms;
//                         LW_BENCH_CONSOLE_LOADS sets the number, console_loads says it)
//   console_p50_ms_10m, console_first_ms_10m (the warm-up, cold page cache), stats_ms_10m
//   fairness_p99_ms_10m, fairness_p50_ms_10m, fairness_first_ms_10m: the fairness audit page
//                         (GET /console/api/fairness) the same way (target: at most 1,000 ms), with
//                         models/referral.json as the console config (its fairness attribute plan,
//                         whose values bench_fill puts in the decisions' x)
//   console_fill_events, console_fill_s, console_db_mb
// LW_BENCH_CONSOLE_EVENTS overrides the 10,000,000 (the figure's name keeps saying 10m only
// then: the value printed as console_fill_events says what was measured). LW_BENCH_CONSOLE_DB
// names a store bench_fill built already (it is read, then left in place) instead of a new one.
// LW_BENCH_CONSOLE_PG=URL: the PostgreSQL backend instead, in an empty database (or, with
// LW_BENCH_CONSOLE_DB set too, one bench_fill filled before, read as it is); every figure's name ends in
// _pg_1m, _pg_10m or _pg_<events> (console_p99_ms_pg_1m=...), console_db_mb is the database's size.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, statSync, rmSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import http from 'node:http';
import { binary, sql } from '../ingest/helpers.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const fill = resolve(root, process.env.LW_NATIVE_DIR || 'build/native', 'tests/ingest/bench_fill');
for (const f of [binary, fill]) {
  if (!existsSync(f)) {
    console.error(`console.bench.mjs: ${f} missing; run npm run build`);
    process.exit(1);
  }
}
const out = (name, value) => console.log(`${name}=${typeof value === 'number' ? Math.round(value * 100) / 100 : value}`);
const events = Number(process.env.LW_BENCH_CONSOLE_EVENTS || 10_000_000);
const pg = process.env.LW_BENCH_CONSOLE_PG || '';
const reuse = process.env.LW_BENCH_CONSOLE_DB;
const dir = reuse || pg ? null : mkdtempSync(join(tmpdir(), 'lw-console-bench-'));
const db = pg || reuse || join(dir, 'outcomes.db');
// The figures' names: SQLite's as they always were; PostgreSQL's say the backend and the size.
const size = events === 10_000_000 ? '10m' : events === 1_000_000 ? '1m' : String(events);
const tag = pg ? `_pg_${size}` : '_10m';
if (pg && !reuse && sql(pg, 'SELECT tablename FROM pg_tables WHERE schemaname = current_schema()').length) {
  console.error('console.bench.mjs: LW_BENCH_CONSOLE_PG names a database with tables: give an empty one (or set LW_BENCH_CONSOLE_DB=1 to read it as it is)');
  process.exit(1);
}

if (!reuse) {
  const filled = execFileSync(fill, [db, String(events)], { encoding: 'utf8', maxBuffer: 1 << 20 });
  for (const line of filled.trim().split('\n')) {
    const [k, v] = line.split('=');
    out(`console_${k}`, Number(v));
  }
}
out('console_db_mb', pg ? Number(sql(pg, 'SELECT pg_database_size(current_database()) AS n')[0].n) / 1048576
  : statSync(db).size / 1048576);

function get(server, path) {
  return new Promise((ok, fail) => {
    const t0 = process.hrtime.bigint();
    http.get({ host: '127.0.0.1', port: server.port, path, agent: false }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => ok({ status: res.statusCode, ms: Number(process.hrtime.bigint() - t0) / 1e6, text: Buffer.concat(chunks).toString() }));
    }).on('error', fail);
  });
}
const q = (xs, p) => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.ceil(p * s.length) - 1)]; };

// The server checks every page of the file at start (quick_check): on a store this size that
// takes a while, so wait for its "port" line however long it takes (no timer). Retention off:
// bench_fill's batches were received in 2025, so the default 395 days would purge most of the
// store while the report is measured (retention's own figures: retention.bench.mjs).
const child = spawn(binary, ['--db', db, '--port', '0', '--rate-limit', 'off', '--log-level', 'warn', '--retention-days', '0',
  '--console-config', join(root, 'models/referral.json')], { stdio: ['ignore', 'pipe', 'inherit'] });
const t0 = process.hrtime.bigint();
const server = { port: await new Promise((ok, fail) => {
  let text = '';
  child.stdout.on('data', (d) => { text += d; const m = /port (\d+)/.exec(text); if (m) ok(Number(m[1])); });
  child.on('exit', (code) => fail(new Error(`loopwise-ingest exited ${code}`)));
}) };
out(`console_start_ms${tag}`, Number(process.hrtime.bigint() - t0) / 1e6);
try {
  const first = await get(server, '/console/api/report');
  if (first.status !== 200) throw new Error(`report: ${first.status} ${first.text.slice(0, 200)}`);
  const report = JSON.parse(first.text);
  const decisions = report.tables.variants.reduce((n, r) => n + r.decisions, 0);
  const ms = [];
  const loads = Number(process.env.LW_BENCH_CONSOLE_LOADS || 40);
  out('console_loads', loads);
  for (let i = 0; i < loads; i++) {
    const r = await get(server, '/console/api/report');
    if (r.status !== 200) throw new Error(`report: ${r.status}`);
    ms.push(r.ms);
  }
  const firstFair = await get(server, '/console/api/fairness');
  if (firstFair.status !== 200) throw new Error(`fairness: ${firstFair.status} ${firstFair.text.slice(0, 200)}`);
  const audit = JSON.parse(firstFair.text);
  const fair = [];
  for (let i = 0; i < loads; i++) {
    const r = await get(server, '/console/api/fairness');
    if (r.status !== 200) throw new Error(`fairness: ${r.status}`);
    fair.push(r.ms);
  }
  const stats = [];
  let outcomes = 0;
  for (let i = 0; i < 5; i++) {
    const r = await get(server, '/v1/stats');
    stats.push(r.ms);
    outcomes = JSON.parse(r.text).outcomes;
  }
  out('console_events', outcomes);
  out(`console_decisions${tag}`, decisions);
  out(`console_first_ms${tag}`, first.ms);
  out(`console_p50_ms${tag}`, q(ms, 0.5));
  out(`console_p99_ms${tag}`, q(ms, 0.99));
  out('console_target_met', q(ms, 0.99) <= 1000 ? 1 : 0);
  out(`stats_ms${tag}`, q(stats, 0.5));
  out(`console_channels${tag}`, report.tables.channels.length);
  out(`fairness_decisions${tag}`, audit.rows.reduce((n, r) => n + r.decisions, 0));
  out(`fairness_first_ms${tag}`, firstFair.ms);
  out(`fairness_p50_ms${tag}`, q(fair, 0.5));
  out(`fairness_p99_ms${tag}`, q(fair, 0.99));
  out('fairness_target_met', q(fair, 0.99) <= 1000 ? 1 : 0);
} finally {
  child.kill('SIGTERM');
  await new Promise((ok) => (child.exitCode !== null ? ok() : child.on('exit', ok)));
  if (dir) rmSync(dir, { recursive: true, force: true });
}
