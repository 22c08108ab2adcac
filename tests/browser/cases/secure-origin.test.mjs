// TLS with HTTP/2 on egress and EdgeAuth playback tokens, through the real
// origin binary ($CASTERPAK_BIN, default target/debug/casterpak):
// - a throwaway test CA and a server certificate for 127.0.0.1/localhost are
//   made with openssl at test time; the origin serves egress over https with
//   it and a config file with [auth.playback];
// - Chromium trusts exactly that server key: --ignore-certificate-errors-spki-list
//   with the base64 SHA-256 of the leaf's SubjectPublicKeyInfo (no blanket
//   --ignore-certificate-errors; a Chromium without the flag refuses the page);
// - tokens are Akamai EdgeAuth 2.0, made by Akamai's own akamai-edgeauth package;
// - the reference LL-DASH push plays from tokenized URLs over h2: the MPD with
//   dash.js and Shaka, llhls.m3u8 with hls.js and Shaka; the csmil VOD master
//   (token ACL /i/*) with hls.js. Each passes judge(), no media request got a
//   4xx, every media request went over h2 (the page's Resource Timing
//   nextHopProtocol) and carried the token;
// - must fail: an expired token and a token with another ACL get 403 and the
//   players report a fatal error.
// Shaka on live LL-HLS has gap jumps of its own (plain http too): see
// SHAKA_LLHLS_GAPS below for what is tolerated there.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { launchBrowser, playAndJudge, summarize, waitForLiveMpd } from '../lib/harness.mjs';
import { LIVE_FPS } from '../lib/live.mjs';
import { killAll, REPO_ROOT, startLiveDashPush, startOrigin, tempDir } from '../lib/procs.mjs';
import { edgeAuthTokens, h2Get, makeTestPki } from '../lib/secure.mjs';

const STREAM = 'live/secure';
const VOD_MASTER = '/i/clip_,360,540,720,p.mp4.csmil/master.m3u8';
const VOD_SECONDS = 12;   // samples/make-samples.sh: 12 s at 25 fps
const VOD_FPS = 25;
const WARMUP = 4;         // live: seconds after the first frame before latency is judged
const WINDOW = 8;         // live: judged seconds

// Run in the page before its own scripts: every resource request the page makes,
// as Resource Timing sees it (the observer gets every entry, even past the buffer).
const NET_PROBE = () => {
  const net = window.__casterpakNet = { media: 0, byProtocol: {}, byStatus: {}, withoutToken: [], notH2: [] };
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      const u = new URL(e.name);
      if (!/^\/(live|i)\//.test(u.pathname)) continue;   // the player's own scripts, /time, /streams
      net.media++;
      const proto = e.nextHopProtocol || '(none)';
      net.byProtocol[proto] = (net.byProtocol[proto] || 0) + 1;
      const status = e.responseStatus || 0;
      net.byStatus[status] = (net.byStatus[status] || 0) + 1;
      if (!u.searchParams.has('hdnts') && net.withoutToken.length < 10) net.withoutToken.push(e.name);
      // A request the player cancelled (status 0) never reports a protocol: not a finding.
      if (proto !== 'h2' && status !== 0 && net.notH2.length < 10) net.notH2.push(`${proto} ${e.name}`);
    }
  }).observe({ type: 'resource', buffered: true });
};
const readNet = (page) => page.evaluate(() => window.__casterpakNet);

// SHAKA_LLHLS_GAPS: Shaka Player 5.2.12 on the origin's live LL-HLS, over plain
// http and without tokens as well (about half of 12 s runs), now and then never
// requests some audio parts of a segment although every playlist it loaded
// lists them (it requests the video parts and the next audio parts), then
// jumps the ~2 s hole ("gapJumped (seeking from 45.96 to 48)"), and some runs
// start with a jump over the first part ("from 0 to 0.512"). Not what this file
// tests, so for Shaka LL-HLS the judge's failures that such a jump causes (the
// gapJumped events themselves, the frames not decoded in the hole, the latency
// while stalled before it) are tolerated and logged; every other check holds,
// and no HTTP error event may occur.
function withoutShakaGaps(v) {
  const last = v.samples.at(-1);
  const gap = (e) => e.source === 'shaka' && e.type === 'mediaError' && /^gapJumped /.test(e.details) && !e.fatal;
  const jumped = last.errors.some(gap);
  const onlyGaps = last.errors.every(gap);
  const rest = v.failures.filter((f) => !(jumped && (
    (onlyGaps && /^\d+ error event\(s\): /.test(f)) || /^decoded \d+ frames/.test(f) || /^wall-clock latency >= /.test(f))));
  if (rest.length < v.failures.length) console.log(`NOTE: Shaka LL-HLS gap jump tolerated (SHAKA_LLHLS_GAPS): ${v.failures.filter((f) => !rest.includes(f)).join(' | ')}`);
  return rest;
}

