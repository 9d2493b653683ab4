// forget.test.mjs: POST /v1/forget removes the data for good: from the tables, from the WAL and
// from free pages, by install key or by referral code. (That forgets share the writer's commits
// is tested in test_limits.c, where the store can be held still.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { startServer, postBatch, request, freshBatch, randomInstall, sql, sqliteOnly } from './helpers.mjs';

const forget = (server, body, headers = {}) =>
  request(server, 'POST', '/v1/forget', { headers: { 'Content-Type': 'text/plain', ...headers }, body: JSON.stringify(body) });

function batchFor(install, { code } = {}) {
  const b = freshBatch({ events: 5 });
  for (const e of b.events) {
    e.install = install;
    if (code && e.code) e.code = code;
  }
  return b;
}

// Every file of the database: the main file, its WAL and its shared-memory index.
function onDisk(db) {
  return ['', '-wal', '-shm'].filter((s) => existsSync(db + s)).map((s) => readFileSync(db + s));
}

test('a_forgotten_install_key_is_left_nowhere_on_disk_not_even_in_the_wal', { skip: sqliteOnly }, async () => {
  const server = await startServer({ args: ['--k-anonymity', '1'] });
  try {
    const me = randomInstall();
    const other = randomInstall();
    for (let i = 0; i < 20; i++) assert.equal((await postBatch(server, batchFor(me))).status, 200);
    assert.equal((await postBatch(server, batchFor(other))).status, 200);
    assert.ok(onDisk(server.db).some((b) => b.includes(me)), 'the key is on disk before the forget');
    const r = await forget(server, { v: 1, write_key: 'demo-site-key', install: me });
    assert.equal(r.status, 200);
    assert.deepEqual(r.json, { deleted: 100 });
    for (const b of onDisk(server.db)) assert.ok(!b.includes(me), 'a copy of the forgotten key is still on disk');
    assert.ok(onDisk(server.db).some((b) => b.includes(other)), 'the other install is kept');
    assert.equal((await postBatch(server, batchFor(other))).status, 200, 'writes go on after a forget');
  } finally {
    await server.cleanup();
  }
});

test('a_referrer_can_forget_its_code_and_every_record_carrying_it', async () => {
  const server = await startServer({ args: ['--k-anonymity', '1'] });
  try {
    const me = randomInstall();
    const stranger = randomInstall();
    const code = 'FORGETME42';
    assert.equal((await postBatch(server, batchFor(me, { code }))).status, 200); // share + copy
    const referee = freshBatch({ events: 1 });
    referee.events = [{ kind: 'conversion', t: Date.now() - 500, install: randomInstall(), code }];
    assert.equal((await postBatch(server, referee)).status, 200);
    const coded = () => sql(server.db, `SELECT count(*) AS n FROM events WHERE code = '${code}'`)[0].n;
    const before = coded();
    assert.ok(before >= 2);
    // Only the install that shared the code may forget it.
    const denied = await forget(server, { v: 2, write_key: 'demo-site-key', install: stranger, code });
    assert.equal(denied.status, 403);
    assert.equal(coded(), before);
    assert.equal((await forget(server, { v: 2, write_key: 'demo-site-key', install: me, code: 'bad code' })).json.field, 'code');
    const r = await forget(server, { v: 2, write_key: 'demo-site-key', install: me, code });
    assert.equal(r.status, 200);
    assert.deepEqual(r.json, { deleted: before });
    assert.equal(coded(), 0);
    assert.ok(sql(server.db, `SELECT count(*) AS n FROM events WHERE install = '${me}'`)[0].n > 0,
      'forgetting a code keeps the install\'s other records');
    for (const b of onDisk(server.db)) assert.ok(!b.includes(code), 'a copy of the forgotten code is still on disk');
    // Version 1 requests are still accepted.
    assert.equal((await forget(server, { v: 1, write_key: 'demo-site-key', install: me })).status, 200);
  } finally {
    await server.cleanup();
  }
});
