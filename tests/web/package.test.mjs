// package.test.mjs: the npm package as a new web developer gets it. `npm pack` in web/ makes the
// tarball; a brand-new app installs it (no registry), imports { init } from 'loopwise', is built
// with esbuild and with Vite (both from this repository's lock file) and runs in Chromium against
// a real ingest server: it starts, decides, loads the prompt chunk only for the prompt, and a
// copy fires the `shared` event. `tsc --noEmit --strict` passes on a typed usage file and fails
// on each misuse.
//
//   node --test tests/web/package.test.mjs      (after: bash src/scripts/build.sh)
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { build as esbuild } from 'esbuild';
import { build as vite, createServer as createViteServer } from 'vite';
import { daytimeZone, dist, freePort, ingestBin, launchBrowser, prompting, requireBuilt, root, startIngest, tempDir, waitFor } from './helpers.mjs';
import { compileConfig } from '../../src/tools/native-tools.mjs';
import { serveDir } from './static.mjs';

requireBuilt(join(dist, 'loopwise.mjs'), join(dist, 'loopwise-prompt.js'), ingestBin);
// The apps are served prompting() (helpers.mjs) in place of the package's config, by the test's
// ?config= (the app passes it to init): the rules then prompt at the milestone on every install.
const cfg = prompting(), lwc = Buffer.from(compileConfig(cfg));
const PROJECTS = cfg.milestones.find((m) => m.event === 'project_completed').after;
const npm = (args, cwd) => execFileSync('npm', [...args, '--no-audit', '--no-fund', '--loglevel=error'], { cwd, encoding: 'utf8' });

let tmp, app, browser, ingest;
before(async () => {
  tmp = tempDir('lw-pkg-');
  const tgz = npm(['pack', '--pack-destination', tmp.dir], join(root, 'web')).trim().split('\n').pop();
  app = join(tmp.dir, 'app');
  mkdirSync(app);
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'new-app', private: true, type: 'module' }));
  npm(['install', '--offline', join(tmp.dir, tgz)], app);
  // The app a developer writes from web/README.md: init() with an endpoint, a few listeners.
  writeFileSync(join(app, 'main.js'), `import { init } from 'loopwise';
const q = new URLSearchParams(location.search);
const lw = init({ endpoint: q.get('endpoint'), writeKey: 'pkg-site', config: q.get('config') || undefined });
const events = [];
for (const type of ['ready', 'decision', 'shown', 'shared', 'dismissed', 'error']) lw.on(type, () => events.push(type));
window.app = { lw, events };
`);
  writeFileSync(join(app, 'index.html'), '<!doctype html><title>new app</title><script type="module" src="./main.js"></script><h1>app</h1>');
  browser = await launchBrowser();
  ingest = await startIngest(join(tmp.dir, 'ingest.db'), await freePort());
});
after(async () => {
  await browser?.close();
  await ingest?.stop();
  tmp?.remove();
});

test('the_packed_tarball_holds_the_module_its_chunks_assets_and_types', () => {
  const pkg = join(app, 'node_modules/loopwise');
  const meta = JSON.parse(readFileSync(join(pkg, 'package.json'), 'utf8'));
  assert.equal(meta.exports['.'].import, './dist/loopwise.mjs');
  assert.equal(meta.exports['.'].types, './index.d.ts');
  for (const f of ['loopwise.mjs', 'loopwise.js', 'loopwise-prompt.js', 'loopwise-net.js', 'loopwise-preview.js', 'loopwise.wasm', 'referral.lwc',
    'loopwise.lwm', 'loopwise-labels-fr.js', 'loopwise-labels-ar.js']) {
    assert.ok(readdirSync(join(pkg, 'dist')).includes(f), f);
  }
  assert.ok(readdirSync(pkg).includes('index.d.ts') && readdirSync(pkg).includes('README.md'));
  // The program config's JSON Schema (loopwise-config schema writes web/config.schema.json) ships
  // with the package, for editors: 'loopwise/config.schema.json'.
  if (existsSync(join(root, 'web/config.schema.json'))) {
    assert.ok(readdirSync(pkg).includes('config.schema.json'), 'the config schema is in the package');
    assert.equal(meta.exports['./config.schema.json'], './config.schema.json');
  }
  assert.match(readFileSync(join(pkg, 'dist/loopwise.mjs'), 'utf8'), /new URL\("\.\/loopwise\.wasm",import\.meta\.url\)/);
});

