// store.js: the on-device state in localStorage, shared by the tabs of one origin.
//
// The engine lives in each tab's memory; localStorage holds the one shared copy. Every engine
// call runs inside locked(): one tab at a time reloads the snapshot if another tab saved a newer
// one, makes its call and saves the snapshot back. A generation key ("<count>:<tab>") says whether
// a reload is needed without reading the snapshot itself. Without navigator.locks (old browsers,
// insecure origins) calls run unlocked; two tabs may then race and the last writer wins, which
// can lose a feature count but never breaks consent (the engine's state is self-consistent).

export const get = (k) => { try { return localStorage.getItem(k); } catch { return null; } };
export const set = (k, v) => { try { localStorage.setItem(k, v); return true; } catch { return false; } };

export const locked = (fn) => {
  const l = navigator.locks;
  return l ? l.request('loopwise', () => fn()) : Promise.resolve().then(fn);
};

// createStore(engine, prefix, warn): sync(now) loads the newest shared snapshot into the engine
// (always on the first call), save() writes the engine's snapshot back. Both are for use inside
// locked(), except on page hide where there is no time to wait for a lock.
export function createStore(engine, prefix, warn) {
  const S = prefix + 's', G = prefix + 'g', tab = Math.random().toString(36).slice(2, 8);
  let gen; // the generation this tab's engine holds; undefined until the first sync
  return {
    G,
    sync(now) {
      const g = get(G);
      if (g === gen) return;
      gen = g;
      const r = engine.restore(g && get(S), now);
      if (r && !r.ok) warn('Loopwise: stored state not restored (' + r.error + '), starting conservatively');
    },
    save() {
      const g = (parseInt(get(G)) || 0) + 1 + ':' + tab;
      if (set(S, engine.snapshot()) && set(G, g)) gen = g;
    },
  };
}
