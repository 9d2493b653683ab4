// privacy.test.mjs: k-anonymous stats, retention, deletion by install key.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, postBatch, request, stats, freshBatch, randomInstall, sql } from './helpers.mjs';

// A batch whose five events all come from one install and carry the given action/segment.
function batchFor(install, { action = 'credit_10', segment, code } = {}) {
  const b = freshBatch();
  for (const e of b.events) {
    e.install = install;
    if (e.action !== 'none') e.action = action;
    if (segment) e.segment = segment;
  }
  // A referee's landing with the code: many installs may land with one code, while only its
  // owner may share it.
  if (code) b.events[2] = { kind: 'landing', t: b.events[2].t, install, code };
  return b;
}

test('stats_hide_rows_with_fewer_than_k_distinct_installs', async () => {
  const server = await startServer({ args: ['--k-anonymity', '3'] });
  try {
    const installs = [randomInstall(), randomInstall(), randomInstall()];
    for (const i of installs.slice(0, 2)) await postBatch(server, batchFor(i, { action: 'alpha', segment: 'seg_a', code: 'CODEAAA1' }));
    // Many events from two installs are still two installs.
    await postBatch(server, batchFor(installs[0], { action: 'alpha', segment: 'seg_a', code: 'CODEAAA1' }));
    let s = await stats(server);
    assert.equal(s.k_anonymity, 3);
    assert.equal(s.outcomes, 15, 'the total stays visible');
    assert.equal(s.variants.find((v) => v.action === 'alpha'), undefined);
    assert.equal(s.segments.find((v) => v.segment === 'seg_a'), undefined);
    assert.equal(s.codes.find((v) => v.code === 'CODEAAA1'), undefined);
    assert.ok(s.suppressed.variants >= 1 && s.suppressed.segments >= 1 && s.suppressed.codes >= 1);
    await postBatch(server, batchFor(installs[2], { action: 'alpha', segment: 'seg_a', code: 'CODEAAA1' }));
    s = await stats(server);
    const alpha = s.variants.find((v) => v.action === 'alpha');
    assert.equal(alpha.installs, 3);
    assert.equal(alpha.decisions, 4);
    assert.equal(s.segments.find((v) => v.segment === 'seg_a').installs, 3);
    assert.equal(s.codes.find((v) => v.code === 'CODEAAA1').landings, 4);
  } finally {
    await server.cleanup();
  }
});

test('stats_cannot_be_undone_by_subtracting_visible_rows_from_the_total', async () => {
  // Every record carries an action, so outcomes minus the visible variants' counts would be
  // exactly the hidden variant's counts if it were the only one hidden.
  const server = await startServer({ args: ['--k-anonymity', '3'] });
  try {
    for (let i = 0; i < 3; i++) await postBatch(server, batchFor(randomInstall(), { action: 'big_a', segment: 'seg_x' }));
    for (let i = 0; i < 4; i++) await postBatch(server, batchFor(randomInstall(), { action: 'big_b', segment: 'seg_x' }));
    await postBatch(server, batchFor(randomInstall(), { action: 'lonely', segment: 'seg_x' }));
    const s = await stats(server);
    assert.equal(s.outcomes, 40, 'the total stays');
    assert.equal(s.variants.find((v) => v.action === 'lonely'), undefined);
    const kinds = ['decisions', 'impressions', 'shares', 'copies', 'dismissals', 'landings', 'conversions'];
    const visible = s.variants.reduce((n, v) => n + kinds.reduce((m, k) => m + v[k], 0), 0);
    // The 'none' decisions of every batch carry action 'none': a variant of 8 installs, shown.
    const hiddenRows = s.suppressed.variants;
    assert.ok(hiddenRows === 0 || hiddenRows >= 2, `one hidden row can be recovered by subtraction: ${JSON.stringify(s)}`);
    assert.notEqual(s.outcomes - visible, 5, 'the lonely variant is recovered by subtraction');
  } finally {
    await server.cleanup();
  }
});

test('retention_deletes_batches_received_longer_ago_than_the_period', async () => {
  // 0.0001 days is 8.64 s: the first batch expires, the second (posted 10 s later) does not,
  // with several seconds of margin either way for a busy machine.
  const server = await startServer({ args: ['--retention-days', '0.0001', '--purge-interval-s', '1', '--k-anonymity', '1'] });
  try {
    const old = freshBatch();
    const day = 86400000;
    old.events.forEach((e) => { e.t = Date.now() - 40 * day; }); // event time does not matter
    assert.deepEqual((await postBatch(server, old)).json, { stored: 5, refused: 0 });
    await new Promise((r) => setTimeout(r, 10000));
    const young = freshBatch();
    young.events.forEach((e) => { e.t = Date.now() - 400 * day; });
    assert.deepEqual((await postBatch(server, young)).json, { stored: 5, refused: 0 });
    let s;
    for (let i = 0; i < 50; i++) {
      s = await stats(server);
      if (s.outcomes === 5) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(s.outcomes, 5, 'the expired batch should be purged, the young one kept');
    assert.equal(s.batches, 1);
    assert.equal(sql(server.db, `SELECT count(*) AS n FROM batches WHERE batch_id = '${young.batch_id}'`)[0].n, 1);
    // The expired batch's install key leaves the code owners with it; the young one's stays.
    const owners = sql(server.db, 'SELECT install FROM code_owners').map((r) => r.install);
    assert.deepEqual(owners, [young.events[0].install]);
    const metrics = (await request(server, 'GET', '/metrics')).text;
    assert.match(metrics, /loopwise_ingest_deleted_events_total\{cause="retention"\} 5/);
  } finally {
    await server.cleanup();
  }
});

test('an_install_can_delete_its_records_by_its_install_key', async () => {
  const server = await startServer({ args: ['--k-anonymity', '1'] });
  try {
    const me = randomInstall();
    const other = randomInstall();
    await postBatch(server, batchFor(me));
    await postBatch(server, batchFor(me));
    await postBatch(server, batchFor(other));
    const forget = (body, headers = {}) => request(server, 'POST', '/v1/forget', { headers: { 'Content-Type': 'text/plain', ...headers }, body: JSON.stringify(body) });
    assert.equal((await forget({ v: 1, write_key: 'nope-key', install: me })).status, 401);
    assert.equal((await forget({ v: 1, write_key: 'demo-site-key', install: me }, { Origin: 'https://evil.example' })).status, 403);
    assert.equal((await forget({ v: 1, write_key: 'demo-site-key', install: 'XYZ' })).json.field, 'install');
    const r = await forget({ v: 1, write_key: 'demo-site-key', install: me }, { Origin: 'http://localhost:3000' });
    assert.equal(r.status, 200);
    assert.deepEqual(r.json, { deleted: 10 });
    assert.equal(r.headers['access-control-allow-origin'], 'http://localhost:3000');
    assert.equal(sql(server.db, `SELECT count(*) AS n FROM events WHERE install = '${me}'`)[0].n, 0);
    assert.equal(sql(server.db, `SELECT count(*) AS n FROM code_owners WHERE install = '${me}'`)[0].n, 0, 'the install key leaves the code owners too');
    assert.equal(sql(server.db, `SELECT count(*) AS n FROM events WHERE install = '${other}'`)[0].n, 5);
    assert.equal((await stats(server)).outcomes, 5);
  } finally {
    await server.cleanup();
  }
});
