// model.js: which model the engine decides with.
//
// At start the engine gets the last good model (kept in IndexedDB under `key` with its ETag and
// the time it was fetched) or else the default model at `url` (shipped next to the script).
// Then, when `src` (the ingest server's GET /v1/model) is set and the last fetch is older than
// `hours`, it asks for the site's current model with If-None-Match: a 304 only records the time;
// a 200 the engine accepts becomes the last good model; a 204 (the site has no model) or 404
// only records the time; a corrupt file (engine.setModel throws
// and keeps the old one) or an HTTP error keep the model in force. Failures reach `warn` (the
// caller's, one console.warn each); a network failure is retried on the next load. Until a
// model is set the config's rules decide, so nothing here delays a decision.
import { kv } from './store.js';

export async function loadModel(engine, db, key, url, src, hours, warn) {
  const rec = await new Promise((ok) => {
    const q = kv(db, 'readonly').get(key);
    q.onsuccess = () => ok(q.result || {});
  });
  const set = async (b) => engine.setModel(b || new Uint8Array(await (await fetch(url)).arrayBuffer()));
  await set(rec.b).catch(() => set()).catch(warn);
  const now = Date.now();
  if (!src || now - rec.t < hours * 36e5) return;
  const r = await fetch(src, { headers: rec.e ? { 'If-None-Match': rec.e } : {} });
  rec.t = now;
  const b = new Uint8Array(await r.arrayBuffer()); // every body read (transport.js says why)
  try {
    if (r.status === 200) {
      engine.setModel(b);
      rec.b = b;
      rec.e = r.headers.get('etag');
    } else if (r.status !== 304 && r.status !== 204 && r.status !== 404) throw Error('model: HTTP ' + r.status);
  } finally {
    kv(db).put(rec, key); // a server that answered is asked again after `hours`
  }
}
