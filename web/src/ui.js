// ui.js: the referral prompt, an accessible modal dialog in a Shadow DOM. A chunk of its own
// (web/dist/loopwise-prompt.js): loopwise.js imports it when a decision first says to prompt.
//
// The host element <loopwise-prompt> carries `all:initial` (set through the CSSOM, which a
// Content-Security-Policy without 'unsafe-inline' allows) and everything else lives in its
// shadow root, so the host page's CSS neither leaks in nor gets affected. The styles are a
// constructable stylesheet adopted by the shadow root: no <style> element, so they apply under
// `style-src 'self'` (a browser without adoptedStyleSheets, Safari before 16.4, gets a <style>
// element, which such a policy blocks). Config text is
// only ever set through textContent. Keyboard: focus moves to the first button and is trapped in
// the dialog while it is open, Escape means "Not now", and focus returns to where it was.

import { channels } from './channels.js';

// Buttons keep the browser's own focus ring. The backdrop spells out `inset:0` as four offsets:
// `inset` needs Chrome 87, and the supported browsers start at Chrome 75.
const CSS =
  '.b{position:fixed;top:0;right:0;bottom:0;left:0;z-index:2147483647;background:#0007;display:grid;place-items:center;font:15px/1.45 system-ui,sans-serif;color:#123}' +
  '.d{position:relative;background:#fff;border-radius:12px;max-width:24em;margin:1em;padding:1.3em 1.5em}' +
  'h2{margin:0 1.5em .4em 0;font-size:1.25em}p,ul{margin:0 0 .8em;padding:0;list-style:none}li{margin-top:.4em;padding:.4em .7em;background:#eef}' +
  'button,a{font:inherit;color:inherit;border:1px solid #888;background:#fff;border-radius:8px;padding:.5em .9em;margin:.2em .4em 0 0}' +
  'a{display:inline-block;text-decoration:none}input{font:inherit;width:100%;margin-top:.3em}' + // channels.js
  '.p{background:#25e;border-color:#25e;color:#fff}.x{position:absolute;top:.4em;right:.4em;border:0;font-size:1.3em;padding:0 .4em}' +
  '[role=status]{word-break:break-all}';

let sheet; // the one constructable stylesheet, made at the first prompt

// A new element under parent, with attributes and text. The text goes in as a text node, never
// parsed as HTML; a missing one ('' or undefined) leaves the element empty.
function el(parent, tag, attrs, text) {
  const e = document.createElement(tag);
  for (const k in attrs) e.setAttribute(k, attrs[k]);
  e.append(text || '');
  return parent.appendChild(e);
}

// open(variant, share: {url,title,text,channels,rank}, lines, outcome(kind, rnd, channel), opts)
// shows the dialog (share.channels: the config's, share.rank: the model's ranking: channels.js;
// opts: Loopwise.preview's {locale, theme}; lines: more
// reward text, e.g. the referrer's ladder step); returns close(), which removes it without
// logging (the caller logs 'close' when that is what happened). The url's {token} becomes this
// prompt's per-share token: the hex of rnd, 16 bytes from the CSPRNG, which outcome passes on for
// the share or copy record (engine.share).
export function open(v, share, lines, outcome, opts) {
  const rnd = crypto.getRandomValues(new Uint8Array(16));
  share = { ...share, url: share.url.split('{token}').join([...rnd].map((b) => (b | 256).toString(16).slice(1)).join('')) };
  const doc = document, host = doc.createElement('loopwise-prompt');
  host.style.cssText = 'all:initial';
  const root = host.attachShadow({ mode: 'open' });
  if (root.adoptedStyleSheets) {
    if (!sheet) (sheet = new CSSStyleSheet()).replaceSync(CSS);
    root.adoptedStyleSheets = [sheet];
  } else el(root, 'style', 0, CSS);
  const back = el(root, 'div', { class: 'b' });
  const dlg = el(back, 'div', { class: 'd', role: 'dialog', 'aria-modal': 'true', 'aria-labelledby': 't', 'aria-describedby': 'm' });
  // No <form> in the shadow root, so buttons need no type=button.
  const x = el(dlg, 'button', { class: 'x', 'aria-label': 'Close' }, '\u00d7');
  el(dlg, 'h2', { id: 't' }, v.title);
  el(dlg, 'p', { id: 'm' }, v.message);
  const ul = el(dlg, 'ul');
  // The config words both rewards as whole phrases ("You get $10 credit"), shown as they are.
  for (const t of [v.referrer_reward, v.referee_reward, ...lines]) if (t) el(ul, 'li', 0, t);
  // The share channels (channels.js), then "Not now"; the status line after them.
  const status = el(doc.createDocumentFragment(), 'p', { role: 'status' });
  const first = channels(dlg, share, el, 0, status, (...a) => end(...a))[0];
  const bNo = el(dlg, 'button', 0, 'Not now');
  dlg.append(status);
  const prev = doc.activeElement;
  let done = 0;

  // On the document (capture), so the keys work even when a click on the backdrop took focus.
  const key = (e) => {
    if (e.key === 'Escape') { e.preventDefault(); end('dismiss'); }
    if (e.key === 'Tab') {
      const b = [...dlg.querySelectorAll('button,a,input')], i = b.indexOf(root.activeElement);
      e.preventDefault();
      b[(i + (e.shiftKey ? b.length - 1 : 1)) % b.length].focus();
    }
  };
  const close = () => {
    if (done > 1) return;
    done = 2;
    host.remove();
    doc.removeEventListener('keydown', key, true);
    if (prev && prev.isConnected && prev.focus) prev.focus();
  };
  // The engine ends the prompt on share/copy/dismiss/close: the first action is logged, any
  // later one only closes. A message stays 1.5 s, or until closed when the user must act on it.
  const end = (kind, msg, stay, channel) => {
    if (done) return close();
    done = 1;
    outcome(kind, rnd, channel);
    if (!msg) return close();
    status.textContent = msg;
    if (!stay) setTimeout(close, 1500);
  };
  bNo.onclick = () => end('dismiss');
  x.onclick = () => end('close');
  back.onclick = (e) => { if (e.target === back) end('close'); };
  doc.addEventListener('keydown', key, true);

  (doc.body || doc.documentElement).append(host);
  first.focus();
  return close;
}
