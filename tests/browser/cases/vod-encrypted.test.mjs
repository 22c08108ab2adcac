// HLS AES-128 through the real origin (--hls-encryption aes-128 with a master secret):
// the csmil set of the bundled samples as HLS with MPEG-TS (/i/) and with CMAF segments
// (/cmaf/) plays to the end in hls.js and Shaka Player, every segment fetched encrypted and
// the key from the origin's key_<i>.key. Must fail: the same playlists (TS and CMAF) with
// the key answer replaced by 16 zero bytes (a wrong key), or by a 404 (no key), do not
// play in either player.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { launchBrowser, playAndJudge, summarize } from '../lib/harness.mjs';
import { killAll, REPO_ROOT, startOrigin } from '../lib/procs.mjs';

const SECONDS = 12;   // samples/make-samples.sh: 12 s at 25 fps
const FPS = 25;
const SET = 'clip_,360,540,720,p.mp4.csmil';
const SECRET = '5e6f1a2b3c4d5e6f708192a3b4c5d6e7';

describe('HLS AES-128 through the casterpak origin', { timeout: 240_000 }, () => {
  let origin, browser;

  before(async () => {
    origin = await startOrigin({
      extraArgs: [
        '--media-root', path.join(REPO_ROOT, 'samples'),
        '--hls-encryption', 'aes-128', '--hls-encryption-secret', SECRET,
      ],
    });
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    await origin?.stop();
    await killAll();
  });

  async function play(manifest, engine, replace = [], what = '') {
    const verdict = await playAndJudge(
      browser,
      // A must-fail case stops at the first fatal error (a player that only stalls is
      // sampled to the end).
      { pageBase: origin.egress, manifestUrl: `${origin.egress}${manifest}`, engine, seconds: SECONDS + 8, replace, stopWhenFatal: replace.length > 0 },
      { fps: FPS, duration: SECONDS },
    );
    console.log(`${manifest} ${engine}${what ? ` (${what})` : ''}: ${summarize(verdict)}`);
    return verdict;
  }

  it('the segments on the wire are encrypted and the playlists name the key', async () => {
    const pl = await fetch(`${origin.egress}/i/${SET}/index_0_av.m3u8`).then((r) => r.text());
    assert.match(pl, /#EXT-X-KEY:METHOD=AES-128,URI="key_0\.key",IV=0x0{31}1/);
    const seg = Buffer.from(await fetch(`${origin.egress}/i/${SET}/segment1_0_av.ts`).then((r) => r.arrayBuffer()));
    assert.equal(seg.length % 16, 0);
    assert.notEqual(seg[0] === 0x47 && seg[188] === 0x47 && seg[376] === 0x47, true, 'reads as MPEG-TS');
    const key = await fetch(`${origin.egress}/i/${SET}/key_0.key`);
    assert.equal(key.headers.get('cache-control'), 'private, no-store');
    assert.equal((await key.arrayBuffer()).byteLength, 16);
  });

  for (const [prefix, name] of [['i', 'MPEG-TS'], ['cmaf', 'CMAF']]) {
    for (const engine of ['hlsjs', 'shaka']) {
      it(`${engine} plays the encrypted HLS ${name} to the end`, async () => {
        const v = await play(`/${prefix}/${SET}/master.m3u8`, engine);
        assert.equal(v.samples.at(-1).engine, engine);
        assert.ok(v.pass, v.failures.join('\n'));
      });
    }
  }

  // Must fail: the key replaced by a wrong one (TS and CMAF), or answered 404 (no key).
  for (const engine of ['hlsjs', 'shaka']) {
    for (const [prefix, what, replace] of [
      ['cmaf', 'a wrong key', { url: /\/key_\d+\.key/, body: Buffer.alloc(16) }],
      ['i', 'a wrong key', { url: /\/key_\d+\.key/, body: Buffer.alloc(16) }],
      ['cmaf', 'no key (404)', { url: /\/key_\d+\.key/, body: 'not found', status: 404 }],
    ]) {
      it(`must fail: ${engine} on /${prefix}/ with ${what}`, async () => {
        const v = await play(`/${prefix}/${SET}/master.m3u8`, engine, [replace], what);
        assert.equal(v.pass, false, `played with ${what}`);
      });
    }
  }
});
