// VOD playback through the player page against ffmpeg-made files on a tiny
// static server (no origin needed), plus the must-fail cases that prove the
// harness catches damage players hide: a 404 segment and truncated segments.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { launchBrowser, playAndJudge, summarize } from '../lib/harness.mjs';
import { killAll, makeDashVod, makeHlsVod, tempDir } from '../lib/procs.mjs';
import { startStaticServer } from '../lib/static-server.mjs';

const SECONDS = 8;   // 4 segments of 2 s: a damaged one sits in the middle
const FPS = 30;

describe('VOD on a static stand-in server', { timeout: 180_000 }, () => {
  let dir, browser;
  const servers = [];

  before(async () => {
    dir = tempDir('vod');
    for (const sub of ['dash', 'ts', 'fmp4']) fs.mkdirSync(path.join(dir, sub));
    await makeDashVod(path.join(dir, 'dash'), { seconds: SECONDS, fps: FPS });
    await makeHlsVod(path.join(dir, 'ts'), { seconds: SECONDS, fps: FPS, segmentType: 'mpegts' });
    await makeHlsVod(path.join(dir, 'fmp4'), { seconds: SECONDS, fps: FPS, segmentType: 'fmp4' });
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    await Promise.all(servers.map((s) => s.close()));
    await killAll();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  async function play(manifest, { engine, faults } = {}) {
    const srv = await startStaticServer({ root: dir, faults });
    servers.push(srv);
    const verdict = await playAndJudge(
      browser,
      { pageBase: srv.url, manifestUrl: `${srv.url}${manifest}`, engine, seconds: SECONDS + 8 },
      { fps: FPS, duration: SECONDS },
    );
    console.log(`${manifest} ${engine || 'auto'} ${Object.keys(faults || {}).join(',')}: ${summarize(verdict)}`);
    return verdict;
  }

  it('dash.js plays a DASH VOD to the end', async () => {
    const v = await play('/dash/stream.mpd');
    assert.equal(v.samples.at(-1).engine, 'dashjs');
    assert.ok(v.pass, v.failures.join('\n'));
  });

  it('hls.js plays an HLS MPEG-TS VOD to the end', async () => {
    const v = await play('/ts/stream.m3u8');
    assert.equal(v.samples.at(-1).engine, 'hlsjs');
    assert.ok(v.pass, v.failures.join('\n'));
  });

  it('hls.js plays an HLS fMP4 VOD to the end', async () => {
    const v = await play('/fmp4/stream.m3u8');
    assert.ok(v.pass, v.failures.join('\n'));
  });

  it('Chromium native HLS plays an HLS MPEG-TS VOD to the end', async () => {
    const v = await play('/ts/stream.m3u8', { engine: 'native' });
    assert.equal(v.samples.at(-1).engine, 'native');
    assert.ok(v.pass, v.failures.join('\n'));
  });

  it('the page lists GET /streams as play links, and shows (none) without it', async () => {
    const listing = { streams: [
      { name: 'live/a', state: 'live', manifests: [{ kind: 'dash', url: '/live/a/stream.mpd' }, { kind: 'llhls', url: '/live/a/master.m3u8' }] },
      { name: 'live/b', state: 'ended', manifests: [{ kind: 'hls', url: '/live/b/master.m3u8' }] },
    ] };
    const withList = tempDir('streams');
    fs.writeFileSync(path.join(withList, 'streams'), JSON.stringify(listing));
    for (const [root, expected] of [[withList, [
      '/live/a/stream.mpd dashjs', '/live/a/master.m3u8 hlsjs', '/live/b/master.m3u8 hlsjs']], [dir, []]]) {
      const srv = await startStaticServer({ root });
      servers.push(srv);
      const page = await browser.context.newPage();
      await page.goto(`${srv.url}/player/`);
      if (expected.length) await page.waitForSelector('#streams a', { timeout: 5000 }).catch(() => {});
      else await page.waitForTimeout(1000);   // give a (wrong) list the time to appear
      const links = await page.$$eval('#streams a', (as) => as.map((a) => {
        const q = new URL(a.href).searchParams;
        return `${q.get('url')} ${q.get('engine')}`;
      }));
      const text = await page.textContent('#streams');
      await page.close();
      assert.deepEqual(links, expected);
      if (expected.length === 0) assert.equal(text.trim(), '(none)');
    }
    fs.rmSync(withList, { recursive: true, force: true });
  });

  // ---- must fail ----

  it('must fail: dash.js with a video segment answering 404', async () => {
    const v = await play('/dash/stream.mpd', { faults: { '/dash/chunk-stream0-00002.m4s': { status: 404 } } });
    assert.equal(v.pass, false, 'the harness passed a stream with a missing segment');
  });

  it('must fail: hls.js with a truncated MPEG-TS segment', async () => {
    const v = await play('/ts/stream.m3u8', { faults: { '/ts/seg001.ts': { truncate: 0.2 } } });
    assert.equal(v.pass, false, 'the harness passed a stream with a truncated TS segment');
  });

  it('must fail: hls.js with a truncated fMP4 segment', async () => {
    const v = await play('/fmp4/stream.m3u8', { faults: { '/fmp4/seg001.m4s': { truncate: 0.4 } } });
    assert.equal(v.pass, false, 'the harness passed a stream with a truncated fMP4 segment');
  });
});
