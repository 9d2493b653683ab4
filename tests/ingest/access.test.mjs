// access.test.mjs: write keys, browser Origins, CORS preflights and read protection.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startServer, postBatch, request, freshBatch, tempDir } from './helpers.mjs';

let demo, configured;
const readToken = 'read-token-0123456789abcdef';
before(async () => {
  demo = await startServer();
  const dir = tempDir();
  const config = join(dir, 'ingest.json');
  writeFileSync(config, JSON.stringify({
    read_token: readToken,
    k_anonymity: 1,
    sites: [
      { id: 'acme', write_key: 'acme-key', origins: ['https://app.acme.example'] },
      { id: 'globex', write_key: 'globex-key', origins: ['https://globex.example', 'http://localhost:*'] },
    ],
  }));
  configured = await startServer({ dir, args: ['--config', config] });
});
after(async () => { await demo.cleanup(); await configured.cleanup(); });

test('default_site_accepts_loopback_browser_origins', async () => {
  for (const origin of ['http://127.0.0.1:5173', 'http://localhost:8000', 'http://localhost']) {
    const r = await postBatch(demo, freshBatch(), { Origin: origin });
    assert.equal(r.status, 200, `${origin}: ${r.text}`);
    assert.equal(r.headers['access-control-allow-origin'], origin);
    assert.match(r.headers.vary, /Origin/);
  }
});

test('default_site_refuses_other_origins_with_403', async () => {
  for (const origin of ['https://evil.example', 'http://localhost.evil.example', 'http://127.0.0.1.evil:80', 'null']) {
    const r = await postBatch(demo, freshBatch(), { Origin: origin });
    assert.equal(r.status, 403, origin);
    assert.equal(r.headers['access-control-allow-origin'], undefined);
  }
});

test('request_without_origin_needs_only_a_valid_key', async () => {
  assert.equal((await postBatch(demo, freshBatch())).status, 200);
  const b = freshBatch();
  b.write_key = 'acme-key';
  assert.equal((await postBatch(demo, b)).status, 401);
});

test('preflight_from_allowed_origin_gets_cors_headers', async () => {
  const r = await request(demo, 'OPTIONS', '/v1/outcomes', {
    headers: { Origin: 'http://localhost:3000', 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'content-type' },
  });
  assert.equal(r.status, 204);
  assert.equal(r.headers['access-control-allow-origin'], 'http://localhost:3000');
  assert.match(r.headers['access-control-allow-methods'], /POST/);
  assert.match(r.headers['access-control-allow-headers'], /Content-Type/i);
});

test('preflight_from_unknown_origin_is_403', async () => {
  const r = await request(demo, 'OPTIONS', '/v1/outcomes', {
    headers: { Origin: 'https://evil.example', 'Access-Control-Request-Method': 'POST' },
  });
  assert.equal(r.status, 403);
  assert.equal(r.headers['access-control-allow-origin'], undefined);
});

test('each_site_key_is_bound_to_its_own_origins', async () => {
  const acme = freshBatch();
  acme.write_key = 'acme-key';
  assert.equal((await postBatch(configured, acme, { Origin: 'https://app.acme.example' })).status, 200);
  const wrong = freshBatch();
  wrong.write_key = 'acme-key';
  assert.equal((await postBatch(configured, wrong, { Origin: 'https://globex.example' })).status, 403);
  const demoKey = freshBatch();
  assert.equal((await postBatch(configured, demoKey)).status, 401, 'the demo key exists only without sites');
});

test('sites_are_kept_apart_in_stats', async () => {
  const g = freshBatch();
  g.write_key = 'globex-key';
  assert.equal((await postBatch(configured, g, { Origin: 'http://localhost:9999' })).status, 200);
  const auth = { Authorization: `Bearer ${readToken}` };
  const acme = (await request(configured, 'GET', '/v1/stats?site=acme', { headers: auth })).json;
  const globex = (await request(configured, 'GET', '/v1/stats?site=globex', { headers: auth })).json;
  assert.equal(acme.site, 'acme');
  assert.equal(globex.site, 'globex');
  assert.equal(globex.outcomes, 5);
  assert.equal((await request(configured, 'GET', '/v1/stats?site=nope', { headers: auth })).status, 404);
});

test('read_token_guards_stats_and_metrics_when_configured', async () => {
  for (const path of ['/v1/stats', '/metrics']) {
    assert.equal((await request(configured, 'GET', path)).status, 401, path);
    assert.equal((await request(configured, 'GET', path, { headers: { Authorization: 'Bearer wrong-token-0123456789ab' } })).status, 401, path);
    assert.equal((await request(configured, 'GET', path, { headers: { Authorization: `Bearer ${readToken}` } })).status, 200, path);
  }
});

test('without_token_stats_answer_loopback_but_not_proxied_requests', async () => {
  assert.equal((await request(demo, 'GET', '/v1/stats')).status, 200);
  assert.equal((await request(demo, 'GET', '/metrics')).status, 200);
  assert.equal((await request(demo, 'GET', '/v1/stats', { headers: { 'X-Forwarded-For': '198.51.100.1' } })).status, 403);
  assert.equal((await request(demo, 'GET', '/metrics', { headers: { Forwarded: 'for=198.51.100.1' } })).status, 403);
});

test('healthz_stays_public', async () => {
  assert.equal((await request(configured, 'GET', '/healthz')).status, 200);
});

test('without_token_stats_and_metrics_refuse_non_loopback_clients', async (t) => {
  // Bind to this machine's own non-loopback address and connect to it: the peer address is then
  // that address, not 127.0.0.1.
  const { networkInterfaces } = await import('node:os');
  const ip = Object.values(networkInterfaces()).flat().find((a) => a && a.family === 'IPv4' && !a.internal)?.address;
  if (!ip) return t.skip('no non-loopback IPv4 address on this machine');
  const server = await startServer({ args: ['--bind', ip] });
  try {
    const get = (path, headers = {}) => new Promise((ok, fail) => {
      import('node:http').then(({ default: http }) => {
        const req = http.request({ host: ip, port: server.port, path, headers }, (res) => { res.resume(); res.on('end', () => ok(res.statusCode)); });
        req.on('error', fail);
        req.end();
      });
    });
    assert.equal(await get('/v1/stats'), 403);
    assert.equal(await get('/metrics'), 403);
    assert.equal(await get('/healthz'), 200);
  } finally {
    await server.cleanup();
  }
});
