// prompt.test.mjs: the prompt chunk (web/dist/loopwise-prompt.js) as people see it, in Chromium
// under the strict CSP (style-src 'self'): the config's theme and the dark scheme, reduced
// motion, 320 px and 568x320 screens with every button inside the viewport, hosts whose body
// is transformed, zoomed or clipped, right-to-left pages, the locales chosen from the
// browser's language with their fallback, and each placement. Each config is compiled by
// loopwise-config and its display part handed to the chunk as loopwise.js does; assertions are
// on geometry, computed styles and text, with a screenshot of each saved under
// build/artifacts/prompt/ (git-ignored).
//
//   node --test tests/web/prompt.test.mjs      (after: bash src/scripts/build.sh)
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { compileConfig } from '../../src/tools/native-tools.mjs';
import { dist, launchBrowser, requireBuilt, root, startDemo } from './helpers.mjs';

const distDir = process.env.LW_WEB_DIST || dist;
requireBuilt(join(distDir, 'loopwise-prompt.js'));
const artifacts = join(root, 'build/artifacts/prompt');
mkdirSync(artifacts, { recursive: true });

const base = JSON.parse(readFileSync(join(root, 'models/referral.json'), 'utf8'));
// The display part of a compiled config, read as web/src/engine.js reads it.
function display(json) {
  const lwc = Buffer.from(compileConfig(json));
  return JSON.parse(lwc.subarray(12 + lwc.readUInt32LE(8), lwc.length - 4).toString('utf8'));
}
// Texts near their 240-byte limit.
const LONG = 'Invite the people you work with and you both get rewarded for it. '.repeat(3);

let browser, demo;
before(async () => { browser = await launchBrowser(); demo = await startDemo(distDir); });
after(async () => { await browser?.close(); await demo?.stop(); });

// The page's script (a file: the CSP allows no inline script): show(cfg, x) opens the prompt
// for variant x.variant (0) as loopwise.js does, with the config's channels (Chromium on Linux
// has no share sheet: a stub, so the prompt offers Share); x.targetId names the inline element
// passed as an Element, x.target a selector.
const PAGE_JS = `window.log = []; window.violations = [];
document.addEventListener('securitypolicyviolation', (e) => violations.push(e.violatedDirective));
navigator.share = navigator.share || (async () => {});
window.show = async (cfg, x = {}) => {
  // as script.js loads it: with the labels of the browser's and the page's language (and here
  // of the language a test asks for)
  const { open } = await (await import('/dist/loopwise-prompt.js')).load([navigator.language, document.documentElement.lang, x.locale]);
  const i = x.variant || 0, v = cfg.variants[i], s = cfg.share;
  window.close = open(v, { url: s.url.split('{code}').join('CODE'), title: s.title || v.title, text: s.text || v.message, channels: cfg.channels, rank: [] },
    [], (k) => log.push(k), { cfg, variant: i, target: x.targetId ? document.getElementById(x.targetId) : x.target, locale: x.locale });
};`;
const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' https:";

