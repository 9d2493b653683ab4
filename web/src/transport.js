// transport.js: move the engine's outbox to the ingest server, at least once.
//
// A batch leaves the engine through takeBatch() and from then on is ours: it is written to
// localStorage (key <prefix>o, a JSON array of batch bodies) before the snapshot that no longer
// holds its records, and it stays there until the server answers 2xx. A retry sends the very same
// body, so its batch_id lets the server store it once however often it arrives. Bodies are
// text/plain, which keeps fetch and sendBeacon free of a CORS preflight.
//
// Failures: network errors, 5xx and 429 retry with exponential backoff and proportional jitter
// (the delay is multiplied by 0.5..1.5), never sooner than Retry-After; any other 4xx means the
// server will never take the batch, so it is dropped with one console.warn. Nothing here throws
// into the host page.
import { get, set, locked } from './store.js';

const MAX_BYTES = 60000; // under the 64 KiB in-flight limit of keepalive fetch and sendBeacon
const MAX_KEPT = 32;     // pending batches kept while offline (about 2 MB at worst)
const BASE_MS = 1000, MAX_MS = 300000;

export function createTransport({ engine, store, endpoint, writeKey, prefix, warn }) {
  const url = endpoint + '/v1/outcomes', P = prefix + 'o';
  const beaconed = new Set();
  let timer = 0, sending = 0, again = 0, tries = 0, mem = [];

  const pending = () => { try { return JSON.parse(get(P)) || mem; } catch { return mem; } };
  const keep = (list) => { if (!set(P, JSON.stringify(list))) mem = list; };

  // Move every record out of the engine into the pending list; call with the state synced.
  function drain(now) {
    const list = pending(), n = list.length;
    for (let b; (b = engine.takeBatch(writeKey, now, MAX_BYTES));) list.push(b);
    if (list.length > n) {
      keep(list.slice(-MAX_KEPT));
      store.save();
    }
    return list;
  }

  async function flush() {
    clearTimeout(timer);
    timer = 0;
    if (sending) { again = 1; return; }
    sending = 1;
    try {
      const list = await locked(() => { const now = Date.now(); store.sync(now); return drain(now); });
      for (const body of list) {
        let r = null;
        try { r = await fetch(url, { method: 'POST', body, keepalive: true, credentials: 'omit' }); } catch { /* offline, refused, CORS */ }
        const s = r ? r.status : 0;
        if (!(s >= 200 && s < 300) && !(s >= 400 && s < 500 && s !== 429)) return retry(r);
        if (s >= 300) warn('Loopwise: batch ' + (body.match(/"batch_id":"([^"]*)/) || [])[1] + ' dropped: HTTP ' + s + ' ' + (await r.text().catch(() => '')).slice(0, 200));
        tries = 0;
        await locked(() => keep(pending().filter((x) => x !== body)));
      }
    } catch (e) {
      retry(null);
    } finally {
      sending = 0;
      if (again && !timer) { again = 0; soon(0); }
    }
  }

  function retry(r) {
    let ms = Math.min(BASE_MS * 2 ** tries++, MAX_MS) * (0.5 + Math.random());
    const ra = r && r.headers.get('retry-after');
    if (ra) {
      const s = isNaN(ra) ? Date.parse(ra) - Date.now() : ra * 1000;
      if (s > ms) ms = Math.min(s, 3600000);
    }
    clearTimeout(timer);
    timer = setTimeout(flush, ms);
  }

  // soon(): flush after a short debounce, unless a backoff is already waiting (it wins).
  function soon(ms = 300) {
    if (sending) again = 1;
    else if (!timer) timer = setTimeout(flush, ms);
  }

  // Page hide: no time for a lock or a response. Beacon each pending batch once per page; the
  // bodies stay pending and a later flush (this page or the next load) confirms them.
  function beacon() {
    try {
      const now = Date.now();
      store.sync(now);
      for (const b of drain(now)) {
        if (beaconed.has(b)) continue;
        if (!navigator.sendBeacon(url, b)) break;
        beaconed.add(b);
      }
    } catch { /* never into the host page */ }
  }

  addEventListener('online', () => { tries = 0; flush(); });
  return { soon, flush, beacon };
}