// Run a built app in Chromium: ready, a milestone prompts (the rules decide: the default model
// is answered with no bytes, as in e2e.test.mjs), the prompt chunk arrives only then, Copy link
// fires `shared`. Resolves to the paths the app's server was asked for.
async function runApp(dir) {
  const site = await serveDir(dir);
  const ctx = await browser.newContext({ timezoneId: daytimeZone() });
  try {
    await ctx.route(/\.lwm$/, (r) => r.fulfill({ status: 200, body: '' }));
    await ctx.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: site.url.slice(0, -1) });
    const page = await ctx.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await ctx.route((u) => u.pathname === '/prompting.lwc', (r) => r.fulfill({ contentType: 'application/octet-stream', body: lwc }));
    await page.goto(`${site.url}?endpoint=${encodeURIComponent(ingest.base)}&config=/prompting.lwc`);
    await page.waitForFunction(() => window.app);
    assert.equal(await page.evaluate(() => window.app.lw.ready), true, 'started: ' + site.requests.join(' '));
    const early = [...site.requests];
    // (Vite inlines files under 4 KB, the config and the model, as data: URLs: web/README.md.)
    assert.ok(early.some((p) => p.endsWith('.wasm')), 'the WASM next to the build: ' + early);
    assert.ok(!early.some((p) => /prompt/.test(p)), 'no prompt chunk before a prompt: ' + early);
    const d = await page.evaluate(async (n) => {
      let last = null;
      for (let i = 0; i < n; i++) last = await window.app.lw.track('project_completed');
      return last;
    }, PROJECTS);
    // The rules decide (mode rules, or holdout: the config's holdout runs the rules too), never a model.
    assert.ok(d && ['rules', 'holdout'].includes(d.mode), 'the rules decide, so the milestone prompts on every install: ' + JSON.stringify(d));
    assert.equal(d && d.prompt, true, JSON.stringify(d));
    await page.locator('loopwise-prompt [role=dialog]').waitFor();
    assert.ok(site.requests.some((p) => /prompt/.test(p)), 'the prompt chunk loaded for the prompt');
    await page.getByRole('button', { name: 'Copy link', exact: true }).click();
    await waitFor('the shared event', () => page.evaluate(() => window.app.events.includes('shared')));
    assert.deepEqual(await page.evaluate(() => window.app.events.filter((e, i, a) => a.indexOf(e) === i)), ['ready', 'decision', 'shown', 'shared']);
    assert.deepEqual(errors, []);
    return site.requests;
  } finally {
    await ctx.close();
    await site.stop();
  }
}

describe('a new app built against the tarball', () => {
  test('built_with_esbuild_it_starts_prompts_and_reports_the_share', async () => {
    const out = join(app, 'out-esbuild');
    await esbuild({ absWorkingDir: app, entryPoints: ['main.js'], bundle: true, format: 'esm', splitting: true, outdir: out, logLevel: 'warning' });
    // esbuild leaves new URL(..., import.meta.url) alone: the README's esbuild step copies the assets.
    for (const f of ['loopwise.wasm', 'referral.lwc', 'loopwise.lwm']) copyFileSync(join(app, 'node_modules/loopwise/dist', f), join(out, f));
    writeFileSync(join(out, 'index.html'), readFileSync(join(app, 'index.html'), 'utf8'));
    await runApp(out);
  });

  test('built_with_vite_it_starts_prompts_and_reports_the_share', async () => {
    // No inlining: Vite would put the package's small default model in the bundle as a data: URL,
    // which no route sees, and that model answers "not now" to a few installs in a hundred (a
    // fresh machine drew it once, p 0.042); as a file it is answered with no bytes like esbuild's.
    const out = join(app, 'out-vite');
    await vite({ root: app, configFile: false, logLevel: 'warn', build: { outDir: out, emptyOutDir: true, assetsInlineLimit: 0 } });
    const requests = await runApp(out);
    assert.ok(requests.some((p) => /^\/assets\/loopwise-.*\.wasm$/.test(p)), 'Vite copied the WASM into its assets: ' + requests);
  });
});

