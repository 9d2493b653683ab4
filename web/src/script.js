// script.js: the script tag's entry (bundled into web/dist/loopwise.js, one classic script).
//
//   <script src="https://cdn.example/loopwise.js" data-config="/referral.lwc"
//           data-endpoint="https://ingest.example" data-write-key="site-key" async></script>
//
// It reads its settings from the tag's data-* attributes (each file next to the script unless
// its attribute names one, relative to the page), makes the one global window.Loopwise and
// replays calls queued before it arrived (window.Loopwise = {q: [['track', 'x'], ...]}, set by
// the page or by loopwise-queue.js). The prompt and transport chunks are ES modules next to the
// script, loaded with import() when first needed (a classic script may import() a module); the
// prompt's load() also fetches its labels in the browser's and the page's language, if not English.
import { create } from './loopwise.js';

(() => {
  const w = window, prev = w.Loopwise;
  if (prev && prev.ready) return; // a second copy of the tag
  const script = document.currentScript, ds = (script && script.dataset) || {};
  const page = document.baseURI, self = (script && script.src) || page;
  const file = (attr, name) => new URL(ds[attr] || name, ds[attr] ? page : self);
  const api = create({
    config: file('config', 'referral.lwc'),
    wasm: file('wasm', 'loopwise.wasm'),
    model: file('model', 'loopwise.lwm'),
    endpoint: ds.endpoint,
    writeKey: ds.writeKey,
    target: ds.target,
    ui: () => import(new URL('loopwise-prompt.js', self)).then((m) => m.load()),
    net: () => import(new URL('loopwise-net.js', self)),
    preview: () => import(new URL('loopwise-preview.js', self)),
  });
  w.Loopwise = api;
  if (prev && prev.q) api.q.push(...prev.q);
})();
