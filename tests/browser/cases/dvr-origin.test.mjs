// DVR on a live stream ($CASTERPAK_BIN, default target/debug/casterpak; build
// it first): the origin runs with a 90 s DVR window and no delete retention
// (`--dvr-window-secs 90 --delete-retention-secs 0`), so the encoder's DELETEs
// remove the live files at once and everything more than ~20 s back (ffmpeg's
// window_size + extra_window_size) is served from the archive under its live
// name. The reference LL-DASH push (2 video renditions + audio) runs until
// 70 s are archived (GET /api/v1/streams/live%2Fdvr/ranges); the MPD says
// timeShiftBufferDepth="PT90.000S" (PT10S with ?dvr=10), llhls_0.m3u8 lists
// the 70 s (under 20 s with ?dvr=0), and its oldest segment is served (200)
// while its live copy is gone from the data dir. Then, on the same push, one
// after the other:
// - dash.js on /live/dvr/stream.mpd (timeShiftBufferDepth="PT90.000S") and
//   hls.js on /live/dvr/llhls.m3u8 (media playlists listing the whole window)
//   start at the live edge, play 6 s, seek 60 s back, and must resume there
//   (wall-clock latency and position both 55-65 s further back than before the
//   seek), stay there (no snap back to live) and play 12 s more with no error
//   event, decoded frames matching and no stall (the harness's judge() on the
//   whole run, plus the same checks on the part after the seek);
// - must fail: the same seek on the pure-live LL-HLS (llhls.m3u8?dvr=0) and
//   on a 10 s window MPD (stream.mpd?dvr=10) ends nowhere near 60 s back
//   (the player keeps the playhead inside the window), so the DVR check fails.
//
// dash.js seeks through its own API (MediaPlayer.seekToPresentationTime; its
// seek() does the same relative to the DVR window start), which also takes the
// new position as the live delay to keep. A plain `video.currentTime = t` (what
// the page's window.casterpak.seek does) leaves dash.js's live delay at its
// 1.5 s target, and its catch-up (enabled by player.js; liveCatchup.maxDrift
// defaults to 12 s) seeks straight back to the live edge within 0.5 s (seen
// with dash.js 5.2.1). DASH_DVR_SEEK below
// captures the page's dash.js player and routes the page's seek through that
// API for dynamic streams, recording the seek the way player.js does so that
// judge() does not count the jump as played media.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { launchBrowser, playAndJudge, sleep, summarize, waitForLiveMpd } from '../lib/harness.mjs';
import { LIVE_FPS } from '../lib/live.mjs';
import { killAll, startLiveDashPush, startOrigin } from '../lib/procs.mjs';

const STREAM = 'live/dvr';
const DVR_WINDOW = 90;       // --dvr-window-secs
const ARCHIVED_BEFORE = 70;  // seconds archived before the players start
const BACK = 60;             // the seek goes this many seconds back from the playhead at the live edge
const BACK_SLACK = 5;        // the jump, in latency and in position, must be BACK +- this
const SEEK_AFTER = 6;        // seconds of live-edge playback before the seek
const AFTER_SEEK = 12;       // seconds of playback (wall clock) after the seek
const MIN_AFTER = 10;        // of which at least this many after playback resumed
const LIVE_EDGE = 5;         // before the seek, wall-clock latency must be under this (started at the live edge)

/**
 * Page init script for dash.js: keep the MediaPlayer player.js creates, and
 * make window.casterpak.seek(t) on a dynamic stream call
 * player.seekToPresentationTime(t) (dash.js clamps it to its DVR window and
 * takes the new position as its live delay), recorded like player.js records
 * its seeks ({wallClock, from, to}, `to` being where dash.js put the playhead)
 * and merged into stats().seeks. Other streams and engines: the page's own seek.
 */
function DASH_DVR_SEEK() {
  let dash = null;
  const seeks = [];
  const wrapMediaPlayer = (MediaPlayer) => new Proxy(MediaPlayer, {
    apply(target, self, args) {
      const factory = Reflect.apply(target, self, args);
      const create = factory.create;
      factory.create = function (...a) { dash = create.apply(this, a); return dash; };
      return factory;
    },
  });
  let dashjs, mediaPlayer = null;
  Object.defineProperty(window, 'dashjs', {
    configurable: true,
    get() { return dashjs; },
    set(v) {
      dashjs = v && new Proxy(v, {
        get(target, key, receiver) {
          const x = Reflect.get(target, key, receiver);
          if (key !== 'MediaPlayer' || typeof x !== 'function') return x;
          if (!mediaPlayer || mediaPlayer.target !== x) mediaPlayer = { target: x, proxy: wrapMediaPlayer(x) };
          return mediaPlayer.proxy;
        },
      });
    },
  });
  let casterpak;
  Object.defineProperty(window, 'casterpak', {
    configurable: true,
    get() { return casterpak; },
    set(page) {
      const video = document.getElementById('video');
      casterpak = {
        ...page,
        stats() {
          const s = page.stats();
          s.seeks = [...s.seeks, ...seeks].sort((a, b) => a.wallClock - b.wallClock);
          return s;
        },
        seek(to) {
          if (!(dash && dash.isReady() && dash.isDynamic())) return page.seek(to);
          const from = video.currentTime;
          dash.seekToPresentationTime(to);
          seeks.push({ wallClock: Date.now() / 1000, from, to: video.currentTime, asked: to, via: 'dashjs.seekToPresentationTime' });
          return undefined;
        },
      };
    },
  });
}

