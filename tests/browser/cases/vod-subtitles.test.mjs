// Subtitles of the on-demand packager in real players: a 10 s MP4 with a German mov_text
// (tx3g, mdhd `deu`, offered as `de`) track and two WebVTT sidecars (sub.en.vtt, sub.fr.vtt) beside it, played to the
// end with a subtitle language chosen (player page ?subtitles=<lang>):
// - hls.js on /i/ (TS) and /cmaf/ (segmented WebVTT, X-TIMESTAMP-MAP);
// - Shaka Player on /i/, /cmaf/ and /dash/ (a text AdaptationSet, one WebVTT file);
// - dash.js on /dash/ (a sidecar and the tx3g track).
// The file has a second (French) audio track: hls.js and Shaka play the TS master with it
// (audio-only TS in the AUDIO group), hls.js and Shaka the CMAF master, dash.js and Shaka
// the MPD.
// Chromium's native HLS plays the TS and CMAF masters to the end with sound (it offers no
// subtitle or audio choice).
// Each case checks the cues the player loaded into the <video> text track: every cue of
// the chosen track, at its source time within 0.1 s. Must-fail: a language the file does
// not have loads no cue.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { isStartGapSkip, launchBrowser, playAndJudge, summarize } from '../lib/harness.mjs';
import { killAll, spawnChild, startOrigin, tempDir } from '../lib/procs.mjs';

const SECONDS = 10;
const FPS = 25;
const EN = 'WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nHello\n\n00:00:03.500 --> 00:00:04.500\nAcross the first boundary\n\n00:00:08.000 --> 00:00:09.250\nThe end\n';
const FR = 'WEBVTT\n\n00:00:01.000 --> 00:00:02.500\nBonjour\n';
const SRT = '1\n00:00:00,500 --> 00:00:01,500\nFirst line\n\n2\n00:00:05,000 --> 00:00:07,000\nTwo words & more\n';
const WANT = {
  en: [[1, 'Hello'], [3.5, 'Across the first boundary'], [8, 'The end']],
  fr: [[1, 'Bonjour']],
  de: [[0.5, 'First line'], [5, 'Two words & more']],   // mdhd `deu`, offered as `de`
};

async function makeMedia(dir) {
  fs.writeFileSync(path.join(dir, 'in.srt'), SRT);
  const ff = spawnChild('ffmpeg subtitled', 'ffmpeg', [
    '-nostdin', '-v', 'error', '-y',
    '-f', 'lavfi', '-i', `testsrc2=size=320x180:rate=${FPS}:duration=${SECONDS}`,
    '-f', 'lavfi', '-i', `sine=frequency=1000:sample_rate=48000:duration=${SECONDS}`,
    '-f', 'lavfi', '-i', `sine=frequency=880:sample_rate=48000:duration=${SECONDS}`,
    '-i', path.join(dir, 'in.srt'),
    '-map', '0:v', '-map', '1:a', '-map', '2:a', '-map', '3:s',
    '-metadata:s:a:0', 'language=eng', '-metadata:s:a:1', 'language=fra',
    '-c:v', 'libx264', '-preset', 'veryfast', '-g', String(FPS), '-pix_fmt', 'yuv420p',
    '-c:a', 'aac', '-b:a', '64k', '-c:s', 'mov_text', '-metadata:s:s:0', 'language=deu',
    path.join(dir, 'sub.mp4'),
  ]);
  const code = await ff.exited;
  if (code !== 0) throw new Error(`ffmpeg failed (${code}):\n${ff.log()}`);
  fs.writeFileSync(path.join(dir, 'sub.en.vtt'), EN);
  fs.writeFileSync(path.join(dir, 'sub.fr.vtt'), FR);
}

