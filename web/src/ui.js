// ui.js: the referral prompt in a Shadow DOM: a modal dialog, a card in the page's corner, or
// inline in an element of the page (the config's `placement`). A chunk of its own
// (web/dist/loopwise-prompt.js): loopwise.js imports it when a decision first says to prompt.
//
// The host element <loopwise-prompt> carries `all:initial` (set through the CSSOM, which a
// Content-Security-Policy without 'unsafe-inline' allows) and everything else lives in its
// shadow root, so the host page's CSS neither leaks in nor gets affected. The styles are a
// constructable stylesheet adopted by the shadow root: no <style> element, so they apply under
// `style-src 'self'` (a browser without adoptedStyleSheets, Safari before 16.4, gets a <style>
// element, which such a policy blocks). The look comes from CSS custom properties (--lw-accent,
// --lw-background, --lw-text, their --lw-dark-* twins, --lw-radius, --lw-font): `all` leaves
// custom properties alone, so the page may set them on :root or on loopwise-prompt, and the
// config's `theme` sets them on the host (through the CSSOM too). Config text is only ever set
// through textContent. Keyboard: focus moves to the first button (the modal keeps it inside
// while open), Escape means "Not now", and focus returns to where it was.
//
// A modal or corner prompt is a child of <html>, not of <body>: a `transform`, `filter`, `zoom`
// or `overflow: hidden` on body would otherwise make it scroll with, scale with or be clipped
// by the page (a transformed ancestor turns `position: fixed` into "fixed to that ancestor").

import { channels } from './channels.js';

// Buttons keep the browser's own focus ring. The backdrop spells out `inset:0` as four offsets
// and the close button is placed by [dir=rtl]: `inset` and `inset-inline-*` need Chrome 87, and
// the supported browsers start at Chrome 75 (`margin-inline-end` is Chrome 69). The dialog
// is at most the viewport's height and scrolls inside it (a 568x320 phone held sideways).
const CSS =
  '.b{position:fixed;top:0;right:0;bottom:0;left:0;z-index:2147483647;background:#0007;display:grid;place-items:center;' +
  '--a:var(--lw-accent,#25e);--g:var(--lw-background,#fff);--t:var(--lw-text,#123);font:15px/1.45 var(--lw-font,system-ui,sans-serif);color:var(--t)}' +
  '@media(prefers-color-scheme:dark){.b{--a:var(--lw-dark-accent,var(--lw-accent,#8af));--g:var(--lw-dark-background,#1c2230);--t:var(--lw-dark-text,#e4e8f0)}}' +
  '.d{position:relative;box-sizing:border-box;background:var(--g);border-radius:var(--lw-radius,12px);max-width:24em;max-height:calc(100% - 2em);overflow:auto;margin:1em;padding:1.3em 1.5em;animation:lw .2s ease-out}' +
  '@keyframes lw{from{opacity:0;transform:translateY(.6em)}}@media(prefers-reduced-motion:reduce){.d{animation:none}}' +
  'h2{margin:0 0 .4em;margin-inline-end:1.5em;font-size:1.25em}p,ul{margin:0 0 .8em;padding:0;list-style:none}li{margin-top:.4em;padding:.4em .7em;background:#8883}' +
  'button,a{font:inherit;color:inherit;border:1px solid #888;background:var(--g);border-radius:8px;padding:.5em .9em;margin:.2em 0 0;margin-inline-end:.4em}' +
  'a{display:inline-block;text-decoration:none}input{font:inherit;width:100%;margin-top:.3em;direction:ltr}' + // channels.js
  '.p{background:var(--a);border-color:var(--a);color:var(--g)}.x{position:absolute;top:.4em;right:.4em;border:0;font-size:1.3em;padding:0 .4em;margin:0}' +
  '[dir=rtl] .x{right:auto;left:.4em}' +
  '[role=status]{word-break:break-all}.l{display:block;height:2em;margin-bottom:.5em}' +
  '.c{top:auto;left:auto;background:none;display:block}.c[dir=rtl]{left:0;right:auto}.c .d{max-height:calc(100vh - 2em);box-shadow:0 .3em 1.5em #0005}' +
  '.i{position:static;background:none;display:block}.i .d{margin:0;max-width:none;max-height:none;border:1px solid #8886}';

