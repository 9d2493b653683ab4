// engine.js: the loader and JavaScript face of loopwise.wasm (no Emscripten glue).
//
// The module imports nothing. Its allocator grows memory without telling the host, so every
// access re-reads mem.buffer (see bytes()). Strings cross as NUL-terminated UTF-8 in memory
// from the module's malloc; results come back through the handle's output buffer. Works the
// same in a browser and in Node (pass the .wasm bytes as `wasm`). The config is the compiled
// form (.lwc) that loopwise-config writes from the JSON a product manager edits; the module
// carries no JSON parser.
const enc = new TextEncoder();
const dec = new TextDecoder();

// The display part of a compiled config (.lwc), the JSON the widget shows: {share: {url,
// title, text}, variants: [{title, message, referrer_reward, referee_reward}], ladder:
// [{referrals, reward}] (with a ladder), model: {refresh_hours}}. Layout (models/FORMAT.md,
// "Compiled program config"): a 12-byte header whose u32 at byte 8 is E, the engine part's
// length; the E bytes of the engine part; the display part's UTF-8 up to the 4-byte CRC-32 at
// the end (the u32 E read by hand: shorter than a DataView). It does not check the file: loadEngine calls it only after the module accepted it.
// lwc: a Uint8Array.
export const readDisplay = (lwc) =>
  JSON.parse(dec.decode(lwc.subarray(12 + (lwc[8] | lwc[9] << 8 | lwc[10] << 16 | lwc[11] << 24), -4)));

