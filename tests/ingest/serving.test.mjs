// serving.test.mjs: what the server gives back: the site's model (GET /v1/model, ETag and 304,
// replaced by atomic rename), a referrer's own counts (GET /v1/referrals/<code>, proven by its
// install key) and the host's reward list (GET /v1/attributions, read-protected), fed only by the
// host's backend through the secret-key referee endpoint (POST /v1/referees).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { binary, startServer, postBatch, request, randomInstall, root, tempDir, sql, dumpStore, onPg, sqliteOnly, storeSchemaVersion } from './helpers.mjs';

const model = readFileSync(join(root, 'models/default.lwm'));
const other = readFileSync(join(root, 'tests/cases/models/cases.lwm'));
const ORIGIN = 'http://localhost:8000';
const readToken = 'read-token-0123456789abcdef';

// The ETag the trainer computes (lw_model_etag): model id, the file's own CRC, its length.
const etagOf = (b) => `"m${b.readUInt32LE(16)}-${b.readUInt32LE(b.length - 4).toString(16).padStart(8, '0')}-${b.length.toString(16)}"`;

const SECRET = 'shop-secret-0123456789abcdef', SECRET2 = 'shop-secret-rotated-9876543210';
let demo, models, configured, shop;
before(async () => {
  const dir = tempDir();
  models = join(dir, 'models');
  mkdirSync(join(models, 'default'), { recursive: true });
  demo = await startServer({ dir, args: ['--models-dir', models] });
  const cdir = tempDir();
  const config = join(cdir, 'ingest.json');
  writeFileSync(config, JSON.stringify({
    read_token: readToken,
    sites: [{ id: 'acme', write_key: 'acme-key', origins: ['https://app.acme.example'] }],
  }));
  // The models directory from the environment, as every other setting can be given.
  configured = await startServer({ dir: cdir, args: ['--config', config], env: { LW_INGEST_MODELS_DIR: models } });
  // A site whose backend reports referees with its secret keys (two: one being rotated in), and
  // integrity rules: at most 3 conversions per code per hour before review.
  const sdir = tempDir();
  const shopConfig = join(sdir, 'ingest.json');
  writeFileSync(shopConfig, JSON.stringify({
    sites: [{ id: 'shop', write_key: 'shop-key', origins: ['http://localhost:*'], secret_keys: [SECRET, SECRET2],
      integrity: { velocity_max: 3, velocity_window_s: 3600 } },
    { id: 'other', write_key: 'other-key', secret_keys: ['other-secret-0123456789abcdef'] }],
  }));
  shop = await startServer({ dir: sdir, args: ['--config', shopConfig] });
});
after(async () => { await demo.cleanup(); await configured.cleanup(); await shop.cleanup(); });

