// store.js: the on-device state, shared by the tabs of one origin, in IndexedDB.
//
// Why not localStorage under navigator.locks: Chromium propagates a localStorage write to the
// other tabs' processes asynchronously, so a tab that takes the lock right after another released
// it can still read the old value. Measured: two tabs each adding 1 to a localStorage counter 500
// times under one Web Lock ended at 909, not 1000. A lost update here is a lost consent change or
// a record sent twice. IndexedDB readwrite transactions on one store are serialized by the browser
// and always read the committed value, so every call is one transaction:
//
//   read the snapshot record {g, s} -> if g (the generation: "<count>:<tab>") is not the one this
//   tab's engine holds, restore s -> run the engine call -> write {g + 1, snapshot} back.
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

export function createStore(db, engine, prefix, warn) {
  const S = prefix + 's', O = prefix + 'o:', tab = Math.random().toString(36).slice(2, 8);
  const range = IDBKeyRange.bound(O, O + '\uffff');
  let gen;

  // tx(fn, withPending): one transaction; fn(now, os, pending) runs with the newest state
  // restored and may add records through os; the snapshot is saved after it. pending (with
  // withPending) lists the stored batches oldest first, as put() returns them. Resolves to what
  // fn returned, or rejects with what it threw (the state is saved either way).
  const tx = (fn, withPending) => new Promise((ok, no) => {
    const os = kv(db), t = os.transaction;
    let out, err, g;
    const rec = os.get(S), keys = withPending && os.getAllKeys(range), all = withPending && os.getAll(range);
    (all || rec).onsuccess = () => { // requests answer in order: rec and keys are ready too
      const now = Date.now(), v = rec.result;
      const pending = all && all.result.map((body, i) => record(keys.result[i], body));
      try {
        if (!v || v.g !== gen) {
          // Earlier builds of this widget stored the snapshot as base64 text: read the bytes it holds.
          const r = engine.restore(v && typeof v.s === 'string' ? b64(v.s) : v ? v.s : null, now);
          if (!r.ok) warn('Loopwise: state not restored: ' + r.error);
        }
        out = fn(now, os, pending);
      } catch (e) {
        err = e || Error('failed');
      }
      try {
        const n = (parseInt(v && v.g) || 0) + 1 + ':' + tab;
        os.put({ g: n, s: engine.snapshot() }, S);
        g = n;
      } catch (e) {
        err = err || e; // g stays unset: the next call reloads what is stored
      }
    };
    t.oncomplete = () => { gen = g; err ? no(err) : ok(out); };
    t.onabort = () => no(t.error);
  });
  return {
    tx,
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
