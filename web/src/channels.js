// channels.js: the prompt's share channels (issue 14), part of the prompt chunk (ui.js).
//
// Which channels, in what default order: the config's `channels` (README "Program config
// reference"; a config compiled before them offers the share sheet and copy, as the prompt
// did). The order: the model's ranking for this user's persona (engine.channels, passed in as
// share.rank) first, each channel it ranks that the config offers; then the config's others in
// the config's order. `native` (navigator.share) shows only where the browser has a share sheet;
// a prompt left with nothing offers copy.
//
// The web channels are links (their public share URLs, the link inside as a parameter), so
// they work like links: Enter follows one, Space too (a handler here, as for a button), a
// middle click or "copy link address" as anywhere. Copy writes the clipboard and says so in the
// prompt's status line; where the clipboard is refused (an insecure page, a denied permission)
// the link appears in a read-only field, focused and selected, for Ctrl+C: the copy is then
// recorded when the user copies from it.
//
// Labels come from the prompt's label function by key (ui.js: English unless the locale's
// table has the key): share, copy, email, copied, copy_this, and linkedin, x, whatsapp (names:
// a table need not have them).
const enc = encodeURIComponent;

// The share URL of a web channel for share {url, title, text}.
const WEB = {
  email: (s) => 'mailto:?subject=' + enc(s.title) + '&body=' + enc(s.text + '\n\n' + s.url),
  linkedin: (s) => 'https://www.linkedin.com/sharing/share-offsite/?url=' + enc(s.url),
  x: (s) => 'https://x.com/intent/tweet?text=' + enc(s.text) + '&url=' + enc(s.url),
  whatsapp: (s) => 'https://wa.me/?text=' + enc(s.text + ' ' + s.url),
};
// The English labels, for keys the prompt's label function does not have (the channels' names,
// 'share' for native, and two messages).
const EN = {
  share: 'Share', copy: 'Copy link', email: 'Email', linkedin: 'LinkedIn', x: 'X', whatsapp: 'WhatsApp',
  copied: 'Link copied.', copy_this: 'Copy this link:',
};

// The channels to offer, in order (see the top).
export function order(offered, rank, hasShare) {
  offered = offered || ['native', 'copy'];
  const list = [...rank, ...offered].filter((c, i, all) => offered.includes(c) && all.indexOf(c) === i && (c !== 'native' || hasShare));
  return list.length ? list : ['copy'];
}

// Adds the channel buttons and links to dlg and returns them (the first is the one to focus
// first). el: ui.js's element maker; labels(key): the text, or nothing for English; status: the status line;
// end(kind, msg, stay, channel): logs the share or copy (once) and closes, or shows msg first.
export function channels(dlg, share, el, labels, status, end) {
  const nav = navigator, label = (k) => (labels && labels(k)) || EN[k];
  let field; // the fallback field, once shown
  const copied = () => end('copy', label('copied'), 0, 'copy');
  const copy = async () => {
    try {
      await nav.clipboard.writeText(share.url);
    } catch {
      if (!field) {
        status.textContent = label('copy_this');
        field = el(status, 'input', { readonly: '', 'aria-label': label('copy_this') });
        field.value = share.url;
        field.oncopy = () => setTimeout(copied); // after the copy: the field is then replaced
      }
      field.focus();
      field.select();
      return;
    }
    copied();
  };
  return order(share.channels, share.rank, !!nav.share).map((c, i) => {
    const make = WEB[c];
    const b = el(dlg, make ? 'a' : 'button', i ? 0 : { class: 'p' }, label(c === 'native' ? 'share' : c));
    if (make) {
      b.href = make(share);
      if (c !== 'email') { b.target = '_blank'; b.rel = 'noopener'; }
      b.onkeydown = (e) => { if (e.key === ' ') { e.preventDefault(); b.click(); } };
      // Logged after the click's own work (following the link), which a closed prompt would not stop.
      b.onclick = () => setTimeout(() => end('share', 0, 0, c));
    } else {
      b.onclick = c === 'copy' ? copy : () => nav.share(share).then(() => end('share', 0, 0, c),
        (e) => { if (e && e.name !== 'AbortError') copy(); });
    }
    return b;
  });
}
