// serve.mjs: a tiny static server for the demo (Node http, no dependencies).
//
//   node web/demo/serve.mjs [port] [--dist DIR] [--tools DIR]   (port also from $PORT; 0 picks a free one)
//
// Serves web/demo/ at / and web/dist/ (what a page downloads) at /dist/, on 127.0.0.1 only,
// and prints "http://127.0.0.1:<port>/" once listening, so scripts and tests can read the URL.
// For the demo's config editor, two more files: /tools/loopwise-config.wasm (the checker, from
// --tools DIR, default build/wasm/src/wasm) and /tools/referral.json (models/referral.json).
import { createServer } from 'node:http';
import { readFile } from 'node:fs/promises';
import { dirname, extname, join, normalize, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const di = args.indexOf('--dist');
const dist = di >= 0 ? resolve(args.splice(di, 2)[1]) : resolve(here, '../dist');
const ti = args.indexOf('--tools');
const toolsDir = ti >= 0 ? resolve(args.splice(ti, 2)[1]) : resolve(here, '../../build/wasm/src/wasm');
const tools = {
  '/tools/loopwise-config.wasm': join(toolsDir, 'loopwise-config.wasm'),
  '/tools/referral.json': resolve(here, '../../models/referral.json'),
};
const port = Number(args[0] ?? process.env.PORT ?? 8081);
const types = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8', '.json': 'application/json', '.wasm': 'application/wasm', '.svg': 'image/svg+xml',
  '.lwc': 'application/octet-stream', '.lwm': 'application/octet-stream',
};

// Map a URL path into one of the two roots; null when it would leave them.
function locate(pathname) {
  let p = decodeURIComponent(pathname);
  if (tools[p]) return tools[p];
  let root = here;
  if (p === '/dist' || p.startsWith('/dist/')) { root = dist; p = p.slice(5); }
  if (p.endsWith('/') || p === '') p += 'index.html';
  const file = normalize(join(root, p));
  return file === root || file.startsWith(root + sep) ? file : null;
}

const server = createServer(async (req, res) => {
  let file = null;
  try { file = locate(new URL(req.url, 'http://x').pathname); } catch { /* bad escape */ }
  if (!file || (req.method !== 'GET' && req.method !== 'HEAD')) {
    res.writeHead(file ? 405 : 400).end();
    return;
  }
  try {
    const body = await readFile(file);
    res.writeHead(200, {
      'content-type': types[extname(file)] || 'application/octet-stream',
      'content-length': body.length,
      'cache-control': 'no-cache',
    });
    res.end(req.method === 'HEAD' ? undefined : body);
  } catch {
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
  }
});
server.listen(port, '127.0.0.1', () => console.log(`http://127.0.0.1:${server.address().port}/`));
for (const s of ['SIGINT', 'SIGTERM']) process.on(s, () => process.exit(0));
