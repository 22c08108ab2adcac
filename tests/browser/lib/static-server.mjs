// A tiny static HTTP server on 127.0.0.1 that stands in for the origin's
// egress in the VOD and must-fail cases: it serves /player/** from player/
// (like the origin does) and everything else from `root`, with CORS, and can
// damage chosen files on purpose (404, or cut short) to prove the harness
// fails on broken streams.
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { PLAYER_DIR } from './procs.mjs';

const TYPES = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.mjs': 'text/javascript',
  '.json': 'application/json', '.map': 'application/json',
  '.mpd': 'application/dash+xml', '.m3u8': 'application/vnd.apple.mpegurl',
  '.m4s': 'video/mp4', '.mp4': 'video/mp4', '.ts': 'video/mp2t',
};

/**
 * faults: { '/seg002.ts': { status: 404 } | { truncate: 0.5 } }  (URL path -> damage)
 * Resolves to {url, requests: [{path, status}], close()}.
 */
export function startStaticServer({ root, faults = {} }) {
  const requests = [];
  const server = http.createServer((req, res) => {
    const urlPath = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    res.setHeader('Access-Control-Allow-Origin', '*');
    res.setHeader('Access-Control-Expose-Headers', 'Date, Age');
    const reply = (status, body = '', type = 'text/plain') => {
      requests.push({ path: urlPath, status });
      res.writeHead(status, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(body) });
      res.end(req.method === 'HEAD' ? undefined : body);
    };

    let base = root, rel = urlPath;
    if (urlPath === '/player' || urlPath === '/player/') rel = '/index.html', base = PLAYER_DIR;
    else if (urlPath.startsWith('/player/')) rel = urlPath.slice('/player'.length), base = PLAYER_DIR;
    const file = path.join(base, path.normalize(rel));
    if (!file.startsWith(base + path.sep)) return reply(403, 'forbidden');

    const fault = faults[urlPath];
    if (fault && fault.status) return reply(fault.status, 'injected fault');
    let body;
    try { body = fs.readFileSync(file); } catch (_) { return reply(404, 'not found'); }
    if (fault && fault.truncate) body = body.subarray(0, Math.floor(body.length * fault.truncate));
    requests.push({ path: urlPath, status: 200 });
    res.writeHead(200, {
      'Content-Type': TYPES[path.extname(file)] || 'application/octet-stream',
      'Content-Length': body.length,
      'Cache-Control': 'no-cache',
    });
    res.end(req.method === 'HEAD' ? undefined : body);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({
    url: `http://127.0.0.1:${server.address().port}`,
    requests,
    close: () => new Promise((r) => { server.closeAllConnections(); server.close(() => r()); }),
  })));
}