// The built-in labels: share, copy, not_now, close, copied, copy_this, and the share channels'
// email, linkedin, x, whatsapp (channels.js; the keys of a config locale's `labels`, README
// "Program config reference"). English is here; each other language
// is a chunk of its own (web/src/labels/<lang>.js, web/dist/loopwise-labels-<lang>.js), so a
// page downloads only its own: load() fetches those of the browser's and the page's language
// (or of the languages it is given) before the first prompt. A language without labels, or
// whose chunk failed to load, gets English.
const KEYS = ['share', 'copy', 'not_now', 'close', 'copied', 'copy_this', 'email', 'linkedin', 'x', 'whatsapp'];
const LABELS = { en: 'Share|Copy link|Not now|Close|Link copied.|Copy this link:|Email|LinkedIn|X|WhatsApp' };
const MORE = {
  fr: () => import('./loopwise-labels-fr.js'),
  de: () => import('./loopwise-labels-de.js'),
  es: () => import('./loopwise-labels-es.js'),
  pt: () => import('./loopwise-labels-pt.js'),
  ar: () => import('./loopwise-labels-ar.js'),
};
const primary = (tag) => (tag || '').toLowerCase().split('-')[0];

// load(langs): resolves to {open, load} once the labels of langs (default: navigator.language
// and <html lang>) are there; the entries' prompt loaders call it (script.js, index.js), and
// Loopwise.preview again for its locale's.
export const load = (langs = [navigator.language, document.documentElement.lang]) =>
  Promise.all(langs.map((l) => (l = primary(l), !LABELS[l] && MORE[l] && MORE[l]().then((m) => { LABELS[l] = m.default; }, () => {}))))
    .then(() => ({ open, load }));

let sheet; // the one constructable stylesheet, made at the first prompt

// A new element under parent, with attributes and text. The text goes in as a text node, never
// parsed as HTML; a missing one ('' or undefined) leaves the element empty.
function el(parent, tag, attrs, text) {
  const e = document.createElement(tag);
  for (const k in attrs) e.setAttribute(k, attrs[k]);
  e.append(text || '');
  return parent.appendChild(e);
}

// The texts in the reader's language. The config's `locales` (display part: {default, <tag>:
// {share, variants: [by variant index], labels}}): the one whose tag is `want` (the browser's
// language, or a preview's), else the one of its language (fr-CA: fr), else none: the
// config's own texts, in the language `default` names. Returns [tag or undefined, its texts].
function locale(all, want) {
  const w = want.toLowerCase(), tags = Object.keys(all).filter((k) => k !== 'default');
  const tag = tags.find((k) => k.toLowerCase() === w) || tags.find((k) => k.toLowerCase() === w.split('-')[0]);
  return [tag, tag ? all[tag] : {}];
}

