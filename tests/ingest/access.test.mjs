// access.test.mjs: write keys, browser Origins, CORS preflights and read protection.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { spawn, spawnSync } from 'node:child_process';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { join } from 'node:path';
import { root, binary, startServer, postBatch, request, freshBatch, tempDir } from './helpers.mjs';

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

test('on_a_non_loopback_address_stats_and_metrics_need_the_read_token', async (t) => {
  // Bind to this machine's own non-loopback address and connect to it: the peer address is then
  // that address, not 127.0.0.1. Such a bind needs a read token (the server refuses to start
  // without one, see ops.test.mjs).
  const { networkInterfaces } = await import('node:os');
  const ip = Object.values(networkInterfaces()).flat().find((a) => a && a.family === 'IPv4' && !a.internal)?.address;
  if (!ip) return t.skip('no non-loopback IPv4 address on this machine');
  const server = await startServer({ args: ['--bind', ip, '--read-token', readToken] });
  try {
    const get = (path, headers = {}) => new Promise((ok, fail) => {
      const req = http.request({ host: ip, port: server.port, path, headers }, (res) => { res.resume(); res.on('end', () => ok(res.statusCode)); });
      req.on('error', fail);
      req.end();
    });
    assert.equal(await get('/v1/stats'), 401);
    assert.equal(await get('/metrics'), 401);
    assert.equal(await get('/v1/stats', { Authorization: `Bearer ${readToken}` }), 200);
    assert.equal(await get('/healthz'), 200);
  } finally {
    await server.cleanup();
  }
});

// ---------------------------------------------------------------- trusted proxies (issue 12, 4)

function getFrom(server, localAddress, path, headers = {}) {
  return new Promise((ok, fail) => {
    const req = http.request({ host: '127.0.0.1', port: server.port, localAddress, path, headers, agent: false }, (res) => {
      res.resume();
      res.on('end', () => ok(res.statusCode));
    });
    req.on('error', fail);
    req.end();
  });
}

test('behind_a_trusted_proxy_per_address_limits_follow_the_forwarded_address', async () => {
  const server = await startServer({ args: ['--trusted-proxies', '127.0.0.1', '--rate-per-address', '0.01', '--burst-per-address', '2', '--models-dir', '/nonexistent'] });
  try {
    const model = (xff, from = '127.0.0.1') => getFrom(server, from, '/v1/model?key=demo-site-key', xff ? { 'X-Forwarded-For': xff } : {});
    // 204: no model, but past the limiter; 429: limited.
    assert.deepEqual([await model('198.51.100.1'), await model('198.51.100.1'), await model('198.51.100.1')], [204, 204, 429]);
    assert.equal(await model('198.51.100.2'), 204, 'another client behind the proxy has its own bucket');
    assert.equal(await model('203.0.113.9, 198.51.100.3'), 204, 'the address the proxy appended (the last) counts');
    assert.equal(await model('203.0.113.9, 198.51.100.1'), 429, 'an address the client wrote in front changes nothing');
    // A peer that is not a trusted proxy cannot pick its address.
    assert.deepEqual([await model('192.0.2.1', '127.0.0.2'), await model('192.0.2.2', '127.0.0.2'), await model('192.0.2.3', '127.0.0.2')],
      [204, 204, 429]);
  } finally {
    await server.cleanup();
  }
});

test('ipv6_clients_count_by_their_64', async () => {
  // Forwarded by a trusted proxy, so the test can be clients of any address. The connection cap
  // counts by the same rule (one_client in server.c).
  const server = await startServer({ args: ['--trusted-proxies', '127.0.0.1', '--rate-per-address', '0.01', '--burst-per-address', '2', '--models-dir', '/nonexistent'] });
  try {
    const model = (xff) => getFrom(server, '127.0.0.1', '/v1/model?key=demo-site-key', { 'X-Forwarded-For': xff });
    assert.deepEqual([await model('2001:db8:1:2::1'), await model('2001:db8:1:2:ffff::9'), await model('2001:db8:1:2::3')], [204, 204, 429]);
    assert.equal(await model('2001:db8:1:3::1'), 204, 'another /64 is another client');
  } finally {
    await server.cleanup();
  }
});

test('a_forwarded_address_never_makes_a_request_loopback', async () => {
  const server = await startServer({ args: ['--trusted-proxies', '127.0.0.1'] });
  try {
    assert.equal(await getFrom(server, '127.0.0.1', '/v1/stats', { 'X-Forwarded-For': '127.0.0.1' }), 403);
    assert.equal(await getFrom(server, '127.0.0.1', '/v1/stats', { 'X-Forwarded-For': '198.51.100.1' }), 403);
    assert.equal(await getFrom(server, '127.0.0.1', '/v1/stats'), 200);
  } finally {
    await server.cleanup();
  }
});

