// store.js: the on-device state, shared by the tabs of one origin, in IndexedDB.
//
// Why not localStorage under navigator.locks: Chromium propagates a localStorage write to the
// other tabs' processes asynchronously, so a tab that takes the lock right after another released
// it can still read the old value. Measured: two tabs each adding 1 to a localStorage counter 500
// times under one Web Lock ended at 909, not 1000. A lost update here is a lost consent change or
// a record sent twice. IndexedDB readwrite transactions on one store are serialized by the browser
// and always read the committed value, so every call runs in a transaction:
//
//   read the snapshot record {g, s} -> if g (the generation: "<count>:<tab>") is not the one this
//   tab's engine holds, restore s -> run the engine call -> write {g + 1, snapshot} back,
//
// and calls made back to back share one (tx() below says when).
//
// Batches taken from the engine live in the same database, one record per batch, so adding and
// removing one never rewrites the others. The key is "<prefix>o:t<taken>:<batch_id>", <taken>
// being the ms the batch was taken times 1000 plus its place in that drain (16 digits until the
// year 2286): key order, the order getAll answers in, is then age order and the oldest batch is
// sent first (batch ids are random). Earlier builds keyed them "<prefix>o:<batch_id>" (hex, so
// before any "t..."): those are still read, and sent first.
//
// Without IndexedDB (storage disabled) createStore rejects and Loopwise does not start: with no
// memory of consent, dismissals and caps, every page load would be a new user to prompt.
const OS = 'kv';

// Opened while the config and the WASM download (a new database takes tens of ms to create).
// An indexedDB.open that never answers (neither success nor error) gets 5 s, then Loopwise
// does not start and the page carries on.
export const openDb = () => new Promise((ok, no) => {
  setTimeout(() => no(Error('IndexedDB did not answer in 5 s')), 5000);
  const r = indexedDB.open('loopwise', 1);
  r.onupgradeneeded = () => r.result.createObjectStore(OS);
  r.onsuccess = () => ok(r.result);
  r.onerror = () => no(Error('IndexedDB unavailable: ' + r.error));
});

// The one object store in a new transaction (its .transaction is that transaction). Shared with
// model.js, which keeps the last good model in the same database.
export const kv = (db, mode = 'readwrite') => db.transaction(OS, mode).objectStore(OS);

// Text that is not base64 decodes to one 0 byte: not a snapshot, so the engine's fallback.
const b64 = (t) => { try { return Uint8Array.from(atob(t), (c) => c.charCodeAt(0)); } catch { return Uint8Array.of(0); } };

// A pending batch as the transport sees it; the batch id is the key's last part in either form.
const record = (key, body) => ({ key, id: key.slice(key.lastIndexOf(':') + 1), body });

// A transaction takes at most this many calls, so a tab that calls without pause still lets the
// other tabs' transactions in between.
const MAX_CALLS = 50;

