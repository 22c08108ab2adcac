// Recordings of the casterpak archive played in every player
// ($CASTERPAK_BIN, default target/debug/casterpak; build it first):
// the reference LL-DASH ffmpeg push (2 video renditions + audio) runs until
// about 25 s are archived; a recording is created through the management
// API starting 20 s in the past, stopped 10 s later, and waited for until
// `done`. Its replays, rendered by the origin from the archived segments
// (most of them already gone from the live window), are then played in
// headless Chromium: the HLS multivariant playlist (urls.hls) with hls.js and
// Shaka Player, the static MPD (urls.dash) with dash.js and Shaka Player, the
// fragmented MP4 download (urls.mp4) with Chromium's own <video src>.
// Each must play to the end with no error event of any kind, a seek 3 s into
// playback to 8 s before the end resuming and reaching the end, decoded
// frames matching the played time, and a player-reported duration of 30 s
// within 2.5 s. Must fail: a deleted recording's manifests (404) in a fresh
// browser, where every player must report a fatal error.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { launchBrowser, playAndJudge, sleep, summarize, waitForLiveMpd } from '../lib/harness.mjs';
import { LIVE_FPS } from '../lib/live.mjs';
import { killAll, startLiveDashPush, startOrigin } from '../lib/procs.mjs';

const STREAM = 'live/rec';
const ARCHIVED_BEFORE = 25;   // seconds archived before the recording is made
const BACK = 20;              // the recording starts this many seconds in the past
const FORWARD = 10;           // and is stopped this many seconds later
const EXPECTED = BACK + FORWARD;
const DURATION_SLACK = 2.5;   // player-reported duration vs EXPECTED (ranges are cut at segment boundaries)
const SEEK_AFTER = 3;         // seconds of playback before the seek
const SEEK_BEFORE_END = 8;    // the seek goes to duration - this
const END_SLACK = 0.5;        // playback ends (`ended`) or stops within this of the duration

/**
 * Media start time in seconds of every segment file of a static MPD with
 * SegmentTemplate + SegmentTimeline ($Number$ templates), by file name.
 */
function mpdMediaTimes(mpd) {
  const out = new Map();
  for (const [, tmpl, timeline] of mpd.matchAll(/<SegmentTemplate([^>]*)>\s*<SegmentTimeline>([\s\S]*?)<\/SegmentTimeline>/g)) {
    const attr = (name) => (new RegExp(`\\b${name}="([^"]*)"`).exec(tmpl) || [])[1];
    const timescale = Number(attr('timescale') || 1);
    let number = Number(attr('startNumber') || 1);
    const media = attr('media');
    let t = 0;
    for (const [, s] of timeline.matchAll(/<S\b([^>]*)\/>/g)) {
      const sAttr = (name) => (new RegExp(`\\b${name}="([^"]*)"`).exec(s) || [])[1];
      if (sAttr('t') !== undefined) t = Number(sAttr('t'));
      const d = Number(sAttr('d'));
      for (let i = 0; i <= Number(sAttr('r') || 0); i++) {
        const file = media.replace(/\$Number(%0(\d+)d)?\$/, (_, _f, w) => String(number).padStart(Number(w || 0), '0'));
        out.set(file, t / timescale);
        t += d;
        number++;
      }
    }
  }
  return out;
}

