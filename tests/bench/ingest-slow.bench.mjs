// ingest-slow.bench.mjs: loopwise-ingest (release build) under slow and greedy clients (issue 12,
// section 4). Each figure is measured beside the same client on an idle server in the same run:
//   slowloris_healthy_p99_ms   POST p99 of one healthy client while 512 connections (8 loopback
//                              addresses x 64, the per-address cap) trickle headers one byte
//                              every 500 ms and reconnect when cut; --max-connections 256, so
//                              they outnumber the connection limit. Target: no failed request,
//                              at most max(50 ms, 5x idle).
//   read_flood_post_p99_ms     POST p99 while 3 clients read the referral counts of a code with
//                              200,000 conversions at 4 requests/s each. Target: at most 2x idle.
//   stalled_bodies_rss_mb      server RSS once 256 uploads (4 addresses x 64) announced 1 MiB,
//                              sent all but a few bytes and stalled, at the default settings.
//                              Target: at most 64 MB.
//   stats_ms_200k_codes        one GET /v1/stats (median of 5) with 200,000 referral codes.
//                              Target: at most 100 ms.
// Rate limits are off except for the stalled bodies (defaults): the healthy client sends more
// requests than a real device would. Prints name=value lines. LW_BENCH_ONLY=stats (or slowloris,
// read_flood, stalled_bodies; comma-separated) runs only those parts.
import net from 'node:net';
import http from 'node:http';
import { readFileSync } from 'node:fs';
import { startServer, freshBatch, randomInstall, binary } from '../ingest/helpers.mjs';
import { existsSync } from 'node:fs';

if (!existsSync(binary)) {
  console.error(`ingest-slow.bench.mjs: ${binary} missing; run npm run build`);
  process.exit(1);
}

const out = (name, value) => console.log(`${name}=${typeof value === 'number' ? Math.round(value * 100) / 100 : value}`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function post(server, body, localAddress = '127.0.0.1') {
  return new Promise((ok) => {
    const t0 = process.hrtime.bigint();
    const req = http.request({ host: '127.0.0.1', port: server.port, localAddress, method: 'POST', path: '/v1/outcomes', agent: false,
      headers: { 'Content-Type': 'text/plain', 'Content-Length': Buffer.byteLength(body) } }, (res) => {
      res.resume();
      res.on('end', () => ok({ status: res.statusCode, ms: Number(process.hrtime.bigint() - t0) / 1e6 }));
    });
    req.setTimeout(30000, () => req.destroy(new Error('timeout')));
    req.on('error', () => ok({ status: 0, ms: Number(process.hrtime.bigint() - t0) / 1e6 }));
    req.end(body);
  });
}

function get(server, path) {
  return new Promise((ok) => {
    const t0 = process.hrtime.bigint();
    http.get({ host: '127.0.0.1', port: server.port, path, agent: false }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => ok({ status: res.statusCode, ms: Number(process.hrtime.bigint() - t0) / 1e6, text: Buffer.concat(chunks).toString() }));
    }).on('error', () => ok({ status: 0, ms: 0, text: '' }));
  });
}

const only = process.env.LW_BENCH_ONLY ? process.env.LW_BENCH_ONLY.split(',') : null;
const want = (part) => !only || only.includes(part);

const p = (xs, q) => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor(q * s.length))]; };

// The healthy client: n sequential batches on fresh connections.
async function healthy(server, n = 200) {
  const ms = [];
  let failed = 0;
  for (let i = 0; i < n; i++) {
    const r = await post(server, JSON.stringify(freshBatch()));
    if (r.status !== 200) failed++;
    ms.push(r.ms);
  }
  return { p50: p(ms, 0.5), p99: p(ms, 0.99), failed };
}

