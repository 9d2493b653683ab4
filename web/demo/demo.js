// demo.js: the fake SaaS page's own script. It inserts the Loopwise tag and talks to
// window.Loopwise only through its public API (the queue before load, methods after).
(() => {
  const qs = new URLSearchParams(location.search);
  const $ = (id) => document.getElementById(id);
  const counts = {};
  // What the app knows about each event: the feature's name, the NPS score the user gave.
  const features = ['gantt', 'timeline', 'export', 'automation', 'reports', 'templates'];
  const details = {
    feature_discovered: (n) => ({ label: features[(n - 1) % features.length] }),
    nps_answered: () => ({ value: 9 }),
  };

  // The snippet: calls made before loopwise.js arrives go into Loopwise.q and are replayed.
  window.Loopwise = window.Loopwise || { q: [] };
  const lw = (method, ...args) => {
    const L = window.Loopwise;
    if (L.ready) return L[method](...args);
    L.q.push([method, ...args]);
    return Promise.resolve(null);
  };

  // A config edited in the editor below (compiled, base64) replaces the default for this tab.
  const edited = sessionStorage.getItem('acme:lwc');
  const editedUrl = edited && URL.createObjectURL(new Blob([Uint8Array.from(atob(edited), (c) => c.charCodeAt(0))]));

  const tag = document.createElement('script');
  tag.src = '/dist/loopwise.js';
  tag.async = true;
  tag.dataset.config = qs.get('config') || editedUrl || '/dist/referral.lwc';
  tag.dataset.endpoint = qs.get('endpoint') || 'http://127.0.0.1:8080';
  tag.dataset.writeKey = qs.get('key') || 'demo-site-key';
  if (qs.get('wasm')) tag.dataset.wasm = qs.get('wasm');
  if (qs.get('model')) tag.dataset.model = qs.get('model');
  document.head.append(tag);

  function log(text) {
    const li = document.createElement('li');
    li.textContent = new Date().toLocaleTimeString() + ' ' + text;
    $('log').prepend(li);
  }
  function explain() {
    const d = window.Loopwise.explain ? window.Loopwise.explain() : null;
    $('explain').textContent = d ? JSON.stringify(d, null, 2) : '(no decision yet)';
  }

  lw('on', 'ready', () => { $('status').textContent = 'Loopwise ready'; document.body.dataset.lw = 'ready'; });
  lw('on', 'error', () => { $('status').textContent = 'Loopwise unavailable (the app works anyway)'; document.body.dataset.lw = 'failed'; });
  lw('on', 'decision', (d) => log(`decision ${d.code}: ${d.reason}`));
  lw('on', 'prompt', (d) => log(`prompt shown (variant ${d.variant})`));
  lw('on', 'outcome', (o) => log(`outcome ${o.kind}`));
  lw('on', 'approval', (d) => log(`waiting for approval: ${d.id}`));

  document.addEventListener('DOMContentLoaded', () => {
    for (const b of document.querySelectorAll('[data-event]')) {
      b.addEventListener('click', () => {
        const ev = b.dataset.event;
        counts[ev] = (counts[ev] || 0) + 1;
        $('counts').textContent = Object.entries(counts).map(([k, n]) => `${k}: ${n}`).join(' · ');
        lw('track', ev, details[ev] && details[ev](counts[ev])).then(explain);
      });
    }
    // The checkbox shows the last choice made on this device (the demo keeps it; Loopwise keeps
    // the consent itself).
    $('consent').checked = localStorage.getItem('acme:consent') !== '0';
    $('consent').addEventListener('change', (e) => {
      localStorage.setItem('acme:consent', e.target.checked ? '1' : '0');
      lw('consent', e.target.checked).then(explain);
    });
    $('busy').addEventListener('change', (e) => lw('busy', e.target.checked));
    // A referee who landed through a share link (?ref=CODE&lwt=TOKEN: the referral code and the
    // per-share token, as Loopwise.referral() reads them) signs up. The page tells Loopwise (a
    // learning signal only) and the host's backend, which reports the conversion with the
    // site's secret key (web/demo/backend.mjs): only that counts for the referrer's reward, and
    // its token joins the referee to the share (and the decision) that brought them.
    $('signup').hidden = !qs.get('ref');
    $('signup').addEventListener('click', async () => {
      lw('conversion');
      const { code = qs.get('ref'), token } = (await lw('referral')) || {};
      let user = sessionStorage.getItem('acme:user');
      if (!user) sessionStorage.setItem('acme:user', (user = 'user-' + crypto.randomUUID()));
      const backend = qs.get('backend') || 'http://127.0.0.1:8090';
      try {
        const r = await fetch(backend + '/signup', { method: 'POST', headers: { 'Content-Type': 'text/plain' },
          body: JSON.stringify({ code, token, user }) });
        const a = await r.json().catch(() => ({}));
        log(r.ok ? `signed up: the host reported the conversion (${a.state})` : `sign-up report refused: ${r.status} ${a.error || ''}`);
        document.body.dataset.signup = r.ok ? a.state : 'failed';
      } catch (e) {
        log('the host backend is unreachable: ' + e.message);
        document.body.dataset.signup = 'failed';
      }
    });
    $('reset').addEventListener('click', () => {
      localStorage.clear();
      const r = indexedDB.deleteDatabase('loopwise');
      r.onsuccess = r.onerror = r.onblocked = () => location.reload();
    });
    configEditor();
  });

  // The config editor: check the JSON with loopwise-config.wasm (and offer the compiled file for
  // download), and on "use", keep the compiled bytes for this tab and reload so the tag loads them.
  async function configEditor() {
    const text = $('config-json'), result = $('config-result');
    const say = (msg, ok) => { result.textContent = msg; result.dataset.ok = ok ? '1' : '0'; };
    text.value = sessionStorage.getItem('acme:json') ||
      await fetch('/tools/referral.json').then((r) => r.text()).catch(() => '');
    let tool;
    try {
      const { loadConfigTool } = await import('./config-tool.js');
      tool = await loadConfigTool(fetch('/tools/loopwise-config.wasm').then((r) => r.arrayBuffer()));
    } catch (e) {
      say('The config checker is unavailable: ' + e.message, false);
      return;
    }
    const link = $('config-download');
    const check = () => {
      const r = tool.compile(text.value);
      say(r.ok ? `OK: compiled to ${r.bytes.length} bytes.` : r.error, r.ok);
      // What the site serves as data-config, ready to download once the config checks.
      if (link.href) URL.revokeObjectURL(link.href);
      link.hidden = !r.ok;
      if (r.ok) link.href = URL.createObjectURL(new Blob([r.bytes], { type: 'application/octet-stream' }));
      else link.removeAttribute('href');
      return r;
    };
    $('config-check').addEventListener('click', check);
    $('config-use').addEventListener('click', () => {
      const r = check();
      if (!r.ok) return;
      let bin = '';
      for (const b of r.bytes) bin += String.fromCharCode(b);
      sessionStorage.setItem('acme:lwc', btoa(bin));
      sessionStorage.setItem('acme:json', text.value);
      location.reload();
    });
    $('config-default').addEventListener('click', () => {
      sessionStorage.removeItem('acme:lwc');
      sessionStorage.removeItem('acme:json');
      location.reload();
    });
    if (edited) say('This page uses the edited config.', true);
  }
})();
