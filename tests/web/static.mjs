// static.mjs: a static file server over one folder for the browser tests that build their own
// page (the packaged app, the CSP page): 127.0.0.1, a port it picks, extra response headers
// (e.g. a Content-Security-Policy) on every answer, and a log of the paths asked for.
import { createServer } from 'node:http';
import { readFile } from 'node:fs/promises';
import { extname, join, normalize, sep } from 'node:path';

const TYPES = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8', '.json': 'application/json', '.wasm': 'application/wasm',
};

// Resolves to { url, requests, stop }: url ends with '/'; requests lists every path asked for.
export function serveDir(dir, headers = {}) {
  const requests = [];
  const server = createServer(async (req, res) => {
    const path = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    requests.push(path);
    const file = normalize(join(dir, path.endsWith('/') ? path + 'index.html' : path));
    if (file !== dir && !file.startsWith(dir + sep)) return res.writeHead(400).end();
    try {
      const body = await readFile(file);
      res.writeHead(200, { 'content-type': TYPES[extname(file)] || 'application/octet-stream', 'cache-control': 'no-store', ...headers });
      res.end(body);
    } catch {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
    }
  });
  return new Promise((ok) => server.listen(0, '127.0.0.1', () => ok({
    url: `http://127.0.0.1:${server.address().port}/`,
    requests,
    stop: () => new Promise((done) => { server.closeAllConnections(); server.close(() => done()); }),
  })));
}