describe('recordings of the casterpak archive in hls.js, dash.js, Shaka Player and native MP4', { timeout: 300_000 }, () => {
  let browser, origin, push;
  let recording = null;   // the done recording (API JSON)
  let manifests = null;   // {media: {uri: text}, mpd}: the replay manifests as first served
  let deleted = false;

  before(async () => {
    origin = await startOrigin();
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

  async function api(method, path, body) {
    const res = await fetch(`${origin.api}${path}`, {
      method,
      headers: body === undefined ? {} : { 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(10_000),
    });
    const text = await res.text();
    let json = null;
    try { json = text ? JSON.parse(text) : null; } catch (_) { /* not JSON: kept as text */ }
    return { status: res.status, json, text };
  }

  /** Poll `probe` (async, returns a value or null) every 500 ms until it gives a value. */
  async function waitFor(what, timeoutMs, probe) {
    const end = Date.now() + timeoutMs;
    let last = null;
    while (Date.now() < end) {
      const { value, state } = await probe();
      if (value) return value;
      last = state;
      await sleep(500);
    }
    throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${JSON.stringify(last)})` +
      `${push ? `\n--- ffmpeg log tail ---\n${push.log()}` : ''}\n--- casterpak log tail ---\n${origin.child.log()}`);
  }

  it(`records ${EXPECTED} s through the API (${BACK} s back, stopped ${FORWARD} s later) and the recording is done`, async () => {
    push = startLiveDashPush({ ingest: origin.ingest, egress: origin.egress, name: STREAM, fps: LIVE_FPS });
    await waitForLiveMpd(`${origin.egress}/${STREAM}/stream.mpd`).catch((e) => {
      throw new Error(`${e.message}\n--- ffmpeg log tail ---\n${push.log()}`);
    });
    const rangesPath = `/api/v1/streams/${encodeURIComponent(STREAM)}/ranges`;
    const ranges = await waitFor(`${ARCHIVED_BEFORE} s archived`, 60_000, async () => {
      const r = await api('GET', rangesPath);
      const total = r.status === 200 ? r.json.ranges.reduce((sum, x) => sum + x.duration, 0) : 0;
      return { value: total >= ARCHIVED_BEFORE ? r.json : null, state: { status: r.status, total } };
    });
    console.log(`archived before recording: ${JSON.stringify(ranges.ranges)}`);

    const t0 = Date.now();
    const created = await api('POST', '/api/v1/recordings', { stream: STREAM, start: Math.round(t0 - BACK * 1000) / 1000 });
    assert.equal(created.status, 201, `POST /api/v1/recordings: ${created.text}`);
    assert.match(created.json.state, /^(recording|pending)$/, created.text);
    const id = created.json.id;
    await sleep(t0 + FORWARD * 1000 - Date.now());
    const stopped = await api('POST', `/api/v1/recordings/${encodeURIComponent(id)}/stop`);
    assert.equal(stopped.status, 200, `POST /api/v1/recordings/${id}/stop: ${stopped.text}`);
    recording = await waitFor(`recording ${id} to be done`, 30_000, async () => {
      const r = await api('GET', `/api/v1/recordings/${encodeURIComponent(id)}`);
      return { value: r.status === 200 && r.json.state === 'done' ? r.json : null, state: { status: r.status, state: r.json && r.json.state } };
    });
    // Everything the players need is archived: the encoder is not needed any more,
    // and the 2 cores are better left to Chromium.
    await push.stop();
    console.log(`recording: ${JSON.stringify(recording)}`);
    for (const kind of ['hls', 'dash', 'mp4']) {
      assert.match(recording.urls[kind], /^http:\/\//, `urls.${kind} is not an absolute URL: ${recording.urls[kind]}`);
    }
    assert.ok(Math.abs(recording.duration_secs - EXPECTED) <= DURATION_SLACK,
      `duration_secs ${recording.duration_secs}, expected ${EXPECTED} +- ${DURATION_SLACK}`);

    // What the players will read, for the log (and for whoever debugs a failure).
    const master = await fetch(recording.urls.hls).then((r) => r.text());
    const media = [...master.matchAll(/^(?:[^#\n].*|.*URI="([^"]+)".*)$/gm)].map((m) => m[1] || m[0]);
    console.log(`--- ${recording.urls.hls} ---\n${master}`);
    manifests = { media: {}, mpd: null };
    for (const m of media) {
      const text = await fetch(new URL(m, recording.urls.hls)).then((r) => r.text());
      manifests.media[m] = text;
      const lines = text.split('\n');
      console.log(`--- ${m} (${lines.filter((l) => l.startsWith('#EXTINF')).length} segments) ---\n` +
        `${lines.slice(0, 12).join('\n')}\n...\n${lines.slice(-4).join('\n')}`);
    }
    manifests.mpd = await fetch(recording.urls.dash).then((r) => r.text());
    console.log(`--- ${recording.urls.dash} ---\n${manifests.mpd}`);
  });

  // RFC 8216bis 6.2.4: all Media Playlists MUST carry EXT-X-PROGRAM-DATE-TIME
  // "with consistent mappings of date and time to media timestamps". Shaka
  // Player places every HLS segment at its PROGRAM-DATE-TIME (minus the
  // lowest one it has seen), so a rendition whose dates run a few ms early or
  // late against the others is shifted by that much: its first keyframe can
  // fall before 0 and be cut by the append window (a 1 s GOP lost, seen as a
  // ~1 s gapjumped at the start), and its last segment ends short of the
  // presentation, so Shaka never ends the stream (no `ended`). The media
  // timestamps are read from the static MPD of the same recording (same
  // segment files). Allowed: 2 ms (dates are written in whole ms).
  it('HLS replay: PROGRAM-DATE-TIME maps to media time the same way in every rendition (RFC 8216bis 6.2.4)', () => {
    assert.ok(manifests, 'no recording manifests (the recording case failed)');
    const mediaTimes = mpdMediaTimes(manifests.mpd);   // file name -> media seconds
    const offsets = [];                                // {uri, file, offset = PDT - media time}
    for (const [uri, text] of Object.entries(manifests.media)) {
      let pdt = null;
      for (const line of text.split('\n')) {
        if (line.startsWith('#EXT-X-PROGRAM-DATE-TIME:')) pdt = Date.parse(line.slice(25)) / 1000;
        else if (line && !line.startsWith('#')) {
          const file = line.split('?')[0].split('/').pop();
          if (pdt !== null && mediaTimes.has(file)) offsets.push({ uri, file, offset: pdt - mediaTimes.get(file) });
          pdt = null;
        }
      }
    }
    assert.ok(offsets.length >= 3 * 14, `matched only ${offsets.length} HLS segments with MPD media times`);
    const min = offsets.reduce((a, b) => (b.offset < a.offset ? b : a));
    const max = offsets.reduce((a, b) => (b.offset > a.offset ? b : a));
    const perRendition = Object.keys(manifests.media).map((uri) => {
      const os = offsets.filter((o) => o.uri === uri).map((o) => o.offset - min.offset);
      return `${uri}: first ${(os[0] * 1000).toFixed(0)} ms, spread ${((Math.max(...os) - Math.min(...os)) * 1000).toFixed(0)} ms`;
    });
    console.log(`PROGRAM-DATE-TIME - media time, relative to the lowest (${min.file} in ${min.uri}): ${perRendition.join('; ')}`);
    assert.ok(max.offset - min.offset <= 0.002,
      `PROGRAM-DATE-TIME minus media time varies by ${((max.offset - min.offset) * 1000).toFixed(0)} ms across the replay's ` +
      `segments (${min.uri} ${min.file} lowest, ${max.uri} ${max.file} highest): ${perRendition.join('; ')}`);
  });

  async function playRecording(kind, engine) {
    assert.ok(recording, 'no done recording (the recording case failed)');
    assert.ok(!deleted, 'the recording was already deleted');
    const manifestUrl = recording.urls[kind];
    const v = await playAndJudge(
      browser,
      {
        pageBase: origin.egress, manifestUrl, engine, seconds: 60, stopNearEnd: END_SLACK,
        seeks: [{ after: SEEK_AFTER, to: (s) => s.duration - SEEK_BEFORE_END }],
      },
      { fps: LIVE_FPS, duration: null, endSlack: END_SLACK },
    );
    const last = v.samples.at(-1);
    const duration = last.duration;
    // The end, judged against the duration the player itself reports.
    if (duration === null) {
      v.failures.push('the player reports no finite duration');
    } else {
      if (Math.abs(duration - EXPECTED) > DURATION_SLACK) {
        v.failures.push(`the player reports a duration of ${duration.toFixed(3)} s, expected ${EXPECTED} +- ${DURATION_SLACK} s`);
      }
      if (!last.ended && last.currentTime < duration - END_SLACK) {
        v.failures.push(`stopped at ${last.currentTime.toFixed(3)} s of ${duration.toFixed(3)} s (not ended)`);
      } else if (!last.ended) {
        // Within END_SLACK of the end counts as the end, but say so: the viewer
        // sees a frozen last frame, and no next item would start.
        console.log(`NOTE: ${engine} on ${kind} never fired ended: the playhead stopped at ${last.currentTime.toFixed(3)} s ` +
          `of ${duration.toFixed(3)} s, buffered ${JSON.stringify(last.buffered)}, readyState ${last.readyState}`);
      }
    }
    // The seek was made, and playback resumed after it: frames decoded past its target.
    const seek = (last.seeks || [])[0];
    if (!seek) {
      v.failures.push('no seek was made (playback never ran long enough?)');
    } else {
      const at = v.samples.find((s) => s.seeks && s.seeks.length);
      const resumed = v.samples.find((s) => s.seeks && s.seeks.length && s.currentTime >= seek.to + 1 &&
        s.totalVideoFrames > at.totalVideoFrames);
      if (!resumed) v.failures.push(`playback did not resume after the seek to ${seek.to.toFixed(3)} s`);
    }
    v.pass = v.failures.length === 0;
    v.summary.duration = duration;
    v.summary.endedEvent = last.ended;
    console.log(`recording ${kind} with ${engine}: ${summarize(v)}`);
    if (!v.pass) {
      console.log(`--- page console ---\n${v.console.slice(-20).join('\n')}`);
      console.log(`--- casterpak log tail ---\n${origin.child.log().slice(-3000)}`);
    }
    assert.equal(last.engine, engine);
    assert.ok(v.pass, v.failures.join('\n'));
  }

  it('hls.js plays the recording\'s HLS (urls.hls) to the end, with a seek', () => playRecording('hls', 'hlsjs'));
  it('dash.js plays the recording\'s DASH (urls.dash) to the end, with a seek', () => playRecording('dash', 'dashjs'));
  it('Shaka Player plays the recording\'s HLS (urls.hls) to the end, with a seek', () => playRecording('hls', 'shaka'));
  it('Shaka Player plays the recording\'s DASH (urls.dash) to the end, with a seek', () => playRecording('dash', 'shaka'));
  it('Chromium\'s native <video> plays the recording\'s MP4 download (urls.mp4) to the end, with a seek', () => playRecording('mp4', 'native'));

  // ---- must fail ----

  it('must fail: a deleted recording\'s manifests do not play, and every player reports an error', async () => {
    assert.ok(recording, 'no done recording (the recording case failed)');
    const del = await api('DELETE', `/api/v1/recordings/${encodeURIComponent(recording.id)}`);
    assert.equal(del.status, 204, `DELETE /api/v1/recordings/${recording.id}: ${del.text}`);
    deleted = true;
    for (const kind of ['hls', 'dash', 'mp4']) {
      const res = await fetch(recording.urls[kind]);
      await res.arrayBuffer();
      assert.equal(res.status, 404, `GET ${recording.urls[kind]} after DELETE`);
    }
    // A viewer arriving after the DELETE: a fresh browser profile, since the
    // closed recording's manifests may be cached (Cache-Control max-age) by
    // the browser that played them.
    const fresh = await launchBrowser();
    try {
      await deletedPlays(fresh);
    } finally {
      await fresh.close();
    }
  });

  async function deletedPlays(fresh) {
    for (const [kind, engine] of [['hls', 'hlsjs'], ['dash', 'dashjs'], ['hls', 'shaka'], ['dash', 'shaka'], ['mp4', 'native']]) {
      const v = await playAndJudge(
        fresh,
        { pageBase: origin.egress, manifestUrl: recording.urls[kind], engine, seconds: 20, stopWhenFatal: true },
        { fps: LIVE_FPS, duration: EXPECTED, endSlack: END_SLACK },
      );
      console.log(`deleted recording ${kind} with ${engine}: ${summarize(v)}`);
      assert.equal(v.pass, false, `the harness passed a deleted recording's ${kind} with ${engine}`);
      const errors = v.samples.at(-1).errors;
      assert.ok(errors.some((e) => e.fatal), `${engine} reported no fatal error for the deleted ${kind}: ${JSON.stringify(errors)}`);
    }
  }
});
