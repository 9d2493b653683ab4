// http.test.mjs: hostile HTTP: oversized bodies, ambiguous framing, slow clients, garbage.
// After each, the server keeps serving and nothing stored before is touched.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, postBatch, request, stats, freshBatch } from './helpers.mjs';

let server;
let baseline;
before(async () => {
  server = await startServer({ args: ['--max-body', '65536', '--timeout-s', '1', '--request-timeout-s', '2', '--rate-limit', 'off'] });
  assert.equal((await postBatch(server, freshBatch())).status, 200);
  baseline = (await stats(server)).outcomes;
});
after(async () => {
  assert.equal((await stats(server)).outcomes, baseline + 5 * extraStored, 'hostile requests changed the store');
  assert.equal((await request(server, 'GET', '/healthz')).status, 200);
  await server.cleanup();
});
let extraStored = 0;

// Write raw bytes on a fresh connection; resolve with everything the server sent before it
// closed (or before `waitMs` passed), and whether it closed.
function raw(chunks, { waitMs = 3000, gapMs = 0 } = {}) {
  return new Promise((ok, fail) => {
    const sock = net.connect(server.port, '127.0.0.1');
    let data = '';
    let closed = false;
    let written = 0;
    const t0 = Date.now();
    sock.on('data', (d) => { data += d; });
    sock.on('error', () => {});
    sock.on('close', () => { closed = true; clearTimeout(timer); ok({ data, closed, written, ms: Date.now() - t0 }); });
    const timer = setTimeout(() => { sock.destroy(); ok({ data, closed, written, ms: Date.now() - t0 }); }, waitMs);
    sock.on('connect', async () => {
      for (const c of chunks) {
        if (sock.destroyed || closed) return;
        sock.write(c);
        written++;
        if (gapMs) await new Promise((r) => setTimeout(r, gapMs));
      }
    });
  });
}

test('content_length_over_the_limit_gets_413_before_the_body_is_sent', async () => {
  const r = await raw([`POST /v1/outcomes HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\n`]);
  assert.match(r.data, /^HTTP\/1\.1 413/);
  assert.ok(r.ms < 2500, `answered after ${r.ms} ms`);
});

test('chunked_body_growing_past_the_limit_gets_413', async () => {
  const chunk = 'a'.repeat(16384);
  const parts = [`POST /v1/outcomes HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n`];
  for (let i = 0; i < 6; i++) parts.push(`${chunk.length.toString(16)}\r\n${chunk}\r\n`);
  parts.push('0\r\n\r\n');
  const r = await raw(parts);
  assert.match(r.data, /^HTTP\/1\.1 413/);
});

test('endless_chunked_body_is_cut_off_without_reading_it_all', async () => {
  const chunk = 'a'.repeat(16384);
  const parts = [`POST /v1/outcomes HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n`];
  for (let i = 0; i < 200; i++) parts.push(`${chunk.length.toString(16)}\r\n${chunk}\r\n`);
  const r = await raw(parts, { waitMs: 5000, gapMs: 2 });
  assert.ok(r.closed);
  assert.ok(r.written < parts.length / 2, `the server read ${r.written} of ${parts.length} chunks with a 64 KiB limit`);
  assert.doesNotMatch(r.data, /^HTTP\/1\.1 2/);
});

test('chunked_body_within_the_limit_is_accepted', async () => {
  const body = JSON.stringify(freshBatch());
  const r = await raw([`POST /v1/outcomes HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n`,
    `${Buffer.byteLength(body).toString(16)}\r\n${body}\r\n0\r\n\r\n`]);
  assert.match(r.data, /^HTTP\/1\.1 200/);
  extraStored++;
});

test('content_length_with_transfer_encoding_is_refused_with_400', async () => {
  const body = JSON.stringify(freshBatch());
  const r = await raw([`POST /v1/outcomes HTTP/1.1\r\nHost: x\r\nContent-Length: ${Buffer.byteLength(body)}\r\nTransfer-Encoding: chunked\r\n\r\n`,
    `${Buffer.byteLength(body).toString(16)}\r\n${body}\r\n0\r\n\r\n`]);
  assert.match(r.data, /^HTTP\/1\.1 400/);
  assert.match(r.data, /Content-Length and Transfer-Encoding/);
});

