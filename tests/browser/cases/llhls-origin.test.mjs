// LL-HLS made by the casterpak origin from a live ffmpeg LL-DASH push
// (2 video renditions + audio), and live HLS pushed by ffmpeg -f hls,
// played in Chromium ($CASTERPAK_BIN, default target/debug/casterpak):
// - hls.js lowLatencyMode plays /live/x/llhls.m3u8 for 20 s: no error
//   events, decoded frames match, wall-clock latency (from
//   EXT-X-PROGRAM-DATE-TIME) under 2.5 s;
// - Shaka Player plays it in normal and in low-latency mode for 20 s each;
// - Chromium's native HLS plays the same playlist;
// - dash.js still passes the LL-DASH case while 60 LL-HLS clients do
//   blocking reloads and part requests on the same stream;
// - an every-frame push (-frag_type every_frame): hls.js and Shaka (low-latency mode)
//   play its sub-second LL-HLS without a hole or error, at most 5 reloads a second of
//   each media playlist, Shaka under 0.75 s of wall-clock latency;
// - hls.js plays an ffmpeg -f hls MPEG-TS PUT push and an fMP4 POST push.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { launchBrowser, playAndJudge, summarize } from '../lib/harness.mjs';
import { runLiveDashCase, LIVE_FPS } from '../lib/live.mjs';
import { killAll, startHlsPush, startOrigin, waitForHttp } from '../lib/procs.mjs';

/** `n` LL-HLS clients doing what hls.js does: blocking reload of the next part, then the part. */
function startLlHlsReaders(base, n) {
  let stop = false;
  const stats = { reloads: 0, parts: 0, errors: [] };
  const one = async (rep) => {
    let url = `${base}/llhls_${rep}.m3u8`;
    while (!stop) {
      try {
        const res = await fetch(url, { signal: AbortSignal.timeout(10_000) });
        const text = await res.text();
        if (!res.ok) {
          if (res.status === 404 && stats.reloads === 0) { await new Promise((r) => setTimeout(r, 300)); continue; }
          stats.errors.push(`${res.status} ${url}`);
          await new Promise((r) => setTimeout(r, 300));
          continue;
        }
        stats.reloads++;
        if (text.includes('#EXT-X-ENDLIST')) return;
        const m = /#EXT-X-PRELOAD-HINT:TYPE=PART,URI="([^"]+)"/.exec(text);
        const [, uri] = m;
        const [, msn, part] = /_(\d+)_(\d+)\.m4s$/.exec(uri);
        const partRes = await fetch(`${base}/${uri}`, { signal: AbortSignal.timeout(10_000) });
        await partRes.arrayBuffer();
        if (partRes.ok) stats.parts++; else stats.errors.push(`${partRes.status} ${uri}`);
        url = `${base}/llhls_${rep}.m3u8?_HLS_msn=${msn}&_HLS_part=${part}`;
      } catch (e) {
        if (!stop) stats.errors.push(`${url}: ${e.message}`);
      }
    }
  };
  const running = Array.from({ length: n }, (_, i) => one(i % 3));
  return {
    stats,
    async stop() { stop = true; await Promise.allSettled(running); return stats; },
  };
}

