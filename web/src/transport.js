// transport.js: move the engine's outbox to the ingest server, at least once.
//
// A batch leaves the engine through takeBatch() inside the same storage transaction that saves
// the snapshot without its records, and is stored as a pending record of its own (store.js);
// from then on it is ours until the server answers 2xx. A retry sends the very same body, so its
// batch_id lets the server store it once however often it arrives. Bodies are text/plain, which
// keeps fetch and sendBeacon free of a CORS preflight.
//
// Every answer's body is read: Chromium releases a keepalive request's share of its 64 KiB
// in-flight quota only then, and with the bodies left unread every fetch failed after 65,222
// bytes until the page was reloaded.
//
// Nothing leaves while the engine does not collect (no consent, a privacy signal): every drain
// asks it first, and deletes the pending batches when it does not.
//
// Failures: network errors, 5xx and 429 retry with exponential backoff (1 s to 5 min) and
// proportional jitter (the delay is multiplied by 0.5..1.5), never sooner than Retry-After. 401,
// 403 and 413 are a site's misconfiguration that will be fixed: retried likewise, the delay
// growing to 6 h, until the batch is 7 days old. Any other 4xx means the server will never take
// the batch: dropped with one console.warn. Pending storage holds at most MAX_PENDING batches;
// beyond it the oldest are dropped. Drops are counted (st.dropped, in
// records) and the last failure kept (st.error) for Loopwise.status(). Nothing here throws into
// the host page.
const MAX_BYTES = 60000; // under the 64 KiB in-flight limit of keepalive fetch and sendBeacon
const MAX_PENDING = 16; // batches: at most 960 KB of storage
const BASE_MS = 1000, MAX_MS = 300000, LONG_MS = 216e5, KEEP_MS = 6048e5;

const NOT_FOUND = 6; // LW_ERR_NOT_FOUND: the held decision was answered already (another tab)

// The records in a batch body (the engine starts each with {"kind").
const records = (body) => body.split('{"kind"').length - 1;