export function createStore(db, engine, prefix, warn) {
  const S = prefix + 's', O = prefix + 'o:', tab = Math.random().toString(36).slice(2, 8);
  const range = IDBKeyRange.bound(O, O + '\uffff');
  let gen, join = null; // join: adds a call to the transaction still open, while it takes them
  // An early call resolves before its transaction commits, and a page that goes away then takes
  // the transaction with it (Chromium aborts it). So a page hidden with such calls unsaved writes
  // the snapshot to localStorage, which a closing page does complete, with the generation its
  // transaction started from; the next transaction (in any tab) takes it if that generation is
  // still the stored one (the transaction did not commit and no tab wrote since), else drops it.
  const W = prefix + 'w';
  let unsaved = null; // that generation ('' for none) while early calls are unsaved
  addEventListener('pagehide', () => {
    if (unsaved == null) return;
    let t = '';
    for (const c of engine.snapshot()) t += String.fromCharCode(c);
    try { localStorage.setItem(W, JSON.stringify([unsaved, btoa(t)])); } catch { /* storage full or disabled */ }
  });

  // tx(fn, withPending, early): fn(now, os, pending) runs in a readwrite transaction with the
  // newest state restored and may add records through os; the snapshot is saved after it. pending
  // (with withPending) lists the stored batches oldest first, as put() returns them. Resolves to
  // what fn returned, or rejects with what it threw (the state is saved either way): once the
  // transaction committed, or with `early` as soon as fn ran.
  //
  // An `early` call (one that only calls the engine: it touches neither os nor pending) made while
  // a transaction is open joins it instead of opening one of its own: back-to-back track() calls
  // (each awaiting the one before, or all in one task) then share one transaction, which is what
  // a call costs the main thread (one get, one put and their events: about 0.4 ms). That is safe
  // across tabs because the transaction is open: until it commits, no other tab's transaction on
  // the store can start, so the state in this engine is the stored one plus this transaction's
  // calls. It commits once a save found no newer call to save: every call that ran in it is then
  // stored, in order, with the records it made.
  const tx = (fn, withPending, early) => new Promise((ok, no) => {
    if (!(early && join)) join = begin(withPending);
    // The call, run by the transaction: an early call settles now, any other returns how to
    // settle once the transaction ended (failed: why it did not commit).
    join((os, pending, err) => {
      let out;
      try {
        if (err) throw err;
        out = fn(Date.now(), os, pending);
      } catch (e) {
        err = e || Error('failed');
      }
      const settle = (failed) => (err || failed ? no(err || failed) : ok(out));
      return early ? settle() : settle;
    });
  });

  function begin(withPending) {
    const os = kv(db), t = os.transaction, queue = [], done = [];
    let loaded, dirty, failed, n, base, pending, calls = 0;
    const stop = () => { if (join === self) join = null; };
    const run = (c, err) => { dirty = 1; done.push(c(os, pending, err)); if (loaded) unsaved = base; };
    const self = (c) => {
      if (++calls >= MAX_CALLS) stop();
      loaded ? run(c) : queue.push(c);
    };
    // Save the snapshot; calls that ran while it was on its way are saved by the next one.
    const save = () => {
      dirty = 0;
      try {
        os.put({ g: n, s: engine.snapshot() }, S).onsuccess = () => (dirty ? save() : stop());
      } catch (e) {
        failed = failed || e; // the next transaction reloads what is stored
        stop();
      }
    };
    const rec = os.get(S), keys = withPending && os.getAllKeys(range), all = withPending && os.getAll(range);
    (all || rec).onsuccess = () => { // requests answer in order: rec and keys are ready too
      const v = rec.result;
      let err, w = null;
      try { if ((w = JSON.parse(localStorage.getItem(W)))) localStorage.removeItem(W); } catch { /* disabled */ }
      pending = all && all.result.map((body, i) => record(keys.result[i], body));
      base = v ? v.g : '';
      n = (parseInt(base) || 0) + 1 + ':' + tab;
      try {
        const left = w && w[0] === base; // a closed page's snapshot, newer than the stored one
        if (left || !v || v.g !== gen) {
          // Base64 text: that snapshot, or one an earlier build of this widget stored.
          const b = left ? w[1] : v && v.s, r = engine.restore(typeof b === 'string' ? b64(b) : b, Date.now());
          if (!r.ok) warn('Loopwise: state not restored: ' + r.error);
        }
      } catch (e) {
        err = e;
      }
      loaded = 1;
      queue.forEach((c) => run(c, err));
      save();
    };
    const end = () => {
      stop();
      unsaved = null;
      gen = failed ? 0 : n; // after a failure the next call restores what is stored
      if (!loaded) queue.forEach((c) => run(c, failed));
      done.forEach((settle) => settle ? settle(failed) : failed && warn('Loopwise: state not saved: ' + failed));
    };
    t.oncomplete = end;
    t.onabort = () => { failed = t.error || Error('aborted'); end(); };
    return self;
  }
  return {
    tx,
    left: W, // the localStorage key of a closed page's snapshot (forget() deletes it)
    // Inside tx: store a batch from engine.takeBatch ({id, body}), the i-th taken at `now`.
    // Returns its pending record {key, id, body}.
    put(os, batch, now, i) {
      const r = record(O + 't' + (now * 1000 + i) + ':' + batch.id, batch.body);
      os.put(r.body, r.key);
      return r;
    },
    // A blind delete of one pending record (no read first), e.g. an acknowledged batch.
    del(key) {
      try { kv(db).delete(key); } catch { /* closing */ }
    },
  };
}