function rss(server) {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${server.child.pid}/status`, 'utf8'));
  return Number(m[1]) / 1024;
}

// Fill the store with `batches` batches of 500 events made by make(i, j).
async function fill(server, batches, make) {
  for (let i = 0; i < batches; i++) {
    const b = freshBatch({ events: 1 });
    b.events = Array.from({ length: 500 }, (_, j) => make(i, j));
    const r = await post(server, JSON.stringify(b));
    if (r.status !== 200) throw new Error(`fill: ${r.status}`);
  }
}

// ---------------------------------------------------------------- slowloris
if (want('slowloris')) {
  const server = await startServer({ args: ['--rate-limit', 'off', '--max-connections', '256', '--log-level', 'warn'] });
  const idle = await healthy(server);
  let stop = false;
  let open = 0;
  const slow = (addr) => {
    if (stop) return;
    const sock = net.connect({ port: server.port, host: '127.0.0.1', localAddress: addr });
    let timer;
    sock.on('connect', () => {
      open++;
      sock.write('POST /v1/outcomes HTTP/1.1\r\nHost: x\r\n');
      timer = setInterval(() => sock.write('X'), 500);
    });
    sock.on('error', () => {});
    sock.on('close', (hadConnect) => {
      clearInterval(timer);
      if (timer) open--;
      setTimeout(() => slow(addr), 50);
    });
  };
  for (let a = 2; a <= 9; a++) for (let i = 0; i < 64; i++) slow(`127.0.0.${a}`);
  for (let i = 0; i < 100 && open < 256; i++) await sleep(50);
  await sleep(2000); // the attack in its steady state: cut, reconnecting, the table full
  const atStart = open;
  const loaded = await healthy(server);
  stop = true;
  const m = (await get(server, '/metrics')).text;
  await server.stop();
  out('slowloris_idle_p99_ms', idle.p99);
  out('slowloris_healthy_p99_ms', loaded.p99);
  out('slowloris_healthy_failed', loaded.failed);
  out('slowloris_open_connections', atStart);
  out('slowloris_cut', Number(/rejects_total\{reason="header_timeout"\} (\d+)/.exec(m)?.[1] ?? 0));
  out('slowloris_target_ms', Math.max(50, 5 * idle.p99));
  out('slowloris_target_met', loaded.failed === 0 && loaded.p99 <= Math.max(50, 5 * idle.p99) ? 1 : 0);
}

// ---------------------------------------------------------------- referral read flood
if (want('read_flood')) {
  const server = await startServer({ args: ['--rate-limit', 'off', '--log-level', 'warn'] });
  const owner = randomInstall();
  const code = 'FLOODCODE1';
  const share = freshBatch({ events: 1 });
  share.events = [{ kind: 'share', t: Date.now() - 1000, install: owner, decision: 'a1b2c3d4e5f60718', action: 'credit_10', code }];
  await post(server, JSON.stringify(share));
  const now = Date.now();
  await fill(server, 400, (i, j) => ({ kind: 'conversion', t: now - 60000 + j, install: randomInstall(), code }));
  const idle = await healthy(server);
  let stop = false;
  const reads = [];
  const readers = Array.from({ length: 3 }, () => (async () => {
    while (!stop) {
      const t = Date.now();
      const r = await get(server, `/v1/referrals/${code}?key=demo-site-key&install=${owner}`);
      if (r.status === 200) reads.push(r.ms);
      await sleep(Math.max(0, 250 - (Date.now() - t)));
    }
  })());
  await sleep(500);
  const loaded = await healthy(server);
  stop = true;
  await Promise.all(readers);
  await server.cleanup();
  out('read_flood_idle_post_p99_ms', idle.p99);
  out('read_flood_post_p99_ms', loaded.p99);
  out('read_flood_reads', reads.length);
  out('read_flood_read_p50_ms', p(reads, 0.5));
  out('read_flood_target_met', loaded.failed === 0 && loaded.p99 <= 2 * idle.p99 ? 1 : 0);
}

// ---------------------------------------------------------------- stalled bodies (defaults)
if (want('stalled_bodies')) {
  const server = await startServer({ args: ['--log-level', 'warn'] });
  await healthy(server, 20);
  const idleRss = rss(server);
  const part = Buffer.alloc(1048576 - 16, 0x61);
  const socks = [];
  const settled = [];
  for (let a = 2; a <= 5; a++) {
    for (let i = 0; i < 64; i++) {
      const sock = net.connect({ port: server.port, host: '127.0.0.1', localAddress: `127.0.0.${a}` });
      socks.push(sock);
      sock.on('error', () => {});
      settled.push(new Promise((ok) => {
        sock.on('close', ok);
        sock.on('connect', () => sock.write(Buffer.concat([Buffer.from('POST /v1/outcomes HTTP/1.1\r\nHost: x\r\nContent-Length: 1048576\r\n\r\n'), part]), ok));
      }));
    }
  }
  await Promise.all(settled);
  await sleep(500); // let the server read what the kernel still buffers
  const stalledRss = rss(server);
  const healthyDuring = await healthy(server, 20);
  const m = (await get(server, '/metrics')).text;
  for (const s of socks) s.destroy();
  await server.stop();
  out('stalled_bodies_idle_rss_mb', idleRss);
  out('stalled_bodies_rss_mb', stalledRss);
  out('stalled_bodies_closed', Number(/rejects_total\{reason="body_budget"\} (\d+)/.exec(m)?.[1] ?? 0));
  out('stalled_bodies_healthy_failed', healthyDuring.failed);
  out('stalled_bodies_target_met', stalledRss <= 64 ? 1 : 0);
}

// ---------------------------------------------------------------- stats with 200,000 codes
if (want('stats')) {
  const small = await startServer({ args: ['--rate-limit', 'off', '--log-level', 'warn'] });
  await post(small, JSON.stringify(freshBatch()));
  const idleMs = [];
  for (let i = 0; i < 5; i++) idleMs.push((await get(small, '/v1/stats')).ms);
  await small.cleanup();
  const server = await startServer({ args: ['--rate-limit', 'off', '--log-level', 'warn'] });
  const now = Date.now();
  await fill(server, 400, (i, j) => ({ kind: 'share', t: now - 60000 + j, install: randomInstall(), decision: 'a1b2c3d4e5f60718',
    action: 'credit_10', code: `K${String(i).padStart(4, '0')}${String(j).padStart(4, '0')}` }));
  const ms = [];
  let bytes = 0;
  for (let i = 0; i < 5; i++) {
    const r = await get(server, '/v1/stats');
    if (r.status !== 200) throw new Error(`stats: ${r.status}`);
    bytes = r.text.length;
    ms.push(r.ms);
  }
  const statsRss = rss(server);
  await server.cleanup();
  out('stats_ms_idle', p(idleMs, 0.5));
  out('stats_ms_200k_codes', p(ms, 0.5));
  out('stats_bytes_200k_codes', bytes);
  out('stats_rss_mb_200k_codes', statsRss);
  out('stats_target_met', p(ms, 0.5) <= 100 ? 1 : 0);
}
