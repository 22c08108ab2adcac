// Browser test harness: real Chromium (Debian's /usr/bin/chromium driven by
// playwright-core, which never downloads a browser) plays a manifest through
// player/index.html, and the harness judges the samples of
// window.casterpak.stats() it took every 500 ms.
//
// Why these checks (see shared/reference/players.md): hls.js and dash.js hide
// damage. A truncated segment can raise no error at all or only non-fatal
// ones while currentTime keeps moving, so "currentTime advanced and no fatal
// error" passes broken streams. We check every error event, the decoded frame
// count against the played time, that the playhead never runs ahead of the
// wall clock, and latency (live) or one buffered range to the end (VOD).
import { chromium } from 'playwright-core';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium';

// Flags that work as root on a headless box with no internet; without the
// background-networking ones Chromium keeps trying hosts it cannot reach.
export const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--autoplay-policy=no-user-gesture-required',
];

/**
 * Launch Chromium with a fresh, empty profile; close() also removes the profile.
 * `args`: more Chromium flags (e.g. --ignore-certificate-errors-spki-list=...).
 */
export async function launchBrowser({ args = [] } = {}) {
  // launchPersistentContext is playwright's way to choose the --user-data-dir.
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'casterpak-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: [...CHROMIUM_ARGS, ...args],
  });
  return {
    context,
    async close() {
      await context.close().catch(() => {});
      fs.rmSync(profile, { recursive: true, force: true });
    },
  };
}

/**
 * Open the player page on `pageBase` (an origin serving /player/) for
 * `manifestUrl` and sample window.casterpak.stats() every `intervalMs` for
 * at most `seconds`, stopping early when the video ended (stopWhenEnded),
 * after a fatal error (stopWhenFatal), when the playhead sat within
 * `stopNearEnd` seconds of the reported duration without moving for 1.5 s
 * (a player that stops just short of the end and never fires `ended`), or
 * `playSeconds` after the first decoded frame. `seeks`: [{after, to}], each done once through
 * window.casterpak.seek() `after` seconds (wall clock) after the first
 * decoded frame (after the previous seek, for the next ones), to `to` (media
 * seconds, or a function of the last sample, e.g. (s) => s.duration - 8);
 * the page records them in stats().seeks so judge() does not count the jump
 * as played media. `initScript`: optional script (a function or source text)
 * run in the page before any of its own scripts (playwright's addInitScript).
 * `inspect`: optional async (page) => any, called after sampling and before the
 * page closes (e.g. to read what an initScript recorded); its result is returned
 * as `inspected`.
 * `replace`: optional [{ url: RegExp, body: Buffer, status = 200 }]: responses the page gets
 * instead of the server's for matching requests (playwright's page.route), e.g. a wrong key
 * or a 404.
 * `params`: more query parameters of the player page (e.g. { lowLatency: '1' }).
 * `countRequests`: optional RegExp; every request of the page whose URL matches it is
 * recorded as { url, wallClock (Unix s) } in the returned `requests`.
 * Returns {samples, console, inspected, requests}.
 */
export async function samplePlayback(browser, {
  pageBase, manifestUrl, engine, latency, seconds, playSeconds = null, intervalMs = 500, stopWhenEnded = true,
  stopWhenFatal = false, stopNearEnd = null, seeks = [], initScript = null, inspect = null, replace = [],
  params = {}, countRequests = null,
}) {
  const q = new URLSearchParams({ url: manifestUrl });
  if (engine) q.set('engine', engine);
  if (latency) q.set('latency', String(latency));
  for (const [k, v] of Object.entries(params)) q.set(k, v);
  const page = await browser.context.newPage();
  const requests = [];
  if (countRequests) page.on('request', (r) => { if (countRequests.test(r.url())) requests.push({ url: r.url(), wallClock: Date.now() / 1000 }); });
  const consoleLines = [];
  page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') consoleLines.push(`${m.type()}: ${m.text()}`); });
  page.on('pageerror', (e) => consoleLines.push(`pageerror: ${e.message}`));
  const samples = [];
  let inspected;
  try {
    if (initScript) await page.addInitScript(initScript);
    for (const { url, body, status = 200 } of replace) {
      await page.route(url, (route) => route.fulfill({
        status, body, headers: { 'access-control-allow-origin': '*', 'content-type': 'application/octet-stream' },
      }));
    }
    await page.goto(`${pageBase}/player/index.html?${q}`);
    await page.waitForFunction(() => window.casterpak && window.casterpak.stats, null, { timeout: 10_000 });
    const end = Date.now() + seconds * 1000;
    let startedAt = null;
    let nextSeek = 0, seekFrom = null;   // seekFrom: when the wait for the next seek started
    while (Date.now() < end) {
      const s = await page.evaluate(() => window.casterpak.stats());
      samples.push(s);
      if (stopWhenEnded && s.ended) break;
      if (stopWhenFatal && s.fatal) break;
      if (stopNearEnd !== null && s.duration !== null && s.currentTime >= s.duration - stopNearEnd) {
        const still = samples.filter((x) => x.currentTime === s.currentTime);
        if (s.wallClock - still[0].wallClock >= 1.5) break;
      }
      if (startedAt === null && s.totalVideoFrames > 0 && s.readyState >= 2) startedAt = seekFrom = s.wallClock;
      if (playSeconds !== null && startedAt !== null && s.wallClock - startedAt >= playSeconds) break;
      if (seekFrom !== null && nextSeek < seeks.length && s.wallClock - seekFrom >= seeks[nextSeek].after) {
        const { to } = seeks[nextSeek++];
        const target = typeof to === 'function' ? to(s) : to;
        await page.evaluate((t) => window.casterpak.seek(t), target);
        seekFrom = Date.now() / 1000;
        continue;   // sample right after the seek
      }
      await sleep(intervalMs);
    }
    if (inspect) inspected = await inspect(page);
  } finally {
    await page.close().catch(() => {});
  }
  return { samples, console: consoleLines, inspected, requests };
}

