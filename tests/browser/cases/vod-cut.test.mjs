// An MP4 cut with `ffmpeg -ss 3.3 -c copy` (its edit list starts 1.3 s after the keyframe
// it keeps, on both tracks) through the origin as HLS-TS and HLS-CMAF (hls.js, Shaka,
// Chromium's native HLS) and DASH (dash.js, Shaka), with the harness's frame and error
// checks. The playlists and the MPD say 6.7 s (the pre-roll is carried for decoding only);
// what the players make of the pre-roll, measured here (2026-11-30):
// - hls.js and Chromium's native HLS show it: the buffer starts at 0 or 0.08 s of their own
//   timeline and plays 8.08 s (the 1.3 s pre-roll, then the edit), A/V in sync;
// - Shaka on the HLS does not: its buffer runs 0.08-6.78 s, no gap;
// - dash.js and Shaka drop it and the frames that depend on it (MSE append window at the
//   period start): the buffer starts at the next keyframe, 0.7 s into the edit, and ends
//   at 6.7 s. dash.js starts there without a message; Shaka reports a 0.7 s gap jump,
//   which the harness counts as a hole: that case is a todo.
// Neither is the edit exactly: without re-encoding, a cut that starts mid-GOP shows either
// the pre-roll or the frames from the next keyframe on.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { launchBrowser, playAndJudge, summarize } from '../lib/harness.mjs';
import { killAll, spawnChild, startOrigin, tempDir } from '../lib/procs.mjs';

const FPS = 25;
const CUT_SECONDS = 6.7;   // 10 s, cut at 3.3 s

async function ffmpeg(args, what) {
  const child = spawnChild(what, 'ffmpeg', ['-hide_banner', '-loglevel', 'error', '-nostdin', '-y', ...args]);
  const code = await child.exited;
  if (code !== 0) throw new Error(`${what} failed (${code}):\n${child.log()}`);
}

describe('a mid-GOP cut (edit list) through the casterpak origin', { timeout: 180_000 }, () => {
  let dir, origin, browser;

  before(async () => {
    dir = tempDir('cut');
    const src = path.join(dir, 'src.mp4');
    await ffmpeg([
      '-f', 'lavfi', '-i', `testsrc2=size=640x360:rate=${FPS}`, '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000',
      '-t', '10', '-c:v', 'libx264', '-preset', 'ultrafast', '-bf', '2', '-g', '50', '-keyint_min', '50',
      '-sc_threshold', '0', '-pix_fmt', 'yuv420p', '-c:a', 'aac', '-movflags', '+faststart', src,
    ], 'ffmpeg source');
    await ffmpeg(['-ss', '3.3', '-i', src, '-c', 'copy', path.join(dir, 'cut.mp4')], 'ffmpeg cut');
    fs.rmSync(src);
    origin = await startOrigin({ extraArgs: ['--media-root', dir, '--segment-duration-secs', '2'] });
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    await origin?.stop();
    await killAll();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  for (const [manifest, engine, todo] of [
    ['/i/cut.mp4/master.m3u8', 'hlsjs', false],
    ['/cmaf/cut.mp4/master.m3u8', 'hlsjs', false],
    ['/i/cut.mp4/master.m3u8', 'shaka', false],
    ['/cmaf/cut.mp4/master.m3u8', 'shaka', false],
    ['/i/cut.mp4/master.m3u8', 'native', false],
    ['/cmaf/cut.mp4/master.m3u8', 'native', false],
    ['/dash/cut.mp4/manifest.mpd', 'dashjs', false],
    ['/dash/cut.mp4/manifest.mpd', 'shaka', 'Shaka jumps the 0.7 s from the period start to the next keyframe (see the top)'],
  ]) {
    it(`${engine} plays ${manifest} (the edit's ${CUT_SECONDS} s) to the end`, { todo }, async () => {
      const v = await playAndJudge(
        browser,
        // dash.js sometimes stops at the last frame (6.7 s) without `ended` (seen once in a
        // CI run): sampling stops 1.5 s after the playhead sat within 0.3 s of the end.
        { pageBase: origin.egress, manifestUrl: `${origin.egress}${manifest}`, engine, seconds: CUT_SECONDS + 10, stopNearEnd: 0.3 },
        // The 1.5 s of sitting at the end are wall time without media: 0.75, not 0.8.
        { fps: FPS, duration: CUT_SECONDS, endSlack: 0.5, minPlayedRatio: 0.75 },
      );
      const last = v.samples.at(-1);
      console.log(`${manifest} ${engine}: ${summarize(v)} (duration ${last.duration}, buffered ${JSON.stringify(last.buffered)})`);
      assert.equal(last.engine, engine);
      assert.ok(v.pass, v.failures.join('\n'));
    });
  }
});