// A page (html: its <html> attributes and body) in a new context (opts: viewport, locale,
// colorScheme, reducedMotion), with the prompt opened from config json.
// Motion is reduced unless asked for, so geometry is read with the opening animation over.
async function prompt({ json = base, x = {}, htmlAttrs = 'lang="en"', body = '<h1>host</h1>', css = '', ...opts } = {}) {
  const ctx = await browser.newContext({ viewport: { width: 1024, height: 768 }, reducedMotion: 'reduce', ...opts });
  await ctx.route('https://logo.example/**', (r) => r.fulfill({ contentType: 'image/svg+xml', body: '<svg xmlns="http://www.w3.org/2000/svg" width="80" height="20"/>' }));
  const files = {
    'index.html': `<!doctype html><html ${htmlAttrs}><head><title>t</title><link rel="stylesheet" href="/lw-t/host.css">
<script src="/lw-t/page.js"></script></head><body>${body}</body></html>`,
    'page.js': PAGE_JS,
    'host.css': css,
  };
  await ctx.route(demo.url + 'lw-t/**', (r) => {
    const name = new URL(r.request().url()).pathname.slice('/lw-t/'.length);
    const type = name.endsWith('.html') ? 'text/html' : name.endsWith('.css') ? 'text/css' : 'text/javascript';
    return r.fulfill({ contentType: type, headers: { 'content-security-policy': CSP }, body: files[name] });
  });
  const page = await ctx.newPage();
  page.errors = [];
  page.on('pageerror', (e) => page.errors.push(e.message));
  page.on('console', (m) => { if (m.type() === 'error') page.errors.push(m.text()); });
  await page.goto(demo.url + 'lw-t/index.html');
  await page.evaluate(({ cfg, x }) => window.show(cfg, x), { cfg: display(json), x });
  page.ctx = ctx;
  return page;
}
async function done(page, shot) {
  await page.screenshot({ path: join(artifacts, shot + '.png') });
  assert.deepEqual(page.errors, [], 'no console error');
  assert.deepEqual(await page.evaluate(() => window.violations), [], 'no CSP violation');
  await page.ctx.close();
}

// Geometry and styles of the open prompt, read inside its shadow root.
const look = (page) => page.evaluate(() => {
  const host = document.querySelector('loopwise-prompt'), r = host.shadowRoot;
  const box = (e) => { const b = e.getBoundingClientRect(); return { left: b.left, top: b.top, right: b.right, bottom: b.bottom, width: b.width, height: b.height }; };
  const d = r.querySelector('[role=dialog]'), cs = getComputedStyle(d);
  return {
    parent: host.parentElement.id || host.parentElement.tagName,
    dialog: box(d), scrollHeight: d.scrollHeight, clientHeight: d.clientHeight,
    bg: cs.backgroundColor, color: cs.color, radius: cs.borderTopLeftRadius, font: cs.fontFamily,
    animation: cs.animationName, dir: getComputedStyle(r.querySelector('h2')).direction,
    lang: r.querySelector('[lang]')?.getAttribute('lang'), modal: d.getAttribute('aria-modal'),
    backdrop: getComputedStyle(d.parentElement).backgroundColor,
    title: r.querySelector('h2').textContent, message: r.querySelector('#m').textContent,
    rewards: [...r.querySelectorAll('li')].map((l) => l.textContent),
    buttons: [...r.querySelectorAll('button')].map((b) => ({ text: b.textContent, label: b.getAttribute('aria-label'), ...box(b), bg: getComputedStyle(b).backgroundColor })),
    logo: r.querySelector('img') && r.querySelector('img').src,
    focus: r.activeElement && r.activeElement.textContent,
    scrollY: window.scrollY, vw: innerWidth, vh: innerHeight,
  };
});

// Every button and channel link, scrolled into view inside the dialog if need be, lies inside
// the viewport and is what a click there hits.
async function everyButtonReachable(page) {
  return page.evaluate(() => {
    const r = document.querySelector('loopwise-prompt').shadowRoot, out = [];
    for (const b of r.querySelectorAll('button,a')) {
      b.scrollIntoView({ block: 'nearest', inline: 'nearest' });
      const x = b.getBoundingClientRect(), cx = (x.left + x.right) / 2, cy = (x.top + x.bottom) / 2;
      out.push({ text: b.textContent, inside: x.left >= 0 && x.top >= 0 && x.right <= innerWidth && x.bottom <= innerHeight,
        hit: r.elementFromPoint(cx, cy) === b, pageScroll: window.scrollY });
    }
    return out;
  });
}

const themed = {
  ...base,
  theme: { accent: '#0a7f3f', background: '#fffbe6', text: '#222222', dark_accent: '#7fe0a8', dark_background: '#101820', dark_text: '#f0f0f0', radius: 4, font: 'Georgia, serif', logo: 'https://logo.example/acme.svg' },
};

