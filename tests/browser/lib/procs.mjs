// Child processes for the browser tests: the origin binary, ffmpeg pushes and
// ffmpeg-made fixtures. Every child is registered and killed by killAll()
// (call it in an after() hook) and, as a last resort, when node exits, so a
// failing test never leaves an encoder running on the shared machine.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { h2Get } from './secure.mjs';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const PLAYER_DIR = path.join(REPO_ROOT, 'player');

const children = new Set();

process.on('exit', () => {
  for (const c of children) { try { c.kill('SIGKILL'); } catch (_) { /* already gone */ } }
});

/** A loopback port that was free a moment ago. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

export function tempDir(prefix) {
  return fs.mkdtempSync(path.join(os.tmpdir(), `casterpak-${prefix}-`));
}

/**
 * Spawn a child (no shell), keep the tail of its stderr+stdout for failure
 * messages. Returns {proc, name, log(), exited (promise of exit code), stop()}.
 */
export function spawnChild(name, cmd, args, opts = {}) {
  const proc = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
  children.add(proc);
  let tail = '';
  const keep = (d) => { tail = (tail + d.toString()).slice(-8000); };
  proc.stdout.on('data', keep);
  proc.stderr.on('data', keep);
  const exited = new Promise((resolve) => proc.on('close', (code, signal) => {
    children.delete(proc);
    resolve(code ?? signal);
  }));
  proc.on('error', (e) => keep(`spawn error: ${e.message}\n`));
  return {
    proc,
    name,
    exited,
    log: () => tail,
    running: () => proc.exitCode === null && proc.signalCode === null,
    async stop(signal = 'SIGTERM', graceMs = 3000) {
      if (proc.exitCode !== null || proc.signalCode !== null) return exited;
      proc.kill(signal);
      const t = setTimeout(() => { try { proc.kill('SIGKILL'); } catch (_) { /* gone */ } }, graceMs);
      const r = await exited;
      clearTimeout(t);
      return r;
    },
  };
}

/** Kill every child still running (TERM, then KILL after a grace period). */
export async function killAll() {
  await Promise.all([...children].map((proc) => new Promise((resolve) => {
    if (proc.exitCode !== null || proc.signalCode !== null) return resolve();
    proc.once('close', resolve);
    proc.kill('SIGTERM');
    setTimeout(() => { try { proc.kill('SIGKILL'); } catch (_) { /* gone */ } }, 2000).unref();
  })));
}

/**
 * Poll `url` until it answers 200 or `timeoutMs` passes; returns the body text.
 * `get`: optional async (url) => {ok, status, body} instead of node's fetch
 * (e.g. https with a test CA: lib/secure.mjs h2Get).
 */
