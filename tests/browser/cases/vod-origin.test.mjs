// On-demand packaging through the real origin: the csmil set of the bundled samples
// (3 H.264/AAC renditions packaged per request) plays to the end in every output and every
// player that takes it, with every decoded-frame and error check of the harness:
// - /i/ (HLS, MPEG-TS segments): hls.js, Shaka Player, Chromium's native HLS;
// - /cmaf/ (HLS, CMAF segments, audio in an EXT-X-MEDIA group): hls.js, Shaka, native;
// - /dash/ (static MPD, the same CMAF segments): dash.js and Shaka Player;
// - a clip window (start=/end=) of the DASH output in dash.js.
// The must-fail cases ask for a rendition that does not exist in the set, and for a DASH
// clip window past the end.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { launchBrowser, playAndJudge, summarize } from '../lib/harness.mjs';
import { killAll, REPO_ROOT, startOrigin } from '../lib/procs.mjs';

const SECONDS = 12;   // samples/make-samples.sh: 12 s at 25 fps
const FPS = 25;
const SET = 'clip_,360,540,720,p.mp4.csmil';
const MASTER = `/i/${SET}/master.m3u8`;
const CMAF = `/cmaf/${SET}/master.m3u8`;
const MPD = `/dash/${SET}/manifest.mpd`;

describe('VOD csmil through the casterpak origin', { timeout: 180_000 }, () => {
  let origin, browser;

  before(async () => {
    origin = await startOrigin({ extraArgs: ['--media-root', path.join(REPO_ROOT, 'samples')] });
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    await origin?.stop();
    await killAll();
  });

  async function play(manifest, engine, duration = SECONDS, extra = {}) {
    const verdict = await playAndJudge(
      browser,
      { pageBase: origin.egress, manifestUrl: `${origin.egress}${manifest}`, engine, seconds: duration + 8, ...extra },
      { fps: FPS, duration },
    );
    console.log(`${manifest} ${engine}: ${summarize(verdict)}`);
    return verdict;
  }

  it('hls.js plays the csmil master of the samples to the end', async () => {
    const v = await play(MASTER, 'hlsjs');
    assert.equal(v.samples.at(-1).engine, 'hlsjs');
    assert.ok(v.pass, v.failures.join('\n'));
  });

  it('Chromium native HLS plays the csmil master of the samples to the end', async () => {
    const v = await play(MASTER, 'native');
    assert.equal(v.samples.at(-1).engine, 'native');
    assert.ok(v.pass, v.failures.join('\n'));
  });

  it('Shaka Player plays the csmil master of the samples (TS) to the end', async () => {
    const v = await play(MASTER, 'shaka');
    assert.equal(v.samples.at(-1).engine, 'shaka');
    assert.ok(v.pass, v.failures.join('\n'));
  });

  for (const engine of ['hlsjs', 'shaka', 'native']) {
    it(`${engine} plays the CMAF HLS of the samples to the end`, async () => {
      const v = await play(CMAF, engine);
      assert.equal(v.samples.at(-1).engine, engine);
      assert.ok(v.pass, v.failures.join('\n'));
    });
  }

  for (const engine of ['dashjs', 'shaka']) {
    it(`${engine} plays the DASH MPD of the samples to the end`, async () => {
      const v = await play(MPD, engine);
      assert.equal(v.samples.at(-1).engine, engine);
      assert.ok(v.pass, v.failures.join('\n'));
    });
  }

  it('dash.js plays a clip window (start=2&end=8) of the DASH output', async () => {
    // The samples have 2 s GOPs: the window is 6 s from the keyframe at 2 s.
    const v = await play(`${MPD}?start=2&end=8`, 'dashjs', 6);
    assert.equal(v.samples.at(-1).engine, 'dashjs');
    assert.ok(v.pass, v.failures.join('\n'));
  });

  it('must fail: a DASH clip window past the end (the MPD is a 404)', async () => {
    const v = await play(`${MPD}?start=100`, 'dashjs', SECONDS, { stopWhenFatal: true });
    assert.equal(v.pass, false, 'the harness must fail on a 404 MPD');
  });

  it('must fail: a set whose renditions do not exist', async () => {
    const v = await play('/i/clip_,1080,p.mp4.csmil/master.m3u8', 'hlsjs', SECONDS, { stopWhenFatal: true });
    assert.equal(v.pass, false, 'the harness must fail on a 404 master');
  });
});
