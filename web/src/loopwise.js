// loopwise.js: the runtime behind both front doors: the script tag (script.js, bundled into
// web/dist/loopwise.js) and the npm package's ES module (index.js, `init()`). Each resolves its
// settings (the tag from its data-* attributes, init() from its options) and calls create().
//
// create() defines nothing global: it returns the API (script.js makes it window.Loopwise and
// replays the queue). It fetches the config and the WASM, and from then on turns track() calls
// into decisions, prompts and outcome batches. What only a prompt needs (the dialog, its styles
// and texts: ui.js) and what only sending needs (transport.js) are chunks of their own, loaded
// through the loaders the entry passes (`ui`, `net`): the dialog the first time a decision says
// to prompt, the transport the first time there are records to send (or status(), forget(), a
// consent refusal or a shared referrer's referrals() need it); a first load fetches neither.
// If anything fails to load the host page keeps working: the error is reported once on the
// console and later calls do nothing.
//
// Two parts: the API (settings, listeners, the busy flag: what exists before anything has
// loaded) and the widget (createWidget), made once the engine, the config and the storage are
// there. The widget owns everything made from them; the one thing in it that changes is the
// prompt now open. Every call on the API waits for the widget and never throws.
import { loadEngine } from './engine.js';
import { loadModel } from './model.js';
import { createStore, openDb } from './store.js';

// LW_ERR_VERSION in include/loopwise/common.h: a file newer than this runtime reads.
const ERR_VERSION = 4;
// The query parameter a share link carries its per-share token in when the config's share.url
// has {code} but no {token} placeholder (README "Config reference").
const TOKEN = 'lwt';

