// console-fixture.mjs: what the console's tests share (tests/ingest/console.test.mjs and
// tests/web/console.test.mjs): the password hash format, the Wilson formula written out, a known
// dataset stored through the real endpoints, and the server config.
import assert from 'node:assert/strict';
import { pbkdf2Sync, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { postBatch, request, randomInstall, root } from './helpers.mjs';

export const SECRET = 'shop-secret-0123456789abcdef';
export const CONSOLE_SECRET = 'console-secret-0123456789abcdef0123456789';
export const PASSWORD = 'correct horse battery staple';

// The documented hash format: pbkdf2-sha256$iterations$salt$hash, salt and hash base64.
export function hashPassword(password, iterations = 20000) {
  const salt = randomBytes(16);
  const hash = pbkdf2Sync(password, salt, iterations, 32, 'sha256');
  return `pbkdf2-sha256$${iterations}$${salt.toString('base64')}$${hash.toString('base64')}`;
}

// The 95% Wilson score interval, written out from the formula (not the server's code).
export function wilson(k, n) {
  if (n === 0) return [0, 1];
  const z = 1.959963984540054, p = k / n;
  const denom = 1 + (z * z) / n;
  const centre = (p + (z * z) / (2 * n)) / denom;
  const half = (z / denom) * Math.sqrt((p * (1 - p)) / n + (z * z) / (4 * n * n));
  return [Math.max(0, centre - half), Math.min(1, centre + half)];
}

// A known dataset: each install gets one decision (variant, mode, segment); decisions whose
// variant is a prompt are shown; some share a code, each share through a channel with its
// token (wire v2); the host reports conversions and retention for some codes, with the token
// the referee landed with; for some converted decisions no landing is recorded (the referee's
// device gave no consent), so a row's conversions can exceed its landings. expected() derives
// the funnel from this plan alone.
export const CHANNELS = ['email', 'whatsapp', 'copy', 'linkedin'];
export function plan() {
  const variants = ['credit_10', 'month_free', 'none'];
  const modes = ['rules', 'model', 'holdout'];
  const rows = [];
  for (let i = 0; i < 60; i++) {
    const variant = variants[i % 3];
    const prompt = variant !== 'none';
    const shared = prompt && i % 4 !== 0;
    const converted = shared && i % 5 < 3 ? 1 + (i % 2) : 0; // referees
    const retained = converted && i % 7 !== 0 ? 1 : 0;
    const unlanded = converted > 0 && i % 6 === 1; // converted, its landings never recorded
    rows.push({ i, install: randomInstall(), decision: randomBytes(8).toString('hex'), variant,
      mode: modes[Math.floor(i / 3) % 3], segment: i % 2 ? 'power' : 'casual',
      code: 'C' + randomBytes(5).toString('hex').toUpperCase(), prompt, shared, converted, retained, unlanded,
      channel: shared ? CHANNELS[i % CHANNELS.length] : '', token: randomBytes(16).toString('hex') });
  }
  return rows;
}

export function expected(rows, keyOf) {
  const out = new Map();
  for (const r of rows) {
    const k = keyOf(r);
    const a = out.get(k) || { key: k, decisions: 0, prompts: 0, shares: 0, landings: 0, conversions: 0, retained: 0, referred: 0, retainedCustomers: 0 };
    a.decisions++;
    a.prompts += r.prompt ? 1 : 0;
    a.shares += r.shared ? 1 : 0;
    a.landings += r.converted && !r.unlanded ? 1 : 0;
    a.conversions += r.converted ? 1 : 0;
    a.retained += r.retained ? 1 : 0;
    a.referred += r.converted;
    a.retainedCustomers += r.retained;
    out.set(k, a);
  }
  return out;
}

// Store the plan through the real endpoints: the devices' batches, then the host's reports.
export async function load(server, rows, writeKey = 'shop-key') {
  const now = Date.now();
  const events = [];
  for (const r of rows) {
    const t = now - 60000 + r.i;
    events.push({ kind: 'decision', t, install: r.install, decision: r.decision, action: r.variant, p: 0.5,
      mode: r.mode, reason: 'test', segment: r.segment });
    if (r.prompt) events.push({ kind: 'impression', t: t + 1, install: r.install, decision: r.decision, action: r.variant });
    if (r.shared) events.push({ kind: r.channel === 'copy' ? 'copy' : 'share', t: t + 2, install: r.install, decision: r.decision,
      action: r.variant, code: r.code, token: r.token, channel: r.channel });
  }
  for (let i = 0; i < events.length; i += 200) {
    const batch = { v: 2, batch_id: 'b-' + randomBytes(8).toString('hex'), write_key: writeKey, sent_at: now, events: events.slice(i, i + 200) };
    const res = await request(server, 'POST', '/v1/outcomes', { headers: { 'Content-Type': 'text/plain' }, body: JSON.stringify(batch) });
    assert.equal(res.status, 200, res.text);
  }
  const landings = [];
  for (const r of rows) for (let j = 0; j < r.converted; j++) {
    const referee = `${r.code}-ref-${j}`;
    if (!r.unlanded) landings.push({ kind: 'landing', t: now - 1000, install: randomInstall(), decision: randomBytes(8).toString('hex'), code: r.code, token: r.token });
    const conv = await referee_(server, { v: 2, site: 'shop', code: r.code, referee, event: 'conversion', token: r.token });
    assert.equal(conv.status, 200, conv.text);
    if (j < r.retained) {
      const ret = await referee_(server, { v: 2, site: 'shop', code: r.code, referee, event: 'retained_30' });
      assert.equal(ret.status, 200, ret.text);
    }
  }
  if (landings.length) {
    const batch = { v: 2, batch_id: 'b-' + randomBytes(8).toString('hex'), write_key: writeKey, sent_at: now, events: landings };
    assert.equal((await request(server, 'POST', '/v1/outcomes', { headers: { 'Content-Type': 'text/plain' }, body: JSON.stringify(batch) })).status, 200);
  }
}

// The stage a rate is over (the report's rule): the stage before, except conversions, over
// shares (a conversion needs no recorded landing).
export const rateBase = (stages, i) => (stages[i] === 'conversions' ? 'shares' : stages[i - 1]);

// The report's channels table from the plan: the shared decisions by their share's channel,
// from the shares stage on (a channel is a share's).
export const expectedChannels = (rows) => expected(rows.filter((r) => r.shared), (r) => r.channel);

export const referee_ = (server, body) => request(server, 'POST', '/v1/referees', {
  headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${SECRET}` }, body: JSON.stringify(body),
});

export function consoleConfig(dir, extra = {}) {
  const path = join(dir, 'ingest.json');
  writeFileSync(path, JSON.stringify({
    sites: [{ id: 'shop', write_key: 'shop-key', origins: ['http://localhost:*'], secret_keys: [SECRET],
      integrity: { velocity: 'flag', velocity_max: 2, velocity_window_s: 86400 } }],
    console_users: `pm:${hashPassword(PASSWORD)}, other:${hashPassword('another password')}`,
    console_secret: CONSOLE_SECRET,
    console_config: join(root, 'models/referral.json'),
    ...extra,
  }));
  return path;
}


// The fairness audit's dataset (tests/ingest/console-fairness.test.mjs, tests/web/console-fairness.test.mjs).
// FNV-1a (32 bit): the runtime's hash of a feature name ("plan^free") in a decision's x.
export function fnv1a(s) {
  let h = 2166136261;
  for (const b of Buffer.from(s, 'utf8')) h = Math.imul(h ^ b, 16777619) >>> 0;
  return h;
}

// value -> [decisions, prompts, shares]; enterprise has none. Best exposure: team (1.0); free
// (0.5) is below 0.8 of it. Best share rate: free and pro (0.5); team (0.2) is below.
export const FAIRNESS_PLAN = { free: [20, 10, 5], pro: [20, 17, 8], team: [10, 10, 2], enterprise: [0, 0, 0] };
export const FAIRNESS_FLAGS = { free: ['exposure'], pro: [], team: ['share'], enterprise: [] };
// Store it through the real endpoint: decisions whose x carries plan^<value>, shares by copy.
export async function loadFairness(server) {
  const events = [], now = Date.now();
  for (const [plan, [n, prompts, shares]] of Object.entries(FAIRNESS_PLAN)) {
    for (let i = 0; i < n; i++) {
      const install = randomInstall(), decision = randomBytes(8).toString('hex'), prompt = i < prompts;
      const action = prompt ? 'credit_10' : 'none';
      events.push({ kind: 'decision', t: now - 1000 + i, install, decision, action, p: 0.5, mode: 'rules', reason: 'test',
        x: [[fnv1a(`plan^${plan}`), 1], [fnv1a('seats^1'), 1]] });
      if (prompt && i < shares)
        events.push({ kind: 'copy', t: now - 500 + i, install, decision, action, code: 'F' + randomBytes(5).toString('hex').toUpperCase() });
    }
  }
  for (let i = 0; i < events.length; i += 200) {
    const r = await postBatch(server, { v: 1, batch_id: 'f-' + randomBytes(8).toString('hex'), write_key: 'shop-key', sent_at: now, events: events.slice(i, i + 200) });
    assert.equal(r.status, 200, r.text);
  }
}