/** Every URI a manifest names: HLS URI lines and URI="..." attributes, MPD URL attributes. */
function manifestUris(text) {
  if (text.trimStart().startsWith('<')) {
    return [...text.matchAll(/\b(?:initialization|media|sourceURL)="([^"]*)"/g)].map((m) => m[1]);
  }
  const lines = text.split('\n').map((l) => l.trim());
  return [
    ...lines.filter((l) => l && !l.startsWith('#')),
    ...lines.flatMap((l) => [...l.matchAll(/URI="([^"]*)"/g)].map((m) => m[1])),
  ];
}

describe('TLS (HTTP/2) and EdgeAuth playback tokens through the casterpak origin', { timeout: 360_000 }, () => {
  let origin, browser, pki, pkiDir, key;
  const get = (url, headers) => h2Get(url, { ca: pki.ca, headers });

  async function authFailures() {
    const text = await (await fetch(`${origin.api}/metrics`)).text();
    const out = {};
    for (const m of text.matchAll(/^casterpak_playback_auth_failures_total\{reason="([^"]+)"\} (\d+)/gm)) out[m[1]] = Number(m[2]);
    return out;
  }

  before(async () => {
    pkiDir = tempDir('pki');
    pki = makeTestPki(pkiDir);
    key = crypto.randomBytes(32).toString('hex');
    const config = path.join(pkiDir, 'casterpak.toml');
    fs.writeFileSync(config, `[auth.playback]\nkey = "${key}"\ntoken_name = "hdnts"\n`);
    origin = await startOrigin({
      egressTls: { cert: pki.cert, key: pki.key, ca: pki.ca },
      extraArgs: ['--config', config, '--media-root', path.join(REPO_ROOT, 'samples')],
    });
    // Trust the test server's key only; Chromium honours this flag with a
    // --user-data-dir, which launchBrowser always gives.
    browser = await launchBrowser({ args: [`--ignore-certificate-errors-spki-list=${pki.spki}`] });
  });

  after(async () => {
    await browser?.close();
    if (origin) {
      await origin.stop();
      if (process.env.CASTERPAK_BROWSER_LOG) console.log(`--- casterpak log tail ---\n${origin.child.log()}`);
    }
    await killAll();
    if (pkiDir) fs.rmSync(pkiDir, { recursive: true, force: true });
  });

  /** Play `manifestUrl` and judge it; also returns what the page's network probe saw. */
  async function play(what, manifestUrl, engine, judgeOpts, playOpts = {}) {
    const v = await playAndJudge(
      browser,
      { pageBase: origin.egress, manifestUrl, engine, initScript: NET_PROBE, inspect: readNet, ...playOpts },
      judgeOpts,
    );
    const net = v.inspected;
    console.log(`${what}: ${summarize(v)}\n  network: ${JSON.stringify(net)}`);
    return { v, net };
  }

  /** A passing playback's network: media requests made, all over h2, all with the token, none refused. */
  function assertNet(net) {
    assert.ok(net && net.media >= 5, `only ${net && net.media} media requests seen`);
    assert.deepEqual(net.notH2, [], 'media requests not over HTTP/2');
    assert.deepEqual(net.withoutToken, [], 'media requests without the token');
    const refused = Object.entries(net.byStatus).filter(([s]) => Number(s) >= 400);
    assert.deepEqual(refused, [], 'media requests answered >= 400');
  }

  it('egress speaks HTTP/2 over TLS (test CA); no token: 403; /time and /player open; Chromium without the SPKI flag refuses', async () => {
    const page = await get(`${origin.egress}/player/index.html`);
    assert.equal(page.status, 200);
    assert.equal(page.alpn, 'h2');
    assert.equal((await get(`${origin.egress}/time`)).status, 200);
    const refused = await get(`${origin.egress}${VOD_MASTER}`);
    assert.equal(refused.status, 403, `GET ${VOD_MASTER} without a token: ${refused.status} ${refused.body}`);

    const plain = await launchBrowser();
    try {
      const p = await plain.context.newPage();
      const err = await p.goto(`${origin.egress}/player/index.html`).then(() => null, (e) => e.message);
      assert.match(err || 'loaded', /ERR_CERT_AUTHORITY_INVALID/, 'a Chromium without the SPKI flag must refuse the test certificate');
    } finally {
      await plain.close();
    }
  });

  it('hls.js plays the tokenized csmil VOD master (ACL /i/*) over h2 to the end', async () => {
    const [token] = edgeAuthTokens(key, [{ acl: '/i/*', windowSeconds: 600 }]);
    const master = await get(`${origin.egress}${VOD_MASTER}?hdnts=${token}`);
    assert.equal(master.status, 200, master.body);
    for (const uri of manifestUris(master.body)) assert.ok(uri.includes(`hdnts=${token}`), `URI without the token in the master: ${uri}`);
    const { v, net } = await play('hls.js VOD csmil', `${origin.egress}${VOD_MASTER}?hdnts=${token}`, 'hlsjs',
      { fps: VOD_FPS, duration: VOD_SECONDS }, { seconds: VOD_SECONDS + 10 });
    assert.ok(v.pass, v.failures.join('\n'));
    assertNet(net);
  });

  it('must fail: the VOD master with a token for another ACL (/live/*) is refused and hls.js stops', async () => {
    const [token] = edgeAuthTokens(key, [{ acl: '/live/*', windowSeconds: 600 }]);
    const before = await authFailures();
    const { v } = await play('hls.js VOD, wrong ACL (must fail)', `${origin.egress}${VOD_MASTER}?hdnts=${token}`, 'hlsjs',
      { fps: VOD_FPS, duration: VOD_SECONDS }, { seconds: 10, stopWhenFatal: true });
    assert.equal(v.pass, false, 'the harness must fail on a refused token');
    assert.ok(v.samples.at(-1).fatal, 'hls.js reported no fatal error');
    assert.ok(v.samples.at(-1).errors.some((e) => /\b403\b/.test(e.details)), 'no 403 among the errors');
    const after = await authFailures();
    assert.ok((after.wrong_path || 0) > (before.wrong_path || 0), `no wrong_path refusal counted: ${JSON.stringify(after)}`);
  });

  describe('the reference LL-DASH push, played from tokenized URLs', () => {
    let push, token;
    const base = () => `${origin.egress}/${STREAM}`;

    before(async () => {
      [token] = edgeAuthTokens(key, [{ acl: `/${STREAM}/*`, windowSeconds: 600 }]);
      push = startLiveDashPush({ ingest: origin.ingest, egress: origin.egress, name: STREAM, fps: LIVE_FPS });
      try {
        await waitForLiveMpd(`${base()}/stream.mpd?hdnts=${token}`, 30_000, (url) => get(url));
      } catch (e) {
        throw new Error(`${e.message}\n--- ffmpeg log tail ---\n${push.log()}\n--- casterpak log tail ---\n${origin.child.log()}`);
      }
    });

    after(async () => { await push?.stop(); });

    it('every URI of the tokenized MPD and LL-HLS playlists carries the token; a segment without it is refused', async () => {
      const mpd = await get(`${base()}/stream.mpd?hdnts=${token}`);
      const multi = await get(`${base()}/llhls.m3u8?hdnts=${token}`);
      const media = await get(`${base()}/llhls_0.m3u8?hdnts=${token}`);
      for (const [name, res] of [['stream.mpd', mpd], ['llhls.m3u8', multi], ['llhls_0.m3u8', media]]) {
        assert.equal(res.status, 200, `${name}: ${res.status} ${res.body}`);
        assert.equal(res.alpn, 'h2');
        const uris = manifestUris(res.body);
        assert.ok(uris.length >= 3, `${name}: only ${uris.length} URIs`);
        const bare = uris.filter((u) => !u.includes(`hdnts=${token}`));
        assert.deepEqual(bare, [], `${name}: URIs without the token`);
      }
      assert.match(media.body, /#EXT-X-PRELOAD-HINT:TYPE=PART,URI="[^"]*hdnts=/);
      assert.match(media.body, /#EXT-X-RENDITION-REPORT:URI="[^"]*hdnts=/);
      assert.match(media.body, /#EXT-X-MAP:URI="[^"]*hdnts=/);
      const seg = manifestUris(media.body).find((u) => /^chunk-stream0-\d+\.m4s\?/.test(u));
      assert.ok(seg, 'no full segment listed');
      assert.equal((await get(`${base()}/${seg}`)).status, 200);
      const bareSeg = await get(`${base()}/${seg.split('?')[0]}`);
      assert.equal(bareSeg.status, 403, `segment without the token: ${bareSeg.status}`);
    });

    // Was a todo (time_url() reads the Host header, which an HTTP/2 request does not carry);
    // it has passed since at least the clean-clone CI of d086d0c: the MPD names the
    // :authority host. It fails if the egress falls back to its listener address.
    it('the MPD\'s UTCTiming names the host the player asked for, over HTTP/2 too (:authority, no Host header)', async () => {
      const port = new URL(origin.egress).port;
      const h1 = await get(`${base()}/stream.mpd?hdnts=${token}`, { ':authority': `localhost:${port}` });
      const utc = [...h1.body.matchAll(/<UTCTiming [^>]*value="([^"]*)"/g)].map((m) => m[1]);
      assert.ok(utc.length > 0, 'no UTCTiming');
      assert.deepEqual([...new Set(utc)], [`https://localhost:${port}/time`]);
    });

    const live = (maxLatency) => ({ fps: LIVE_FPS, live: true, maxLatency, warmupSeconds: WARMUP });
    const livePlay = { seconds: WARMUP + WINDOW + 15, playSeconds: WARMUP + WINDOW + 0.25, stopWhenEnded: false };
    const cases = [
      ['dash.js LL-DASH', 'stream.mpd', 'dashjs', 2.0],
      ['hls.js LL-HLS', 'llhls.m3u8', 'hlsjs', 2.5],
      ['Shaka LL-DASH', 'stream.mpd', 'shaka', 2.5],
      ['Shaka LL-HLS', 'llhls.m3u8', 'shaka', 2.5, { shakaGaps: true }],
    ];
    for (const [what, manifest, engine, maxLatency, { shakaGaps = false } = {}] of cases) {
      const note = shakaGaps ? ' (Shaka\'s own gap jumps tolerated, see SHAKA_LLHLS_GAPS)' : '';
      it(`${what} plays ${manifest}?hdnts=... over h2 for ${WINDOW} s after a ${WARMUP} s warm-up, latency < ${maxLatency} s${note}`, async () => {
        const { v, net } = await play(what, `${base()}/${manifest}?hdnts=${token}`, engine, live(maxLatency), livePlay);
        assert.ok(push.running(), `ffmpeg exited early:\n${push.log()}`);
        assert.equal(v.samples.at(-1).engine, engine);
        const failures = shakaGaps ? withoutShakaGaps(v) : v.failures;
        if (failures.length) console.log(`--- casterpak log tail ---\n${origin.child.log()}`);
        assert.deepEqual(failures, []);
        assert.ok(v.summary.windowSeconds >= WINDOW - 1, `judged only ${v.summary.windowSeconds} s`);
        assertNet(net);
      });
    }

    const mustFail = [
      ['an expired token', 'hls.js', 'llhls.m3u8', 'hlsjs', 'expired'],
      ['an expired token', 'dash.js', 'stream.mpd', 'dashjs', 'expired'],
      ['a token for another stream (ACL /live/other/*)', 'Shaka', 'llhls.m3u8', 'shaka', 'wrong_path'],
      ['a token for another stream (ACL /live/other/*)', 'dash.js', 'stream.mpd', 'dashjs', 'wrong_path'],
    ];
    for (const [why, who, manifest, engine, reason] of mustFail) {
      it(`must fail: ${who} with ${why} on ${manifest}: 403, fatal error`, async () => {
        const now = Math.floor(Date.now() / 1000);
        const [bad] = edgeAuthTokens(key, [reason === 'expired'
          ? { acl: `/${STREAM}/*`, startTime: now - 600, endTime: now - 60 }
          : { acl: '/live/other/*', windowSeconds: 600 }]);
        const direct = await get(`${base()}/${manifest}?hdnts=${bad}`);
        assert.equal(direct.status, 403, `GET ${manifest} with ${why}: ${direct.status}`);
        const before = await authFailures();
        const { v } = await play(`${who} ${manifest}, ${why} (must fail)`, `${base()}/${manifest}?hdnts=${bad}`, engine,
          live(2.5), { seconds: 10, stopWhenFatal: true, stopWhenEnded: false });
        assert.equal(v.pass, false, 'the harness must fail on a refused token');
        const last = v.samples.at(-1);
        assert.ok(last.fatal, `${who} reported no fatal error: ${JSON.stringify(last.errors)}`);
        assert.ok(last.errors.some((e) => /\b403\b/.test(e.details)), `no 403 among the errors: ${JSON.stringify(last.errors)}`);
        assert.equal(last.totalVideoFrames || 0, 0, 'frames were decoded');
        const after = await authFailures();
        assert.ok((after[reason] || 0) > (before[reason] || 0), `no ${reason} refusal counted: ${JSON.stringify(after)}`);
      });
    }
  });
});
