// The browser test, against the real origin binary
// ($CASTERPAK_BIN, default target/debug/casterpak; build it first):
// ffmpeg pushes the reference LL-DASH command (2 video renditions + audio)
// into the ingest listener, and dash.js plays it from the egress listener
// through /player for 20 s with no error events, the decoded frame count
// matching the played time, and wall-clock latency under 2.0 s.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { launchBrowser, summarize } from '../lib/harness.mjs';
import { runLiveDashCase } from '../lib/live.mjs';
import { killAll, startOrigin } from '../lib/procs.mjs';

describe('live LL-DASH through the casterpak origin', { timeout: 180_000 }, () => {
  let browser, origin;
  let listed;   // what the page listed from GET /streams during the live case

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

  it('egress serves the player page at /player, /player/ and /player/index.html', async () => {
    for (const p of ['/player', '/player/', '/player/index.html']) {
      const res = await fetch(`${origin.egress}${p}`);
      assert.equal(res.status, 200, `GET ${p}`);
      assert.match(await res.text(), /casterpak player/, `GET ${p}`);
    }
    for (const p of ['/player/player.js', '/player/node_modules/dashjs/dist/modern/umd/dash.all.min.js',
      '/player/node_modules/hls.js/dist/hls.min.js', '/player/node_modules/shaka-player/dist/shaka-player.compiled.js']) {
      const res = await fetch(`${origin.egress}${p}`);
      assert.equal(res.status, 200, `GET ${p} (did npm ci --prefix player run?)`);
      await res.arrayBuffer();
    }
  });

  it('dash.js plays the live stream for 20 s: no errors, frames match, wall-clock latency < 2.0 s', async () => {
    const v = await runLiveDashCase(browser, {
      ingest: origin.ingest,
      egress: origin.egress,
      name: 'live/browser',
      // While ffmpeg still pushes: does the page list the stream from /streams?
      whileLive: async ({ manifestUrl }) => {
        const page = await browser.context.newPage();
        try {
          await page.goto(`${origin.egress}/player/`);
          listed = await page.waitForFunction(() => [...document.querySelectorAll('#streams a')]
            .map((a) => decodeURIComponent(a.href)).find((h) => h.includes('live/browser/stream.mpd')) || null,
          null, { timeout: 7000 }).then((h) => h.jsonValue()).catch(() => null);
        } finally {
          await page.close();
        }
        return { manifestUrl, listed };
      },
    });
    console.log(`casterpak live: ${summarize(v)}`);
    console.log(`page listed from /streams: ${listed || '(not listed)'}`);
    if (!v.pass) console.log(`--- casterpak log tail ---\n${origin.child.log()}`);
    assert.ok(v.pass, v.failures.join('\n'));
    assert.ok(v.summary.windowSeconds >= 19, `judged only ${v.summary.windowSeconds} s`);
    assert.equal(v.samples.at(-1).lowLatencyMode, true, 'dash.js did not switch to low-latency mode');
  });

  // Shaka Player on the same LL-DASH push, in low-latency mode (chunked CMAF fetched as it
  // arrives) and in its normal mode.
  for (const [params, label, maxLatency] of [
    [{ lowLatency: '1' }, 'low-latency mode', 2.0],
    [{}, 'normal mode', 4.0],
  ]) {
    it(`Shaka Player (${label}) plays the live LL-DASH for 15 s: no errors, frames match, latency < ${maxLatency} s`, async () => {
      const v = await runLiveDashCase(browser, {
        ingest: origin.ingest, egress: origin.egress, name: `live/shaka-${params.lowLatency ? 'll' : 'normal'}`,
        engine: 'shaka', params, maxLatency, windowSeconds: 15,
      });
      console.log(`Shaka LL-DASH ${label}: ${summarize(v)}`);
      if (!v.pass) console.log(`--- casterpak log tail ---\n${origin.child.log()}`);
      assert.ok(v.pass, v.failures.join('\n'));
      assert.ok(v.summary.windowSeconds >= 14, `judged only ${v.summary.windowSeconds} s`);
    });
  }

  it('the player page listed the live stream from GET /streams (checked during the live case)', () => {
    assert.ok(listed !== undefined, 'the live case did not get far enough to check');
    assert.ok(listed, 'no link to live/browser/stream.mpd in the page\'s stream list (GET /streams)');
  });
});