test('the_theme_colours_radius_font_and_logo_reach_the_prompt_in_light_and_dark', async () => {
  const light = await prompt({ json: themed, colorScheme: 'light' });
  let l = await look(light);
  assert.equal(l.bg, 'rgb(255, 251, 230)');
  assert.equal(l.color, 'rgb(34, 34, 34)');
  assert.equal(l.buttons.find((b) => b.text === 'Share').bg, 'rgb(10, 127, 63)');
  assert.equal(l.radius, '4px');
  assert.match(l.font, /^Georgia, serif$/);
  assert.equal(l.logo, 'https://logo.example/acme.svg');
  await done(light, 'theme-light');
  const dark = await prompt({ json: themed, colorScheme: 'dark' });
  l = await look(dark);
  assert.equal(l.bg, 'rgb(16, 24, 32)');
  assert.equal(l.color, 'rgb(240, 240, 240)');
  assert.equal(l.buttons.find((b) => b.text === 'Share').bg, 'rgb(127, 224, 168)');
  await done(dark, 'theme-dark');
});

test('dark_mode_without_a_theme_has_dark_defaults_and_the_page_can_set_the_properties', async () => {
  const dark = await prompt({ colorScheme: 'dark' });
  const d = await look(dark);
  const [r, g, b] = d.bg.match(/\d+/g).map(Number);
  assert.ok(r + g + b < 150, 'a dark background: ' + d.bg);
  const [tr, tg, tb] = d.color.match(/\d+/g).map(Number);
  assert.ok(tr + tg + tb > 600, 'light text: ' + d.color);
  await done(dark, 'default-dark');
  // CSS custom properties from the page's own stylesheet (not reset by the host's all:initial).
  const page = await prompt({ colorScheme: 'light', css: ':root{--lw-accent:#c00;--lw-radius:0}' });
  const p = await look(page);
  assert.equal(p.buttons.find((x) => x.text === 'Share').bg, 'rgb(204, 0, 0)');
  assert.equal(p.radius, '0px');
  await done(page, 'page-custom-properties');
});

test('reduced_motion_turns_the_opening_animation_off', async () => {
  const moving = await prompt({ reducedMotion: 'no-preference' });
  assert.equal((await look(moving)).animation, 'lw');
  await done(moving, 'motion');
  const still = await prompt({ reducedMotion: 'reduce' });
  assert.equal((await look(still)).animation, 'none');
  await done(still, 'reduced-motion');
});

// Long texts make the dialog taller than a phone held sideways: it stays inside the viewport
// and scrolls, and each button can be reached there.
const long = { ...base, variants: base.variants.map((v) => ({ ...v, title: LONG.slice(0, 120), message: LONG, referrer_reward: LONG, referee_reward: LONG })) };
for (const [w, h] of [[320, 568], [568, 320], [320, 480]]) {
  test(`every_button_is_inside_the_viewport_at_${w}x${h}`, async () => {
    const page = await prompt({ json: long, viewport: { width: w, height: h } });
    const l = await look(page);
    assert.ok(l.dialog.left >= 0 && l.dialog.top >= 0 && l.dialog.right <= w && l.dialog.bottom <= h, 'dialog inside: ' + JSON.stringify(l.dialog));
    if (h <= 320) assert.ok(l.scrollHeight > l.clientHeight, 'the dialog scrolls inside the viewport');
    for (const b of await everyButtonReachable(page)) {
      assert.ok(b.inside && b.hit, `${b.text} reachable: ${JSON.stringify(b)}`);
      assert.equal(b.pageScroll, 0, 'the page does not scroll');
    }
    await done(page, `viewport-${w}x${h}`);
  });
}

