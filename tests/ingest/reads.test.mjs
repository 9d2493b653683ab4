// reads.test.mjs: what the public and read-protected reads may cost: /v1/stats stays bounded
// however many codes exist, and referral reads use the coded-events index.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, postBatch, stats, freshBatch, randomInstall } from './helpers.mjs';

test('stats_list_a_bounded_number_of_codes_and_say_how_many_were_left_out', async () => {
  const server = await startServer({ args: ['--k-anonymity', '1', '--rate-limit', 'off'] });
  try {
    const now = Date.now();
    for (let b = 0; b < 3; b++) {
      const batch = freshBatch({ events: 1 });
      batch.events = Array.from({ length: 100 }, (_, i) => ({
        kind: 'share', t: now - 1000 + i, install: randomInstall(), decision: 'a1b2c3d4e5f60718', action: 'credit_10',
        code: `C${b}${String(i).padStart(5, '0')}`,
      }));
      // one code with more installs than any other: it must be listed (its owner's share and two
      // referees' landings; a share of it from another install would be refused as code_owner)
      if (b === 0) for (let i = 0; i < 3; i++) Object.assign(batch.events[i], { code: 'TOPCODE1', kind: i ? 'landing' : 'share' });
      const r = await postBatch(server, batch);
      assert.equal(r.status, 200, r.text);
    }
    const s = await stats(server);
    assert.equal(s.outcomes, 300);
    assert.ok(s.codes.length <= 100, `${s.codes.length} code rows in one answer`);
    const top = s.codes.find((c) => c.code === 'TOPCODE1');
    assert.ok(top, 'the code with the most installs is listed');
    assert.equal(top.installs, 3);
    assert.deepEqual(s.codes.map((c) => c.code), s.codes.map((c) => c.code).sort(), 'rows stay ordered by code');
    assert.equal(s.codes_left_out, 298 - s.codes.length);
  } finally {
    await server.cleanup();
  }
});
