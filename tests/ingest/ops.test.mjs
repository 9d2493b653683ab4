// ops.test.mjs: command line, settings precedence, logs, metrics, rate limits.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { closeSync, openSync, readFileSync, writeFileSync, writeSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { root, binary, startServer, postBatch, request, stats, freshBatch, tempDir, sqliteOnly } from './helpers.mjs';

test('help_lists_every_setting_with_its_flag_and_environment_variable', () => {
  const r = spawnSync(binary, ['--help'], { encoding: 'utf8' });
  assert.equal(r.status, 0);
  for (const s of ['--db', '--port', '--config', '--read-token', '--max-body', '--rate-limit', '--k-anonymity',
    '--retention-days', 'LW_INGEST_PORT', 'LW_INGEST_READ_TOKEN']) assert.ok(r.stdout.includes(s), s);
});

test('bad_settings_are_refused_naming_them', () => {
  const r1 = spawnSync(binary, ['--db', '/tmp/x.db', '--port', 'eighty'], { encoding: 'utf8' });
  assert.equal(r1.status, 2);
  assert.match(r1.stderr, /port/);
  const r2 = spawnSync(binary, ['--db', '/tmp/x.db', '--no-such-thing', '1'], { encoding: 'utf8' });
  assert.equal(r2.status, 2);
  assert.match(r2.stderr, /no-such-thing/);
  const dir = tempDir();
  writeFileSync(join(dir, 'c.json'), JSON.stringify({ sites: [{ id: 'a', write_key: 'k', origins: ['https://a.example/path'] }] }));
  const r3 = spawnSync(binary, ['--db', join(dir, 'x.db'), '--config', join(dir, 'c.json')], { encoding: 'utf8' });
  assert.equal(r3.status, 2);
  assert.match(r3.stderr, /sites\[0\]\.origins\[0\]/);
  const r4 = spawnSync(binary, ['--port', '0'], { encoding: 'utf8' });
  assert.equal(r4.status, 2);
  assert.match(r4.stderr, /db/);
});

test('flags_override_environment_which_overrides_the_config_file', async () => {
  const dir = tempDir();
  const config = join(dir, 'ingest.json');
  writeFileSync(config, JSON.stringify({ k_anonymity: 7, max_events: 3 }));
  const fileOnly = await startServer({ dir, args: ['--config', config] });
  assert.equal((await stats(fileOnly)).k_anonymity, 7);
  assert.equal((await postBatch(fileOnly, freshBatch())).json.field, 'events', 'max_events from the file applies');
  await fileOnly.stop();
  const withEnv = await startServer({ dir, args: ['--config', config], env: { LW_INGEST_K_ANONYMITY: '4' } });
  assert.equal((await stats(withEnv)).k_anonymity, 4);
  await withEnv.stop();
  const withFlag = await startServer({ dir, args: ['--config', config, '--k-anonymity', '2'], env: { LW_INGEST_K_ANONYMITY: '4' } });
  assert.equal((await stats(withFlag)).k_anonymity, 2);
  await withFlag.cleanup();
});