// A host page that transforms, zooms or clips its body, and is scrolled down: the modal still
// covers the viewport, centred, every button hit-testable, and opening it scrolls nothing.
for (const [name, css] of [
  ['transform', 'body{transform:translateY(40px) scale(.9)}'],
  ['zoom', 'body{zoom:1.6}'],
  ['overflow_hidden', 'html,body{height:100%;overflow:hidden;margin:0}'],
  ['all_three', 'body{transform:rotate(1deg);zoom:1.3;overflow:hidden;height:200px}'],
]) {
  test(`a_body_with_${name}_neither_moves_nor_hides_the_prompt`, async () => {
    const body = '<div class="tall">tall</div><button id="b">host button</button>';
    const ctxPage = await prompt({ css: '.tall{height:3000px}' + css, body: '<h1>host</h1>' + body, viewport: { width: 800, height: 600 } });
    // (opened at the top; now again with the page scrolled, where it can be)
    await ctxPage.evaluate(() => { window.close(); window.scrollTo(0, 1000); });
    const before = await ctxPage.evaluate(() => window.scrollY);
    await ctxPage.evaluate((cfg) => window.show(cfg), display(base));
    const l = await look(ctxPage);
    assert.equal(l.scrollY, before, 'opening does not scroll the page');
    assert.equal(l.parent, 'HTML', 'a child of <html>, out of the body');
    const mid = (l.dialog.left + l.dialog.right) / 2, midY = (l.dialog.top + l.dialog.bottom) / 2;
    assert.ok(Math.abs(mid - 400) < 2 && Math.abs(midY - 300) < 2, 'centred in the viewport: ' + JSON.stringify(l.dialog));
    assert.ok(l.dialog.width > 200 && l.dialog.width < 400, 'not scaled: ' + l.dialog.width);
    for (const b of await everyButtonReachable(ctxPage)) assert.ok(b.inside && b.hit, `${b.text} reachable: ${JSON.stringify(b)}`);
    assert.equal(l.focus, 'Share', 'focus on the first action');
    await done(ctxPage, `host-${name}`);
  });
}

const localized = {
  ...base,
  locales: {
    default: 'en',
    fr: {
      share: { title: 'Essayez Acme' },
      variants: {
        [base.variants[0].id]: { title: 'Invitez un collègue', message: 'Il reçoit {referee_reward}, vous aussi : {referrer_reward}.', referrer_reward: '10 € pour vous', referee_reward: '10 € pour lui' },
      },
    },
    'pt-BR': { variants: { [base.variants[0].id]: { title: 'Convide um colega' } }, labels: { not_now: 'Depois' } },
    ar: { variants: { [base.variants[0].id]: { title: 'ادعُ زميلاً', message: 'يحصل على {referee_reward}.', referee_reward: '١٠ دولارات' } } },
  },
};

test('the_locale_follows_the_browser_language_exact_then_language_then_default', async () => {
  const v = base.variants[0];
  const cases = [
    ['fr', 'Invitez un collègue', 'Il reçoit 10 € pour lui, vous aussi : 10 € pour vous.', 'Partager', 'fr'],
    ['fr-CA', 'Invitez un collègue', 'Il reçoit 10 € pour lui, vous aussi : 10 € pour vous.', 'Partager', 'fr'], // the language
    ['pt-BR', 'Convide um colega', v.message, 'Compartilhar', 'pt-BR'], // exact; unset texts are the config's
    ['pt', v.title, v.message, 'Share', 'en'], // a language's region is not the language: the default
    ['ja-JP', v.title, v.message, 'Share', 'en'], // none: the config's own texts, in its default language
  ];
  for (const [locale, title, message, share, lang] of cases) {
    const page = await prompt({ json: localized, locale });
    const l = await look(page);
    assert.equal(l.title, title, locale);
    assert.equal(l.message, message, locale);
    assert.equal(l.buttons.find((b) => b.bg !== l.buttons[0].bg || b.text === share).text, share, locale);
    assert.equal(l.lang, lang, locale);
    if (locale === 'fr') assert.deepEqual(l.rewards, ['10 € pour vous', '10 € pour lui']);
    if (locale === 'pt-BR') assert.ok(l.buttons.some((b) => b.text === 'Depois'), 'a locale label overrides the built-in one');
    await done(page, 'locale-' + locale);
  }
});

