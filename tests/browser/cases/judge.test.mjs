// Unit tests of judge() on synthetic samples: each check can fail on its
// own, and the one tolerated error (hls.js skipping the start gap) is narrow.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { judge } from '../lib/harness.mjs';

// A clean run: `seconds` of playback at 1x, 30 fps, sampled every 0.5 s.
function run({ seconds = 10, live = false, latency = 1.5, t0 = 1000 } = {}) {
  const samples = [];
  for (let i = 0; i <= seconds * 2; i++) {
    const t = i / 2;
    samples.push({
      wallClock: t0 + t, currentTime: t, totalVideoFrames: Math.round(t * 30) + 1, droppedVideoFrames: 0,
      readyState: 4, playbackRate: 1, buffered: [[0, Math.min(seconds, t + 4)]], errors: [], ended: false,
      latencyWallClock: live ? latency : null, latencyPlayer: live ? latency : null,
    });
  }
  return samples;
}

const VOD = { fps: 30, duration: 10 };
const LIVE = { fps: 30, live: true, maxLatency: 2.0, warmupSeconds: 2 };

describe('judge()', () => {
  it('passes a clean VOD run and a clean live run', () => {
    assert.deepEqual(judge(run(), VOD).failures, []);
    assert.deepEqual(judge(run({ live: true }), LIVE).failures, []);
  });

  it('fails on a single non-fatal error event', () => {
    const s = run();
    s.at(-1).errors = [{ source: 'hlsjs', type: 'networkError', details: 'fragLoadError 404 x.ts', fatal: false, currentTime: 3, bufferedStart: 0 }];
    assert.match(judge(s, VOD).failures.join(), /1 error event/);
  });

  it('tolerates hls.js skipping the start gap, not a hole in the middle', () => {
    const gap = (from, to, bufferedStart) => ({
      source: 'hlsjs', type: 'mediaError', fatal: false, currentTime: to, bufferedStart,
      details: `bufferSeekOverHole x.ts (fragment loaded with buffer holes, seeking from ${from} to ${to})`,
    });
    const start = run();
    start.at(-1).errors = [gap(0, 0.121333, 0.021333)];
    assert.deepEqual(judge(start, VOD).failures, []);
    const middle = run();
    middle.at(-1).errors = [gap(4.0, 4.1, 0.021333)];
    assert.match(judge(middle, VOD).failures.join(), /1 error event/);
    const big = run();
    big.at(-1).errors = [gap(0, 2.1, 2.0)];
    assert.match(judge(big, VOD).failures.join(), /1 error event/);
  });

  it('fails when decoded frames do not account for the played time', () => {
    const s = run();
    for (const x of s) if (x.currentTime > 4) x.totalVideoFrames -= 60;   // 2 s of frames never decoded (20 % of 10 s)
    assert.match(judge(s, VOD).failures.join(), /decoded \d+ frames/);
  });

  it('fails when the playhead jumps ahead of the wall clock', () => {
    const s = run();
    for (const x of s) if (x.wallClock - 1000 >= 3) { x.currentTime += 2; x.totalVideoFrames += 60; }
    assert.match(judge(s, VOD).failures.join(), /ahead of the wall clock/);
  });

  it('fails on stalls, a second buffered range, and stopping before the end', () => {
    const s = run();
    for (const x of s) x.currentTime = Math.min(x.currentTime, 5);
    s[10].buffered = [[0, 4], [6, 8]];
    const f = judge(s, VOD).failures.join('\n');
    assert.match(f, /played only/);
    assert.match(f, /2 ranges/);
    assert.match(f, /stopped at 5\.00 s of 10 s/);
  });

  it('fails live runs over the latency bound after warm-up, or with negative or unknown latency', () => {
    assert.match(judge(run({ live: true, latency: 2.3 }), LIVE).failures.join(), /latency >= 2 s in/);
    assert.match(judge(run({ live: true, latency: -0.2 }), LIVE).failures.join(), /negative wall-clock latency/);
    assert.match(judge(run({ live: true, latency: null }), LIVE).failures.join(), /latency unknown/);
    const warm = run({ live: true });
    warm[1].latencyWallClock = 5;   // during the warm-up: ignored
    assert.deepEqual(judge(warm, LIVE).failures, []);
  });

  it('takes recorded seeks out of the played media, and still fails a hole after the seek', () => {
    // 3 s played, a seek from 3 to 22 (recorded by the page), 0.5 s to rebuffer, then 22 -> 30.
    const seekRun = () => {
      const samples = [];
      const seek = { wallClock: 1003, from: 3, to: 22 };
      for (let i = 0; i <= 23; i++) {
        const w = i / 2;
        const t = w <= 3 ? w : Math.min(30, 22 + Math.max(0, w - 3.5));
        const after = w > 3;
        samples.push({
          wallClock: 1000 + w, currentTime: t, totalVideoFrames: Math.round((w <= 3 ? t : 3 + t - 22) * 30) + 1,
          droppedVideoFrames: 0, readyState: 4, playbackRate: 1, errors: [], ended: t >= 30,
          buffered: after ? [[0, 7], [22, Math.min(30, t + 4)]] : [[0, Math.min(30, t + 4)]],
          seeks: after ? [seek] : [], latencyWallClock: null, latencyPlayer: null,
        });
      }
      return samples;
    };
    const opts = { fps: 30, duration: 30, endSlack: 0.5 };
    const v = judge(seekRun(), opts);
    assert.deepEqual(v.failures, []);
    assert.equal(v.summary.playedSeconds, 11);
    const unrecorded = seekRun();
    for (const x of unrecorded) x.seeks = [];
    assert.match(judge(unrecorded, opts).failures.join(), /ahead of the wall clock/);
    const hole = seekRun();
    for (const x of hole) if (x.seeks.length) x.buffered = [[0, 7], [22, 25], [25.5, 30]];
    const f = judge(hole, opts).failures.join('\n');
    assert.match(f, /buffered has 3 ranges/);
    assert.match(f, /not in one buffered range from it/);
  });

  it('tolerates Shaka Player jumping the start gap, not a hole in the middle', () => {
    const gap = (from, to, bufferedStart) => ({
      source: 'shaka', type: 'mediaError', fatal: false, currentTime: to, bufferedStart,
      details: `gapJumped (seeking from ${from} to ${to})`,
    });
    const start = run();
    start.at(-1).errors = [gap(0, 0.021333, 0.021333)];
    assert.deepEqual(judge(start, VOD).failures, []);
    const middle = run();
    middle.at(-1).errors = [gap(4.0, 4.1, 0.021333)];
    assert.match(judge(middle, VOD).failures.join(), /1 error event/);
  });

  it('fails when playback never starts', () => {
    const s = run();
    for (const x of s) x.totalVideoFrames = 0;
    assert.match(judge(s, VOD).failures.join(), /never started/);
  });
});