test('repeated_or_unusual_framing_headers_are_refused_with_400', async () => {
  const cases = {
    'Content-Length: 2\r\nContent-Length: 2': 'repeated',
    'Content-Length: 2\r\nContent-Length: 5': 'repeated',
    'Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked': 'repeated',
    'Transfer-Encoding: gzip, chunked': 'unsupported Transfer-Encoding',
    'Transfer-Encoding: identity': 'unsupported Transfer-Encoding',
  };
  for (const [headers, why] of Object.entries(cases)) {
    const r = await raw([`POST /v1/outcomes HTTP/1.1\r\nHost: x\r\n${headers}\r\n\r\n{}`], { waitMs: 2000 });
    assert.match(r.data, /^HTTP\/1\.1 400/, headers);
    assert.ok(r.data.includes(why), `${headers}: ${r.data}`);
  }
});

test('slow_client_trickling_its_body_is_cut_off_at_the_request_timeout', async () => {
  const body = JSON.stringify(freshBatch());
  const head = `POST /v1/outcomes HTTP/1.1\r\nHost: x\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n`;
  // One byte every 150 ms: never idle for the 1 s idle timeout, but past the 2 s request limit.
  const r = await raw([head, ...body.slice(0, 60).split('')], { waitMs: 9000, gapMs: 150 });
  assert.ok(r.closed, 'server kept a trickling connection open');
  assert.ok(r.ms < 4500, `closed after ${r.ms} ms`);
  assert.doesNotMatch(r.data, /^HTTP\/1\.1 2/);
});

test('idle_connection_is_closed_after_the_timeout', async () => {
  const r = await raw([], { waitMs: 5000 });
  assert.ok(r.closed && r.ms < 4000, `idle connection lived ${r.ms} ms`);
});

test('garbage_request_line_is_dropped_and_missing_host_gets_400', async () => {
  const g = await raw(['\x00\x01\x02 garbage\r\n\r\n'], { waitMs: 4000 });
  assert.ok(g.closed, 'garbage kept the connection open');
  assert.doesNotMatch(g.data, /^HTTP\/1\.1 2/);
  const sp = await raw(['GET /hea lthz HTTP/1.1\r\nHost: x\r\n\r\n'], { waitMs: 4000 });
  assert.doesNotMatch(sp.data, /^HTTP\/1\.1 2/, 'strict mode refuses a space in the URL');
  const h = await raw(['GET /healthz HTTP/1.1\r\n\r\n']);
  assert.match(h.data, /^HTTP\/1\.1 400/, 'strict mode requires Host on HTTP/1.1');
});

test('server_keeps_serving_after_hostile_requests', async () => {
  const r = await postBatch(server, freshBatch());
  assert.equal(r.status, 200);
  extraStored++;
});

// ---------------------------------------------------------------- slow clients (issue 12, 4)

// Connect from a chosen loopback address (Linux routes all of 127/8 to lo), so a test can be
// several clients.
function rawFrom(port, localAddress, chunks, { waitMs = 3000, gapMs = 0 } = {}) {
  return new Promise((ok) => {
    const sock = net.connect({ port, host: '127.0.0.1', localAddress });
    let data = '';
    let closed = false;
    const t0 = Date.now();
    sock.on('data', (d) => { data += d; });
    sock.on('error', () => {});
    sock.on('close', () => { closed = true; clearTimeout(timer); ok({ data, closed, ms: Date.now() - t0, sock }); });
    const timer = setTimeout(() => { sock.destroy(); ok({ data, closed, ms: Date.now() - t0 }); }, waitMs);
    sock.on('connect', async () => {
      for (const c of chunks) {
        if (sock.destroyed || closed) return;
        sock.write(c);
        if (gapMs) await new Promise((r) => setTimeout(r, gapMs));
      }
    });
  });
}