/**
 * The DVR checks on one run with one seek (samples from samplePlayback):
 * before the seek the playhead was at the live edge; after it, playback
 * resumed with the wall-clock latency `back` +- BACK_SLACK s higher and the
 * playhead that much behind where it would have been; and from there it played
 * MIN_AFTER s or more with no stall (the harness's 0.8 played/wall ratio),
 * decoded frames matching (0.85 x fps) and the latency held (no snap back to
 * live, no drift). Returns {failures, info}.
 */
function dvrSeekCheck(samples, { back = BACK, fps = LIVE_FPS } = {}) {
  const failures = [];
  const idx = samples.findIndex((s) => s.seeks && s.seeks.length);
  if (idx < 1) return { failures: ['no seek was made (playback never ran long enough?)'], info: {} };
  const seek = samples[idx].seeks[0];
  const pre = samples[idx - 1];          // the last sample before the seek
  const at = samples[idx];               // the sample right after it
  const l0 = pre.latencyWallClock;
  if (l0 === null || !(l0 < LIVE_EDGE)) failures.push(`before the seek the playhead was not at the live edge: wall-clock latency ${l0}`);
  // Resumed: the playhead moves again and new frames are decoded.
  const resumeIdx = samples.findIndex((s, i) => i > idx && s.totalVideoFrames > at.totalVideoFrames &&
    s.currentTime > samples[i - 1].currentTime && s.readyState >= 3);
  if (resumeIdx < 0) {
    failures.push(`playback did not resume after the seek from ${seek.from.toFixed(3)} to ${seek.to.toFixed(3)} s`);
    return { failures, info: { seek, latencyBefore: l0 } };
  }
  const resumed = samples[resumeIdx];
  const last = samples.at(-1);
  const l1 = resumed.latencyWallClock;
  const jump = l1 === null || l0 === null ? null : l1 - l0;
  // Where the playhead would be without the seek, minus where it is.
  const movedBack = pre.currentTime + (resumed.wallClock - pre.wallClock) - resumed.currentTime;
  const lo = back - BACK_SLACK, hi = back + BACK_SLACK;
  if (jump === null || jump < lo || jump > hi) {
    failures.push(`after the seek the wall-clock latency went from ${l0?.toFixed(3)} to ${l1?.toFixed(3)} s ` +
      `(+${jump?.toFixed(3)} s), expected +${lo}..+${hi} s`);
  }
  if (movedBack < lo || movedBack > hi) {
    failures.push(`the seek moved the playhead back by ${movedBack.toFixed(3)} s (from ${pre.currentTime.toFixed(3)}, ` +
      `resumed at ${resumed.currentTime.toFixed(3)}), expected ${lo}..${hi} s`);
  }
  const wall = last.wallClock - resumed.wallClock;
  const played = last.currentTime - resumed.currentTime;
  const frames = last.totalVideoFrames - resumed.totalVideoFrames;
  if (wall < MIN_AFTER) failures.push(`only ${wall.toFixed(2)} s of playback after the seek resumed (need ${MIN_AFTER} s)`);
  if (played < 0.8 * wall) failures.push(`after the seek: played ${played.toFixed(2)} s of media in ${wall.toFixed(2)} s (stalled)`);
  if (frames < 0.85 * played * fps) failures.push(`after the seek: decoded ${frames} frames for ${played.toFixed(2)} s played, expected >= ${Math.ceil(0.85 * played * fps)}`);
  const lEnd = last.latencyWallClock;
  if (lEnd === null || l1 === null || Math.abs(lEnd - l1) > BACK_SLACK) {
    failures.push(`the wall-clock latency did not hold after the seek: ${l1?.toFixed(3)} s when playback resumed, ${lEnd?.toFixed(3)} s at the end`);
  }
  const info = {
    seek: `${seek.from.toFixed(3)}->${seek.to.toFixed(3)}${seek.via ? ` (${seek.via})` : ''}`,
    latencyBefore: round(l0), latencyResumed: round(l1), latencyEnd: round(lEnd), jump: round(jump),
    movedBack: round(movedBack), resumedAfter: round(resumed.wallClock - at.wallClock),
    afterSeek: { wall: round(wall), played: round(played), frames },
  };
  return { failures, info };
}

