// ui.js: the referral prompt, an accessible modal dialog in a Shadow DOM.
//
// The host element <loopwise-prompt> carries an inline `all:initial` and everything else lives
// in its shadow root, so the host page's CSS neither leaks in nor gets affected. Config text is
// only ever set through textContent. Keyboard: focus moves to the first button and is trapped in
// the dialog while it is open, Escape means "Not now", and focus returns to where it was.

const CSS =
  '.b{position:fixed;inset:0;z-index:2147483647;background:#0007;display:flex;align-items:center;justify-content:center;font:15px/1.45 system-ui,sans-serif;color:#15171c}' +
  '.d{position:relative;background:#fff;border-radius:12px;max-width:24em;margin:1em;padding:1.3em 1.5em;box-shadow:0 10px 40px #0005}' +
  'h2{margin:0 1.6em .4em 0;font-size:1.25em}p{margin:0 0 .8em}ul{margin:0 0 1em;padding:0;list-style:none}' +
  'li{margin-top:.4em;padding:.4em .7em;background:#eef2ff;border-radius:8px}' +
  'button{font:inherit;color:inherit;border:1px solid #888;background:#fff;border-radius:8px;padding:.5em .9em;margin:.2em .4em 0 0;cursor:pointer}' +
  'button:focus-visible{outline:3px solid #2f5bea;outline-offset:2px}.p{background:#2f5bea;border-color:#2f5bea;color:#fff}' +
  '.x{position:absolute;top:.5em;right:.5em;border:0;margin:0;font-size:1.3em;line-height:1;padding:.2em .45em}' +
  '[role=status]{min-height:1.3em;margin:.6em 0 0;font-size:.9em;word-break:break-all}';

function el(tag, parent, text, attrs) {
  const e = document.createElement(tag);
  if (text) e.textContent = text;
  for (const k in attrs) e.setAttribute(k, attrs[k]);
  parent.append(e);
  return e;
}

// Put `text` on the clipboard; false when neither the async API nor execCommand can.
async function copyText(text, root) {
  try { await navigator.clipboard.writeText(text); return true; } catch { /* denied, insecure */ }
  const t = el('textarea', root, '', { 'aria-hidden': 'true', style: 'position:fixed;opacity:0' });
  t.value = text;
  t.select();
  let ok = false;
  try { ok = document.execCommand('copy'); } catch { /* unsupported */ }
  t.remove();
  return ok;
}

// open({ variant, share: {url,title,text}, outcome(kind) }) shows the dialog; returns close(),
// which removes it without logging (the caller logs 'close' when that is what happened).
export function open({ variant: v, share, outcome }) {
  const host = document.createElement('loopwise-prompt');
  host.style.cssText = 'all:initial';
  const root = host.attachShadow({ mode: 'open' });
  el('style', root, CSS);
  const back = el('div', root, '', { class: 'b' });
  const dlg = el('div', back, '', { class: 'd', role: 'dialog', 'aria-modal': 'true', 'aria-labelledby': 't', 'aria-describedby': 'm' });
  const x = el('button', dlg, '\u00d7', { class: 'x', type: 'button', 'aria-label': 'Close' });
  el('h2', dlg, v.title, { id: 't' });
  el('p', dlg, v.message, { id: 'm' });
  const ul = el('ul', dlg);
  if (v.referrer_reward) el('li', ul, 'You get: ' + v.referrer_reward);
  if (v.referee_reward) el('li', ul, 'Your friend gets: ' + v.referee_reward);
  const bShare = el('button', dlg, 'Share', { class: 'p', type: 'button' });
  const bCopy = el('button', dlg, 'Copy link', { type: 'button' });
  const bNo = el('button', dlg, 'Not now', { type: 'button' });
  const status = el('p', dlg, '', { role: 'status' });
  const buttons = [x, bShare, bCopy, bNo];
  const prev = document.activeElement;
  let done = 0;

  function close() {
    if (done === 2) return;
    done = 2;
    host.remove();
    if (prev && prev.isConnected && prev.focus) prev.focus();
  }
  // The engine ends the prompt on share/copy/dismiss/close; ignore clicks after the first.
  function end(kind, msg) {
    if (done) return;
    done = 1;
    outcome(kind);
    if (!msg) return close();
    status.textContent = msg;
    setTimeout(close, 1500);
  }
  async function copy() {
    if (done) return;
    const ok = await copyText(share.url, root);
    end('copy', ok ? 'Link copied.' : 'Copy this link: ' + share.url);
  }

  bShare.onclick = () => {
    if (done) return;
    if (!navigator.share) return copy();
    navigator.share(share).then(() => end('share', 'Thanks for sharing!'),
      (e) => { if (e && e.name !== 'AbortError') copy(); });
  };
  bCopy.onclick = copy;
  bNo.onclick = () => end('dismiss');
  x.onclick = () => end('close');
  back.onclick = (e) => { if (e.target === back) end('close'); };
  back.onkeydown = (e) => {
    if (e.key === 'Escape') { e.preventDefault(); end('dismiss'); }
    if (e.key === 'Tab') {
      const i = buttons.indexOf(root.activeElement), n = buttons.length;
      e.preventDefault();
      buttons[(i + (e.shiftKey ? n - 1 : 1)) % n].focus();
    }
  };

  document.body.append(host);
  bShare.focus();
  return close;
}