test('client_trickling_its_headers_is_cut_off_at_the_header_deadline', async () => {
  const s = await startServer({ args: ['--timeout-s', '1', '--header-timeout-s', '2', '--rate-limit', 'off'] });
  try {
    // One byte every 150 ms: never idle for the 1 s idle timeout; the headers alone would
    // take 20 s.
    const head = 'POST /v1/outcomes HTTP/1.1\r\nHost: x\r\nX-Padding: ' + 'a'.repeat(80) + '\r\nContent-Length: 2\r\n\r\n{}';
    const r = await rawFrom(s.port, '127.0.0.1', head.split(''), { waitMs: 12000, gapMs: 150 });
    assert.ok(r.closed, 'server kept a connection trickling its headers open');
    assert.doesNotMatch(r.data, /^HTTP\/1\.1 2/);
    assert.equal((await request(s, 'GET', '/healthz')).status, 200);
    assert.match((await request(s, 'GET', '/metrics')).text, /^loopwise_ingest_rejects_total\{reason="header_timeout"\} [1-9]/m);
  } finally {
    await s.cleanup();
  }
});

// Bodies being received share one memory budget: uploads that stall past it are closed,
// largest first, and a healthy batch still gets through.
test('stalled_uploads_past_the_body_budget_are_closed_and_a_healthy_batch_is_stored', async () => {
  const s = await startServer({ args: ['--max-body', '131072', '--body-budget', '262144', '--rate-limit', 'off', '--max-connections-per-address', '0'] });
  const socks = [];
  try {
    const closedOnes = [];
    const part = 'a'.repeat(120000);
    for (let i = 0; i < 6; i++) {
      const sock = net.connect(s.port, '127.0.0.1');
      socks.push(sock);
      sock.on('error', () => {});
      const closed = new Promise((ok) => sock.on('close', ok));
      closedOnes.push(closed);
      await new Promise((ok) => sock.on('connect', ok));
      await new Promise((ok) => sock.write(`POST /v1/outcomes HTTP/1.1\r\nHost: x\r\nContent-Length: 131072\r\n\r\n${part}`, ok));
    }
    // At most two 120 kB bodies fit the 256 KiB budget: at least four are closed. Wait for
    // four closes, whichever.
    let n = 0;
    await new Promise((ok) => closedOnes.forEach((c) => c.then(() => { if (++n === 4) ok(); })));
    assert.equal((await postBatch(s, freshBatch())).status, 200);
    const m = (await request(s, 'GET', '/metrics')).text;
    assert.match(m, /^loopwise_ingest_rejects_total\{reason="body_budget"\} [4-9]/m);
    const held = Number(/^loopwise_ingest_body_bytes (\d+)/m.exec(m)[1]);
    assert.ok(held <= 262144 + 131072, `${held} bytes of bodies held`);
  } finally {
    for (const sock of socks) sock.destroy();
    await s.cleanup();
  }
});