// Install a model the way the trainer does: write a temporary file, rename it into place.
function promote(site, bytes) {
  mkdirSync(join(models, site), { recursive: true });
  const tmp = join(models, site, '.candidate.tmp');
  writeFileSync(tmp, bytes);
  renameSync(tmp, join(models, site, 'current.lwm'));
}
const getModel = (server, headers = {}, key = 'demo-site-key') =>
  new Promise((ok, fail) => {
    // Binary body: request() decodes text, so read the bytes here.
    import('node:http').then(({ default: http }) => {
      const req = http.request({ host: '127.0.0.1', port: server.port, path: `/v1/model?key=${key}`, headers, agent: false }, (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => ok({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
      });
      req.on('error', fail);
      req.end();
    });
  });

test('model_is_204_no_content_until_the_site_has_one_and_no_reject_is_counted', async () => {
  const before_ = rejects((await request(demo, 'GET', '/metrics')).text);
  const r = await getModel(demo, { Origin: ORIGIN });
  assert.equal(r.status, 204, 'a first load shows no failed request');
  assert.equal(r.body.length, 0);
  assert.equal(r.headers['access-control-allow-origin'], ORIGIN, 'the browser may read it');
  assert.equal(rejects((await request(demo, 'GET', '/metrics')).text), before_, 'not a reject');
});

// The sum of loopwise_ingest_rejects_total over every reason.
function rejects(metrics) {
  let n = 0;
  for (const m of metrics.matchAll(/^loopwise_ingest_rejects_total\{[^}]*\} (\d+)$/gm)) n += Number(m[1]);
  return n;
}

test('model_is_served_with_its_etag_and_304_when_unchanged', async () => {
  promote('default', model);
  const r = await getModel(demo, { Origin: ORIGIN });
  assert.equal(r.status, 200);
  assert.ok(r.body.equals(model), 'the bytes of current.lwm');
  assert.equal(r.headers['content-type'], 'application/octet-stream');
  assert.equal(r.headers.etag, etagOf(model));
  assert.equal(r.headers['cache-control'], 'no-cache');
  assert.equal(r.headers['access-control-allow-origin'], ORIGIN);
  assert.match(r.headers['access-control-expose-headers'], /ETag/);
  assert.match(r.headers['access-control-expose-headers'], /Retry-After/);

  const again = await getModel(demo, { Origin: ORIGIN, 'If-None-Match': r.headers.etag });
  assert.equal(again.status, 304);
  assert.equal(again.body.length, 0);
  assert.equal(again.headers.etag, r.headers.etag);
  // A list, or a weak form of the tag, matches too; another tag does not.
  assert.equal((await getModel(demo, { 'If-None-Match': `"x", W/${r.headers.etag}` })).status, 304);
  assert.equal((await getModel(demo, { 'If-None-Match': '"m1-00000000-1"' })).status, 200);
});

test('a_replaced_model_is_served_at_once_with_a_new_etag_and_an_identical_one_keeps_it', async () => {
  promote('default', model);
  const first = await getModel(demo);
  promote('default', Buffer.from(model)); // a retrain that wrote the very same bytes
  const same = await getModel(demo, { 'If-None-Match': first.headers.etag });
  assert.equal(same.status, 304, 'same bytes, same tag');
  promote('default', other);
  const changed = await getModel(demo, { 'If-None-Match': first.headers.etag });
  assert.equal(changed.status, 200, 'read fresh: the renamed file is served on the next request');
  assert.ok(changed.body.equals(other));
  assert.equal(changed.headers.etag, etagOf(other));
  assert.notEqual(changed.headers.etag, first.headers.etag);
  // One byte changed inside (and its CRC with it, as the trainer writes it): a new tag.
  const tweaked = Buffer.from(other);
  tweaked.writeUInt32LE((tweaked.readUInt32LE(tweaked.length - 4) ^ 1) >>> 0, tweaked.length - 4);
  promote('default', tweaked);
  assert.notEqual((await getModel(demo)).headers.etag, changed.headers.etag);
});

test('model_refuses_unknown_keys_and_foreign_origins', async () => {
  promote('default', model);
  assert.equal((await getModel(demo, {}, 'nope')).status, 401);
  const r = await getModel(demo, { Origin: 'https://evil.example' });
  assert.equal(r.status, 403);
  assert.equal(r.headers['access-control-allow-origin'], undefined);
  assert.equal(r.body.length > 0 && r.body.equals(model), false, 'no model bytes for a refused origin');
  // Per site: acme has no model; a loopback Origin is not on acme's list.
  assert.equal((await getModel(configured, { Origin: 'https://app.acme.example' }, 'acme-key')).status, 204);
  assert.equal((await getModel(configured, { Origin: ORIGIN }, 'acme-key')).status, 403);
  promote('acme', other);
  const acme = await getModel(configured, { Origin: 'https://app.acme.example' }, 'acme-key');
  assert.equal(acme.status, 200);
  assert.ok(acme.body.equals(other), "acme's own model");
});

test('preflights_for_the_get_routes_allow_if_none_match', async () => {
  for (const path of ['/v1/model', '/v1/referrals/K7QX2M9PLA']) {
    const r = await request(demo, 'OPTIONS', path, {
      headers: { Origin: ORIGIN, 'Access-Control-Request-Method': 'GET', 'Access-Control-Request-Headers': 'if-none-match' },
    });
    assert.equal(r.status, 204, path);
    assert.equal(r.headers['access-control-allow-origin'], ORIGIN);
    assert.match(r.headers['access-control-allow-methods'], /GET/);
    assert.match(r.headers['access-control-allow-headers'], /If-None-Match/i);
    const bad = await request(demo, 'OPTIONS', path, { headers: { Origin: 'https://evil.example', 'Access-Control-Request-Method': 'GET' } });
    assert.equal(bad.status, 403);
  }
});

// ---------------------------------------------------------------- referrals

const code = () => 'C' + randomBytes(6).toString('hex').toUpperCase().slice(0, 9);
let seq = 0;
function batch(events, key = 'demo-site-key') {
  const now = Date.now();
  return {
    v: 1, batch_id: `s-${process.pid}-${++seq}-${randomBytes(4).toString('hex')}`, write_key: key, sent_at: now,
    events: events.map((e, i) => ({ t: now - 1000 + i, ...e })),
  };
}
const decision = () => randomBytes(8).toString('hex');
const shared = (install, c, kind = 'copy') => ({ kind, install, decision: decision(), action: 'credit_10', code: c });
async function post(server, events, key) {
  const r = await postBatch(server, batch(events, key));
  assert.equal(r.status, 200, r.text);
  return r.json;
}
// The deprecated GET (widgets already shipped) and the POST that keeps the install key out of URLs.
const referral = (server, c, install, headers = {}, key = 'demo-site-key') =>
  request(server, 'GET', `/v1/referrals/${c}?key=${key}&install=${install}`, { headers });
const referralPost = (server, body, headers = {}) =>
  request(server, 'POST', '/v1/referrals', { headers: { 'Content-Type': 'text/plain', ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body) });
// The host's backend: POST /v1/referees with a secret key.
const referee = (server, body, secret = SECRET) =>
  request(server, 'POST', '/v1/referees', {
    headers: { 'Content-Type': 'application/json', ...(secret ? { Authorization: `Bearer ${secret}` } : {}) },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
const conversion = (c, id, extra = {}) => ({ v: 1, site: 'shop', code: c, referee: id, event: 'conversion', ...extra });
const hostId = () => 'user-' + randomBytes(6).toString('hex');
const shopAttributions = async (since) =>
  (await request(shop, 'GET', `/v1/attributions?site=shop${since !== undefined ? `&since=${since}` : ''}`)).json.attributions;

test('referral_counts_answer_only_the_install_that_shared_the_code', async () => {
  const referrer = randomInstall(), c = code();
  const first = await referral(demo, c, referrer);
  assert.equal(first.status, 200, 'a first load, before the share is stored, is not a red 403');
  assert.deepEqual(first.json, { code: c, conversions: 0, landings: 0 });
  await post(demo, [shared(referrer, c)]);
  const r = await referral(demo, c, referrer, { Origin: ORIGIN });
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(r.json, { code: c, conversions: 0, landings: 0 });
  assert.equal(r.headers['access-control-allow-origin'], ORIGIN);

  const stranger = randomInstall();
  const no = await referral(demo, c, stranger);
  assert.equal(no.status, 403, 'a wrong install key proves nothing');
  assert.equal(no.json.conversions, undefined, 'and learns nothing');
  // A referee that landed with the code did not share it either.
  await post(demo, [{ kind: 'landing', install: stranger, code: c }]);
  assert.equal((await referral(demo, c, stranger)).status, 403);
  assert.equal((await referral(demo, c, referrer, { Origin: 'https://evil.example' })).status, 403);
  assert.equal((await referral(demo, c, referrer, {}, 'nope')).status, 401);
  assert.equal((await referral(demo, 'bad-code', referrer)).status, 400);
  assert.equal((await referral(demo, c, 'ABC')).status, 400);
  assert.equal((await request(demo, 'GET', `/v1/referrals/${c}?key=demo-site-key`)).status, 400, 'no install');
  // Per site: the same code is unowned on another site.
  assert.deepEqual((await referral(configured, c, referrer, {}, 'acme-key')).json, { code: c, conversions: 0, landings: 0 });
});

test('referral_counts_by_post_keep_the_install_key_out_of_the_url', async () => {
  const referrer = randomInstall(), c = code();
  const body = { v: 1, write_key: 'demo-site-key', code: c, install: referrer };
  const none = await referralPost(demo, body, { Origin: ORIGIN });
  assert.equal(none.status, 200, none.text);
  assert.deepEqual(none.json, { code: c, conversions: 0, landings: 0 });
  assert.equal(none.headers['access-control-allow-origin'], ORIGIN);
  await post(demo, [shared(referrer, c), { kind: 'landing', install: randomInstall(), code: c }]);
  assert.deepEqual((await referralPost(demo, body)).json, { code: c, conversions: 0, landings: 1 });
  assert.equal((await referralPost(demo, { ...body, install: randomInstall() })).status, 403, "another install's code");
  const bad = await referralPost(demo, { ...body, code: 'no' });
  assert.equal(bad.status, 400);
  assert.equal(bad.json.field, 'code');
  assert.equal((await referralPost(demo, { ...body, extra: 1 })).json.field, 'extra');
  assert.equal((await referralPost(demo, { ...body, v: 2 })).json.field, 'v');
  assert.equal((await referralPost(demo, { ...body, write_key: 'nope' })).status, 401);
  assert.equal((await referralPost(demo, body, { Origin: 'https://evil.example' })).status, 403);
  // text/plain: a simple request, no preflight; the preflight still answers for other types.
  const pre = await request(demo, 'OPTIONS', '/v1/referrals', { headers: { Origin: ORIGIN, 'Access-Control-Request-Method': 'POST' } });
  assert.equal(pre.status, 204);
});

test('browser_conversions_never_reach_the_counts_or_the_reward_list', async () => {
  // The forgery of the review: one request with the public write key, 500 conversions.
  const referrer = randomInstall(), c = code();
  await post(shop, [shared(referrer, c)], 'shop-key');
  const forged = batch(Array.from({ length: 500 }, () => ({ kind: 'conversion', install: randomInstall(), code: c })), 'shop-key');
  assert.equal((await postBatch(shop, forged)).status, 200, 'stored as learning signals');
  const r = await referralPost(shop, { v: 1, write_key: 'shop-key', code: c, install: referrer });
  assert.deepEqual(r.json, { code: c, conversions: 0, landings: 0 });
  assert.equal((await shopAttributions()).find((a) => a.code === c), undefined);
});

test('referee_endpoint_refuses_the_public_write_key_and_unknown_keys', async () => {
  const c = code();
  const pub = await referee(shop, conversion(c, hostId()), 'shop-key');
  assert.equal(pub.status, 403, pub.text);
  assert.match(pub.json.error, /secret key/);
  assert.equal(pub.json.field, 'Authorization');
  const none = await referee(shop, conversion(c, hostId()), null);
  assert.equal(none.status, 401);
  assert.equal(none.json.field, 'Authorization');
  assert.equal((await referee(shop, conversion(c, hostId()), 'wrong-secret-0123456789abcdef')).status, 401);
  // Another site's secret cannot report for this site.
  const cross = await referee(shop, conversion(c, hostId()), 'other-secret-0123456789abcdef');
  assert.equal(cross.status, 403);
  assert.equal(cross.json.field, 'site');
  // Not a browser route: no CORS, so a page cannot call it.
  const pre = await request(shop, 'OPTIONS', '/v1/referees', { headers: { Origin: 'http://localhost:3000', 'Access-Control-Request-Method': 'POST' } });
  assert.notEqual(pre.status, 204);
  assert.equal(pre.headers['access-control-allow-origin'], undefined);
  const m = (await request(shop, 'GET', '/metrics')).text;
  assert.match(m, /loopwise_ingest_rejects_total\{reason="bad_key"\} [1-9]/);
});

test('referee_conversions_count_once_with_either_secret_key_and_reach_the_ladder', async () => {
  const referrer = randomInstall(), c = code(), a = hostId(), b = hostId();
  await post(shop, [shared(referrer, c, 'share')], 'shop-key');
  const first = await referee(shop, conversion(c, a, { at: Date.now() - 5000, value: 49.5 }));
  assert.equal(first.status, 200, first.text);
  assert.equal(first.json.stored, true);
  assert.equal(first.json.state, 'counted');
  const again = await referee(shop, conversion(c, a, { at: Date.now() - 5000, value: 49.5 }), SECRET2);
  assert.equal(again.status, 200, again.text);
  assert.equal(again.json.duplicate, true, 'a retried report is stored once, with either active key');
  await referee(shop, conversion(c, b));
  const r = await referralPost(shop, { v: 1, write_key: 'shop-key', code: c, install: referrer });
  assert.deepEqual(r.json, { code: c, conversions: 2, landings: 0 });
  const row = (await shopAttributions()).find((x) => x.code === c);
  assert.equal(row.conversions, 2);
  assert.deepEqual(Object.keys(row).sort(), ['code', 'conversions', 'first_at', 'last_at']);
});

test('a_cached_referral_count_follows_each_referee_report_and_review', async () => {
  // Referral counts are cached until a write touches the code; a referee report and a review
  // are such writes even though no batch carries the code.
  const referrer = randomInstall(), c = code();
  await post(shop, [shared(referrer, c, 'share')], 'shop-key');
  const ask = async () => (await referralPost(shop, { v: 1, write_key: 'shop-key', code: c, install: referrer })).json.conversions;
  assert.equal(await ask(), 0);
  assert.equal(await ask(), 0, 'answered from the cache');
  assert.equal((await referee(shop, conversion(c, hostId()))).json.state, 'counted');
  assert.equal(await ask(), 1, 'a report after a cached answer is counted at once');
  const held = await referee(shop, conversion(c, hostId(), { install: referrer }));
  assert.notEqual(held.json.state, 'counted', 'the same install: a self-referral is not counted');
  assert.equal(await ask(), 1);
});

test('referee_ids_are_stored_only_as_a_salted_hash', async () => {
  const c = code(), id = 'alice@example.com-' + randomBytes(4).toString('hex');
  assert.equal((await referee(shop, conversion(c, id))).status, 200);
  const dump = dumpStore(shop.db);
  assert.ok(dump.includes(c), 'the dump holds the stored rows');
  assert.ok(!dump.includes(id), 'the host id is in the store');
  const { createHash } = await import('node:crypto');
  const plain = createHash('sha256').update(id).digest('hex');
  assert.ok(!dump.toLowerCase().includes(plain), 'an unsalted hash is in the store');
  const rows = sql(shop.db, `SELECT ${onPg ? "encode(referee, 'hex')" : 'hex(referee)'} AS h FROM referees WHERE code = '${c}'`);
  assert.equal(rows.length, 1);
  assert.equal(rows[0].h.length, 64);
});

test('referee_bad_input_names_the_field', async () => {
  const c = code();
  const cases = [
    [{ ...conversion(c, hostId()), event: 'retained_30' }, 'event'],
    [{ ...conversion(c, hostId()), event: 'bogus' }, 'event'],
    [{ ...conversion(c, hostId()), v: 3 }, 'v'],
    [{ ...conversion('bad', hostId()) }, 'code'],
    [{ ...conversion(c, '') }, 'referee'],
    [{ ...conversion(c, hostId()), at: -1 }, 'at'],
    [{ ...conversion(c, hostId()), value: 'ten' }, 'value'],
    [{ ...conversion(c, hostId()), extra: true }, 'extra'],
    [{ v: 1, site: 'shop', code: c, event: 'conversion' }, 'referee'],
    ['{"v":1,', ''],
  ];
  for (const [body, field] of cases) {
    const r = await referee(shop, body);
    assert.equal(r.status, 400, `${JSON.stringify(body)}: ${r.text}`);
    assert.equal(r.json.field, field, r.text);
  }
  assert.equal((await referee(shop, { ...conversion(c, hostId()), site: 'nope' })).status, 403);
});

// ---------------------------------------------------------------- retained value (referee v2)

const token = () => randomBytes(16).toString('hex');
const later = (c, id, event, extra = {}) => ({ v: 2, site: 'shop', code: c, referee: id, event, ...extra });

test('referee_v2_reports_join_to_the_conversion_and_a_retry_is_stored_once', async () => {
  const referrer = randomInstall(), c = code(), t = token(), id = hostId();
  const b = batch([{ kind: 'share', install: referrer, decision: decision(), action: 'credit_10', code: c, token: t, channel: 'email' }], 'shop-key');
  b.v = 2;
  assert.deepEqual((await postBatch(shop, b)).json, { stored: 1, refused: 0 });
  // Retained before the conversion: refused (409, naming the event), nothing stored.
  const early = await referee(shop, later(c, id, 'retained_30'));
  assert.equal(early.status, 409, early.text);
  assert.equal(early.json.field, 'event');
  assert.match(early.json.error, /conversion first/);
  const conv = await referee(shop, later(c, id, 'conversion', { token: t, value: 30 }));
  assert.equal(conv.status, 200, conv.text);
  const kept = await referee(shop, later(c, id, 'retained_30'));
  assert.equal(kept.status, 200, kept.text);
  assert.equal(kept.json.stored, true);
  const retry = await referee(shop, later(c, id, 'retained_30'), SECRET2);
  assert.equal(retry.status, 200, retry.text);
  assert.deepEqual([retry.json.duplicate, retry.json.id], [true, kept.json.id]);
  assert.equal((await referee(shop, later(c, id, 'revenue', { value: 99.5 }))).status, 200);
  const wrong = await referee(shop, later(c, id, 'churned', { token: token() }));
  assert.equal(wrong.status, 409, wrong.text);
  assert.equal(wrong.json.field, 'token');
  // Every later report carries its conversion's token, so it joins to the share that produced it.
  const rows = sql(shop.db, `SELECT event, token, value FROM referees WHERE code = '${c}' ORDER BY id`);
  assert.deepEqual(rows, [
    { event: 'conversion', token: t, value: 30 },
    { event: 'retained_30', token: t, value: null },
    { event: 'revenue', token: t, value: 99.5 },
  ]);
  // The later events are not conversions: the reward list counts the referee once.
  const list = await shopAttributions(0);
  assert.equal(list.find((a) => a.code === c).conversions, 1);
});

test('referee_v2_bad_input_names_the_field', async () => {
  const c = code();
  const cases = [
    [later(c, hostId(), 'revenue'), 'value'],
    [later(c, hostId(), 'retained_90', { value: 5 }), 'value'],
    [later(c, hostId(), 'conversion', { token: 'ABC' }), 'token'],
    [{ ...conversion(c, hostId()), token: token() }, 'token'],
    [later(c, hostId(), 'retained_60'), 'event'],
  ];
  for (const [body, field] of cases) {
    const r = await referee(shop, body);
    assert.equal(r.status, 400, `${JSON.stringify(body)}: ${r.text}`);
    assert.equal(r.json.field, field, r.text);
  }
  // The public write key stays refused for the v2 reports too.
  assert.equal((await referee(shop, later(c, hostId(), 'conversion'), 'shop-key')).status, 403);
});

test('a_schema_v6_file_is_migrated_to_7_and_keeps_its_data', { skip: sqliteOnly }, async () => {
  const dir = tempDir();
  const db = join(dir, 'v6.db');
  const made = spawnSync('sqlite3', [db], { input: readFileSync(join(root, 'tests/ingest/fixtures/schema-v6.sql')) });
  assert.equal(made.status, 0, String(made.stderr));
  const server = await startServer({ dir, db, args: ['--retention-days', '0'] });
  try {
    assert.equal(sql(db, 'PRAGMA user_version')[0].user_version, storeSchemaVersion);
    assert.deepEqual(sql(db, 'SELECT kind, code, token, channel FROM events ORDER BY id'), [
      { kind: 'decision', code: null, token: null, channel: null },
      { kind: 'share', code: 'V6CODE0001', token: null, channel: null },
      { kind: 'landing', code: 'V6CODE0001', token: null, channel: null },
    ]);
    assert.deepEqual(sql(db, 'SELECT code, event, value, state FROM referees'),
      [{ code: 'V6CODE0001', event: 'conversion', value: 25, state: 'counted' }]);
    assert.equal(sql(db, "SELECT COUNT(*) AS n FROM sqlite_master WHERE name IN ('events_token', 'referees_token')")[0].n, 2);
    // The old referral still answers its owner with the old counts.
    const r = await referral(server, 'V6CODE0001', '0f1e2d3c4b5a69788796a5b4c3d2e1f0');
    assert.equal(r.status, 200, r.text);
    assert.deepEqual([r.json.conversions, r.json.landings], [1, 1]);
    // And a v2 batch goes into the migrated file.
    const b = batch([{ kind: 'copy', install: '0f1e2d3c4b5a69788796a5b4c3d2e1f0', decision: decision(), action: 'credit_10',
      code: 'V6CODE0001', token: token(), channel: 'copy' }]);
    b.v = 2;
    assert.deepEqual((await postBatch(server, b)).json, { stored: 1, refused: 0 });
  } finally {
    await server.cleanup();
  }
});

test('attributions_since_filters_by_the_servers_receive_time', async () => {
  // A device offline for a week reports late: its conversion is dated a week ago but received
  // now, so a host polling with since = its last poll still sees it.
  const c = code();
  const lastPoll = Date.now() - 1000;
  assert.equal((await referee(shop, conversion(c, hostId(), { at: Date.now() - 7 * 86400000 }))).status, 200);
  const rows = await shopAttributions(lastPoll);
  const row = rows.find((a) => a.code === c);
  assert.ok(row, 'a late conversion is never skipped');
  assert.ok(row.first_at >= lastPoll, 'first_at is the receive time');
  assert.equal((await shopAttributions(row.last_at + 1)).find((a) => a.code === c), undefined);
  assert.equal((await request(shop, 'GET', '/v1/attributions?site=shop&since=yesterday')).status, 400);
  assert.equal((await request(shop, 'GET', '/v1/attributions?site=nope')).status, 404);
  const codes = rows.map((a) => a.code);
  assert.deepEqual(codes, [...codes].sort(), 'ordered by code');
});

test('attributions_need_the_read_token_when_one_is_set_and_loopback_otherwise', async () => {
  // No token: loopback only, never through a proxy.
  assert.equal((await request(demo, 'GET', '/v1/attributions', { headers: { 'X-Forwarded-For': '203.0.113.9' } })).status, 403);
  // A token: needed even on loopback, and checked.
  assert.equal((await request(configured, 'GET', '/v1/attributions?site=acme')).status, 401);
  assert.equal((await request(configured, 'GET', '/v1/attributions?site=acme', { headers: { Authorization: 'Bearer wrong-token-0123456789' } })).status, 401);
  const r = await request(configured, 'GET', '/v1/attributions?site=acme', { headers: { Authorization: `Bearer ${readToken}` } });
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(r.json.attributions, []);
});

// ---------------------------------------------------------------- integrity rules

test('a_share_with_another_installs_code_is_refused_and_the_rest_of_its_batch_stored', async () => {
  const owner = randomInstall(), forger = randomInstall(), c = code();
  assert.deepEqual(await post(shop, [shared(owner, c)], 'shop-key'), { stored: 1, refused: 0 });
  const answer = await post(shop, [shared(forger, c, 'share'), { kind: 'impression', install: forger, decision: decision(), action: 'credit_10' },
    shared(forger, code())], 'shop-key');
  assert.deepEqual(answer, { stored: 2, refused: 1 });
  // The forger does not become an owner, and the owner keeps its counts.
  assert.equal((await referralPost(shop, { v: 1, write_key: 'shop-key', code: c, install: forger })).status, 403);
  assert.equal((await referralPost(shop, { v: 1, write_key: 'shop-key', code: c, install: owner })).status, 200);
  assert.equal(sql(shop.db, `SELECT count(*) AS n FROM events WHERE code = '${c}' AND install = '${forger}'`)[0].n, 0);
  const m = (await request(shop, 'GET', '/metrics')).text;
  assert.match(m, /loopwise_ingest_rejects_total\{reason="code_owner"\} [1-9]/);
});

test('self_referral_by_the_registered_referrer_or_its_install_is_not_counted', async () => {
  const owner = randomInstall(), c = code(), me = hostId();
  await post(shop, [shared(owner, c)], 'shop-key');
  const reg = await request(shop, 'POST', '/v1/referrers', { headers: { Authorization: `Bearer ${SECRET}` },
    body: JSON.stringify({ v: 1, site: 'shop', code: c, referrer: me }) });
  assert.equal(reg.status, 200, reg.text);
  const other = await request(shop, 'POST', '/v1/referrers', { headers: { Authorization: `Bearer ${SECRET}` },
    body: JSON.stringify({ v: 1, site: 'shop', code: c, referrer: hostId() }) });
  assert.equal(other.status, 409, 'a code has one referrer');
  const self = await referee(shop, conversion(c, me));
  assert.equal(self.status, 200, self.text);
  assert.equal(self.json.state, 'rejected');
  assert.equal(self.json.reason, 'self_referral');
  const sameInstall = await referee(shop, conversion(c, hostId(), { install: owner }));
  assert.equal(sameInstall.json.reason, 'self_referral');
  assert.equal((await shopAttributions()).find((a) => a.code === c), undefined);
  // The referrer's records are marked for the trainer.
  assert.equal(sql(shop.db, `SELECT count(*) AS n FROM flags WHERE site = 'shop' AND kind = 'install' AND value = '${owner}'`)[0].n, 1);
});

test('one_reward_per_referee_across_codes', async () => {
  const id = hostId(), c1 = code(), c2 = code();
  assert.equal((await referee(shop, conversion(c1, id))).json.state, 'counted');
  const second = await referee(shop, conversion(c2, id));
  assert.equal(second.json.state, 'rejected');
  assert.equal(second.json.reason, 'repeat_referee');
  assert.equal((await shopAttributions()).find((a) => a.code === c2), undefined);
});

test('conversions_past_the_velocity_limit_wait_for_review_then_count_once_approved', async () => {
  const c = code();
  for (let i = 0; i < 3; i++) assert.equal((await referee(shop, conversion(c, hostId()))).json.state, 'counted');
  const fourth = await referee(shop, conversion(c, hostId()));
  assert.equal(fourth.json.state, 'flagged');
  assert.equal(fourth.json.reason, 'velocity');
  const fifth = await referee(shop, conversion(c, hostId()));
  assert.equal((await shopAttributions()).find((a) => a.code === c).conversions, 3, 'flagged ones stay out');
  const list = await request(shop, 'GET', '/v1/reviews?site=shop');
  assert.equal(list.status, 200, list.text);
  const mine = list.json.reviews.filter((x) => x.code === c);
  assert.deepEqual(mine.map((x) => x.id).sort(), [fourth.json.id, fifth.json.id].sort());
  assert.equal(mine[0].reason, 'velocity');
  const polled = Date.now() - 1;
  const decide = (id, decision) => request(shop, 'POST', `/v1/reviews/${id}?site=shop`, { body: JSON.stringify({ decision }) });
  assert.equal((await decide(fourth.json.id, 'approve')).status, 200);
  assert.equal((await decide(fifth.json.id, 'reject')).status, 200);
  assert.equal((await decide(fifth.json.id, 'approve')).status, 409, 'decided once');
  assert.equal((await decide(999999999, 'approve')).status, 404);
  assert.equal((await decide(fourth.json.id, 'maybe')).json.field, 'decision');
  assert.equal((await shopAttributions()).find((a) => a.code === c).conversions, 4);
  assert.ok((await shopAttributions(polled)).find((a) => a.code === c), 'an approval is new for a host polling since');
  assert.equal((await request(shop, 'GET', '/v1/reviews?site=shop')).json.reviews.filter((x) => x.code === c).length, 0);
  // Reviews are read-protected like the reward list.
  assert.equal((await request(shop, 'GET', '/v1/reviews?site=shop', { headers: { 'X-Forwarded-For': '203.0.113.9' } })).status, 403);
  // The code is marked for the trainer.
  assert.equal(sql(shop.db, `SELECT count(*) AS n FROM flags WHERE site = 'shop' AND kind = 'code' AND value = '${c}'`)[0].n, 1);
});

test('referral_reads_use_the_coded_events_index', { skip: sqliteOnly }, async () => {
  const plan = (q) => spawnSync('sqlite3', [demo.db, `EXPLAIN QUERY PLAN ${q}`], { encoding: 'utf8' }).stdout;
  const one = plan("SELECT COUNT(DISTINCT install) FROM events WHERE site = 'default' AND code = 'ABCDEF' AND kind = 'conversion'");
  assert.match(one, /USING (COVERING )?INDEX events_code/, one);
  const all = plan("SELECT code, install, MIN(t) FROM events WHERE site = 'default' AND code IS NOT NULL AND kind = 'conversion' GROUP BY code, install");
  assert.match(all, /USING (COVERING )?INDEX events_code/, all);
});

test('a_schema_v2_file_gets_the_coded_events_index_and_answers_its_old_referrals', { skip: sqliteOnly }, async () => {
  const dir = tempDir();
  const db = join(dir, 'old.db');
  const made = spawnSync('sqlite3', [db], { input: readFileSync(join(root, 'tests/ingest/fixtures/schema-v2.sql')) });
  assert.equal(made.status, 0, String(made.stderr));
  const server = await startServer({ dir, db, args: ['--retention-days', '0'] });
  try {
    assert.equal(sql(db, 'PRAGMA user_version')[0].user_version, storeSchemaVersion);
    assert.equal(sql(db, "SELECT COUNT(*) AS n FROM sqlite_master WHERE name = 'events_code'")[0].n, 1);
    // The fixture's copy event: code K7QX2M9PLA from install 0f1e…f0.
    const r = await referral(server, 'K7QX2M9PLA', '0f1e2d3c4b5a69788796a5b4c3d2e1f0');
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.conversions, 0);
    // Schema 6's code owners come from the shares already stored: the fixture's install owns it.
    assert.equal((await referral(server, 'K7QX2M9PLA', randomInstall())).status, 403);
    assert.deepEqual(sql(db, 'SELECT site, code, install FROM code_owners'),
      [{ site: 'default', code: 'K7QX2M9PLA', install: '0f1e2d3c4b5a69788796a5b4c3d2e1f0' }]);
  } finally {
    await server.cleanup();
  }
});

// The trainer's loop on disk: a temporary folder with <models>/default, and run(cmd, args) for the
// built tools (its exit status checked, its output returned); null when the tools are not built.
function trainerBench() {
  const tools = join(binary, '../../tools');
  if (!existsSync(join(tools, 'loopwise-train'))) return null;
  const dir = tempDir();
  const site = join(dir, 'models', 'default');
  mkdirSync(site, { recursive: true });
  const run = (cmd, args) => {
    const r = spawnSync(join(tools, cmd), args, { encoding: 'utf8' });
    assert.equal(r.status, 0, `${cmd}: ${r.stderr}`);
    return r.stdout;
  };
  return { dir, site, run };
}

// A server on <dir>/models answers GET /v1/model with the site's current.lwm and the ETag the
// trainer printed (lw_model_etag); returns that ETag.
async function servesWhatTheTrainerPromoted(dir, site, trainerOut) {
  const trainerTag = trainerOut.match(/etag=("[^"]*")/)[1];
  const server = await startServer({ dir, args: ['--models-dir', join(dir, 'models')] });
  try {
    const r = await getModel(server, { Origin: ORIGIN });
    assert.equal(r.status, 200);
    assert.equal(r.headers.etag, trainerTag);
    assert.ok(r.body.equals(readFileSync(join(site, 'current.lwm'))));
  } finally {
    await server.cleanup();
  }
  return trainerTag;
}

test('a_model_promoted_by_the_trainer_is_served_with_the_trainers_etag', async (t) => {
  // The whole loop on disk: simulator logs -> loopwise-train --promote-into <models>/<site> ->
  // GET /v1/model. The trainer prints the ETag it computed (lw_model_etag); the server must send
  // the same one for the file it renamed into place.
  const tb = trainerBench();
  if (!tb) return t.skip('tools not built (LW_BUILD_TOOLS=OFF)');
  const { dir, site, run } = tb;
  run('loopwise-sim', ['--policy', 'learning', '--config', join(root, 'models/referral.json'), '--users', '2000', '--days', '120',
    '--seed', '3', '--workdir', dir, '--vw-out', join(dir, 'logs.vw'), '--quiet']);
  const out = run('loopwise-train', ['--data', join(dir, 'logs.vw'), '--config', join(root, 'models/referral.json'), '--model-id', '7',
    // --margin 1: this test is about serving what the trainer promotes, not about the promotion
    // gate (on these simulator logs the exploring model is below always showing one variant)
    '--seed', '1', '--quiet', '--margin', '1', '--promote-into', site]);
  assert.match(out, /promoted=yes/, out);
  assert.match(await servesWhatTheTrainerPromoted(dir, site, out), /^"m7-/);
});

test('channel_rankings_go_live_alone_when_the_decisions_are_refused_and_are_served', async (t) => {
  // Issue 11: a ranking reorders the share options, which the off-policy gate cannot see, so it
  // carries its own evidence (learn.h lw_channel_ranking). The simulator's referees come back
  // through its in-process ingest; the trainer's candidate is refused (no held-out set could be
  // big enough here) while no model decides, so the candidate goes live as a channels-only model
  // that decides by the rules, and the server serves exactly that file.
  const tb = trainerBench();
  if (!tb) return t.skip('tools not built (LW_BUILD_TOOLS=OFF)');
  const { dir, site, run } = tb;
  const program = join(root, 'src/tools/sim-program.json');
  run('loopwise-sim', ['--policy', 'learning', '--via-ingest', '--config', program, '--users', '2000', '--days', '120',
    '--seed', '3', '--retrain-days', '0', '--workdir', dir, '--quiet']);
  const now = String(1767225600000 + 120 * 86400000);
  const out = run('loopwise-train', ['--data', join(dir, 'sim-outcomes.db'), '--config', program, '--now', now,
    '--model-id', '8', '--seed', '1', '--min-holdout', '1000000000', '--quiet', '--promote-into', site]);
  assert.match(out, /promoted=channels reason="only \d+ held-out decisions/, out);
  // four personas: none has shares enough to show its own order, the site's shares together do,
  // so every persona gets the site's order
  assert.match(out, /channels site: email=[^;]*; first vs the others \+[\d.]+ \(lower end \+[\d.]+\): shown/, out);
  assert.equal(out.match(/^channels persona-\d.*: the site's order carried$/gm)?.length, 4, out);
  const log = readFileSync(join(site, 'promotions.log'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.deepEqual([log.length, log[0].promoted, log[0].channels_only], [1, false, true]);
  const meta = JSON.parse(run('loopwise-model', ['show', join(site, 'current.lwm')]).match(/^metadata: (.*)$/m)[1]);
  assert.equal(meta.channels_only, true);
  assert.deepEqual(Object.values(meta.enough_data), [false, false, false], 'the rules decide');
  assert.deepEqual(Object.keys(meta.channel_evidence).map((k) => meta.channel_evidence[k].carried ?? 'site row'),
    ['site', 'site', 'site', 'site', 'site row']);
  assert.equal(meta.channel_evidence.site.order[0], 'email');
  await servesWhatTheTrainerPromoted(dir, site, out);
});