// o: {config, wasm, model: a URL (string or URL, relative to the page) or the bytes;
// endpoint, writeKey: strings; target: the element (or a selector) an inline placement goes
// into; ui, net, preview: () => import() of ui.js (resolving to its load()'s {open, load}) /
// transport.js / preview.js}.
export function create(o) {
  const w = window;
  const endpoint = (o.endpoint || '').replace(/\/+$/, '');
  const writeKey = o.writeKey || '';
  const prefix = 'loopwise:' + writeKey + ':';
  const CONSENT = prefix + 'c'; // consent mirror, so other tabs can close an open prompt at once
  // A prompt left open by a page that went away. An IndexedDB transaction started on page hide
  // does not complete, a localStorage write does; the next call in any tab ends that prompt.
  const LEFT_OPEN = prefix + 'x';
  const REFERRALS = prefix + 'r'; // this referrer's conversions as the server last counted them
  const local = (fn) => { try { return fn(localStorage); } catch { /* storage disabled */ } };
  const listeners = {};
  const warned = {}; // each message once per page (they all start with 'Loopwise: ')
  const warn = (m) => { if (!warned[m]) { warned[m] = 1; console.warn(m); } };
  const emit = (type, x) => (listeners[type] || []).forEach((fn) => {
    try { fn(x); } catch (e) { (w.reportError || console.error)(e); }
  });
  // A failure after start: a warning, once; a file newer than this runtime (a model from a later
  // trainer) is an error, as the README's "How the contracts evolve" promises. (The 'error'
  // event means "not started": the page then works without Loopwise.)
  const fail = (e) => (e && e.status === ERR_VERSION ? console.error : warn)('Loopwise: ' + ((e && e.message) || e));
  const tz = () => -new Date().getTimezoneOffset();
  let widget = null; // set once, when started
  let busy = false; // the host's busy flag, settable before the widget exists

  // The widget over a loaded engine and the storage's database; resolves once started.
  async function createWidget(engine, db) {
    const cfg = engine.config; // the display part: share, variants and model always; ladder when configured
    // The share link's template: share.url, with the per-share token's {token} appended as the
    // TOKEN parameter (before any #fragment) when the url has none. The prompt (ui.js) fills
    // {token}; a referee's landing reads both parameters back from its URL.
    let link = cfg.share.url;
    if (!link.includes('{token}')) link = link.replace(/(?=#|$)/, (link.split('#')[0].includes('?') ? '&' : '?') + TOKEN + '={token}');
    const store = createStore(db, engine, prefix, warn);
    let net = null; // the transport (transport.js), loaded once there is something to send
    let netting = null; // its loading (a promise of net, null without an endpoint or chunk)
    let ui = null; // the prompt chunk (ui.js) while it loads, then loaded
    let prompt = null; // the open prompt's close(), with the decision id as .id

    // Run fn(now, os, pending) in one storage transaction with the shared state loaded, saving
    // it afterwards (store.js; `early`: fn only calls the engine, so it may join a transaction
    // already open and resolves as soon as it ran). The privacy signals and the busy flag are per
    // page, not shared state: set them every time.
    const run = (fn, withPending, early) => store.tx((now, os, pending) => {
      const n = navigator, left = local((s) => s.getItem(LEFT_OPEN));
      engine.flags(n.globalPrivacyControl === true, n.doNotTrack === '1', busy);
      if (left) {
        local((s) => s.removeItem(LEFT_OPEN));
        try { engine.outcome(left, 'close', now); } catch { /* already ended */ }
      }
      return fn(now, os, pending);
    }, withPending, early);
    // The usual call: fn(now), an engine call, in a transaction (back-to-back calls share one),
    // then `then` with its result.
    const act = (fn, then) => run(fn, 0, 1).then(then);
    // The transport, loaded once: resolves to it, or to null without an endpoint (or when its
    // chunk failed to load: retried at the next call).
    const loadNet = () => (endpoint ? netting = netting || o.net().then(
      (m) => (net = m.createTransport({ engine, store, endpoint, writeKey, warn })),
      (e) => { netting = null; fail(e); return null; }) : Promise.resolve(null));
    // Records to send: flush soon, loading the transport first if need be.
    const kick = () => (net ? net.soon() : loadNet().then((n) => n && n.soon(0)));

    // The referrer's step on the config's ladder: the highest whose `referrals` <= conversions.
    const tier = (n) => {
      const ladder = cfg.ladder || [];
      let i = 0;
      while (ladder[i] && ladder[i].referrals <= n) i++;
      return { tier: i - 1, reward: (ladder[i - 1] || {}).reward || null, next: ladder[i] || null };
    };
    const cached = () => local((s) => s.getItem(REFERRALS));

    // Outcomes leave the engine in the same transaction, so a page hide right after can beacon them.
    // A share or copy goes with its link's token (rnd: the 16 random bytes it is the hex of) and
    // its channel (channels.js passes it: 'native' the share sheet, 'copy' the clipboard, 'email', ...).
    const outcome = (id, kind, rnd, channel) => run((now, os, pending) => {
      if (kind === 'share' || kind === 'copy') engine.share(id, channel, rnd, now);
      else engine.outcome(id, kind, now);
      if (pending) net.drain(now, os, pending);
    }, !!net).then(() => {
      const ev = { decision: id, kind };
      if (kind === 'share' || kind === 'copy') emit('shared', { ...ev, token: engine.lastToken(), channel });
      if (kind === 'dismiss' || kind === 'close') emit('dismissed', ev);
      emit('outcome', ev);
      kick();
    });

    // Close the open prompt as 'close'.
    const closeNow = () => {
      const close = prompt;
      prompt = null;
      close();
      return outcome(close.id, 'close');
    };

    // The share of variant v's prompt: the link with this device's code (ui.js fills {token}),
    // the texts, and the channels: the config's, in the order the model ranks for this persona
    // (channels.js).
    const shareOf = (v) => ({
      url: link.split('{code}').join(engine.referralCode()), title: cfg.share.title || v.title,
      text: cfg.share.text || v.message, channels: cfg.channels, rank: engine.channels(Date.now(), tz()),
    });
    // With a ladder, the referrer's reward now and what the next step needs, from the last
    // answer the server gave (the prompt never waits for the network; it asks again for the
    // next prompt).
    const lines = () => {
      const n = +cached() || 0, t = tier(n);
      return cfg.ladder ? [t.reward && 'Your reward: ' + t.reward, t.next && `Refer ${t.next.referrals - n} more: ${t.next.reward}`] : [];
    };

    const show = async (d) => {
      const v = cfg.variants[d.variant];
      let open;
      try {
        // The transport too: a shown prompt always has records to send, and its outcomes are
        // drained into pending batches in their own transactions (a page hide can beacon them).
        [{ open }] = await Promise.all([ui = ui || o.ui(), loadNet()]);
      } catch (e) {
        ui = null; // retried at the next prompt
        fail(e);
      }
      if (!v || prompt || !open) return outcome(d.id, 'close');
      const close = open(v, shareOf(v), lines(),
        (kind, rnd, channel) => {
          if (prompt === close) prompt = null;
          outcome(d.id, kind, rnd, channel).catch(fail);
        }, { cfg, variant: d.variant, target: o.target });
      close.id = d.id;
      prompt = close;
      emit('prompt', d);
      emit('shown', d);
      if (cfg.ladder) self.referrals().catch(fail);
      return outcome(d.id, 'impression');
    };

    const decided = async (d) => {
      if (d) {
        emit('decision', d);
        if (d.code === 'approval') emit('approval', d);
        if (d.prompt) await show(d);
      }
      if (d) kick(); // a decision is a record to send
      return d;
    };

    // What the global's calls of the same names do once started (see there). The engine turns
    // names and ids into strings.
    const self = {
      // Approval requests (README "Approval requests", transport.js): the transport sends a held
      // decision's request with its records, and each later call asks for the answer.
      track: (name, opts) => (net && net.check(tz(), decided), act((now) => engine.track(name, now, tz(), opts), decided)),
      approve: (id) => act((now) => engine.approve(id, now, tz()), decided),
      attribute: (name, value) => act(() => engine.attribute(name, value)),
      conversion: () => act((now) => engine.conversion(now), kick),
      async consent(yes) {
        yes = !!yes;
        if (!yes && prompt) await closeNow();
        if (!yes) await loadNet(); // so that the refusal's drain deletes the pending batches
        // A refusal deletes the pending batches in the same transaction (transport.js drain).
        await run((now, os, pending) => { engine.consent(yes, now); if (pending) net.drain(now, os, pending); }, !!net);
        local((s) => s.setItem(CONSENT, +yes)); // '1' or '0'
        kick();
        return yes;
      },
      explain: () => engine.lastDecision(),
      // Issue 14 (preview.js): variant id's prompt, logging nothing and changing nothing (not
      // while a prompt is open); the explain() overlay.
      // The prompt chunk loads the labels of opts.locale's language first.
      preview: (id, opts) => Promise.all([(ui = ui || o.ui()).then((u) => u.load([opts && opts.locale])), o.preview()])
        .then(([u, p]) => p.preview(u.open, cfg.variants, id, { cfg, target: o.target, ...opts }, shareOf, lines, prompt)),
      debug: (on) => o.preview().then((p) => p.debug(on, api)),
      referralCode: () => engine.referralCode(),
      referral: () => landed,
      async referrals() {
        const code = engine.referralCode();
        // The server knows this code only once this device shared it (before: no conversions),
        // and is asked only while collecting. Offline (or no endpoint): the last answer.
        const r = engine.info(3) ? (await loadNet()) && engine.collecting() && await net.referrals(code, engine.installKey()) : { conversions: 0 };
        if (r) local((s) => s.setItem(REFERRALS, r.conversions));
        const n = cached();
        return n ? { code, conversions: +n, ...tier(+n) } : null;
      },
      status: async () => (await loadNet(), {
        started: true,
        consent: ['unset', 'given', 'refused', 'unknown'][engine.info(0)],
        pending: net ? (await run(net.drain, 1), net.pending()) : engine.info(1),
        dropped: (net ? net.st.dropped : 0) + engine.info(2), // the transport's counters, once loaded
        error: net ? net.st.error : null,
        model: engine.modelStatus(), // 'none' (the rules decide), 'ready', or 'no_data' for these variants
      }),
      // The server's request goes first (after any batch already on its way; nothing pending
      // is sent after it), then the local state in one transaction: everything under the prefix
      // deleted, a fresh engine state with a new identity saved, the consent answer kept.
      async forget() {
        await loadNet();
        const install = engine.installKey(), c = engine.info(0), done = !net || net.forget(install);
        local((s) => [CONSENT, LEFT_OPEN, REFERRALS, store.left].map((k) => s.removeItem(k)));
        await run((now, os) => {
          os.delete(IDBKeyRange.bound(prefix, prefix + '\uffff'));
          engine.identity(crypto.getRandomValues(new Uint8Array(26)));
          engine.reset();
          if (c % 3) engine.consent(c < 2, now);
        });
        return done;
      },
    };

    // Start: load the shared state, then what happens once: a referee's landing, the first
    // flush, the page's listeners, the model.
    // Records an earlier page left in the engine or in storage: take them into pending batches
    // (transport.js's drain, without loading the transport) and send them.
    if (await run((now, os, pending) => {
      for (let batch, i = 0; endpoint && (batch = engine.takeBatch(writeKey, now, 60000)); i++) pending.push(store.put(os, batch, now, i));
      return pending && pending.length || engine.approval(2, '', '', now); // or one held for approval
    }, !!endpoint)) kick();
    // A referee arriving through a share link: the link's {code} parameter (e.g. ?ref=...) and
    // its {token} parameter (e.g. lwt=...). A token the engine refuses (not 32 lowercase hex: a
    // damaged or edited link) is dropped; the landing still counts for the code.
    const param = (p) => new URLSearchParams(location.search).get((RegExp('[?&]([^=&]+)=\\{' + p + '\\}').exec(link) || [])[1]);
    const code = param('code'), token = param('token');
    const landed = code ? { code, token } : null;
    if (code) {
      run((now) => {
        try { engine.landing(code, now, token); } catch { landed.token = null; engine.landing(code, now); }
      }).then(kick, fail);
    }
    addEventListener('pagehide', () => {
      if (prompt) { local((s) => s.setItem(LEFT_OPEN, prompt.id)); prompt(); prompt = null; }
      if (net) net.beacon();
    });
    document.addEventListener('visibilitychange', () => document.visibilityState === 'hidden' && net && net.hide());
    // Consent withdrawn in another tab: close the prompt, and load the "no" now (a flush under
    // way here stops at it).
    addEventListener('storage', (ev) => { if (ev.key === CONSENT && ev.newValue === '0') (prompt ? closeNow() : run(() => {})).catch(fail); });
    widget = self;
    emit('ready', true);
    // ?loopwise-preview=<variant id>: a preview, only where the config's preview.allow_url
    // allows it (elsewhere the parameter is ignored).
    const pv = cfg.preview && new URLSearchParams(location.search).get('loopwise-preview');
    if (pv) self.preview(pv).catch(fail);
    loadModel(engine, db, prefix + 'm', o.model,
    endpoint && engine.collecting() && endpoint + '/v1/model?key=' + encodeURIComponent(writeKey), cfg.model.refresh_hours, fail).catch(fail);
  }

  const ready = (async () => {
    // A URL (string or URL) is fetched; anything else is taken as the bytes themselves.
    const fetchBytes = async (url) => {
      if (typeof url !== 'string' && !(url instanceof URL)) return url;
      const r = await fetch(url);
      if (!r.ok) throw Error(url + ': HTTP ' + r.status);
      return r.arrayBuffer();
    };
    const [config, wasm, db] = await Promise.all([
      fetchBytes(o.config),
      fetchBytes(o.wasm),
      openDb(),
    ]);
    const rnd = (n) => crypto.getRandomValues(new Uint8Array(n));
    await createWidget(await loadEngine({ wasm, config, seed: rnd(16), identity: rnd(26) }), db);
    return true;
  })().catch((e) => {
    console.error('Loopwise: not started: ' + ((e && e.message) || e));
    emit('error', e);
    return false;
  });

  const api = {
    ready,
    q: { push: (...calls) => calls.forEach(call) },
    // on(type, fn) returns a function that removes fn again (a component's cleanup).
    on(type, fn) {
      const l = (listeners[type] = listeners[type] || []);
      l.push(fn);
      if (type === 'ready' && widget) fn(true);
      return () => { const i = l.indexOf(fn); if (i >= 0) l.splice(i, 1); };
    },
    // busy(true) while the user is in the middle of something (typing, a checkout): the engine
    // holds prompts until busy(false).
    busy(b) {
      if (b !== undefined) busy = !!b;
      return busy;
    },
    explain: () => widget && widget.explain(), // null before start
  };
  // The calls that need the widget (what each does: its method in createWidget):
  //   track(name, {value, label})  value e.g. an NPS score, label e.g. a feature's name
  //   approve(id)                  the host lets a decision that waited for approval (code
  //                                'approval') show its prompt
  //   attribute(name, value)       a host attribute from the config's `attributes` (e.g. 'plan',
  //                                'pro'); null clears it
  //   conversion()                 referee side: this device, which arrived through a share link,
  //                                converted
  //   consent(yes)                 withdrawing it closes an open prompt (in every tab)
  //   referral()                   {code, token} of the share link this page was opened with
  //                                (token null if it had none), null without one: for the host
  //                                to pass to its backend's referee report (POST /v1/referees)
  //   referralCode()               this device's random referral code (what its share links
  //                                carry), for the host to map to its user; rewards are paid by
  //                                the host from GET /v1/attributions, never by this script
  //   referrals()                  {code, conversions, tier, reward, next}: the server counts the
  //                                referees (this device proves it is the referrer with its
  //                                install key); tier, reward and next come from the config's
  //                                ladder. Offline, the last answer; null if there is none.
  // Each resolves once started; to null if the runtime failed or the call threw. Never rejects.
  //   status()                     {started, consent, pending, dropped, error, model} (README "Widget")
  //   forget()                     deletes this device's state here and on the server
  //   preview(id, {locale, theme}) variant id's prompt, nothing logged or changed (true once shown)
  //   debug(on)                    the explain() overlay on or off
  for (const name of 'track approve attribute conversion consent referral referralCode referrals status forget preview debug'.split(' ')) {
    api[name] = (...args) => ready.then((ok) => (ok ? widget[name](...args) : name === 'status' ? { started: false } : null)).catch((e) => {
      fail(e);
      return null;
    });
  }

  function call(c) {
    try {
      if (typeof c === 'function') c(api);
      else if (c && typeof api[c[0]] === 'function') api[c[0]](...c.slice(1));
    } catch (e) {
      fail(e);
    }
  }

  return api;
}