// The built-in labels in six languages (a locale with no texts of its own uses them).
test('the_built_in_labels_come_in_six_languages', async () => {
  const want = {
    en: ['Close', 'Share', 'Copy link', 'Not now'],
    fr: ['Fermer', 'Partager', 'Copier le lien', 'Plus tard'],
    de: ['Schließen', 'Teilen', 'Link kopieren', 'Nicht jetzt'],
    es: ['Cerrar', 'Compartir', 'Copiar enlace', 'Ahora no'],
    pt: ['Fechar', 'Compartilhar', 'Copiar link', 'Agora não'],
    ar: ['إغلاق', 'مشاركة', 'نسخ الرابط', 'ليس الآن'],
  };
  const json = { ...base, locales: { default: 'en', fr: {}, de: {}, es: {}, pt: {}, ar: {} } };
  const page = await prompt({ json });
  for (const [lang, labels] of Object.entries(want)) {
    await page.evaluate(({ cfg, lang }) => { window.close(); return window.show(cfg, { locale: lang }); }, { cfg: display(json), lang });
    const l = await look(page);
    assert.deepEqual(l.buttons.map((b) => b.label || b.text), labels, lang);
  }
  await done(page, 'labels-ar');
});

// A page downloads only its own language's labels: none for English, one chunk for French.
test('a_page_fetches_only_its_own_languages_label_chunk', async () => {
  for (const [locale, want] of [['en-US', []], ['fr-CA', ['/dist/loopwise-labels-fr.js']]]) {
    const ctx = await browser.newContext({ locale });
    const page = await ctx.newPage();
    const urls = [];
    page.on('request', (q) => urls.push(new URL(q.url()).pathname));
    await page.goto(demo.url + 'dist/');
    const label = await page.evaluate(async () => {
      const { open } = await (await import('/dist/loopwise-prompt.js')).load();
      const share = { url: 'https://x.example/?r=1' };
      open({ title: 'T', message: 'M' }, share, [], () => {}, { cfg: { share, locales: { default: 'en', fr: {} } } });
      return document.querySelector('loopwise-prompt').shadowRoot.querySelector('.p').textContent;
    });
    assert.deepEqual(urls.filter((u) => u.includes('labels')), want, locale);
    // (no share sheet and no config channels: copy is the first action)
    assert.equal(label, locale === 'en-US' ? 'Copy link' : 'Copier le lien');
    await ctx.close();
  }
});

test('a_right_to_left_page_lays_the_prompt_out_right_to_left', async () => {
  // Arabic texts on an Arabic page: right to left, the close button on the left, the first
  // action on the right.
  const page = await prompt({ json: localized, locale: 'ar', htmlAttrs: 'lang="ar" dir="rtl"' });
  let l = await look(page);
  assert.equal(l.dir, 'rtl');
  assert.equal(l.title, 'ادعُ زميلاً');
  assert.equal(l.message, 'يحصل على ١٠ دولارات.');
  const [x, share, copy] = l.buttons;
  assert.ok(x.left < l.dialog.left + l.dialog.width / 3, 'close on the left: ' + JSON.stringify(x));
  assert.ok(share.left > copy.left, 'the first action on the right');
  for (const b of l.buttons) assert.ok(b.left >= l.dialog.left && b.right <= l.dialog.right, 'inside the dialog');
  await done(page, 'rtl-arabic');
  // The config's own texts without a stated language, inline in a host element with dir=rtl:
  // they take its direction.
  const json = { ...base, placement: { type: 'inline', target: '#slot' } };
  const inline = await prompt({ json, body: '<div id="slot" dir="rtl"></div>', css: '#slot{width:400px}' });
  l = await look(inline);
  assert.equal(l.dir, 'rtl');
  assert.ok(l.buttons[0].left < l.dialog.left + 60, 'close on the left');
  await done(inline, 'rtl-host-inline');
  // English texts on a right-to-left page stay left to right (their punctuation on the right).
  const en = await prompt({ json: localized, locale: 'en', htmlAttrs: 'lang="ar" dir="rtl"' });
  l = await look(en);
  assert.equal(l.dir, 'ltr');
  assert.ok(l.buttons[0].right > l.dialog.right - 60, 'close on the right');
  await done(en, 'rtl-page-english-texts');
});

