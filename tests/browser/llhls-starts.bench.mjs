// Benchmark (not a test): LL-HLS tune-in latency of an every-frame push over many starts.
//
//   node tests/browser/llhls-starts.bench.mjs [STARTS]      (bench/llhls_starts.sh runs it)
//
// One origin per setting: PART-HOLD-BACK at the default 3 x PART-TARGET and at the RFC 8216bis
// floor 2 x PART-TARGET (--llhls-part-hold-back-ms 1), each with the first (plain) playlist
// request answered at once (the default) and held for the next part; the reference LL-DASH push with
// -frag_type every_frame, then STARTS fresh player pages per player (hls.js lowLatencyMode,
// Shaka low-latency mode), each sampled 5 s after it was opened. A player's latency is
// constant once it plays at rate 1, so each start is one draw of where it settles.
// Prints one line per player and setting: every start's wall-clock latency (s, from
// PROGRAM-DATE-TIME), then min, median and max.
import { launchBrowser, waitForLiveMpd, sleep } from './lib/harness.mjs';
import { startOrigin, startLiveDashPush, killAll } from './lib/procs.mjs';

const starts = Number(process.argv[2] || 8);
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2; };
const browser = await launchBrowser();
try {
  const settings = [
    ['PART-HOLD-BACK 3 x PART-TARGET (default)', []],
    ['PART-HOLD-BACK 2 x PART-TARGET (--llhls-part-hold-back-ms 1)', ['--llhls-part-hold-back-ms', '1']],
    ['3 x PART-TARGET, first playlist held (--llhls-hold-plain-reload true)', ['--llhls-hold-plain-reload', 'true']],
    ['2 x PART-TARGET, first playlist held', ['--llhls-part-hold-back-ms', '1', '--llhls-hold-plain-reload', 'true']],
  ];
  for (const [setting, extraArgs] of settings) {
    const origin = await startOrigin({ extraArgs });
    const name = 'live/starts';
    const push = startLiveDashPush({ ingest: origin.ingest, egress: origin.egress, name, fps: 30, extraArgs: ['-frag_type', 'every_frame'] });
    try {
      await waitForLiveMpd(`${origin.egress}/${name}/stream.mpd`);
      await sleep(3000);
      const playlist = await (await fetch(`${origin.egress}/${name}/llhls_0.m3u8`)).text();
      const control = /PART-HOLD-BACK=[0-9.]+/.exec(playlist)?.[0];
      for (const [player, query] of [['hls.js lowLatencyMode', 'engine=hlsjs'], ['Shaka low-latency mode', 'engine=shaka&lowLatency=1']]) {
        const lat = [];
        for (let i = 0; i < starts; i++) {
          const page = await browser.context.newPage();
          await page.goto(`${origin.egress}/player/index.html?url=${encodeURIComponent(`${origin.egress}/${name}/llhls.m3u8`)}&${query}`);
          await sleep(5000);
          const s = await page.evaluate(() => window.casterpak.stats());
          await page.close();
          if (Number.isFinite(s.latencyWallClock)) lat.push(s.latencyWallClock);
        }
        const f = (x) => x.toFixed(3);
        console.log(`${setting} [${control}], ${player}: ${lat.map(f).join(' ')} | min ${f(Math.min(...lat))} median ${f(median(lat))} max ${f(Math.max(...lat))} (${lat.length}/${starts} starts)`);
      }
    } finally {
      await push.stop();
      await origin.stop();
    }
  }
} finally {
  await browser.close();
  await killAll();
}