// wasm: bytes (or a promise of them) or a compiled WebAssembly.Module (several engines, one
// compilation).
// config: the compiled config's bytes (Uint8Array or ArrayBuffer).
// extend (tests only: tests/wasm/test-engine.mjs) gets the engine and the module's internals
// (exports, handle, bytes(), put(), cstr()) and returns the engine to use, with methods over
// the test module's extra exports.
// identity: LW_IDENTITY_BYTES (26) random bytes for the install key and referral code (the
// widget passes crypto.getRandomValues'); without it they come from the seeded generator.
//
// The module's exports have one-letter names (src/wasm/binding.c: each LW_EXPORT there): N new
// handle, R release it, E its error text, o/l its output buffer and length, i init, t track,
// a approve, P approval, A attribute, f flags, m model, M model_status, r referee, L last
// decision, O outcome, s share, T token, c channels, C consent, k collecting, z reset, I identity, n info,
// K install_key, D referral_code, S snapshot, e restore, b take_batch; and memory, malloc, free,
// _initialize.
export async function loadEngine({ wasm, config, seed, identity }, extend) {
  let mem;
  const bytes = () => new Uint8Array(mem.buffer);
  // No streaming compile: for a module this small it saves no measurable time, and costs bytes.
  const r = await WebAssembly.instantiate(await wasm, {});
  const x = (r.instance || r).exports;
  mem = x.memory;
  x._initialize();

  const cstr = (p) => {
    const b = bytes();
    return dec.decode(b.subarray(p, b.indexOf(0, p)));
  };
  // Copy a string or bytes into module memory; the caller frees the pointer.
  const put = (v) => {
    const b = typeof v === 'string' ? enc.encode(v + '\0') : v;
    const p = x.malloc(b.length || 1);
    if (!p) throw Error('Loopwise: out of memory');
    bytes().set(b, p);
    return p;
  };
  const withStr = (v, fn) => {
    const p = put(v);
    try { return fn(p); } finally { x.free(p); }
  };
  // Short strings on the hot path go into a scratch area allocated once (name, then label).
  const SCRATCH = 512;
  const scratch = x.malloc(2 * SCRATCH);
  const putShort = (str, at) => {
    const r = enc.encodeInto(str, bytes().subarray(at, at + SCRATCH - 1));
    if (r.read < str.length) throw Error('Loopwise: name or label too long: ' + str.slice(0, 40));
    bytes()[at + r.written] = 0;
    return at;
  };
  const out = () => bytes().slice(x.o(h), x.o(h) + x.l(h));
  const outText = () => dec.decode(out());
  // A status (include/loopwise/common.h) other than LW_OK throws the module's message, the
  // status as the error's .status.
  const fail = (st) => {
    if (st) {
      const e = Error(cstr(x.E(h)));
      e.status = st;
      throw e;
    }
  };

  const h = x.N();
  if (!h) throw Error('Loopwise: out of memory');
  const s = new Uint32Array(4); // the engine's random seed: 16 bytes as four words
  new Uint8Array(s.buffer).set((seed || []).slice(0, 16));
  const cfgBytes = new Uint8Array(config);
  const st = withStr(cfgBytes, (p) => x.i(h, p, cfgBytes.length, ...s));
  if (st) {
    const msg = cstr(x.E(h));
    x.R(h);
    throw Error('Loopwise config: ' + msg);
  }

  const engine = {
    // The config's display part (readDisplay), checked with the rest by the module's checksum.
    config: readDisplay(cfgBytes),
    // opts: { value: number (an NPS score, a rating), label: string (a feature name) }
    track(name, now, tz = 0, opts) {
      const v = opts && typeof opts.value === 'number' ? opts.value : NaN;
      const label = opts && opts.label != null ? String(opts.label) : '';
      fail(x.t(h, putShort(String(name), scratch), v, putShort(label, scratch + SCRATCH), now, tz | 0));
      return x.l(h) === 4 ? null : JSON.parse(outText()); // "null": not a decision point
    },
    approve(id, now, tz = 0) {
      fail(withStr(String(id), (p) => x.a(h, p, now, tz | 0)));
      return JSON.parse(outText());
    },
    // The approval exchange (README "Approval requests", src/wasm/binding.c): op 0 the request of
    // decision id with approval key arg ('1': queued, '0': no consent), op 1 the answer arg the
    // device picked up (the decision's JSON), op 2 the id still held for the server's answer, op
    // 3 that of one held whose request has not gone ('': none).
    approval(op, id, arg, now, tz) {
      fail(x.P(h, op, putShort(id, scratch), putShort(arg, scratch + SCRATCH), now, tz)); // tz: undefined is 0
      return outText();
    },
    attribute(name, value) {
      fail(withStr(String(name), (n) => (value == null ? x.A(h, n, 0)
        : withStr(String(value), (v) => x.A(h, n, v)))));
    },
    // Privacy signals (Global Privacy Control, Do Not Track) and the host's busy flag, as
    // booleans: WebAssembly passes true as 1, false (and undefined) as 0.
    flags(gpc, dnt, busy) { x.f(h, gpc, dnt, busy); },
    // Load a model file (bytes); throws with the reason if it is damaged (the old one stays).
    setModel(bytes) { fail(withStr(bytes, (p) => x.m(h, p, bytes.length))); },
    // 'none' (no model: the rules decide), 'ready' (model mode), or 'no_data': a model is
    // loaded but has no data for this config's variants, so the rules decide (for status()).
    modelStatus: () => cstr(x.M(h)),
    // token: the share token from the landing URL, if it had one.
    landing(code, now, token) {
      fail(withStr(String(code), (p) => x.r(h, p, putShort(token ? String(token) : '', scratch), now)));
    },
    conversion(now) { fail(x.r(h, 0, 0, now)); },
    // kind: an outcome's wire name ('impression', 'share', 'copy', 'dismiss') or 'close'.
    outcome(id, kind, now) {
      fail(withStr(String(id), (p) => x.O(h, p, putShort(String(kind), scratch), now)));
    },
    // A share of decision id through channel ('native' share sheet, 'copy', ...); random: 16
    // bytes from crypto.getRandomValues. Returns the share's token for the link.
    share(id, channel, random, now) {
      const r = new Uint8Array(random);
      if (r.length !== 16) throw Error('Loopwise: a share needs 16 random bytes');
      fail(withStr(String(id), (p) => withStr(r, (b) => x.s(h, p, putShort(String(channel), scratch), b, now))));
      return cstr(x.T(h));
    },
    // The share channels the model ranks best first for this user's persona ([] without a
    // ranking: keep the prompt's own order).
    channels(now, tz = 0) { return x.c(h, now, tz | 0) ? outText().split(' ') : []; },
    // The last share's token ('' before the first).
    lastToken: () => cstr(x.T(h)),
    consent(given, now) { x.C(h, given ? 1 : 0, now); },
    // Whether the engine collects now (consent, privacy signals); when not, it deletes what
    // its outbox held (src/core/records.c).
    collecting: () => x.k(h),
    identity(b) { withStr(b, (p) => x.I(h, p)); },
    reset: () => x.z(h), // a fresh state (lw_engine_reset)
    // 0 consent (0 unset, 1 given, 2 refused, 3 unknown), 1 records queued, 2 records the
    // full outbox dropped, 3 shares made here (src/wasm/binding.c).
    info: (i) => x.n(h, i),
    lastDecision() { x.L(h); return JSON.parse(outText()); },
    installKey: () => cstr(x.K(h)),
    referralCode: () => cstr(x.D(h)),
    // The on-device state as bytes (a copy), for IndexedDB.
    snapshot() {
      if (!x.S(h)) throw Error('Loopwise: out of memory');
      return out();
    },
    // Restore snapshot() bytes; null means a new user. Anything else that is not a snapshot
    // (damaged bytes, a value of another type) gets the engine's conservative fallback and is
    // reported, never thrown.
    restore(snap, now) {
      const b = snap == null ? new Uint8Array(0) : snap instanceof Uint8Array ? snap : Uint8Array.of(0);
      const r = withStr(b, (p) => x.e(h, p, b.length, now));
      return r ? { ok: false, error: cstr(x.E(h)) } : { ok: true };
    },
    // The next batch of at most maxBytes as {id, body}: its batch_id, drawn by the engine, and
    // the JSON text to send. null when the outbox is empty.
    takeBatch(writeKey, now, maxBytes = 60000) {
      const n = withStr(writeKey, (p) => x.b(h, p, now, maxBytes));
      const at = x.o(h);
      return n ? { id: cstr(at + n + 1), body: dec.decode(bytes().subarray(at, at + n)) } : null;
    },
    free() { x.free(scratch); x.R(h); },
  };
  if (identity) engine.identity(identity);
  return extend ? extend(engine, x, h, bytes, put, cstr) : engine;
}
