// transport.js: move the engine's outbox to the ingest server, at least once.
//
// A batch leaves the engine through takeBatch() inside the same storage transaction that saves
// the snapshot without its records, and is stored as a pending record of its own (store.js);
// from then on it is ours until the server answers 2xx. A retry sends the very same body, so its
// batch_id lets the server store it once however often it arrives. Bodies are text/plain, which
// keeps fetch and sendBeacon free of a CORS preflight.
//
// Failures: network errors, 5xx and 429 retry with exponential backoff and proportional jitter
// (the delay is multiplied by 0.5..1.5), never sooner than Retry-After; any other 4xx means the
// server will never take the batch, so it is dropped with one console.warn. Nothing here throws
// into the host page.
const MAX_BYTES = 60000; // under the 64 KiB in-flight limit of keepalive fetch and sendBeacon
const BASE_MS = 1000, MAX_MS = 300000;

export function createTransport({ engine, store, endpoint, writeKey, warn }) {
  const url = endpoint + '/v1/outcomes';
  const beaconed = new Set();
  let timer = 0, sending = 0, again = 0, tries = 0;
  // The pending batches ({key, id, body}, oldest first) as of the last transaction: what a
  // flush sends and a page hide can beacon.
  let mirror = [];

  // Inside a store transaction: move every record out of the engine into pending batches.
  function drain(now, os, pending) {
    for (let batch, i = 0; (batch = engine.takeBatch(writeKey, now, MAX_BYTES)); i++) pending.push(store.put(os, batch, now, i));
    mirror = pending;
  }

  async function flush() {
    clearTimeout(timer);
    timer = 0;
    if (sending) { again = 1; return; }
    sending = 1;
    let r = null; // the answer that made this flush stop, if any: its Retry-After counts
    try {
      await store.tx(drain, 1);
      for (const batch of mirror) {
        r = null;
        try { r = await fetch(url, { method: 'POST', body: batch.body, keepalive: true, credentials: 'omit' }); } catch { /* offline, refused, CORS */ }
        // 2xx: stored; 4xx but 429: never will be (dropped); anything else (0: no answer) retries.
        const s = r ? r.status : 0, c = s / 100 | 0;
        if (c !== 2 && (c !== 4 || s === 429)) throw 0;
        if (c > 2) warn('Loopwise: batch ' + batch.id + ' dropped: HTTP ' + s + ' ' + (await r.text().catch(() => '')).slice(0, 200));
        tries = 0;
        store.del(batch.key);
        mirror = mirror.filter((x) => x !== batch);
      }
    } catch {
      // Retry with backoff (see the top). No timer is armed here: flush cleared it, and soon()
      // does not arm one while a flush is sending.
      let ms = Math.min(BASE_MS * 2 ** tries++, MAX_MS) * (0.5 + Math.random());
      const ra = r && r.headers.get('retry-after');
      if (ra) {
        const s = isNaN(ra) ? Date.parse(ra) - Date.now() : ra * 1000;
        if (s > ms) ms = Math.min(s, 3600000);
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
      for (const batch of mirror) {
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
  return { soon, drain, hide, beacon };
}
