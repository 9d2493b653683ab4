// backend.mjs: the demo's stand-in for the host's own backend (Node http, no dependencies).
//
//   node web/demo/backend.mjs [port] --ingest URL --secret KEY [--site ID]   (port 0 picks a free one;
//   the secret also from $LW_DEMO_SECRET)
//
// Conversions that count for rewards never come from a browser: the write key is public, so
// anyone could forge them. A host's backend reports them, server to server, with the site's
// secret key (POST <ingest>/v1/referees). This script is that backend for the demo: the page
// (a referee who landed through a share link and signs up) POSTs {"code","token","user"} to
// /signup (code and token from Loopwise.referral(): the link's referral code and per-share
// token); the backend reports the conversion with the secret key, which never reaches the page,
// and answers what the ingest server said. What the referee is worth later is the host's to
// know, not the page's: POST /report {"code","token","user","event","value"} (event
// retained_30, retained_90, churned or revenue) is how the demo's operator (or a test) says it,
// and the backend reports it the same way. A report with a token is v2 (the conversion joins to
// the very share that produced it), one without is v1. Listens on 127.0.0.1 only and prints
// "http://127.0.0.1:<port>/".
import { createServer } from 'node:http';

const args = process.argv.slice(2);
const opt = (name, fallback) => {
  const i = args.indexOf(name);
  return i >= 0 ? args.splice(i, 2)[1] : fallback;
};
const ingest = opt('--ingest', 'http://127.0.0.1:8080').replace(/\/$/, '');
const secret = opt('--secret', process.env.LW_DEMO_SECRET);
const site = opt('--site', 'default');
const port = Number(args[0] ?? process.env.PORT ?? 8090);
if (!secret) {
  console.error('backend.mjs: --secret KEY (or LW_DEMO_SECRET) is required: the site\'s secret key');
  process.exit(2);
}

// The demo page runs on loopback; a real backend answers its own site's pages only.
const loopback = /^http:\/\/(127\.0\.0\.1|localhost|\[::1\])(:\d+)?$/;
function cors(req, res) {
  const origin = req.headers.origin;
  if (origin && loopback.test(origin)) {
    res.setHeader('access-control-allow-origin', origin);
    res.setHeader('vary', 'Origin');
  }
}

async function readBody(req) {
  const chunks = [];
  let n = 0;
  for await (const c of req) {
    n += c.length;
    if (n > 4096) throw new Error('body too large');
    chunks.push(c);
  }
  return Buffer.concat(chunks).toString('utf8');
}

const server = createServer(async (req, res) => {
  cors(req, res);
  const path = new URL(req.url, 'http://x').pathname;
  if (req.method === 'OPTIONS') {
    res.setHeader('access-control-allow-methods', 'POST');
    res.setHeader('access-control-allow-headers', 'Content-Type');
    return res.writeHead(204).end();
  }
  if ((path !== '/signup' && path !== '/report') || req.method !== 'POST') return res.writeHead(404).end();
  let body;
  try {
    body = JSON.parse(await readBody(req));
  } catch (e) {
    return res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ error: String(e.message) }));
  }
  // The host's own id of the new customer: the ingest server stores only a salted hash of it.
  const report = { v: body.token ? 2 : 1, site, code: String(body.code || ''), referee: String(body.user || ''),
    event: path === '/signup' ? 'conversion' : String(body.event || '') };
  if (body.token) report.token = String(body.token);
  if (typeof body.value === 'number') report.value = body.value;
  try {
    const r = await fetch(`${ingest}/v1/referees`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${secret}` },
      body: JSON.stringify(report),
    });
    const text = await r.text();
    res.writeHead(r.status, { 'content-type': 'application/json' }).end(text);
  } catch (e) {
    res.writeHead(502, { 'content-type': 'application/json' }).end(JSON.stringify({ error: `ingest: ${e.message}` }));
  }
});
server.listen(port, '127.0.0.1', () => console.log(`http://127.0.0.1:${server.address().port}/`));
for (const s of ['SIGINT', 'SIGTERM']) process.on(s, () => process.exit(0));
