// pg-deploy.test.mjs: the documented deployment of two replicas (README "Two replicas behind
// nginx"): src/ingest/nginx.example.conf (Debian's nginx, TLS at the proxy) with both replicas in
// its upstream, each replica on one PostgreSQL database with a read token and the proxy in
// trusted_proxies. Batches over HTTPS reach both replicas and are stored once however often they
// are retried, and the reads need the token through the proxy. Needs LW_TEST_PG (src/scripts/test.sh sets it).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { spawn, spawnSync } from 'node:child_process';
import https from 'node:https';
import net from 'node:net';
import { join } from 'node:path';
import { root, startServer, freshBatch, tempDir, onPg, storeFor, sql, request } from './helpers.mjs';

const nginxBin = ['/usr/sbin/nginx', '/usr/bin/nginx'].find((p) => existsSync(p));
const skip = (!onPg && 'needs LW_TEST_PG (src/scripts/test.sh starts a throwaway cluster and sets it)') ||
  (!nginxBin && 'nginx is not installed (src/scripts/setup.sh installs nginx-light)');
const readToken = 'read-token-0123456789abcdef';

function freePort() {
  return new Promise((ok) => { const s = net.createServer(); s.listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => ok(p)); }); });
}

test('two_replicas_behind_the_documented_nginx_tls_proxy_store_once_and_guard_reads', { skip }, async () => {
  const dir = tempDir();
  const db = storeFor(join(dir, 'deploy.db'));
  const config = join(dir, 'ingest.json');
  writeFileSync(config, JSON.stringify({ read_token: readToken, trusted_proxies: '127.0.0.1', k_anonymity: 1 }));
  const args = ['--config', config, '--rate-per-address', '0.01', '--burst-per-address', '6'];
  const replicas = [await startServer({ db, args }), await startServer({ db, args })];
  const key = join(dir, 'key.pem');
  const cert = join(dir, 'cert.pem');
  const gen = spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=localhost'], { encoding: 'utf8' });
  assert.equal(gen.status, 0, gen.stderr);
  const port = await freePort();
  const site = readFileSync(join(root, 'src/ingest/nginx.example.conf'), 'utf8');
  assert.match(site, /server 127\.0\.0\.1:8080;/);
  const conf = site
    .replace(/listen 443 ssl/g, `listen 127.0.0.1:${port} ssl`)
    .replace(/listen \[::\]:443 ssl[^;]*;/g, '')
    .replace(/server 127\.0\.0\.1:8080;/, replicas.map((r) => `server 127.0.0.1:${r.port};`).join(' '))
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
  const call = (method, path, { body, localAddress = '127.0.0.2', headers = {} } = {}) => new Promise((ok, fail) => {
    const req = https.request({ host: '127.0.0.1', port, localAddress, method, path, rejectUnauthorized: false, agent: false,
      headers: { Host: 'ingest.example.com', ...(body ? { 'Content-Type': 'text/plain', 'Content-Length': Buffer.byteLength(body) } : {}), ...headers } }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => ok({ status: res.statusCode, text: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', fail);
    req.end(body);
  });
  try {
    for (;;) {
      const up = await new Promise((ok) => { const c = net.connect(port, '127.0.0.1', () => { c.destroy(); ok(true); }); c.on('error', () => ok(false)); });
      if (up) break;
      if (nginx.exitCode !== null) throw new Error(`nginx exited: ${nginxErr}`);
      await new Promise((r) => setImmediate(r));
    }
    // Three batches from one client, each sent twice (a retry after a lost answer): nginx spreads
    // the six requests over both replicas, and each batch is stored once.
    const batches = [freshBatch(), freshBatch(), freshBatch()];
    const answers = [];
    for (const b of batches) for (let k = 0; k < 2; k++) answers.push(await call('POST', '/v1/outcomes', { body: JSON.stringify(b) }));
    assert.deepEqual(answers.map((a) => a.status), [200, 200, 200, 200, 200, 200]);
    assert.equal(answers.filter((a) => JSON.parse(a.text).duplicate).length, 3);
    assert.equal(Number(sql(db, 'SELECT count(*) AS n FROM batches')[0].n), 3);
    // Both replicas answered some of them (their own metrics, read with the token).
    for (const r of replicas) {
      const m = await request(r, 'GET', '/metrics', { headers: { Authorization: `Bearer ${readToken}` } });
      assert.equal(m.status, 200);
      assert.match(m.text, /loopwise_ingest_requests_total\{code="200"\} [1-9]/, 'each replica took requests');
    }
    // Another client behind the proxy has buckets of its own (the forwarded address, not the
    // proxy's; buckets are per replica, README "Scaling out").
    assert.equal((await call('POST', '/v1/outcomes', { body: JSON.stringify(freshBatch()), localAddress: '127.0.0.3' })).status, 200);
    // Reads through the proxy need the read token (a forwarded request is never loopback).
    assert.equal((await call('GET', '/v1/stats')).status, 401);
    const st = await call('GET', '/v1/stats', { headers: { Authorization: `Bearer ${readToken}` }, localAddress: '127.0.0.4' });
    assert.equal(st.status, 200);
    assert.equal(JSON.parse(st.text).batches, 4);
  } finally {
    nginx.kill('SIGTERM');
    await new Promise((ok) => (nginx.exitCode !== null ? ok() : nginx.on('exit', ok)));
    for (const r of replicas) await r.cleanup();
    rmSync(dir, { recursive: true, force: true });
  }
});
