// loopwise.js: the loader behind the one script tag (bundled into web/dist/loopwise.js).
//
//   <script src="https://cdn.example/loopwise.js" data-config="/referral.lwc"
//           data-endpoint="https://ingest.example" data-write-key="site-key" async></script>
//
// It reads its settings from the tag's data-* attributes, defines the one global window.Loopwise,
// replays calls queued before it arrived (window.Loopwise = {q: [['track', 'x'], ...]}), fetches
// the config and the WASM next to itself (data-wasm overrides; the default model likewise,
// data-model, see model.js), and from then on turns track() calls into decisions, prompts and
// outcome batches. If anything fails to load the host page
// keeps working: the error is reported once on the console and later calls do nothing.
import { loadEngine } from './engine.js';
import { loadModel } from './model.js';
import { createStore, openDb } from './store.js';
import { createTransport } from './transport.js';
import { open } from './ui.js';

(() => {
  const w = window, prev = w.Loopwise;
  if (prev && prev.ready) return; // a second copy of the tag
  const script = document.currentScript, ds = (script && script.dataset) || {};
  const page = document.baseURI, self = (script && script.src) || page;
  const endpoint = (ds.endpoint || '').replace(/\/+$/, '');
  const writeKey = ds.writeKey || '';
  const prefix = 'loopwise:' + writeKey + ':';
  const C = prefix + 'c'; // consent mirror, so other tabs can close an open prompt at once
  // A prompt left open by a page that went away. An IndexedDB transaction started on page hide
  // does not complete, a localStorage write does; the next call in any tab ends that prompt.
  const X = prefix + 'x';
  const R = prefix + 'r'; // this referrer's conversions as the server last counted them
  const ls = (f) => { try { return f(localStorage); } catch { /* storage disabled */ } };
  const listeners = {};
  const warned = {}; // each message once per page (they all start with 'Loopwise: ')
  const warn = (m) => { if (!warned[m]) { warned[m] = 1; console.warn(m); } };
  let engine, cfg, store, net, closeUi, started, isBusy = false;

  const emit = (type, x) => (listeners[type] || []).forEach((f) => {
    try { f(x); } catch (e) { (w.reportError || console.error)(e); }
  });
  // Run fn(now, os, pending) in one storage transaction with the shared state loaded, saving
  // it afterwards (store.js). The privacy signals and the busy flag are per page, not shared
  // state: set them every time.
  const run = (fn, withPending) => store.tx((t, os, p) => {
    const n = navigator, x = ls((s) => s.getItem(X));
    engine.flags(n.globalPrivacyControl === true, n.doNotTrack === '1', isBusy);
    if (x) {
      ls((s) => s.removeItem(X));
      try { engine.outcome(x, 'close', t); } catch { /* already ended */ }
    }
    return fn(t, os, p);
  }, withPending);
  const kick = () => net && net.soon();
  const tz = () => -new Date().getTimezoneOffset();
  const fail = (e) => warn('Loopwise: ' + ((e && e.message) || e));

  const ready = (async () => {
    const fetchOk = async (url) => {
      const r = await fetch(url);
      if (!r.ok) throw Error(url + ': HTTP ' + r.status);
      return r;
    };
    const [cfgBytes, wasm, db] = await Promise.all([
      fetchOk(new URL(ds.config || 'referral.lwc', ds.config ? page : self)).then((r) => r.arrayBuffer()),
      fetchOk(new URL(ds.wasm || 'loopwise.wasm', ds.wasm ? page : self)).then((r) => r.arrayBuffer()),
      openDb(),
    ]);
    const e = await loadEngine({ wasm, config: cfgBytes, seed: crypto.getRandomValues(new Uint8Array(16)) });
    cfg = e.config; // the display part: share, variants and model always; ladder when configured
    store = createStore(db, e, prefix, warn);
    engine = e;
    await run(() => {});
    // A referee arriving through a share link (the share URL's {code} parameter, e.g. ?ref=...).
    const m = /[?&]([^=&]+)=\{code\}/.exec(cfg.share.url);
    const code = m && new URLSearchParams(location.search).get(m[1]);
    if (code) run((t) => engine.landing(code, t)).catch(fail);
    if (endpoint) (net = createTransport({ engine, store, endpoint, writeKey, warn })).soon(0);
    addEventListener('pagehide', () => {
      if (closeUi) { ls((s) => s.setItem(X, closeUi.id)); closeUi(); closeUi = null; }
      if (net) net.beacon();
    });
    document.addEventListener('visibilitychange', () => document.visibilityState === 'hidden' && net && net.hide());
    addEventListener('storage', (ev) => { if (ev.key === C && ev.newValue === '0' && closeUi) closeNow(); });
    started = 1;
    emit('ready', true);
    loadModel(engine, db, prefix + 'm', new URL(ds.model || 'loopwise.lwm', ds.model ? page : self),
      endpoint && endpoint + '/v1/model?key=' + encodeURIComponent(writeKey), cfg.model.refresh_hours, fail).catch(fail);
    return true;
  })().catch((e) => {
    console.error('Loopwise: not started: ' + ((e && e.message) || e));
    emit('error', e);
    return false;
  });

  // Call fn once started; resolve to null if the runtime failed or fn threw. Never rejects.
  const when = (fn) => ready.then((ok) => (ok ? fn() : null)).catch((e) => {
    fail(e);
    return null;
  });
  // The usual API call: once started, fn(now) in one transaction, then `then` with its result.
  const act = (fn, then) => when(() => run(fn).then(then));

  // The referrer's step on the config's ladder: the highest whose `referrals` <= conversions.
  const tier = (n) => {
    const l = cfg.ladder || [];
    let i = 0;
    while (l[i] && l[i].referrals <= n) i++;
    return { tier: i - 1, reward: (l[i - 1] || {}).reward || null, next: l[i] || null };
  };
  const cached = () => ls((s) => s.getItem(R));

  // Close the open prompt as 'close'.
  const closeNow = () => {
    const c = closeUi, id = c.id;
    closeUi = null;
    c();
    return outcome(id, 'close');
  };

  // Outcomes leave the engine in the same transaction, so a page hide right after can beacon them.
  function outcome(id, kind) {
    return run((t, os, p) => { engine.outcome(id, kind, t); if (p) net.drain(t, os, p); }, !!net).then(() => {
      emit('outcome', { decision: id, kind });
      kick();
    });
  }

  async function decided(d) {
    if (d) {
      emit('decision', d);
      if (d.code === 'approval') emit('approval', d);
      if (d.prompt) await show(d);
    }
    kick();
    return d;
  }

  function show(d) {
    const v = cfg.variants[d.variant];
    if (!v || closeUi) return outcome(d.id, 'close');
    const s = cfg.share;
    const url = s.url.split('{code}').join(engine.referralCode());
    // With a ladder, the referrer's reward now and what the next step needs, from the last
    // answer the server gave (the prompt never waits for the network; it asks again for the
    // next prompt).
    const n = +cached() || 0, t = tier(n);
    const close = open(v,
      { url, title: s.title || v.title, text: s.text || v.message },
      cfg.ladder ? [t.reward && 'Your reward: ' + t.reward, t.next && `Refer ${t.next.referrals - n} more: ${t.next.reward}`] : [],
      (kind) => {
        if (closeUi === close) closeUi = null;
        when(() => outcome(d.id, kind));
      });
    close.id = d.id;
    closeUi = close;
    emit('prompt', d);
    if (cfg.ladder) api.referrals();
    return outcome(d.id, 'impression');
  }

  const api = {
    ready,
    q: { push: (...calls) => calls.forEach(call) },
    on(type, fn) {
      (listeners[type] = listeners[type] || []).push(fn);
      if (type === 'ready' && started) fn(true);
    },
    // track(name, {value, label}): value e.g. an NPS score, label e.g. a feature's name.
    track: (name, opts) => act((t) => engine.track(String(name), t, tz(), opts), decided),
    // The host lets a decision that waited for approval (code 'approval') show its prompt.
    approve: (id) => act((t) => engine.approve(String(id), t, tz()), decided),
    // A host attribute from the config's `attributes` (e.g. 'plan', 'pro'); null clears it.
    attribute: (name, value) => act(() => engine.attribute(name, value)),
    // Referee side: this device, which arrived through a share link, converted.
    conversion: () => act((t) => engine.conversion(t), kick),
    consent: (yes) => when(async () => {
      yes = !!yes;
      if (!yes && closeUi) await closeNow();
      await run((t) => engine.consent(yes, t));
      ls((s) => s.setItem(C, yes ? '1' : '0'));
      kick();
      return yes;
    }),
    // busy(true) while the user is in the middle of something (typing, a checkout): the engine
    // holds prompts until busy(false).
    busy(b) {
      if (b !== undefined) isBusy = !!b;
      return isBusy;
    },
    explain: () => (engine ? engine.lastDecision() : null),
    // This device's random referral code (what its share links carry), for the host to map to
    // its user; rewards are paid by the host from GET /v1/attributions, never by this script.
    referralCode: () => when(() => engine.referralCode()),
    // {code, conversions, tier, reward, next}: the server counts the referees (this device
    // proves it is the referrer with its install key); tier, reward and next come from the
    // config's ladder. Offline, the last answer; null if there is none.
    referrals: () => when(async () => {
      const code = engine.referralCode();
      const r = endpoint && await fetch(`${endpoint}/v1/referrals/${code}?key=${encodeURIComponent(writeKey)}&install=${engine.installKey()}`).catch(() => 0);
      // 403: nothing shared from this device yet. Offline (or no endpoint): the last answer.
      if (r && (r.ok || r.status === 403)) {
        const n = r.ok ? (await r.json()).conversions : 0;
        ls((s) => s.setItem(R, n));
      }
      const n = cached();
      return n ? { code, conversions: +n, ...tier(+n) } : null;
    }),
  };

  function call(c) {
    try {
      if (typeof c === 'function') c(api);
      else if (c && typeof api[c[0]] === 'function') api[c[0]](...c.slice(1));
    } catch (e) {
      fail(e);
    }
  }

  w.Loopwise = api;
  if (prev && prev.q) [].forEach.call(prev.q, call);
})();