test('each_placement_puts_the_prompt_where_the_config_says', async () => {
  // modal: a backdrop over the whole viewport, aria-modal, focus inside.
  const modal = await prompt({});
  let l = await look(modal);
  assert.equal(l.modal, 'true');
  assert.equal(l.backdrop, 'rgba(0, 0, 0, 0.467)');
  assert.equal(l.focus, 'Share');
  await done(modal, 'placement-modal');
  // corner: a card in the bottom right corner, no backdrop, the page still usable.
  const corner = await prompt({ json: { ...base, placement: { type: 'corner' } }, body: '<button id="b">host</button>' });
  l = await look(corner);
  assert.equal(l.modal, null);
  assert.equal(l.backdrop, 'rgba(0, 0, 0, 0)');
  assert.ok(l.vw - l.dialog.right < 20 && l.vh - l.dialog.bottom < 20, 'bottom right: ' + JSON.stringify(l.dialog));
  assert.match(await corner.evaluate(() => document.elementFromPoint(300, 300).tagName), /^(HTML|BODY)$/, 'nothing over the page');
  await corner.click('#b'); // the page's own control works while the card is open
  await done(corner, 'placement-corner');
  // corner on a right-to-left page: the bottom left corner.
  const left = await prompt({ json: { ...base, placement: { type: 'corner' }, locales: { default: 'ar' } } });
  l = await look(left);
  assert.ok(l.dialog.left < 20, 'bottom left: ' + JSON.stringify(l.dialog));
  await done(left, 'placement-corner-rtl');
  // inline by the config's selector: inside the element, in the page's flow, the focus left alone.
  const body = '<p>before</p><div id="slot"></div><div id="other"></div><p id="after">after</p>';
  const inline = await prompt({ json: { ...base, placement: { type: 'inline', target: '#slot' } }, body });
  l = await look(inline);
  assert.equal(l.parent, 'slot');
  assert.equal(l.focus, null);
  const after = await inline.evaluate(() => document.getElementById('after').getBoundingClientRect().top);
  assert.ok(after >= l.dialog.bottom, 'the page flows around it');
  await inline.keyboard.press('Tab'); // Tab is the page's: no trap
  await done(inline, 'placement-inline');
  // inline in an element passed to init() (here: open()), which wins over the selector.
  const passed = await prompt({ json: { ...base, placement: { type: 'inline', target: '#slot' } }, body, x: { targetId: 'other' } });
  assert.equal((await look(passed)).parent, 'other');
  await done(passed, 'placement-inline-element');
  // inline whose element is not on the page: a modal, so the prompt is still seen.
  const missing = await prompt({ json: { ...base, placement: { type: 'inline', target: '#nowhere' } } });
  l = await look(missing);
  assert.equal(l.modal, 'true');
  assert.equal(l.parent, 'HTML');
  await done(missing, 'placement-inline-missing');
});

test('bad_theme_and_placement_values_are_refused_naming_their_json_path', () => {
  const bad = [
    [{ theme: { accent: 'blue' } }, /theme\.accent: expected a colour #rgb or #rrggbb/],
    [{ theme: { radius: -1 } }, /theme\.radius: expected an integer from 0 to 32, got -1/],
    [{ theme: { font: 'x}body{display:none' } }, /theme\.font: expected a CSS font list or selector/],
    [{ theme: { logo: 'http://evil.example/x.png' } }, /theme\.logo: expected an https:\/\/ link/],
    [{ placement: { type: 'sidebar' } }, /placement\.type: expected one of: modal corner inline/],
    [{ locales: { fr: { variants: { nope: { title: 'x' } } } } }, /locales\.fr\.variants\.nope: unknown variant 'nope'/],
  ];
  for (const [extra, message] of bad) assert.throws(() => compileConfig({ ...base, ...extra }), message, JSON.stringify(extra));
  // and a config valid before them stays valid, compiled to the same display part
  assert.equal(display(base).theme, undefined);
});