// open(v, share: {url,title,text,channels,rank}, lines, outcome(kind, rnd, channel), x) shows
// the prompt (share.channels: the config's, share.rank: the model's ranking: channels.js;
// lines: more reward text, e.g. the referrer's ladder step); returns close(), which removes it
// without logging (the caller logs 'close' when that is what happened). x (optional): {cfg: the
// config's display part, variant: v's index there, target: the element (or a selector) an
// inline placement goes into, overriding placement.target; locale, theme: Loopwise.preview's}.
// The url's {token} becomes this prompt's per-share token: the hex of rnd, 16 bytes from the
// CSPRNG, which outcome passes on, with the channel, for the share or copy record (engine.share).
export function open(v, share, lines, outcome, x = {}) {
  const rnd = crypto.getRandomValues(new Uint8Array(16));
  const doc = document, nav = navigator, top = doc.documentElement, cfg = x.cfg || { share };
  const locs = cfg.locales || {}, [tag, loc] = locale(locs, x.locale || nav.language || '');
  // A locale's texts over the config's, its placeholders filled with the (localized) rewards.
  const V = { ...v, ...(loc.variants || [])[x.variant] }, S = { ...cfg.share, ...loc.share };
  const fill = (s) => s && s.replace(/\{(referrer_reward|referee_reward)\}/g, (_, k) => V[k]);
  share = {
    ...share,
    url: share.url.split('{token}').join([...rnd].map((b) => (b | 256).toString(16).slice(1)).join('')),
    title: fill(S.title || V.title),
    text: fill(S.text || V.message),
  };
  // The labels' language: the locale's, else the config's default, else the page's.
  const lang = tag || locs.default || top.lang || 'en';
  const T = {}, words = (LABELS[primary(lang)] || LABELS.en).split('|');
  KEYS.forEach((k, i) => { T[k] = (loc.labels || {})[k] || words[i]; });

  const place = cfg.placement || {};
  let slot = x.target || place.target;
  try { slot = typeof slot === 'string' ? doc.querySelector(slot) : slot; } catch { slot = null; }
  const kind = place.type === 'inline' ? (slot ? 'i' : '') : place.type === 'corner' ? 'c' : '';
  const modal = !kind; // an inline placement without its element is a modal
  // Right to left when the texts' language is written so; the config's own texts without a
  // stated language take the direction of where they are shown.
  const dir = tag || locs.default ? (/^(ar|he|fa|ur)\b/i.test(lang) ? 'rtl' : 'ltr')
    : getComputedStyle(kind === 'i' ? slot : doc.body || top).direction;

  const host = doc.createElement('loopwise-prompt');
  host.style.cssText = 'all:initial' + (kind === 'i' ? ';display:block' : '');
  const theme = { ...cfg.theme, ...x.theme };
  for (const k in theme) if (k !== 'logo') host.style.setProperty('--lw-' + k.replace('_', '-'), theme[k] + (k === 'radius' ? 'px' : ''));
  const root = host.attachShadow({ mode: 'open' });
  if (root.adoptedStyleSheets) {
    if (!sheet) (sheet = new CSSStyleSheet()).replaceSync(CSS);
    root.adoptedStyleSheets = [sheet];
  } else el(root, 'style', 0, CSS);
  const back = el(root, 'div', { class: 'b ' + kind, dir, lang });
  const dlg = el(back, 'div', { class: 'd', role: 'dialog', 'aria-labelledby': 't', 'aria-describedby': 'm' });
  if (modal) dlg.setAttribute('aria-modal', 'true');
  // No <form> in the shadow root, so buttons need no type=button.
  const bx = el(dlg, 'button', { class: 'x', 'aria-label': T.close }, '\u00d7');
  if (theme.logo) el(dlg, 'img', { class: 'l', src: theme.logo, alt: '' });
  el(dlg, 'h2', { id: 't' }, fill(V.title));
  el(dlg, 'p', { id: 'm' }, fill(V.message));
  const ul = el(dlg, 'ul');
  // The config words both rewards as whole phrases ("You get $10 credit"), shown as they are.
  for (const t of [V.referrer_reward, V.referee_reward, ...lines]) if (t) el(ul, 'li', 0, t);
  // The share channels (channels.js), then "Not now"; the status line after them.
  const status = el(doc.createDocumentFragment(), 'p', { role: 'status' });
  const first = channels(dlg, share, el, (k) => T[k], status, end)[0];
  const bNo = el(dlg, 'button', 0, T.not_now);
  dlg.append(status);
  const prev = doc.activeElement;
  let done = 0;

  // On the document (capture), so the keys work even when a click on the backdrop took focus.
  // A corner or inline prompt is not modal: its keys work while the focus is in it, and Tab
  // leaves it as it leaves any part of the page.
  const key = (e) => {
    if (!modal && doc.activeElement !== host) return;
    if (e.key === 'Escape') { e.preventDefault(); end('dismiss'); }
    if (e.key === 'Tab' && modal) {
      const all = [...dlg.querySelectorAll('button,a[href],input')];
      const i = all.indexOf(root.activeElement), n = all.length;
      e.preventDefault();
      all[(i + (e.shiftKey ? n - 1 : 1)) % n].focus();
    }
  };
  const close = () => {
    if (done > 1) return;
    done = 2;
    host.remove();
    doc.removeEventListener('keydown', key, true);
    if (prev && prev.isConnected && prev.focus && kind !== 'i') prev.focus({ preventScroll: true });
  };
  // The engine ends the prompt on share/copy/dismiss/close: the first action is logged, any
  // later one only closes. A message stays 1.5 s, or until closed when the user must act on it.
  function end(k, msg, stay, channel) {
    if (done) return close();
    done = 1;
    outcome(k, rnd, channel);
    if (!msg) return close();
    status.textContent = msg;
    if (!stay) setTimeout(close, 1500);
  }

  bNo.onclick = () => end('dismiss');
  bx.onclick = () => end('close');
  back.onclick = (e) => { if (e.target === back && modal) end('close'); };
  doc.addEventListener('keydown', key, true);

  if (kind === 'i') slot.append(host);
  else top.append(host);
  // Focus without scrolling the page to it; an inline prompt leaves the focus where it is.
  if (kind !== 'i') first.focus({ preventScroll: true });
  return close;
}
