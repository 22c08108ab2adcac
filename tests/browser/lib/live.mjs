// The live LL-DASH case, shared by the real-origin test and the stand-in
// self-tests: push the reference ffmpeg command into `ingest`, wait for the
// steady MPD on `egress`, play it in Chromium and judge it.
import { playAndJudge, waitForLiveMpd } from './harness.mjs';
import { startLiveDashPush } from './procs.mjs';

export const LIVE_FPS = 30;

/**
 * ingest, egress: base URLs of the origin's two listeners
 * pageBase:       where /player/index.html is served (default: egress)
 * windowSeconds:  seconds that must hold the latency bound after warm-up
 * manifest, engine: what to play, relative to the stream (default stream.mpd
 *                 with dash.js; e.g. an HLS playlist with 'hlsjs'), once the
 *                 pushed MPD is steady
 * pushExtraArgs:  more ffmpeg output options (e.g. ['-hls_playlist', '1'])
 * whileLive:      optional async ({manifestUrl}) => any, run after playback while
 *                 ffmpeg still pushes; its result is returned as `extra`
 * params, countRequests: passed to samplePlayback (player page parameters; URLs
 *                 whose requests are recorded in the returned `requests`)
 * Returns the verdict of judge() plus {mpd, pushLog}.
 */
export async function runLiveDashCase(browser, {
  ingest, egress, pageBase = egress, name = 'live/browser',
  windowSeconds = 20, warmupSeconds = 5, maxLatency = 2.0, latency = null, engine = 'dashjs',
  manifest = 'stream.mpd', pushExtraArgs = [], whileLive = null, params = {}, countRequests = null,
}) {
  const push = startLiveDashPush({ ingest, egress, name, fps: LIVE_FPS, extraArgs: pushExtraArgs });
  try {
    const manifestUrl = `${egress}/${name}/${manifest}`;
    let mpd;
    try {
      mpd = await waitForLiveMpd(`${egress}/${name}/stream.mpd`);
    } catch (e) {
      throw new Error(`${e.message}\n--- ffmpeg log tail ---\n${push.log()}`);
    }
    // Warm-up then the judged window, counted from the first decoded frame;
    // start-up gets at most 15 s.
    const playSeconds = warmupSeconds + windowSeconds + 0.25;
    const verdict = await playAndJudge(
      browser,
      { pageBase, manifestUrl, engine, latency, seconds: playSeconds + 15, playSeconds, stopWhenEnded: false, params, countRequests },
      { fps: LIVE_FPS, live: true, maxLatency, warmupSeconds },
    );
    if (!push.running()) verdict.failures.push(`ffmpeg push exited early:\n${push.log()}`), verdict.pass = false;
    const extra = whileLive ? await whileLive({ manifestUrl }) : undefined;
    return { ...verdict, mpd, extra, pushLog: push.log() };
  } finally {
    await push.stop();
  }
}