export async function waitForHttp(url, timeoutMs = 20_000, what = url, get = null) {
  const end = Date.now() + timeoutMs;
  let last = 'no answer';
  while (Date.now() < end) {
    try {
      if (get) {
        const res = await get(url);
        if (res.ok) return res.body;
        last = `HTTP ${res.status}`;
        await new Promise((r) => setTimeout(r, 200));
        continue;
      }
      const res = await fetch(url, { signal: AbortSignal.timeout(3000) });
      const body = await res.text();
      if (res.ok) return body;
      last = `HTTP ${res.status}`;
    } catch (e) {
      last = e.cause ? e.cause.code || e.cause.message : e.message;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${last})`);
}

/** The origin binary under test: $CASTERPAK_BIN (absolute or relative to the repo root), else target/debug/casterpak. */
export function originBinary() {
  return path.resolve(REPO_ROOT, process.env.CASTERPAK_BIN || 'target/debug/casterpak');
}

/**
 * Start `casterpak serve` on free loopback ports with a temp data dir and
 * this repo's player/. Resolves once the egress serves /player/index.html.
 * `egressTls`: {cert, key, ca} (PEM files, and the CA's PEM text, e.g. from
 * lib/secure.mjs makeTestPki): egress speaks https (HTTP/2 by ALPN) and is
 * checked with that CA; `origin.egress` is then an https:// URL.
 * Returns {child, dataDir, ingest, egress, api (the management API base URL), stop()}.
 */
export async function startOrigin({ bin = originBinary(), extraArgs = [], egressTls = null } = {}) {
  if (!fs.existsSync(bin)) throw new Error(`origin binary not found: ${bin} (build it, or set CASTERPAK_BIN)`);
  const ingestPort = await freePort();
  const egressPort = await freePort();
  const apiPort = await freePort();
  const dataDir = tempDir('data');
  const child = spawnChild('casterpak', bin, [
    'serve',
    '--ingest-addr', `127.0.0.1:${ingestPort}`,
    '--egress-addr', `127.0.0.1:${egressPort}`,
    '--api-addr', `127.0.0.1:${apiPort}`,
    '--data-dir', dataDir,
    '--player-dir', PLAYER_DIR,
    ...(egressTls ? ['--egress-tls-cert', egressTls.cert, '--egress-tls-key', egressTls.key] : []),
    ...extraArgs,
  ], { env: { RUST_LOG: 'info', ...process.env } });
  const origin = {
    child,
    dataDir,
    ingest: `http://127.0.0.1:${ingestPort}`,
    egress: `${egressTls ? 'https' : 'http'}://127.0.0.1:${egressPort}`,
    api: `http://127.0.0.1:${apiPort}`,
    async stop() {
      await child.stop();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
  try {
    const get = egressTls ? (url) => h2Get(url, { ca: egressTls.ca }) : null;
    await waitForHttp(`${origin.egress}/player/index.html`, 15_000, 'the origin to serve /player/index.html', get);
  } catch (e) {
    await origin.stop();
    throw new Error(`${e.message}\n--- casterpak log tail ---\n${child.log()}`);
  }
  return origin;
}

const SOURCE = (fps) => [
  '-f', 'lavfi', '-i', `testsrc2=size=640x360:rate=${fps}`,
  '-f', 'lavfi', '-i', 'sine=frequency=1000:sample_rate=48000',
];
// Small and fast: the machine has 2 cores shared with Rust builds.
const X264 = (fps) => [
  '-c:v', 'libx264', '-preset', 'veryfast', '-tune', 'zerolatency', '-pix_fmt', 'yuv420p',
  '-g', String(fps), '-keyint_min', String(fps), '-sc_threshold', '0',
];

/**
 * The reference LL-DASH push of shared/reference/ingest-ffmpeg.md, two video
 * renditions + audio, to `${ingest}/${name}/stream.mpd`. Runs until stopped
 * (or `seconds` of media when given).
 */
export function startLiveDashPush({ ingest, egress, name = 'live/browser', fps = 30, seconds = null, extraArgs = [] }) {
  const args = [
    '-hide_banner', '-loglevel', 'warning', '-nostdin',
    '-re', ...SOURCE(fps),
    ...(seconds ? ['-t', String(seconds)] : []),
    '-map', '0:v', '-map', '0:v', '-map', '1:a',
    ...X264(fps),
    '-b:v:0', '1500k', '-s:v:0', '640x360', '-b:v:1', '400k', '-s:v:1', '320x180',
    '-c:a', 'aac', '-b:a', '128k', '-ar', '48000',
    '-f', 'dash', '-ldash', '1', '-streaming', '1', '-seg_duration', '2',
    '-frag_type', 'duration', '-frag_duration', '0.5',
    '-use_timeline', '0', '-use_template', '1', '-window_size', '5', '-extra_window_size', '5',
    '-method', 'PUT', '-http_persistent', '1', '-utc_timing_url', `${egress}/time`,
    '-target_latency', '1.5', '-format_options', 'movflags=cmaf',
    '-adaptation_sets', 'id=0,streams=v id=1,streams=a',
    ...extraArgs,
    `${ingest}/${name}/stream.mpd`,
  ];
  return spawnChild('ffmpeg-push', 'ffmpeg', args);
}

async function runFfmpeg(args, what) {
  const child = spawnChild(`ffmpeg ${what}`, 'ffmpeg', ['-hide_banner', '-loglevel', 'error', '-nostdin', '-y', ...args]);
  const code = await child.exited;
  if (code !== 0) throw new Error(`ffmpeg ${what} failed (${code}):\n${child.log()}`);
}

/** A static DASH VOD (CMAF, 2 s segments, video + audio) in `dir`/stream.mpd. */
export async function makeDashVod(dir, { seconds = 6, fps = 30 } = {}) {
  await runFfmpeg([
    ...SOURCE(fps), '-t', String(seconds), '-map', '0:v', '-map', '1:a', ...X264(fps), '-b:v', '800k',
    '-c:a', 'aac', '-b:a', '96k', '-ar', '48000',
    '-f', 'dash', '-seg_duration', '2', '-use_timeline', '1', '-use_template', '1',
    '-adaptation_sets', 'id=0,streams=v id=1,streams=a',
    path.join(dir, 'stream.mpd'),
  ], 'dash vod');
  return { manifest: 'stream.mpd', seconds, fps };
}

/** A static HLS VOD in `dir`/stream.m3u8, MPEG-TS ("ts") or fMP4 ("fmp4") segments of 2 s. */
export async function makeHlsVod(dir, { seconds = 6, fps = 30, segmentType = 'mpegts' } = {}) {
  await runFfmpeg([
    ...SOURCE(fps), '-t', String(seconds), '-map', '0:v', '-map', '1:a', ...X264(fps), '-b:v', '800k',
    '-c:a', 'aac', '-b:a', '96k', '-ar', '48000',
    '-f', 'hls', '-hls_time', '2', '-hls_playlist_type', 'vod', '-hls_segment_type', segmentType,
    '-hls_segment_filename', path.join(dir, segmentType === 'fmp4' ? 'seg%03d.m4s' : 'seg%03d.ts'),
    path.join(dir, 'stream.m3u8'),
  ], 'hls vod');
  return { manifest: 'stream.m3u8', seconds, fps };
}

/**
 * An ffmpeg `-f hls` live push (one rendition, video + audio, 2 s segments,
 * one connection per request) to `${ingest}/${name}/index.m3u8`, with
 * MPEG-TS ('mpegts') or fMP4 ('fmp4') segments, uploaded with `method`
 * (PUT or POST) after each segment is finished. Runs until stopped.
 */
export function startHlsPush({ ingest, name, fps = 30, segmentType = 'mpegts', method = 'PUT', extraArgs = [] }) {
  const args = [
    '-hide_banner', '-loglevel', 'warning', '-nostdin',
    '-re', ...SOURCE(fps),
    '-map', '0:v', '-map', '1:a', ...X264(fps), '-b:v', '800k',
    '-c:a', 'aac', '-b:a', '96k', '-ar', '48000',
    '-f', 'hls', '-hls_time', '2', '-hls_list_size', '6', '-hls_segment_type', segmentType,
    '-hls_flags', 'program_date_time', '-method', method,
    ...extraArgs,
    `${ingest}/${name}/index.m3u8`,
  ];
  return spawnChild('ffmpeg-hls-push', 'ffmpeg', args);
}