/**
 * Judge sampled playback. Options:
 *   fps            frames per second of the video (for the decoded-frame check)
 *   live           true: latency checks; false: VOD checks
 *   maxLatency     live: wall-clock latency bound (s) for every sample after warm-up
 *   warmupSeconds  live: seconds after playback started before latency must hold
 *   minPlayedRatio media seconds played per wall second since start (default 0.8; catches stalls)
 *   duration       VOD: media duration (s); playback must reach duration - endSlack
 *   endSlack       VOD: default 1.0 s
 * Seeks the page recorded (stats().seeks, see samplePlayback) are taken out
 * of the played media: each moves the judged position by from - to.
 * Returns {pass, failures: [string], summary: {...numbers}}.
 */
export function judge(samples, opts) {
  const { fps, live = false, maxLatency = Infinity, warmupSeconds = 4, duration = null, endSlack = 1.0 } = opts;
  const failures = [];
  const last = samples[samples.length - 1];
  if (!last) return { pass: false, failures: ['no samples'], summary: {} };

  // 1. No error events at all, fatal or not (one narrow exception, below).
  const errors = last.errors.filter((e) => !isStartGapSkip(e));
  if (errors.length > 0) {
    const shown = errors.slice(0, 5).map((e) => `${e.fatal ? 'FATAL ' : ''}${e.source} ${e.type}: ${e.details}`);
    failures.push(`${errors.length} error event(s): ${shown.join(' | ')}`);
  }

  // Playback "starts" at the first sample with a decoded frame; everything is
  // measured from there so start-up time is not counted as played time.
  const startIdx = samples.findIndex((s) => s.totalVideoFrames > 0 && s.readyState >= 2);
  if (startIdx < 0) {
    failures.push('playback never started (no decoded frame)');
    return { pass: false, failures, summary: { samples: samples.length } };
  }
  const start = samples[startIdx];
  // Media position net of the seeks asked so far: a seek's jump is not played media.
  const pos = (s) => s.currentTime - (s.seeks || []).reduce((sum, k) => sum + (k.to - k.from), 0);
  const played = pos(last) - pos(start);
  const wallElapsed = last.wallClock - start.wallClock;
  const frames = last.totalVideoFrames - start.totalVideoFrames;
  const minPlayed = wallElapsed * (opts.minPlayedRatio ?? 0.8);
  if (played < minPlayed) failures.push(`played only ${played.toFixed(2)} s of media in ${wallElapsed.toFixed(2)} s (need >= ${minPlayed.toFixed(2)} s)`);

  // 2. Decoded frames must account for the played time: a player that skips
  // a hole advances currentTime without decoding those frames.
  const expectedFrames = played * fps;
  if (frames < 0.85 * expectedFrames) {
    failures.push(`decoded ${frames} frames for ${played.toFixed(2)} s played, expected >= ${Math.ceil(0.85 * expectedFrames)} (0.85 x ${fps} fps)`);
  }

  // 3. The playhead never runs ahead of the wall clock. Allowed advance is
  // the wall time elapsed times the playback rate in force (catch-up can play
  // at > 1x), plus one sampling interval of slack.
  let allowed = 0;
  let worstAhead = -Infinity;
  for (let i = startIdx + 1; i < samples.length; i++) {
    const a = samples[i - 1], b = samples[i];
    allowed += (b.wallClock - a.wallClock) * Math.max(a.playbackRate, b.playbackRate, 1);
    worstAhead = Math.max(worstAhead, (pos(b) - pos(start)) - allowed);
  }
  if (worstAhead > 0.25) failures.push(`playhead ran ${worstAhead.toFixed(2)} s ahead of the wall clock (a jump over missing media?)`);

  const summary = {
    samples: samples.length,
    startupSeconds: start.wallClock - samples[0].wallClock,
    playedSeconds: round(played),
    wallSeconds: round(wallElapsed),
    framesDecoded: frames,
    framesExpected: Math.round(expectedFrames),
    droppedFrames: last.droppedVideoFrames,
    errors: errors.length,
    toleratedStartGapSkips: last.errors.length - errors.length,
  };
  if (last.seeks && last.seeks.length) summary.seeks = last.seeks.map((k) => `${round(k.from)}->${round(k.to)}`);

  if (live) {
    // 4a. Live: wall-clock latency known, never negative (content shown
    // before it was captured means a wrong timeline), and under the bound
    // for every sample after the warm-up.
    const window = samples.slice(startIdx).filter((s) => s.wallClock - start.wallClock >= warmupSeconds);
    const lat = window.map((s) => s.latencyWallClock);
    if (window.length === 0) failures.push('no samples after the warm-up');
    if (lat.some((l) => l === null)) failures.push('wall-clock latency unknown for some samples');
    const known = lat.filter((l) => l !== null);
    const all = samples.slice(startIdx).map((s) => s.latencyWallClock).filter((l) => l !== null);
    if (all.some((l) => l < 0)) failures.push(`negative wall-clock latency ${Math.min(...all).toFixed(3)} s: playhead ahead of the wall clock`);
    const over = known.filter((l) => l >= maxLatency);
    if (over.length > 0) failures.push(`wall-clock latency >= ${maxLatency} s in ${over.length}/${known.length} samples after warm-up (max ${Math.max(...over).toFixed(3)} s)`);
    const pl = window.map((s) => s.latencyPlayer).filter((l) => l !== null);
    Object.assign(summary, {
      latencyWallClock: stat(known),
      latencyPlayer: stat(pl),
      playbackRate: stat(window.map((s) => s.playbackRate)),
      windowSeconds: window.length ? round(window[window.length - 1].wallClock - window[0].wallClock) : 0,
    });
  } else {
    // 4b. VOD: everything buffered is one range (a gap means missing media;
    // each seek forward may open one more) and playback reached the end.
    const multi = samples.find((s) => s.buffered.length > 1 + (s.seeks || []).length);
    if (multi) failures.push(`buffered has ${multi.buffered.length} ranges: ${JSON.stringify(multi.buffered.map((r) => r.map(round)))}`);
    // After the last seek, the media from its target to the playhead is one range.
    const lastSeek = (last.seeks || []).at(-1);
    if (lastSeek && last.currentTime > lastSeek.to) {
      const range = last.buffered.find(([a, b]) => a <= last.currentTime + 0.1 && last.currentTime <= b + 0.1);
      if (!range || range[0] > lastSeek.to + 0.25) {
        failures.push(`after the seek to ${round(lastSeek.to)} s the playhead at ${round(last.currentTime)} s is not in one buffered range from it: ${JSON.stringify(last.buffered.map((r) => r.map(round)))}`);
      }
    }
    if (duration !== null && last.currentTime < duration - endSlack) {
      failures.push(`stopped at ${last.currentTime.toFixed(2)} s of ${duration} s`);
    }
    Object.assign(summary, { reached: round(last.currentTime), ended: last.ended });
  }

  return { pass: failures.length === 0, failures, summary };
}