/** The cues of the text track in `lang` the page loaded: [[start, text]] (entities decoded). */
function cuesOf(sample, lang) {
  const decode = (t) => t.replace(/<[^>]*>/g, '').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
  const tracks = sample.textTracks.filter((t) => t.language === lang && t.cues.length > 0);
  const seen = new Map();
  for (const t of tracks) for (const c of t.cues) seen.set(`${c.start.toFixed(2)}|${decode(c.text)}`, [c.start, decode(c.text)]);
  return [...seen.values()].sort((a, b) => a[0] - b[0]);
}

/**
 * The judge's failures, less one hls.js false alarm. hls.js 1.7.4 with demuxed TS (the
 * file's two audio tracks make an AUDIO group) warns "Fragment 1 of main playlist 0
 * appended 1 time without buffered range growth" (bufferAppendNoProgress) and then logs
 * that fragment buffered [0.080-6.080]: its video SourceBuffer is created only once the
 * audio codec is known, after the first append was queued. It warns the same with a muxed
 * default audio. Only that one non-fatal event on segment 1 is let through.
 */
function problems(v, engine, manifest) {
  const quirk = (e) => engine === 'hlsjs' && manifest.startsWith('/i/') && !e.fatal
    && /^bufferAppendNoProgress \S+\/segment1_0_v\.ts$/.test(e.details);
  const errors = v.samples.at(-1).errors.filter((e) => !quirk(e) && !isStartGapSkip(e));
  return [
    ...v.failures.filter((f) => !/^\d+ error event\(s\)/.test(f)),
    ...errors.map((e) => `${e.source} ${e.type}: ${e.details}`),
  ];
}

function checkCues(got, want) {
  const problems = [];
  if (got.length !== want.length) problems.push(`${got.length} cues, want ${want.length}: ${JSON.stringify(got)}`);
  for (const [start, text] of want) {
    const c = got.find((g) => g[1] === text);
    if (!c) problems.push(`no cue "${text}" in ${JSON.stringify(got)}`);
    else if (Math.abs(c[0] - start) > 0.1) problems.push(`"${text}" at ${c[0].toFixed(3)} s, want ${start} s`);
  }
  return problems;
}

