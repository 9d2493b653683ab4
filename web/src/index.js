// index.js: the npm package's ES module entry (built into web/dist/loopwise.mjs).
//
//   import { init } from 'loopwise';
//   const lw = init({ endpoint: 'https://ingest.example', writeKey: 'site-key' });
//   lw.track('project_completed');
//
// init() is the programmatic twin of the script tag's data-* attributes. The WASM, the default
// config and the default model are resolved with new URL('./file', import.meta.url), the form
// bundlers (Vite, Rollup, webpack 5, Parcel) recognise and copy into the app's build; the prompt
// and transport chunks are import()s of files next to this one, which bundlers split out.
// Nothing global is defined. One runtime per page: a second init() returns the first one's API
// (two would share one device state and show two prompts).
import { create } from './loopwise.js';

let api = null;

export function init(options = {}) {
  if (api) return api;
  const o = options;
  // A URL option is resolved against the page, as the tag's attributes are.
  const at = (v, fallback) => (v == null ? fallback : typeof v === 'string' ? new URL(v, document.baseURI) : v);
  return (api = create({
    config: at(o.config, new URL('./referral.lwc', import.meta.url)),
    wasm: at(o.wasm, new URL('./loopwise.wasm', import.meta.url)),
    model: at(o.model, new URL('./loopwise.lwm', import.meta.url)),
    endpoint: o.endpoint,
    writeKey: o.writeKey,
    target: o.target,
    ui: () => import('./loopwise-prompt.js').then((m) => m.load()),
    net: () => import('./loopwise-net.js'),
    preview: () => import('./loopwise-preview.js'),
  }));
}