describe('LL-HLS and HLS pushes through the casterpak origin', { timeout: 600_000 }, () => {
  let browser, origin;

  before(async () => {
    origin = await startOrigin();
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    if (origin) {
      await origin.stop();
      if (process.env.CASTERPAK_BROWSER_LOG) console.log(`--- casterpak log tail ---\n${origin.child.log()}`);
    }
    await killAll();
  });

  it('hls.js lowLatencyMode plays the LL-HLS of a live LL-DASH push for 20 s, latency < 2.5 s', async () => {
    const v = await runLiveDashCase(browser, {
      ingest: origin.ingest, egress: origin.egress, name: 'live/llhls-hlsjs',
      manifest: 'llhls.m3u8', engine: 'hlsjs', windowSeconds: 20, maxLatency: 2.5,
    });
    console.log(`hls.js LL-HLS: ${summarize(v)}`);
    if (!v.pass) console.log(`--- casterpak log tail ---\n${origin.child.log()}`);
    assert.ok(v.pass, v.failures.join('\n'));
    assert.ok(v.summary.windowSeconds >= 19, `judged only ${v.summary.windowSeconds} s`);
  });

  // Shaka Player on the LL-HLS, normal and low-latency mode, 20 s each. A new user saw
  // whole-segment holes in low-latency mode: Shaka aligned the audio segments by
  // PROGRAM-DATE-TIME while their EXTINF (rounded one by one) drifted 1 ms every four
  // 2.005 s AAC segments, listed one twice and later skipped it. EXTINF and part
  // DURATION are now differences of the rounded PROGRAM-DATE-TIMEs, and every rendition's
  // window starts at the same MSN.
  for (const [params, label, maxLatency] of [
    [{ lowLatency: '1' }, 'low-latency mode', 2.5],
    [{}, 'normal mode', 8.0],
  ]) {
    it(`Shaka Player (${label}) plays the LL-HLS of a live LL-DASH push for 20 s, latency < ${maxLatency} s`, async () => {
      const v = await runLiveDashCase(browser, {
        ingest: origin.ingest, egress: origin.egress, name: `live/llhls-shaka-${params.lowLatency ? 'll' : 'normal'}`,
        manifest: 'llhls.m3u8', engine: 'shaka', params, windowSeconds: 20, maxLatency,
      });
      console.log(`Shaka LL-HLS ${label}: ${summarize(v)}`);
      if (!v.pass) console.log(`errors: ${JSON.stringify(v.samples.at(-1).errors)}\nbuffered: ${JSON.stringify(v.samples.slice(0, 8).map((x) => [x.currentTime, x.buffered]))}`);
      assert.ok(v.pass, v.failures.join('\n'));
      assert.ok(v.summary.windowSeconds >= 19, `judged only ${v.summary.windowSeconds} s`);
    });
  }

  it('Chromium native HLS plays the same LL-HLS playlist', async () => {
    const v = await runLiveDashCase(browser, {
      ingest: origin.ingest, egress: origin.egress, name: 'live/llhls-native',
      manifest: 'llhls.m3u8', engine: 'native', windowSeconds: 15, maxLatency: 12,
    });
    console.log(`native LL-HLS (its one FAIL reason, unknown latency, is not applicable): ${summarize(v)}`);
    // Chromium's native HLS exposes no getStartDate(), so the page cannot compute a
    // wall-clock latency from EXT-X-PROGRAM-DATE-TIME: that one check is not applicable;
    // every other one (no error events, decoded frames, playhead vs wall clock) must hold.
    const failures = v.failures.filter((f) => f !== 'wall-clock latency unknown for some samples');
    assert.deepEqual(failures, []);
    assert.ok(v.summary.playedSeconds >= 15, `played only ${v.summary.playedSeconds} s`);
  });

  it('dash.js LL-DASH still passes (latency < 2.0 s) while 60 LL-HLS clients read the same stream', async () => {
    const name = 'live/llhls-both';
    const readers = startLlHlsReaders(`${origin.egress}/${name}`, 60);
    let stats;
    try {
      const v = await runLiveDashCase(browser, {
        ingest: origin.ingest, egress: origin.egress, name, windowSeconds: 20, maxLatency: 2.0,
        // Stop the readers while ffmpeg still pushes: parts hinted when the encoder is
        // stopped never come (404 after the wait), which is not what is tested here.
        whileLive: async () => { stats = await readers.stop(); },
      });
      console.log(`dash.js with LL-HLS readers: ${summarize(v)}`);
      assert.ok(v.pass, v.failures.join('\n'));
      assert.equal(v.samples.at(-1).lowLatencyMode, true);
    } finally {
      stats = stats || await readers.stop();
    }
    console.log(`LL-HLS readers: ${stats.reloads} reloads, ${stats.parts} parts, ${stats.errors.length} errors`);
    assert.ok(stats.reloads > 60 * 20, `only ${stats.reloads} reloads`);
    assert.deepEqual(stats.errors.slice(0, 5), []);
  });

  // Sub-second LL-HLS: ffmpeg's every-frame CMAF chunks (1/30 s video, 1024/48000 s AAC)
  // are grouped into parts of PART-TARGET 0.214 s (six video frames, ten AAC frames), on an
  // origin with PART-HOLD-BACK at the RFC 8216bis floor, 2 x PART-TARGET = 0.428 s
  // (`--llhls-part-hold-back-ms 1`; the default is Apple's 3 x). Latency is measured from
  // the capture time (PROGRAM-DATE-TIME), and each media playlist's reloads are counted over
  // the judged window.
  //
  // hls.js 1.7.4 starts PART-HOLD-BACK behind the last part of its first playlist plus its
  // start-up time, and speeds up only while it has more than 1 s buffered ahead
  // (latency-controller.ts, `forwardBufferLength > 1`), so it stays where it started. The
  // origin here holds that first playlist until the next part (--llhls-hold-plain-reload
  // true), so its last part is at the live edge: 0.50-0.72 s over 12 starts (bench/llhls_starts.sh),
  // 0.56-0.79 s without the hold. One start is judged here, so hls.js gets 0.1 s of room
  // over the 0.75 s (0.85 s); Shaka is held to 0.75 s.
  for (const [engine, params, label, maxLatency] of [
    ['hlsjs', {}, 'hls.js lowLatencyMode', 0.85],
    ['shaka', { lowLatency: '1' }, 'Shaka lowLatencyMode', 0.75],
  ]) {
    it(`${label} plays an every-frame push's LL-HLS at < ${maxLatency} s, <= 5 reloads/s per playlist`, async () => {
      const name = `live/llhls-frames-${engine}`;
      const floor = await startOrigin({ extraArgs: ['--llhls-part-hold-back-ms', '1', '--llhls-hold-plain-reload', 'true'] });
      let v;
      try {
        v = await runLiveDashCase(browser, {
          ingest: floor.ingest, egress: floor.egress, name, manifest: 'llhls.m3u8', engine, params,
          windowSeconds: 15, maxLatency, pushExtraArgs: ['-frag_type', 'every_frame'],
          countRequests: /\/llhls_[^/]*\.m3u8/,
          whileLive: async () => (await fetch(`${floor.egress}/${name}/llhls_0.m3u8`)).text().catch(() => ''),
        });
        if (!v.pass) console.log(`--- casterpak log tail ---\n${floor.child.log()}`);
      } finally {
        await floor.stop();
      }
      const started = v.samples.find((s) => s.totalVideoFrames > 0 && s.readyState >= 2);
      const from = started.wallClock + 5, to = v.samples.at(-1).wallClock;
      const perPlaylist = {};
      for (const r of v.requests.filter((x) => x.wallClock >= from && x.wallClock <= to)) {
        const file = new URL(r.url).pathname.split('/').pop();
        perPlaylist[file] = (perPlaylist[file] || 0) + 1;
      }
      const secs = to - from;
      const rates = Object.fromEntries(Object.entries(perPlaylist).map(([f, n]) => [f, Math.round(n / secs * 100) / 100]));
      console.log(`${label}, every-frame push: ${summarize(v)}\n  playlist reloads/s: ${JSON.stringify(rates)} over ${secs.toFixed(1)} s; ${/#EXT-X-PART-INF:[^\n]*/.exec(v.extra || '')?.[0]} ${/PART-HOLD-BACK=[0-9.]+/.exec(v.extra || '')?.[0]}`);
      assert.ok(v.pass, v.failures.join('\n'));
      assert.match(v.extra || '', /PART-HOLD-BACK=0\.428,/);
      assert.ok(Object.keys(rates).length >= 1, 'no media playlist reload counted');
      // At most 5 a second: a reload per part, and no part but a segment's last under 0.2 s
      // (2.005 s AAC segments: 9 parts of ten frames and one of four, 4.99 a second). The
      // window's edges may each cut one reload in flight: one request of slack in all.
      for (const [file, n] of Object.entries(perPlaylist)) {
        assert.ok(n <= 5 * secs + 1, `${file}: ${n} reloads in ${secs.toFixed(1)} s (${rates[file]}/s)`);
      }
    });
  }

  for (const [segmentType, method] of [['mpegts', 'PUT'], ['fmp4', 'POST']]) {
    it(`hls.js plays an ffmpeg -f hls ${segmentType} ${method} push`, async () => {
      const name = `live/hls-${segmentType}`;
      const push = startHlsPush({ ingest: origin.ingest, name, segmentType, method });
      try {
        const manifestUrl = `${origin.egress}/${name}/index.m3u8`;
        // Three segments listed before starting, as a player joining a running stream.
        const end = Date.now() + 30_000;
        for (;;) {
          const text = await waitForHttp(manifestUrl, 30_000).catch(() => '');
          if ((text.match(/#EXTINF/g) || []).length >= 3) break;
          assert.ok(Date.now() < end, `playlist never listed 3 segments\n${push.log()}`);
          await new Promise((r) => setTimeout(r, 500));
        }
        const v = await playAndJudge(
          browser,
          { pageBase: origin.egress, manifestUrl, engine: 'hlsjs', seconds: 40, playSeconds: 17, stopWhenEnded: false },
          { fps: LIVE_FPS, live: true, maxLatency: 15, warmupSeconds: 2 },
        );
        console.log(`hls.js ${segmentType} push: ${summarize(v)}`);
        assert.ok(push.running(), `ffmpeg exited early:\n${push.log()}`);
        assert.ok(v.pass, v.failures.join('\n'));
      } finally {
        await push.stop();
      }
    });
  }
});