describe('VOD subtitles (sidecars and tx3g) in hls.js, Shaka Player and dash.js', { timeout: 300_000 }, () => {
  let origin, browser, media;

  before(async () => {
    media = tempDir('subs');
    await makeMedia(media);
    origin = await startOrigin({ extraArgs: ['--media-root', media] });
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    await origin?.stop();
    await killAll();
    if (media) fs.rmSync(media, { recursive: true, force: true });
  });

  async function play(manifest, engine, lang, extra = {}) {
    const v = await playAndJudge(
      browser,
      {
        pageBase: origin.egress, manifestUrl: `${origin.egress}${manifest}`, engine,
        seconds: SECONDS + 10, params: { subtitles: lang, ...extra.params }, countRequests: extra.countRequests,
      },
      { fps: FPS, duration: SECONDS },
    );
    const got = cuesOf(v.samples.at(-1), lang);
    console.log(`${manifest} ${engine} subtitles=${lang}: ${summarize(v)}\n  cues: ${JSON.stringify(got)}`);
    if (got.length === 0) console.log(`  text tracks: ${JSON.stringify(v.samples.at(-1).textTracks.map((t) => ({ ...t, cues: t.cues.length })))}`);
    return { v, got };
  }

  for (const [manifest, engine, lang] of [
    ['/i/sub.mp4/master.m3u8', 'hlsjs', 'en'],
    ['/cmaf/sub.mp4/master.m3u8', 'hlsjs', 'de'],
    ['/i/sub.mp4/master.m3u8', 'shaka', 'fr'],
    ['/cmaf/sub.mp4/master.m3u8', 'shaka', 'de'],
    ['/dash/sub.mp4/manifest.mpd', 'shaka', 'en'],
    ['/dash/sub.mp4/manifest.mpd', 'dashjs', 'fr'],
    ['/dash/sub.mp4/manifest.mpd', 'dashjs', 'de'],
  ]) {
    it(`${engine} shows the ${lang} subtitles of ${manifest} at their times`, async () => {
      const { v, got } = await play(manifest, engine, lang);
      assert.deepEqual(problems(v, engine, manifest), []);
      assert.deepEqual(checkCues(got, WANT[lang]), []);
    });
  }

  // The file's second audio track (fra, 880 Hz) as audio-only TS in the master's AUDIO group
  // (the first, eng, stays muxed in the variant), and as CMAF / DASH audio.
  for (const [manifest, engine] of [
    ['/i/sub.mp4/master.m3u8', 'hlsjs'],
    ['/i/sub.mp4/master.m3u8', 'shaka'],
    ['/cmaf/sub.mp4/master.m3u8', 'hlsjs'],
    ['/cmaf/sub.mp4/master.m3u8', 'shaka'],
    ['/dash/sub.mp4/manifest.mpd', 'dashjs'],
    ['/dash/sub.mp4/manifest.mpd', 'shaka'],
  ]) {
    it(`${engine} plays ${manifest} with the French audio track`, async () => {
      const { v } = await play(manifest, engine, 'en', { params: { audio: 'fr' }, countRequests: /_a1\.(m3u8|ts|m4s)/ });
      assert.deepEqual(problems(v, engine, manifest), []);
      assert.equal(v.samples.at(-1).audioLanguage, 'fr');
      const loaded = v.requests.filter((r) => /segment\d+_0_a1\./.test(r.url));
      assert.ok(loaded.length >= 2, `French audio segments requested: ${loaded.length}`);
    });
  }

  // Chromium's native HLS on the same masters: the TS one has video-only variants and an
  // AUDIO group of audio-only TS (the file has two audio tracks), both have a SUBTITLES
  // group. It plays them to the end with sound (the element's decoded audio bytes), but
  // exposes neither text tracks nor an audioTracks list, so no language can be chosen and
  // no cue checked there: logged, not asserted.
  const AUDIO_BYTES = 40_000;   // 64 kb/s AAC for 10 s is about 80 KB: at least half decoded
  for (const manifest of ['/i/sub.mp4/master.m3u8', '/cmaf/sub.mp4/master.m3u8', '/i/sub.mp4/index_0_v.m3u8']) {
    const mustFail = manifest.endsWith('_v.m3u8');
    it(mustFail
      ? `must fail: Chromium native HLS on the video-only ${manifest} decodes no sound`
      : `Chromium native HLS plays ${manifest} (audio group, subtitles group) to the end with sound`, async () => {
      const v = await playAndJudge(
        browser,
        {
          pageBase: origin.egress, manifestUrl: `${origin.egress}${manifest}`, engine: 'native', seconds: SECONDS + 10,
          inspect: (page) => page.evaluate(() => {
            const el = document.getElementById('video');
            return {
              audioBytes: el.webkitAudioDecodedByteCount,
              textTracks: [...el.textTracks].map((t) => ({ kind: t.kind, language: t.language, cues: t.cues ? t.cues.length : null })),
              audioTracks: el.audioTracks ? el.audioTracks.length : 'no audioTracks API',
            };
          }),
        },
        { fps: FPS, duration: SECONDS },
      );
      console.log(`${manifest} native: ${summarize(v)}\n  ${JSON.stringify(v.inspected)}`);
      assert.equal(v.samples.at(-1).engine, 'native');
      assert.deepEqual(problems(v, 'native', manifest), []);
      if (mustFail) assert.ok(!(v.inspected.audioBytes > AUDIO_BYTES), `audio decoded: ${v.inspected.audioBytes} bytes`);
      else assert.ok(v.inspected.audioBytes > AUDIO_BYTES, `audio decoded: ${v.inspected.audioBytes} bytes`);
    });
  }

  it('must fail: a language the file does not have loads no cue', async () => {
    const { got } = await play('/i/sub.mp4/master.m3u8', 'hlsjs', 'it');
    assert.notDeepEqual(checkCues(got, WANT.en), [], 'the cue check must fail without the track');
  });
});