test('logs_are_one_json_object_per_line_without_client_details', async () => {
  const server = await startServer({ args: ['--log-level', 'debug'] });
  await postBatch(server, freshBatch(), { 'User-Agent': 'AgentSmith/1.0', Origin: 'http://localhost:1234' });
  await postBatch(server, '{bad', { 'User-Agent': 'AgentSmith/1.0' });
  await server.stop();
  const lines = server.stderr.trim().split('\n');
  assert.ok(lines.length >= 4);
  for (const l of lines) {
    const o = JSON.parse(l);
    assert.ok(o.ts && o.level && o.msg, l);
  }
  assert.match(lines[0], /"msg":"listening".*"port":\d+/);
  assert.ok(lines.some((l) => /"msg":"request".*"status":400/.test(l)), 'requests are logged at debug');
  assert.ok(!server.stderr.includes('AgentSmith'));
  assert.ok(!/127\.0\.0\.1:\d|"addr|"ip"/.test(server.stderr.replace(/"bind":"127\.0\.0\.1"/, '')));
});

test('every_answer_is_logged_at_debug_and_counted_preflights_models_and_metrics_included', async () => {
  const dir = tempDir();
  const server = await startServer({ dir, args: ['--log-level', 'debug', '--models-dir', join(dir, 'models')] });
  const origin = { Origin: 'http://localhost:1234', 'Access-Control-Request-Method': 'POST' };
  assert.equal((await request(server, 'OPTIONS', '/v1/outcomes', { headers: origin })).status, 204);
  assert.equal((await request(server, 'OPTIONS', '/v1/model', { headers: { ...origin, Origin: 'https://evil.example' } })).status, 403);
  assert.equal((await request(server, 'GET', '/v1/model?key=demo-site-key')).status, 204); // no model yet
  assert.equal((await request(server, 'GET', '/nope')).status, 404);
  const m = (await request(server, 'GET', '/metrics')).text;
  assert.match(m, /^loopwise_ingest_requests_total\{code="204"\} 2$/m);
  assert.match(m, /^loopwise_ingest_requests_total\{code="403"\} 1$/m);
  assert.match(m, /^loopwise_ingest_requests_total\{code="404"\} 1$/m);
  assert.match(m, /^loopwise_ingest_requests_total\{code="200"\} 1$/m); // this /metrics answer
  assert.match(m, /^loopwise_ingest_rejects_total\{reason="forbidden"\} 1$/m);
  assert.match(m, /^loopwise_ingest_rejects_total\{reason="not_found"\} 1$/m); // the unknown path, not the model
  await server.stop();
  const requests = server.stderr.trim().split('\n').map((l) => JSON.parse(l)).filter((o) => o.msg === 'request');
  const seen = requests.map((o) => `${o.route} ${o.status}`);
  assert.deepEqual(seen, ['preflight 204', 'preflight 403', 'model 204', 'not_found 404', 'metrics 200']);
  for (const o of requests) assert.equal(o.level, 'debug');
  await server.cleanup();
});

test('metrics_count_requests_batches_events_latency_and_rejects', async () => {
  const server = await startServer();
  try {
    await postBatch(server, freshBatch());
    const dup = freshBatch();
    await postBatch(server, dup);
    await postBatch(server, dup);
    await postBatch(server, '{"v":1');
    const m = (await request(server, 'GET', '/metrics')).text;
    assert.match(m, /^# TYPE loopwise_ingest_requests_total counter$/m);
    assert.match(m, /^loopwise_ingest_requests_total\{code="200"\} [3-9]$/m);
    assert.match(m, /^loopwise_ingest_batches_total\{result="stored"\} 2$/m);
    assert.match(m, /^loopwise_ingest_batches_total\{result="duplicate"\} 1$/m);
    assert.match(m, /^loopwise_ingest_events_stored_total 10$/m);
    assert.match(m, /^loopwise_ingest_rejects_total\{reason="invalid"\} 1$/m);
    assert.match(m, /^loopwise_ingest_request_duration_seconds_bucket\{le="\+Inf"\} 4$/m);
    assert.match(m, /^loopwise_ingest_request_duration_seconds_count 4$/m);
    assert.match(m, /^loopwise_ingest_commits_total [1-9]/m);
  } finally {
    await server.cleanup();
  }
});

test('per_address_rate_limit_answers_429_with_retry_after', async () => {
  const server = await startServer({ args: ['--rate-per-address', '0.1', '--burst-per-address', '5'] });
  try {
    const codes = [];
    for (let i = 0; i < 8; i++) {
      const r = await postBatch(server, freshBatch());
      codes.push(r.status);
      if (r.status === 429) {
        assert.ok(Number(r.headers['retry-after']) >= 1, 'Retry-After');
        assert.equal(r.json.error, 'rate limit exceeded');
      }
    }
    assert.deepEqual(codes.slice(0, 5), [200, 200, 200, 200, 200]);
    assert.ok(codes.slice(5).every((c) => c === 429), codes.join());
    assert.match((await request(server, 'GET', '/metrics')).text, /rejects_total\{reason="rate_address"\} 3/);
    assert.equal((await request(server, 'GET', '/healthz')).status, 200, 'health checks are not limited');
  } finally {
    await server.cleanup();
  }
});

test('per_key_rate_limit_answers_429_with_retry_after', async () => {
  const server = await startServer({ args: ['--rate-per-key', '0.05', '--burst-per-key', '3'] });
  try {
    const codes = [];
    for (let i = 0; i < 5; i++) codes.push((await postBatch(server, freshBatch())).status);
    assert.deepEqual(codes, [200, 200, 200, 429, 429]);
    const r = await postBatch(server, freshBatch());
    assert.equal(Number(r.headers['retry-after']), 20, 'one token comes back every 20 s');
  } finally {
    await server.cleanup();
  }
});

test('rate_limits_can_be_turned_off', async () => {
  const server = await startServer({ args: ['--rate-limit', 'off', '--rate-per-address', '1', '--burst-per-address', '1'] });
  try {
    for (let i = 0; i < 20; i++) assert.equal((await postBatch(server, freshBatch())).status, 200);
  } finally {
    await server.cleanup();
  }
});

test('example_config_shipped_with_the_systemd_unit_loads', async () => {
  const server = await startServer({ args: ['--config', join(root, 'src/ingest/ingest.example.json'), '--bind', '127.0.0.1'] });
  try {
    const b = freshBatch();
    b.write_key = 'acme-pk-2f9c1e7a';
    assert.equal((await postBatch(server, b, { Origin: 'https://app.acme.example' })).status, 200);
  } finally {
    await server.cleanup();
  }
});

// ---------------------------------------------------------------- exposure (issue 12, 4)

test('non_loopback_bind_without_a_read_token_refuses_to_start', () => {
  const dir = tempDir();
  for (const bind of ['0.0.0.0', '::', '192.0.2.1']) {
    // A refusal exits at once; an old binary would serve, and be stopped by the timeout.
    const r = spawnSync(binary, ['--db', join(dir, 'x.db'), '--port', '0', '--bind', bind], { encoding: 'utf8', timeout: 20000 });
    assert.equal(r.status, 2, `${bind}: ${r.stderr}`);
    assert.match(r.stderr, /read_token/);
  }
});

test('example_config_binds_publicly_only_with_a_read_token', () => {
  const example = JSON.parse(readFileSync(join(root, 'src/ingest/ingest.example.json'), 'utf8'));
  const loopback = ['127.0.0.1', '::1', undefined].includes(example.bind);
  assert.ok(loopback || (typeof example.read_token === 'string' && example.read_token.length >= 16),
    'the example binds a public address without a read token');
});

// One client may spend the write key's budget only for its own network: another network's
// devices still get through.
test('one_client_exhausting_the_key_rate_limit_does_not_lock_the_site_out', async () => {
  const server = await startServer({ args: ['--rate-per-key', '0.05', '--burst-per-key', '3'] });
  try {
    const flood = [];
    for (let i = 0; i < 6; i++) flood.push((await postBatch(server, freshBatch())).status);
    assert.deepEqual(flood.slice(3), [429, 429, 429], 'the flooding client is limited');
    const other = await postFrom(server, '127.0.1.7', freshBatch());
    assert.equal(other, 200, 'a client on another network was locked out by the key limit');
  } finally {
    await server.cleanup();
  }
});

function postFrom(server, localAddress, batch) {
  return new Promise((ok, fail) => {
    const body = JSON.stringify(batch);
    const req = http.request({ host: '127.0.0.1', port: server.port, localAddress, method: 'POST', path: '/v1/outcomes',
      headers: { 'Content-Type': 'text/plain', 'Content-Length': Buffer.byteLength(body) }, agent: false }, (res) => {
      res.resume();
      res.on('end', () => ok(res.statusCode));
    });
    req.on('error', fail);
    req.end(body);
  });
}

// ---------------------------------------------------------------- health (issue 12, 4)

test('a_damaged_database_is_refused_at_start_by_the_integrity_check', { skip: sqliteOnly }, async () => {
  const dir = tempDir();
  const first = await startServer({ dir, args: ['--rate-limit', 'off'] });
  for (let i = 0; i < 60; i++) assert.equal((await postBatch(first, freshBatch({ events: 20 }))).status, 200);
  await first.stop();
  // Damage the middle of a b-tree page past the first few: the header and the schema still
  // read, so only a check of the pages can tell.
  const db = join(dir, 'outcomes.db');
  const bytes = readFileSync(db);
  const pageSize = bytes.readUInt16BE(16) || 65536;
  const pages = bytes.length / pageSize;
  assert.ok(pages > 8, `${pages} pages`);
  const fd = openSync(db, 'r+');
  for (const p of [Math.floor(pages / 2), pages - 2]) writeSync(fd, Buffer.alloc(200, 0x5a), 0, 200, p * pageSize + 8);
  closeSync(fd);
  const r = spawnSync(binary, ['--db', db, '--port', '0'], { encoding: 'utf8', timeout: 20000 });
  assert.equal(r.status, 1, `a damaged database was served: ${r.stderr}`);
  assert.match(r.stderr, /integrity/);
});

// The config file is read through the same strict JSON entry point as batches.
test('config_file_with_a_number_outside_json_is_refused', () => {
  const dir = tempDir();
  for (const text of ['{"k_anonymity": 07}', '{"k_anonymity": 7.}', '{"k_anonymity": +7}', '{"log_level": "info\\u0000x"}']) {
    writeFileSync(join(dir, 'c.json'), text);
    const r = spawnSync(binary, ['--db', join(dir, 'x.db'), '--port', '0', '--config', join(dir, 'c.json')], { encoding: 'utf8', timeout: 20000 });
    assert.equal(r.status, 2, `${text} was accepted: ${r.stderr}`);
  }
});