export function createTransport({ engine, store, endpoint, writeKey, warn }) {
  let checking = 0, recheck = 0; // an approval check under way; a call came during it
  // The install's approval key (README "Approval requests"), drawn once and kept in localStorage
  // beside the widget's other keys (loopwise.js).
  const KEY = 'loopwise:' + writeKey + ':k';
  const approvalKey = () => {
    let k = localStorage.getItem(KEY);
    if (!k) localStorage.setItem(KEY, k = [...crypto.getRandomValues(new Uint8Array(16))].map((b) => (b + 256).toString(16).slice(1)).join(''));
    return k;
  };
  const url = endpoint + '/v1/outcomes';
  const beaconed = new Set();
  const st = { dropped: 0, error: null };
  let timer = 0, sending = 0, again = 0, tries = 0;
  // The pending batches ({key, id, body}, oldest first) as of the last transaction: what a
  // flush sends and a page hide can beacon.
  let mirror = [];

  // Inside a store transaction: move every record out of the engine into pending batches, then
  // keep the newest MAX_PENDING of them (the oldest dropped, counted). Without collection (the
  // engine then has nothing to take), delete them all.
  function drain(now, os, pending) {
    // A decision the approval rule holds: its request first (logged only with consent given).
    // Whatever fails there (no storage for the key) never holds up the records.
    try {
      const held = engine.approval(3, '', '', now);
      if (held) engine.approval(0, held, approvalKey(), now);
    } catch { /* the request waits for the next drain */ }
    const off = !engine.collecting();
    for (let batch, i = 0; (batch = engine.takeBatch(writeKey, now, MAX_BYTES)); i++) pending.push(store.put(os, batch, now, i));
    for (const b of pending.splice(0, off ? 1e9 : pending.length - MAX_PENDING)) {
      st.dropped += off ? 0 : records(b.body);
      os.delete(b.key);
    }
    mirror = pending;
  }

  // POST a body (a string, or an object sent with v and the write key) to a path; resolves to
  // [status, answer text], status 0 without an answer.
  const post = (path, body) => fetch(endpoint + path, {
    method: 'POST', body: typeof body == 'string' ? body : JSON.stringify({ v: 1, write_key: writeKey, ...body }), keepalive: true, credentials: 'omit',
  }).then(async (r) => [r.status, await r.text().catch(() => ''), r], () => [0, '']);

  async function flush() {
    clearTimeout(timer);
    timer = 0;
    if (sending) { again = 1; return; }
    sending = 1;
    let r = null, s = 0; // the answer that made this flush stop, if any: its Retry-After counts
    try {
      await store.tx(drain, 1);
      for (const batch of mirror) {
        if (!engine.collecting()) break; // refused while this flush was under way
        let text;
        [s, text, r] = await post('/v1/outcomes', batch.body);
        const c = s / 100 | 0;
        if (c !== 2) {
          st.error = s ? 'HTTP ' + s + ' ' + text.slice(0, 200) : 'no answer from ' + endpoint;
          // Retried: no answer, 5xx, 429, and 401/403/413 for a batch taken less than 7 days ago
          // (its key holds the time: store.js). Any other 4xx: the server will never take it.
          if (c !== 4 || s === 429 || /^4(01|03|13)$/.test(s) && !(Date.now() - parseInt(batch.key.split(':o:t')[1]) / 1000 > KEEP_MS)) throw 0;
          st.dropped += records(batch.body);
          warn('Loopwise: batch ' + batch.id + ' dropped: ' + st.error);
        } else tries = 0;
        store.del(batch.key);
        mirror = mirror.filter((x) => x !== batch);
      }
    } catch {
      // Retry with backoff (see the top). No timer is armed here: flush cleared it, and soon()
      // does not arm one while a flush is sending.
      let ms = Math.min(BASE_MS * 2 ** tries++, s === 429 || (s / 100 | 0) !== 4 ? MAX_MS : LONG_MS) * (0.5 + Math.random());
      const ra = r && r.headers.get('retry-after');
      if (ra) {
        const t = isNaN(ra) ? Date.parse(ra) - Date.now() : ra * 1000;
        if (t > ms) ms = Math.min(t, 3600000);
      }
      timer = setTimeout(flush, ms);
    } finally {
      sending = 0;
      if (again && !timer) { again = 0; soon(0); }
    }
  }

  // soon(): flush after a short debounce, unless a backoff is already waiting (it wins).
  function soon(ms = 300) {
    if (sending) again = 1;
    else if (!timer) timer = setTimeout(flush, ms);
  }

  // Page hidden or going away: no time for responses. Beacon each pending batch once per page;
  // the bodies stay pending and a later flush (this page or the next load) confirms them.
  function beacon() {
    try {
      for (const batch of engine.collecting() ? mirror : []) {
        if (beaconed.has(batch.key)) continue;
        if (!navigator.sendBeacon(url, batch.body)) break;
        beaconed.add(batch.key);
      }
    } catch { /* no sendBeacon: the batches wait for the next load */ }
  }
  // Hidden: beacon what is pending now, then what is still in the engine (the page is alive,
  // a transaction usually completes; on unload it may not, and the records wait for next load).
  function hide() {
    beacon();
    store.tx(drain, 1).then(beacon, () => {});
  }

  addEventListener('online', () => { tries = 0; flush(); });
  return {
    soon, drain, hide, beacon, st,
    // Records in the pending batches as of the last transaction.
    pending: () => mirror.reduce((n, b) => n + records(b.body), 0),
    // POST /v1/forget: true once the server answered (the pending batches are the caller's to
    // delete). POST /v1/referrals: this referrer's {code, conversions, landings}, or false.
    // The approval key goes too (a new identity draws a new one).
    forget(install) {
      mirror = [];
      try { localStorage.removeItem(KEY); } catch { /* storage disabled */ }
      return post('/v1/forget', { install }).then(([s]) => s === 200);
    },
    referrals: (code, install) => post('/v1/referrals', { code, install }).then(([s, text]) => s === 200 && JSON.parse(text)),
    // check(tz, done): the answer to the decision held for approval (README "Approval requests"):
    // POST /v1/approvals with the install's approval key in the body; an answer other than
    // 'pending' goes to the engine (in a store transaction), and an approval it lets show goes to
    // done (declined, expired: explain() says so). One check at a time; a call during one asks
    // again after it.
    check(tz, done) {
      const id = engine.approval(2, '', '', Date.now());
      if (checking) recheck = 1;
      else if (id) {
        checking = 1;
        post('/v1/approvals', { install: engine.installKey(), key: approvalKey() }).then(([s, text]) => {
          const a = s === 200 && (JSON.parse(text).answers.find((x) => x.decision === id) || {}).answer;
          return a && a !== 'pending' && store.tx((now) => JSON.parse(engine.approval(1, id, a, now, tz))).then((d) => d.prompt && done(d));
        }).catch((e) => e.status !== NOT_FOUND && warn('Loopwise: ' + e.message)).finally(() => {
          checking = 0;
          soon();
          if (recheck) { recheck = 0; this.check(tz, done); }
        });
      }
    },
  };
}