// The same requests to nginx (Debian's, answering 204) and to the ingest server, in the same
// run: whatever framing nginx refuses, the ingest server must not accept. (The ingest server
// refuses more: chunk extensions, whitespace after a chunk size.) See README "HTTP framing".
test('framing_that_nginx_refuses_is_never_accepted', async (t) => {
  const nginxBin = ['/usr/sbin/nginx', '/usr/bin/nginx'].find((p) => existsSync(p));
  if (!nginxBin) { t.skip('nginx is not installed (npm run setup -- --bench installs it)'); return; }
  const dir = mkdtempSync(join(tmpdir(), 'lw-nginx-'));
  const nport = await freePort();
  writeFileSync(join(dir, 'nginx.conf'), `worker_processes 1; pid ${dir}/nginx.pid; error_log ${dir}/error.log warn; daemon off;
events { worker_connections 64; }
http { access_log off; client_body_temp_path ${dir}/b; proxy_temp_path ${dir}/p; fastcgi_temp_path ${dir}/f;
  uwsgi_temp_path ${dir}/u; scgi_temp_path ${dir}/s;
  server { listen 127.0.0.1:${nport}; location / { return 204; } } }`);
  const nginx = spawn(nginxBin, ['-c', join(dir, 'nginx.conf'), '-p', dir], { stdio: 'ignore' });
  try {
    for (;;) { // until nginx listens
      const up = await new Promise((ok) => { const c = net.connect(nport, '127.0.0.1', () => { c.destroy(); ok(true); }); c.on('error', () => ok(false)); });
      if (up) break;
      await new Promise((r) => setImmediate(r));
    }
    const body = JSON.stringify(freshBatch());
    const n = Buffer.byteLength(body);
    const x = n.toString(16);
    const cases = {
      bare_lf: `POST /v1/outcomes HTTP/1.1\nHost: x\nContent-Length: ${n}\n\n${body}`,
      obs_fold: `POST /v1/outcomes HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\nContent-Length: ${n}\r\n\r\n${body}`,
      obs_fold_transfer_encoding: `POST /v1/outcomes HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\r\n chunked\r\n\r\n${x}\r\n${body}\r\n0\r\n\r\n`,
      space_before_colon_content_length: `POST /v1/outcomes HTTP/1.1\r\nHost: x\r\nContent-Length : ${n}\r\n\r\n${body}`,
      space_before_colon_other_header: `POST /v1/outcomes HTTP/1.1\r\nHost: x\r\nX-A : 1\r\nContent-Length: ${n}\r\n\r\n${body}`,
      tab_before_colon: `POST /v1/outcomes HTTP/1.1\r\nHost: x\r\nContent-Length\t: ${n}\r\n\r\n${body}`,
      chunk_extension: `POST /v1/outcomes HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n${x};a=b\r\n${body}\r\n0\r\n\r\n`,
      chunk_lines_bare_lf: `POST /v1/outcomes HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n${x}\n${body}\n0\n\n`,
      chunk_size_trailing_space: `POST /v1/outcomes HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n${x} \r\n${body}\r\n0\r\n\r\n`,
      content_length_plus: `POST /v1/outcomes HTTP/1.1\r\nHost: x\r\nContent-Length: +${n}\r\n\r\n${body}`,
      leading_space_header_name: `POST /v1/outcomes HTTP/1.1\r\nHost: x\r\n Transfer-Encoding: chunked\r\nContent-Length: ${n}\r\n\r\n${body}`,
      bare_cr: `POST /v1/outcomes HTTP/1.1\rHost: x\r\nContent-Length: ${n}\r\n\r\n${body}`,
      nul_in_header_value: `POST /v1/outcomes HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\nContent-Length: ${n}\r\n\r\n${body}`,
      transfer_encoding_on_http_1_0: `POST /v1/outcomes HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n${x}\r\n${body}\r\n0\r\n\r\n`,
    };
    const table = [];
    for (const [name, text] of Object.entries(cases)) {
      const viaNginx = await rawTo(nport, text);
      const viaIngest = await rawTo(server.port, text);
      const nginxAccepts = /^HTTP\/1\.[01] 2/.test(viaNginx);
      const ingestAccepts = /^HTTP\/1\.[01] 2/.test(viaIngest);
      table.push(`${name}: nginx ${viaNginx.split('\r\n')[0] || '(closed)'} / ingest ${viaIngest.split('\r\n')[0] || '(closed)'}`);
      if (ingestAccepts) extraStored++;
      assert.ok(nginxAccepts || !ingestAccepts, `${name}: nginx refuses it, the ingest server accepted it`);
    }
    t.diagnostic(table.join('\n'));
  } finally {
    nginx.kill('SIGTERM');
    await new Promise((ok) => (nginx.exitCode !== null ? ok() : nginx.on('exit', ok)));
    rmSync(dir, { recursive: true, force: true });
  }
});

// Send raw bytes, read until the server closes or the first answer's headers are complete.
function rawTo(port, text) {
  return new Promise((ok) => {
    const sock = net.connect(port, '127.0.0.1');
    let data = '';
    sock.on('data', (d) => { data += d.toString('latin1'); if (data.includes('\r\n\r\n')) sock.destroy(); });
    sock.on('error', () => {});
    sock.on('close', () => ok(data));
    sock.on('connect', () => sock.write(Buffer.from(text, 'latin1')));
  });
}

function freePort() {
  return new Promise((ok) => { const s = net.createServer(); s.listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => ok(p)); }); });
}

// A connection's memory pool (server.c CONNECTION_POOL_BYTES) holds its request headers: a
// browser's cookies and the like, up to 8 KiB, still fit, request after request on one
// keep-alive connection.
test('a_batch_with_8_KiB_of_headers_is_stored_request_after_request_on_one_connection', async () => {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  try {
    for (let i = 0; i < 3; i++) {
      const r = await request(server, 'POST', '/v1/outcomes', {
        agent,
        headers: { 'Content-Type': 'text/plain', Cookie: 'c=' + 'a'.repeat(8 * 1024 - 16) },
        body: JSON.stringify(freshBatch()),
      });
      assert.equal(r.status, 200, r.text);
      extraStored++;
    }
  } finally {
    agent.destroy();
  }
});
