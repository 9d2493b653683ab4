// preview.js: Loopwise.preview() and Loopwise.debug() (issue 14), a chunk of its own
// (web/dist/loopwise-preview.js) that only a product manager's page loads: a visitor never
// downloads it.
//
// A preview is the prompt a variant would show (ui.js's open, passed in with the prompt chunk)
// and nothing else: no decision, no outcome record, no engine or storage change, no request
// to the ingest server; its buttons work (a link opens, copy copies) but log nothing.
// The debug overlay shows explain() for the last decision, refreshed at every decision.

let shown; // the open preview's close()

// open: ui.js's; variants: the display part's; id: the one to show; opts: open's options
// ({cfg, target} from the runtime, {locale, theme} from the caller), passed on to open with the
// variant's index; share(v): the share for v's prompt; lines(): its ladder lines; busy: a
// prompt is open. Returns true once shown; an unknown variant or an open prompt throws.
export function preview(open, variants, id, opts, share, lines, busy) {
  const v = variants.find((x) => x.id === id);
  if (!v || busy) throw Error('Loopwise: preview: ' + (busy ? 'a prompt is open' : 'no variant ' + id));
  if (shown) shown();
  shown = open(v, share(v), lines(), () => {}, { ...opts, variant: variants.indexOf(v) });
  return true;
}

let overlay; // {host, off}: the overlay and its listener's removal, while shown

// on: show (true) or remove (false); api: the global's (on, explain).
export function debug(on, api) {
  if (overlay) { overlay.host.remove(); overlay.off(); overlay = null; }
  if (!on) return false;
  const host = document.createElement('loopwise-debug'), pre = document.createElement('pre');
  // CSSOM, not style attributes: allowed under a Content-Security-Policy without 'unsafe-inline'.
  host.style.cssText = 'all:initial;position:fixed;left:0;bottom:0;z-index:2147483647;max-width:40em;max-height:50vh;overflow:auto;background:#111d;color:#fff;font:12px/1.4 monospace';
  pre.style.cssText = 'margin:0;padding:.6em;white-space:pre-wrap';
  host.attachShadow({ mode: 'open' }).append(pre);
  const show = () => { pre.textContent = 'Loopwise explain()\n' + JSON.stringify(api.explain(), null, 1); };
  show();
  overlay = { host, off: api.on('decision', show) };
  (document.body || document.documentElement).append(host);
  return true;
}