// `vite dev` pre-bundles dependencies into node_modules/.vite/deps, away from the package's files:
// web/README.md's setting (optimizeDeps.exclude) keeps the module where new URL(...) finds them.
test('vite_dev_with_the_readme_setting_starts', async () => {
  const server = await createViteServer({ root: app, configFile: false, logLevel: 'error',
    server: { port: 0, host: '127.0.0.1' }, optimizeDeps: { exclude: ['loopwise'] } });
  await server.listen();
  const ctx = await browser.newContext();
  try {
    const page = await ctx.newPage();
    await page.goto(server.resolvedUrls.local[0] + '?endpoint=' + encodeURIComponent(ingest.base));
    await page.waitForFunction(() => window.app);
    assert.equal(await page.evaluate(() => window.app.lw.ready), true);
  } finally {
    await ctx.close();
    await server.close();
  }
});

describe('types', () => {
  const tsc = (file) => spawnSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '--noEmit', '--strict',
    '--target', 'es2020', '--module', 'esnext', '--moduleResolution', 'bundler', '--lib', 'es2020,dom', file], { cwd: app, encoding: 'utf8' });

  test('a_typed_usage_file_passes_tsc_strict', () => {
    writeFileSync(join(app, 'usage.ts'), `import { init, type Decision, type Loopwise, type Referrals } from 'loopwise';
const lw: Loopwise = init({ config: '/referral.lwc', endpoint: 'https://ingest.example', writeKey: 'k', wasm: new URL('https://cdn.example/loopwise.wasm') });
async function main(): Promise<void> {
  const ok: boolean = await lw.ready;
  const d: Decision | null = await lw.track('project_completed', { value: 9, label: 'gantt' });
  if (d && d.code === 'approval') await lw.approve(d.id);
  await lw.attribute('plan', 'pro');
  await lw.attribute('plan', null);
  await lw.conversion();
  const yes: boolean | null = await lw.consent(true);
  lw.busy(true);
  const busy: boolean = lw.busy();
  const last = lw.explain();
  if (last) console.log(last.reason, last.top?.[0]?.contribution, last.mode);
  const code: string | null = await lw.referralCode();
  const r: Referrals | null = await lw.referrals();
  if (r && r.next) console.log(r.next.referrals, r.next.reward, r.tier);
  const off = lw.on('shared', (e) => console.log(e.decision, e.kind, e.channel === 'whatsapp'));
  const previewed: true | null = await lw.preview('credit_10', { locale: 'de' });
  const overlay: boolean | null = await lw.debug(true);
  console.log(previewed, overlay);
  lw.on('dismissed', (e) => console.log(e.kind === 'dismiss' || e.kind === 'close'));
  lw.on('decision', (x) => console.log(x.p));
  lw.on('shown', (x) => console.log(x.variant));
  lw.on('approval', (x) => console.log(x.id));
  lw.on('error', (e) => console.log(e));
  lw.on('outcome', (o) => console.log(o.kind));
  off();
  const st = await lw.status();
  if (st && st.started) console.log(st.consent === 'given', st.pending + st.dropped, st.error?.length);
  const gone: boolean | null = await lw.forget();
  console.log(gone);
  lw.q.push(['track', 'invite_sent'], (api) => api.track('x'));
  console.log(ok, yes, busy, code);
}
main();
`);
    const r = tsc('usage.ts');
    assert.equal(r.status, 0, r.stdout + r.stderr);
  });

  for (const [name, misuse, message] of [
    ['an_unknown_event_name', "lw.on('clicked', () => {});", /clicked/],
    ['a_number_as_event_name_to_track', 'lw.track(42);', /number/],
    ['a_listener_reading_a_field_the_event_lacks', "lw.on('shared', (e) => e.reason);", /reason/],
    ['an_endpoint_that_is_not_a_string', 'init({ endpoint: 8080 });', /number/],
    ['an_option_that_does_not_exist', "init({ writekey: 'k' });", /writekey/],
    ['reading_status_fields_before_checking_started', 'lw.status().then((s) => s && s.pending);', /pending/],
    ['a_share_channel_that_does_not_exist', "lw.on('shared', (e) => e.channel === 'fax');", /fax/],
  ]) {
    test(`tsc_strict_fails_on_${name}`, () => {
      const f = `misuse-${name}.ts`;
      writeFileSync(join(app, f), `import { init } from 'loopwise';\nconst lw = init();\n${misuse}\n`);
      const r = tsc(f);
      assert.notEqual(r.status, 0, 'tsc accepted: ' + misuse);
      assert.match(r.stdout, message);
    });
  }
});