function round(x) { return x === null || x === undefined ? x : Math.round(x * 1000) / 1000; }

describe('DVR: a seek 60 s back on a live stream in dash.js and hls.js', { timeout: 300_000 }, () => {
  let browser, origin, push;
  let ready = false;   // the push has ARCHIVED_BEFORE s archived and the manifests were checked

  before(async () => {
    origin = await startOrigin({ extraArgs: ['--dvr-window-secs', String(DVR_WINDOW), '--delete-retention-secs', '0'] });
    browser = await launchBrowser();
  });

  after(async () => {
    await push?.stop();
    await browser?.close();
    if (origin) {
      await origin.stop();
      if (process.env.CASTERPAK_BROWSER_LOG) console.log(`--- casterpak log tail ---\n${origin.child.log()}`);
    }
    await killAll();
  });

  const url = (file) => `${origin.egress}/${STREAM}/${file}`;
  const text = async (u) => {
    const res = await fetch(u, { signal: AbortSignal.timeout(10_000) });
    return { status: res.status, body: await res.text() };
  };
  const durationOf = (playlist) => [...playlist.matchAll(/^#EXTINF:([\d.]+)/gm)].reduce((a, m) => a + Number(m[1]), 0);

  it(`${ARCHIVED_BEFORE} s pushed; the MPD and LL-HLS serve a ${DVR_WINDOW} s window whose old segments come from the archive`, async () => {
    push = startLiveDashPush({ ingest: origin.ingest, egress: origin.egress, name: STREAM, fps: LIVE_FPS });
    const t0 = Date.now();
    await waitForLiveMpd(url('stream.mpd')).catch((e) => {
      throw new Error(`${e.message}\n--- ffmpeg log tail ---\n${push.log()}`);
    });
    const rangesUrl = `${origin.api}/api/v1/streams/${encodeURIComponent(STREAM)}/ranges`;
    let total = 0, ranges = null;
    while (Date.now() - t0 < (ARCHIVED_BEFORE + 40) * 1000) {
      const r = await text(rangesUrl);
      ranges = r.status === 200 ? JSON.parse(r.body).ranges : null;
      total = ranges ? ranges.reduce((sum, x) => sum + x.duration, 0) : 0;
      if (total >= ARCHIVED_BEFORE) break;
      assert.ok(push.running(), `ffmpeg push exited:\n${push.log()}`);
      await sleep(1000);
    }
    console.log(`archived after ${((Date.now() - t0) / 1000).toFixed(1)} s of push: ${JSON.stringify(ranges)}`);
    assert.ok(total >= ARCHIVED_BEFORE, `only ${total} s archived (GET ${rangesUrl}: ${JSON.stringify(ranges)})\n--- casterpak log tail ---\n${origin.child.log()}`);

    const mpd = await text(url('stream.mpd'));
    assert.equal(mpd.status, 200);
    assert.match(mpd.body, /timeShiftBufferDepth="PT90(\.0+)?S"/, `stream.mpd: ${mpd.body.slice(0, 600)}`);
    const narrow = await text(url('stream.mpd?dvr=10'));
    assert.match(narrow.body, /timeShiftBufferDepth="PT10(\.0+)?S"/, `stream.mpd?dvr=10: ${narrow.body.slice(0, 600)}`);

    const media = await text(url('llhls_0.m3u8'));
    assert.equal(media.status, 200, `llhls_0.m3u8: ${media.body}`);
    const lines = media.body.split('\n');
    const listed = durationOf(media.body);
    console.log(`llhls_0.m3u8: ${listed.toFixed(3)} s listed\n${lines.slice(0, 10).join('\n')}\n...\n${lines.slice(-6).join('\n')}`);
    assert.ok(listed >= BACK + 5, `llhls_0.m3u8 lists only ${listed.toFixed(3)} s`);
    const pureLive = await text(url('llhls_0.m3u8?dvr=0'));
    console.log(`llhls_0.m3u8?dvr=0: ${durationOf(pureLive.body).toFixed(3)} s listed`);
    assert.ok(durationOf(pureLive.body) < 20, `llhls_0.m3u8?dvr=0 lists ${durationOf(pureLive.body)} s:\n${pureLive.body}`);

    // The oldest segment listed is long DELETEd by ffmpeg (window_size 5 +
    // extra_window_size 5) and, with no delete retention, only the archive has it.
    const oldest = lines.find((l) => l && !l.startsWith('#'));
    const seg = await fetch(new URL(oldest, url('llhls_0.m3u8')), { signal: AbortSignal.timeout(10_000) });
    const bytes = (await seg.arrayBuffer()).byteLength;
    console.log(`oldest listed segment ${oldest}: HTTP ${seg.status}, ${bytes} bytes`);
    assert.equal(seg.status, 200, `GET ${oldest} (the oldest segment of llhls_0.m3u8)`);
    assert.ok(bytes > 1000, `${oldest} has only ${bytes} bytes`);
    // The live copy is gone (the newest complete segment shows where it would be).
    const newest = lines.filter((l) => l && !l.startsWith('#')).at(-1);
    const livePath = (file) => path.join(origin.dataDir, STREAM, file);
    console.log(`live copies on disk: ${oldest} ${fs.existsSync(livePath(oldest))}, ${newest} ${fs.existsSync(livePath(newest))}`);
    assert.ok(fs.existsSync(livePath(newest)), `the newest segment ${newest} is not at ${livePath(newest)} (data dir layout changed?)`);
    assert.ok(!fs.existsSync(livePath(oldest)), `${oldest} is still in the live store at ${livePath(oldest)}: not DELETEd, so not served from the archive`);
    ready = true;
  });

  async function playWithSeek(manifest, engine, { playAfter = AFTER_SEEK } = {}) {
    assert.ok(ready, 'the push / manifest case failed');
    assert.ok(push.running(), `ffmpeg push exited:\n${push.log()}`);
    const playSeconds = SEEK_AFTER + playAfter;
    const v = await playAndJudge(
      browser,
      {
        pageBase: origin.egress, manifestUrl: url(manifest), engine, seconds: playSeconds + 15, playSeconds,
        stopWhenEnded: false, seeks: [{ after: SEEK_AFTER, to: (s) => s.currentTime - BACK }],
        initScript: engine === 'dashjs' ? DASH_DVR_SEEK : null,
      },
      // The whole run, seek included: no errors, frames, no stall, never ahead
      // of the wall clock, latency never beyond the window we asked for.
      { fps: LIVE_FPS, live: true, maxLatency: BACK + 10, warmupSeconds: 4 },
    );
    const dvr = dvrSeekCheck(v.samples);
    assert.equal(v.samples.at(-1).engine, engine);
    return { v, dvr };
  }

  function report(what, { v, dvr }) {
    console.log(`${what}: ${summarize(v)}\n  DVR: ${dvr.failures.length ? 'FAIL' : 'PASS'} ${JSON.stringify(dvr.info)}` +
      (dvr.failures.length ? `\n  - ${dvr.failures.join('\n  - ')}` : ''));
  }

  function dump(v) {
    console.log(`--- samples (wall, currentTime, latency, rate, frames, readyState, buffered) ---\n${v.samples.map((s) =>
      `${s.wallClock.toFixed(1)} ${s.currentTime.toFixed(2)} ${round(s.latencyWallClock)} ${round(s.playbackRate)} ${s.totalVideoFrames} ${s.readyState} ${JSON.stringify(s.buffered.map((r) => r.map((x) => round(x))))}`).join('\n')}`);
    console.log(`--- page console ---\n${v.console.slice(-20).join('\n')}`);
    console.log(`--- casterpak log tail ---\n${origin.child.log().slice(-3000)}`);
  }

  for (const [manifest, engine, label] of [['stream.mpd', 'dashjs', 'dash.js'], ['llhls.m3u8', 'hlsjs', 'hls.js']]) {
    it(`${label} on ${manifest}: a seek ${BACK} s back from the live edge resumes there and plays on`, async () => {
      const r = await playWithSeek(manifest, engine);
      report(`${label} ${manifest}`, r);
      const failures = [...r.v.failures, ...r.dvr.failures];
      if (failures.length) dump(r.v);
      assert.ok(failures.length === 0, failures.join('\n'));
    });
  }

  // ---- must fail ----

  for (const [manifest, engine, label] of [['llhls.m3u8?dvr=0', 'hlsjs', 'hls.js'], ['stream.mpd?dvr=10', 'dashjs', 'dash.js']]) {
    it(`must fail: ${label} on ${manifest} does not end up ${BACK} s back (clamped to the window)`, async () => {
      const r = await playWithSeek(manifest, engine, { playAfter: 8 });
      report(`must fail: ${label} ${manifest}`, r);
      const last = r.v.samples.at(-1);
      assert.ok(r.dvr.failures.some((f) => f.includes('wall-clock latency went from')),
        `the DVR check did not fail on the latency jump for ${manifest} with ${label}: ${JSON.stringify(r.dvr)}`);
      assert.ok(last.latencyWallClock !== null && last.latencyWallClock < BACK - 20,
        `${label} on ${manifest} ended ${round(last.latencyWallClock)} s behind live, expected the window to clamp the seek`);
    });
  }
});
