// ui.js: the referral prompt, an accessible modal dialog in a Shadow DOM.
//
// The host element <loopwise-prompt> carries an inline `all:initial` and everything else lives
// in its shadow root, so the host page's CSS neither leaks in nor gets affected. Config text is
// only ever set through textContent. Keyboard: focus moves to the first button and is trapped in
// the dialog while it is open, Escape means "Not now", and focus returns to where it was.

// Buttons keep the browser's own focus ring.
const CSS =
  '.b{position:fixed;inset:0;z-index:2147483647;background:#0007;display:grid;place-items:center;font:15px/1.45 system-ui,sans-serif;color:#123}' +
  '.d{position:relative;background:#fff;border-radius:12px;max-width:24em;margin:1em;padding:1.3em 1.5em}' +
  'h2{margin:0 1.5em .4em 0;font-size:1.25em}p,ul{margin:0 0 .8em;padding:0;list-style:none}li{margin-top:.4em;padding:.4em .7em;background:#eef}' +
  'button{font:inherit;color:inherit;border:1px solid #888;background:#fff;border-radius:8px;padding:.5em .9em;margin:.2em .4em 0 0}' +
  '.p{background:#25e;border-color:#25e;color:#fff}.x{position:absolute;top:.4em;right:.4em;border:0;font-size:1.3em;padding:0 .4em}' +
  '[role=status]{word-break:break-all}';

function el(tag, parent, text, attrs) {
  const e = document.createElement(tag);
  if (text) e.textContent = text;
  for (const k in attrs) e.setAttribute(k, attrs[k]);
  parent.append(e);
  return e;
}

// open({ variant, share: {url,title,text}, outcome(kind), lines }) shows the dialog (lines: more
// reward text, e.g. the referrer's ladder step); returns close(), which removes it without
// logging (the caller logs 'close' when that is what happened).
export function open({ variant: v, share, outcome, lines }) {
  const host = document.createElement('loopwise-prompt');
  host.style.cssText = 'all:initial';
  const root = host.attachShadow({ mode: 'open' });
  el('style', root, CSS);
  const back = el('div', root, '', { class: 'b' });
  const dlg = el('div', back, '', { class: 'd', role: 'dialog', 'aria-modal': 'true', 'aria-labelledby': 't', 'aria-describedby': 'm' });
  // No <form> in the shadow root, so buttons need no type=button.
  const x = el('button', dlg, '\u00d7', { class: 'x', 'aria-label': 'Close' });
  el('h2', dlg, v.title, { id: 't' });
  el('p', dlg, v.message, { id: 'm' });
  const ul = el('ul', dlg);
  // The config words both rewards as whole phrases ("You get $10 credit"), shown as they are.
  for (const t of [v.referrer_reward, v.referee_reward, ...lines]) if (t) el('li', ul, t);
  const bShare = el('button', dlg, 'Share', { class: 'p' });
  const bCopy = el('button', dlg, 'Copy link');
  const bNo = el('button', dlg, 'Not now');
  const status = el('p', dlg, '', { role: 'status' });
  const buttons = [x, bShare, bCopy, bNo];
  const prev = document.activeElement;
  let done = 0;

  function close() {
    if (done === 2) return;
    done = 2;
    host.remove();
    document.removeEventListener('keydown', key, true);
    if (prev && prev.isConnected && prev.focus) prev.focus();
  }
  // The engine ends the prompt on share/copy/dismiss/close: the first action is logged, any
  // later one only closes. A message stays 1.5 s, or until closed when the user must act on it.
  function end(kind, msg, stay) {
    if (done) return close();
    done = 1;
    outcome(kind);
    if (!msg) return close();
    status.textContent = msg;
    if (!stay) setTimeout(close, 1500);
  }
  // Without the Clipboard API (insecure page, permission denied) the fallback is the link
  // itself, shown for the user to copy (execCommand('copy') is deprecated and would need a
  // hidden textarea, for the same browsers).
  async function copy() {
    if (done) return close();
    let ok = 1;
    try { await navigator.clipboard.writeText(share.url); } catch { ok = 0; }
    end('copy', ok ? 'Link copied.' : 'Copy this link: ' + share.url, !ok);
  }

  bShare.onclick = () => {
    if (done) return close();
    if (!navigator.share) return copy();
    navigator.share(share).then(() => end('share'),
      (e) => { if (e && e.name !== 'AbortError') copy(); });
  };
  bCopy.onclick = copy;
  bNo.onclick = () => end('dismiss');
  x.onclick = () => end('close');
  back.onclick = (e) => { if (e.target === back) end('close'); };
  // On the document (capture), so the keys work even when a click on the backdrop took focus.
  function key(e) {
    if (e.key === 'Escape') { e.preventDefault(); end('dismiss'); }
    if (e.key === 'Tab') {
      const i = buttons.indexOf(root.activeElement), n = buttons.length;
      e.preventDefault();
      buttons[(i + (e.shiftKey ? n - 1 : 1)) % n].focus();
    }
  }
  document.addEventListener('keydown', key, true);

  (document.body || document.documentElement).append(host);
  bShare.focus();
  return close;
}
