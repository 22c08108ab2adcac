// On-demand packaging through the real origin: the csmil master of the bundled samples
// (3 H.264/AAC renditions packaged per request into MPEG-TS) plays to the end in hls.js and
// in Chromium's native HLS, with every decoded-frame and error check of the harness. The
// must-fail case asks for a rendition that does not exist in the set.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { launchBrowser, playAndJudge, summarize } from '../lib/harness.mjs';
import { killAll, REPO_ROOT, startOrigin } from '../lib/procs.mjs';

const SECONDS = 12;   // samples/make-samples.sh: 12 s at 25 fps
const FPS = 25;
const MASTER = '/i/clip_,360,540,720,p.mp4.csmil/master.m3u8';

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

  async function play(manifest, engine) {
    const verdict = await playAndJudge(
      browser,
      { pageBase: origin.egress, manifestUrl: `${origin.egress}${manifest}`, engine, seconds: SECONDS + 8 },
      { fps: FPS, duration: SECONDS },
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

  it('must fail: a set whose renditions do not exist', async () => {
    const v = await play('/i/clip_,1080,p.mp4.csmil/master.m3u8', 'hlsjs');
    assert.equal(v.pass, false, 'the harness must fail on a 404 master');
  });
});
