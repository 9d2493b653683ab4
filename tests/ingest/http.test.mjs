// http.test.mjs: hostile HTTP: oversized bodies, ambiguous framing, slow clients, garbage.
// After each, the server keeps serving and nothing stored before is touched.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
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