/**
 * Wait until a live MPD is served in its steady form. ffmpeg's first two MPD
 * versions lack availabilityTimeOffset on video and have
 * timeShiftBufferDepth="PT0.0S"; with minimumUpdatePeriod="PT500S" a player
 * that loaded one of those keeps it. Returns the MPD text. `get`: optional
 * async (url) => {ok, status, body}, for a server node's fetch cannot reach as
 * it is (e.g. https with a test CA: lib/secure.mjs h2Get).
 */
export async function waitForLiveMpd(url, timeoutMs = 30_000, get = null) {
  const end = Date.now() + timeoutMs;
  let last = 'no answer';
  while (Date.now() < end) {
    try {
      const res = get ? await get(url) : await fetchText(url);
      const body = res.body;
      last = `HTTP ${res.status}, ${body.length} bytes`;
      if (res.ok && body.includes('type="dynamic"') && /timeShiftBufferDepth="PT(?!0(\.0)?S)/.test(body)) return body;
    } catch (e) {
      last = e.cause ? e.cause.code || e.cause.message : e.message;
    }
    await sleep(250);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for a steady live MPD at ${url} (last: ${last})`);
}

async function fetchText(url) {
  const res = await fetch(url, { signal: AbortSignal.timeout(3000) });
  return { ok: res.ok, status: res.status, body: await res.text() };
}

/**
 * hls.js reports skipping the tiny gap before the first buffered media as a
 * non-fatal "bufferSeekOverHole": AAC priming makes audio start 1024 samples
 * (21 ms at 48 kHz) before video, so the buffered range starts at 0.021 and
 * the playhead at 0 sits in front of it. Whether the event fires depends on
 * timing. Tolerate exactly that: a skip of <= 0.15 s from a position before
 * any buffered media. A hole in the middle of the media still fails.
 */
export function isStartGapSkip(e) {
  // Shaka Player's gap jump is reported by player.js in the same words.
  if (e.fatal || !/^(bufferSeekOverHole|gapJumped)/.test(e.details)) return false;
  const m = /seeking from ([\d.]+) to ([\d.]+)/.exec(e.details);
  if (!m || e.bufferedStart === null || e.bufferedStart === undefined) return false;
  const from = parseFloat(m[1]), to = parseFloat(m[2]);
  // A start gap up to ~0.15 s (AAC priming, B-frame delay) plus hls.js's 0.1 s nudge.
  // The message rounds to milliseconds: Shaka's "from 0.001 to 0.001" in front of a
  // range starting at 0.0012 s is a start-gap jump too.
  // Shaka joining a live LL-HLS stream fetches each track from the part holding its start
  // time: with 0.5 s video and 0.512 s AAC parts the first buffered range starts at the
  // audio part (0.512 s) while the playhead waits at 0, and Shaka jumps exactly to the
  // range's start. A jump landing on the first buffered byte, from before it, of at most
  // 0.6 s (about one part) is that start too; it skips no media a viewer saw.
  const onRangeStart = /^gapJumped/.test(e.details) && Math.abs(to - e.bufferedStart) < 0.002;
  return (to - from <= 0.25 || (onRangeStart && to - from <= 0.6)) && from < e.bufferedStart + 0.001;
}

/** samplePlayback + judge in one call; also returns samples for debugging. */
// On-demand cases play at this speed (the player page's rate=): a whole file in half the
// wall time, which keeps the suite in CI's budget. CASTERPAK_VOD_RATE=1 plays in real time.
export const VOD_RATE = Number(process.env.CASTERPAK_VOD_RATE || 2);

export async function playAndJudge(browser, playOpts, judgeOpts) {
  if (!judgeOpts.live && VOD_RATE !== 1 && !(playOpts.params && 'rate' in playOpts.params)) {
    playOpts = { ...playOpts, params: { ...playOpts.params, rate: String(VOD_RATE) } };
  }
  const { samples, console: consoleLines, inspected, requests } = await samplePlayback(browser, playOpts);
  const verdict = judge(samples, judgeOpts);
  // An exception thrown in the page (player.js or a player library) is a bug
  // even when playback looks fine.
  const exceptions = consoleLines.filter((l) => l.startsWith('pageerror:'));
  if (exceptions.length > 0) {
    verdict.failures.push(`${exceptions.length} uncaught exception(s) in the page: ${exceptions.slice(0, 3).join(' | ')}`);
    verdict.pass = false;
  }
  return { ...verdict, samples, console: consoleLines, inspected, requests };
}

/** One line per verdict for the test log. */
export function summarize(verdict) {
  return `${verdict.pass ? 'PASS' : 'FAIL'} ${JSON.stringify(verdict.summary)}` +
    (verdict.failures.length ? `\n  - ${verdict.failures.join('\n  - ')}` : '');
}

function stat(xs) {
  if (xs.length === 0) return null;
  const sorted = [...xs].sort((a, b) => a - b);
  const pick = (p) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
  return { min: round(sorted[0]), p50: round(pick(0.5)), p95: round(pick(0.95)), max: round(sorted[sorted.length - 1]), n: xs.length };
}

function round(x) { return Math.round(x * 1000) / 1000; }
export function sleep(ms) { return new Promise((r) => setTimeout(r, ms)); }