test('trusted_proxies_must_be_addresses_or_networks', () => {
  for (const bad of ['nginx.local', '10.0.0.0/33', '::1/129', '1.2.3']) {
    const r = spawnSync(binary, ['--db', '/tmp/lw-never.db', '--port', '0', '--trusted-proxies', bad], { encoding: 'utf8', timeout: 20000 });
    assert.equal(r.status, 2, bad);
    assert.match(r.stderr, /trusted_proxies/);
  }
});

// The documented TLS reverse proxy (src/ingest/nginx.example.conf, Debian's nginx) in front of
// the server: batches arrive over HTTPS, and each client behind it has its own per-address
// bucket because the server trusts the proxy's X-Forwarded-For.
test('the_documented_nginx_tls_proxy_serves_batches_and_keeps_clients_apart', async (t) => {
  const nginxBin = ['/usr/sbin/nginx', '/usr/bin/nginx'].find((p) => existsSync(p));
  if (!nginxBin) return t.skip('nginx is not installed (npm run setup -- --bench installs it)');
  const dir = tempDir();
  const site = readFileSync(join(root, 'src/ingest/nginx.example.conf'), 'utf8');
  const key = join(dir, 'key.pem');
  const cert = join(dir, 'cert.pem');
  const gen = spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=localhost'], { encoding: 'utf8' });
  assert.equal(gen.status, 0, gen.stderr);
  const server = await startServer({ args: ['--trusted-proxies', '127.0.0.1', '--rate-per-address', '0.01', '--burst-per-address', '2'] });
  const port = await new Promise((ok) => { const s = net.createServer(); s.listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => ok(p)); }); });
  const conf = site
    .replace(/listen 443 ssl/g, `listen 127.0.0.1:${port} ssl`)
    .replace(/listen \[::\]:443 ssl[^;]*;/g, '')
    .replace(/127\.0\.0\.1:8080/g, `127.0.0.1:${server.port}`)
    .replace(/\/etc\/ssl\/certs\/ingest\.example\.com\.pem/g, cert)
    .replace(/\/etc\/ssl\/private\/ingest\.example\.com\.key/g, key);
  writeFileSync(join(dir, 'nginx.conf'), `worker_processes 1; pid ${dir}/nginx.pid; error_log ${dir}/error.log warn; daemon off;
events { worker_connections 64; }
http { access_log off; client_body_temp_path ${dir}/b; proxy_temp_path ${dir}/p; fastcgi_temp_path ${dir}/f;
  uwsgi_temp_path ${dir}/u; scgi_temp_path ${dir}/s;
${conf}
}`);
  const nginx = spawn(nginxBin, ['-c', join(dir, 'nginx.conf'), '-p', dir], { stdio: ['ignore', 'ignore', 'pipe'] });
  let nginxErr = '';
  nginx.stderr.on('data', (d) => { nginxErr += d; });
  try {
    for (;;) {
      const up = await new Promise((ok) => { const c = net.connect(port, '127.0.0.1', () => { c.destroy(); ok(true); }); c.on('error', () => ok(false)); });
      if (up) break;
      if (nginx.exitCode !== null) throw new Error(`nginx exited: ${nginxErr}`);
      await new Promise((r) => setImmediate(r));
    }
    const post = (localAddress) => new Promise((ok, fail) => {
      const body = JSON.stringify(freshBatch());
      const req = https.request({ host: '127.0.0.1', port, localAddress, method: 'POST', path: '/v1/outcomes', rejectUnauthorized: false, agent: false,
        headers: { 'Content-Type': 'text/plain', 'Content-Length': Buffer.byteLength(body), Host: 'ingest.example.com' } }, (res) => {
        res.resume();
        res.on('end', () => ok(res.statusCode));
      });
      req.on('error', fail);
      req.end(body);
    });
    assert.deepEqual([await post('127.0.0.2'), await post('127.0.0.2'), await post('127.0.0.2')], [200, 200, 429]);
    assert.equal(await post('127.0.0.3'), 200, 'a second client behind the proxy is not limited by the first');
  } finally {
    nginx.kill('SIGTERM');
    await new Promise((ok) => (nginx.exitCode !== null ? ok() : nginx.on('exit', ok)));
    await server.cleanup();
    rmSync(dir, { recursive: true, force: true });
  }
});
