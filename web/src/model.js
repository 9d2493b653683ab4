// model.js: which model the engine decides with.
//
// At start the engine gets the last good model (kept in IndexedDB under `key` with its ETag and
// the time it was fetched) or else the default model at `url` (shipped next to the script).
// Then, when `src` (the ingest server's GET /v1/model) is set and the last fetch is older than
// `hours`, it asks for the site's current model with If-None-Match: a 304 only records the time;
// a 200 the engine accepts becomes the last good model; a corrupt file (engine.setModel throws
// and keeps the old one) or an HTTP error keep the model in force. Failures reach `warn` (the
// caller's, one console.warn each); a network failure is retried on the next load. Until a
// model is set the config's rules decide, so nothing here delays a decision.
export async function loadModel(engine, db, key, url, src, hours, warn) {
  const os = (m) => db.transaction('kv', m).objectStore('kv');
  const rec = await new Promise((ok) => { os('readonly').get(key).onsuccess = (e) => ok(e.target.result); });
  const set = async (b) => engine.setModel(b || new Uint8Array(await (await fetch(url)).arrayBuffer()));
  await set(rec?.b).catch(() => set()).catch(warn);
  const now = Date.now(), next = { ...rec, t: now };
  if (!src || now - rec?.t < hours * 36e5) return;
  const r = await fetch(src, { headers: rec?.e ? { 'If-None-Match': rec.e } : {} });
  try {
    if (r.status === 200) {
      const b = new Uint8Array(await r.arrayBuffer());
      engine.setModel(b);
      Object.assign(next, { b, e: r.headers.get('etag') });
    } else if (r.status !== 304 && r.status !== 404) throw Error('model: HTTP ' + r.status);
  } finally {
    os('readwrite').put(next, key); // a server that answered is asked again after `hours`
  }
}
