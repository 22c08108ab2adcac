// A deliberately minimal live origin in Node, used ONLY to test the harness
// itself (the real cases run the casterpak binary):
//   - mode 'chunked': every body chunk PUT to ingest reaches GET readers at
//     once (what casterpak must do); a known-good reference for the live
//     checks, so a failure against casterpak points at casterpak.
//   - mode 'complete': a GET of a segment still being uploaded waits until the
//     upload finished (a plain file server's behaviour); players.md measured
//     3.2 s latency with stalls there, so the live latency check must FAIL.
// A GET for an object that does not exist yet is held up to 3 s (the next
// segment at the live edge), then 404. GET /time serves the clock for the
// MPD's UTCTiming (ffmpeg is given <egress>/time).
import http from 'node:http';

export async function startStandinOrigin({ mode = 'chunked' } = {}) {
  const objects = new Map();   // path -> {chunks: Buffer[], done, aborted, listeners: Set<fn>}
  const appeared = new Map();  // path -> Set<fn> waiting for the object to exist

  function notify(obj) { for (const fn of obj.listeners) fn(); }

  const ingest = http.createServer((req, res) => {
    const path = new URL(req.url, 'http://x').pathname;
    if (req.method === 'DELETE') { req.resume(); req.on('end', () => res.end()); return; }
    const obj = { chunks: [], done: false, aborted: false, listeners: new Set() };
    objects.set(path, obj);   // a re-PUT replaces the object for new readers
    for (const fn of appeared.get(path) || []) fn();
    appeared.delete(path);
    req.on('data', (d) => { obj.chunks.push(d); notify(obj); });
    req.on('end', () => { obj.done = true; notify(obj); res.end(); });
    req.on('close', () => { if (!obj.done) { obj.aborted = true; notify(obj); } });
  });
  // ffmpeg dies if we close its persistent connections: no idle timeouts.
  ingest.keepAliveTimeout = 0;
  ingest.requestTimeout = 0;
  ingest.headersTimeout = 0;

  const TYPES = { mpd: 'application/dash+xml', m3u8: 'application/vnd.apple.mpegurl', m4s: 'video/mp4', mp4: 'video/mp4' };

  const egress = http.createServer((req, res) => {
    const path = new URL(req.url, 'http://x').pathname;
    res.setHeader('Access-Control-Allow-Origin', '*');
    res.setHeader('Access-Control-Expose-Headers', 'Date, Age');
    if (path === '/time') { res.setHeader('Content-Type', 'text/plain'); res.end(new Date().toISOString()); return; }
    const serve = (obj) => {
      res.writeHead(200, { 'Content-Type': TYPES[path.split('.').pop()] || 'application/octet-stream', 'Cache-Control': 'no-cache' });
      let sent = 0;
      const pump = () => {
        if (mode === 'complete' && !obj.done && !obj.aborted) return;
        while (sent < obj.chunks.length) res.write(obj.chunks[sent++]);
        if (obj.aborted) { obj.listeners.delete(pump); res.destroy(); }
        else if (obj.done) { obj.listeners.delete(pump); res.end(); }
      };
      obj.listeners.add(pump);
      res.on('close', () => obj.listeners.delete(pump));
      pump();
    };
    const obj = objects.get(path);
    if (obj) return serve(obj);
    if (!path.endsWith('.m4s')) { res.writeHead(404); res.end(); return; }
    const waiters = appeared.get(path) || new Set();
    appeared.set(path, waiters);
    const onAppear = () => { clearTimeout(timer); serve(objects.get(path)); };
    const timer = setTimeout(() => { waiters.delete(onAppear); res.writeHead(404); res.end(); }, 3000);
    waiters.add(onAppear);
  });

  const listen = (srv) => new Promise((r) => srv.listen(0, '127.0.0.1', () => r(`http://127.0.0.1:${srv.address().port}`)));
  return {
    ingest: await listen(ingest),
    egress: await listen(egress),
    async stop() {
      for (const srv of [ingest, egress]) { srv.closeAllConnections(); await new Promise((r) => srv.close(() => r())); }
    },
  };
}
