// The dashboard (dashboard/, served at /dashboard/ on the API listener) driven in
// headless Chromium against the real origin ($CASTERPAK_BIN, default
// target/debug/casterpak; build it first), with a fresh data dir, a fresh media
// root (the library publishes under <media root>/assets/) and
// --library-preset ultrafast:
// - library: an 8 s ffmpeg clip (testsrc2 640x360 + sine) is uploaded through the
//   page's file input (tus-js-client); the upload's progress bar reaches 100 %;
//   the asset reaches `ready` in the page, which reads the asset list once and
//   learns the rest from GET /api/v1/events (fetch + stream reader); its title
//   (markup in it) is shown as text; hls.js plays it to the end (judge(): no error
//   event, frames, no stall, one buffered range), and hovering the seek bar shows
//   the sprite tile of the WebVTT thumbnails cue under the pointer; Shaka Player
//   (the page's other engine) plays it too; the asset's playback.dash plays in dash.js
//   and Shaka and its playback.cmaf in hls.js and Shaka (the player page on egress);
//   rename and delete go through the page. Must fail: an unreadable file ends `errored`
//   (error code and message shown, no retry offered) and the wait for `ready`
//   fails on it;
// - live: the reference LL-DASH push; the stream shows up live, its LL-HLS
//   preview plays (judge(), latency < 4 s), a recording started from the page
//   is stopped 8 s later, reaches `done`, and plays to the end from the page;
//   then it is deleted from the page;
// - tokens: an origin with [[auth.api]] (admin and read tokens): with no token
//   the page shows the 401 message and lists nothing; a read token lists but its
//   upload gets the 403 message; the admin token uploads, and the asset reaches
//   `ready` over the events stream, which carried the Bearer header; the token
//   survives a reload (sessionStorage).
// Every page fails the case on any console error or warning, uncaught exception
// or HTTP response >= 400, except the 401/403 the token steps cause on purpose
// (and those must happen).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { judge, launchBrowser, playAndJudge, sleep, summarize, waitForLiveMpd } from '../lib/harness.mjs';
import { LIVE_FPS } from '../lib/live.mjs';
import { killAll, REPO_ROOT, spawnChild, startLiveDashPush, startOrigin, tempDir } from '../lib/procs.mjs';

const DASHBOARD_DIR = path.join(REPO_ROOT, 'dashboard');
const CLIP_SECONDS = 8;
const CLIP_FPS = 30;
const STREAM = 'live/dash';
const RECORD_SECONDS = 8;
// User input with markup: must come back as the same text, never as elements.
const TITLE = 'Clip <img src=x onerror="window.__xss=1"> & "friends"';
const READY_TIMEOUT = 60_000;

/** The 8 s test clip: testsrc2 640x360 + a sine, x264 ultrafast, AAC, faststart MP4. */
async function makeClip(dir) {
  const file = path.join(dir, 'clip.mp4');
  const child = spawnChild('ffmpeg clip', 'ffmpeg', [
    '-hide_banner', '-loglevel', 'error', '-nostdin', '-y',
    '-f', 'lavfi', '-i', `testsrc2=size=640x360:rate=${CLIP_FPS}`,
    '-f', 'lavfi', '-i', 'sine=frequency=1000:sample_rate=48000',
    '-t', String(CLIP_SECONDS), '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p',
    '-g', String(CLIP_FPS), '-c:a', 'aac', '-b:a', '96k', '-movflags', '+faststart', file,
  ]);
  const code = await child.exited;
  if (code !== 0) throw new Error(`ffmpeg clip failed (${code}):\n${child.log()}`);
  return file;
}

/**
 * Opens the dashboard in a new page and records what must not happen: console errors and
 * warnings, uncaught exceptions, HTTP responses >= 400. `expected` (regexes) are the
 * problems a step causes on purpose: check() drops them and fails when one did not occur.
 */
async function openDashboard(browser, origin) {
  const page = await browser.context.newPage();
  const problems = [];
  const requests = [];
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') problems.push(`console ${m.type()}: ${m.text()} (${m.location().url || '?'})`);
  });
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  page.on('response', (r) => {
    if (r.status() >= 400) problems.push(`HTTP ${r.status()} ${r.request().method()} ${r.url()}`);
  });
  page.on('request', (r) => requests.push({ method: r.method(), url: r.url(), request: r }));
  // Deletes ask confirm(): yes.
  page.on('dialog', (d) => d.accept());
  await page.goto(`${origin.api}/dashboard/`);
  await page.waitForFunction(() => window.casterpakDashboard, null, { timeout: 10_000 });
  return {
    page,
    requests,
    problems,
    /** Fails on every problem seen so far except `expected` ones, each of which must have occurred. */
    check(what, expected = []) {
      const missing = expected.filter((re) => !problems.some((p) => re.test(p)));
      const rest = problems.filter((p) => !expected.some((re) => re.test(p)));
      problems.length = 0;
      assert.deepEqual(missing, [], `${what}: expected problems that did not occur`);
      assert.deepEqual(rest, [], `${what}: console errors/warnings, page errors or HTTP errors`);
    },
  };
}

/** Samples the page's player every 500 ms until it ended, failed, sat at the end, or `seconds` passed. */
async function samplePlayer(page, { seconds, onStarted = null }) {
  const samples = [];
  const end = Date.now() + seconds * 1000;
  let started = false;
  while (Date.now() < end) {
    const s = await page.evaluate(() => window.casterpakDashboard.stats());
    samples.push(s);
    if (s.ended || s.fatal) break;
    if (s.duration !== null && s.currentTime >= s.duration - 0.5) {
      const still = samples.filter((x) => x.currentTime === s.currentTime);
      if (s.wallClock - still[0].wallClock >= 1.5) break;
    }
    if (!started && s.totalVideoFrames > 0 && s.readyState >= 2) {
      started = true;
      if (onStarted) await onStarted(s);
    }
    await sleep(500);
  }
  return samples;
}

function logVerdict(what, v, samples) {
  const last = samples.at(-1) || {};
  console.log(`${what}: ${summarize(v)} (duration ${last.duration}, ended ${last.ended}, url ${last.url})`);
}

/** Waits for `selector`; on timeout says what the page shows instead. */
async function waitForSelector(page, selector, what, timeout, diag = async () => '') {
  try {
    return await page.waitForSelector(selector, { timeout });
  } catch (e) {
    throw new Error(`${what}: not seen within ${timeout} ms (${selector})\n${await diag()}`);
  }
}

/** Resolves once the page shows the asset `ready`; fails at once when it shows `errored`. */
async function waitForAssetReady(page, id, timeout) {
  const row = `#assets tr[data-asset-id="${id}"]`;
  const end = Date.now() + timeout;
  let last = null;
  while (Date.now() < end) {
    last = await page.evaluate((sel) => {
      const tr = document.querySelector(sel);
      return tr ? { status: tr.dataset.status, text: tr.innerText } : null;
    }, row);
    if (last && last.status === 'ready') return last;
    if (last && last.status === 'errored') throw new Error(`asset ${id} errored in the page: ${last.text}`);
    await sleep(250);
  }
  throw new Error(`asset ${id} did not reach ready in the page within ${timeout} ms (last: ${JSON.stringify(last)})`);
}

/** Uploads `file` through the page's form; resolves to the upload's record once done. */
async function uploadThroughPage(page, file, title) {
  await page.setInputFiles('#file', file);
  if (title !== null) await page.fill('#title', title);
  const before = (await page.evaluate(() => window.casterpakDashboard.uploads())).length;
  await page.click('#upload button');
  const sel = `#uploads li[data-upload="${before}"]`;
  await waitForSelector(page, `${sel}:is([data-state="done"], [data-state="failed"])`, `upload ${path.basename(file)}`, 30_000);
  const u = (await page.evaluate(() => window.casterpakDashboard.uploads()))[before];
  const bar = await page.evaluate((s) => {
    const p = document.querySelector(`${s} progress`);
    return { value: p.value, max: p.max, text: document.querySelector(s).innerText };
  }, sel);
  return { ...u, bar };
}

describe('the dashboard (/dashboard/ on the API listener) in Chromium', { timeout: 240_000 }, () => {
  let origin, browser, dash, push, work, media, clip;

  before(async () => {
    work = tempDir('dashboard');
    media = tempDir('media');
    clip = await makeClip(work);
    origin = await startOrigin({
      extraArgs: ['--dashboard-dir', DASHBOARD_DIR, '--media-root', media, '--library-preset', 'ultrafast'],
    });
    browser = await launchBrowser();
  });

  after(async () => {
    await push?.stop();
    await browser?.close();
    if (origin) {
      await origin.stop();
      if (process.env.CASTERPAK_BROWSER_LOG) console.log(`--- casterpak log tail ---\n${origin.child.log()}`);
    }
    await killAll();
    for (const d of [work, media]) if (d) fs.rmSync(d, { recursive: true, force: true });
  });

  const originLog = () => `--- casterpak log tail ---\n${origin.child.log().slice(-4000)}`;
  let asset = null;   // {id}

  it('loads with no console message and no HTTP error, and connects to the events stream', async () => {
    dash = await openDashboard(browser, origin);
    const { page } = dash;
    await waitForSelector(page, '#auth-state.ok', 'the page connected', 10_000);
    await waitForSelector(page, '#events-state[data-state="connected"]', 'the events stream', 10_000);
    // The icon is the page's own (no /favicon.ico request, no 404 for it).
    const icon = dash.requests.find((r) => r.url.endsWith('/dashboard/favicon.svg'));
    assert.ok(icon, `the favicon was not requested: ${dash.requests.map((r) => r.url).join(', ')}`);
    assert.ok(!dash.requests.some((r) => r.url.endsWith('/favicon.ico')), 'the page asked for /favicon.ico');
    // Every script from this origin (no CDN).
    const foreign = dash.requests.filter((r) => !r.url.startsWith(origin.api));
    assert.deepEqual(foreign.map((r) => r.url), [], 'requests to other hosts');
    await sleep(1000);
    dash.check('page load');
  });

  it(`uploads an ${CLIP_SECONDS} s clip with tus, the asset reaches ready over SSE, and hls.js plays it with thumbnails on the seek bar`, async () => {
    assert.ok(dash, 'no page (the load case failed)');
    const { page } = dash;
    const listsBefore = dash.requests.filter((r) => r.method === 'GET' && new URL(r.url).pathname === '/api/v1/assets').length;
    const u = await uploadThroughPage(page, clip, TITLE);
    console.log(`upload: ${JSON.stringify(u)}`);
    assert.equal(u.state, 'done', `the upload failed: ${u.error}\n${originLog()}`);
    assert.ok(u.progressEvents >= 1, 'no progress event');
    assert.equal(u.sent, u.size);
    assert.equal(u.size, fs.statSync(clip).size);
    assert.equal(u.bar.value, 100, `progress bar at ${u.bar.value}`);
    assert.match(u.id, /^[0-9a-f]{32}$/, 'no asset id from the upload URL');
    asset = { id: u.id };

    const t0 = Date.now();
    const ready = await waitForAssetReady(page, u.id, READY_TIMEOUT).catch((e) => { throw new Error(`${e.message}\n${originLog()}`); });
    console.log(`ready in the page ${Date.now() - t0} ms after the upload: ${ready.text.replace(/\s+/g, ' ')}`);
    // Driven by the events stream: the list was not read again.
    const listsAfter = dash.requests.filter((r) => r.method === 'GET' && new URL(r.url).pathname === '/api/v1/assets').length;
    assert.equal(listsAfter, listsBefore, 'the page read the asset list again instead of following the events');
    const { log } = await page.evaluate(() => window.casterpakDashboard.events());
    const seen = log.filter((e) => e.id === u.id).map((e) => e.type);
    console.log(`events for the asset: ${seen.reverse().join(', ')}`);
    for (const type of ['asset.created', 'asset.ready']) assert.ok(seen.includes(type), `no ${type} event in the page`);

    // The title is text: the same characters, no element made from it.
    const shown = await page.evaluate((id) => {
      const td = document.querySelector(`#assets tr[data-asset-id="${id}"] td[data-field="title"]`);
      return { title: td.querySelector('.title').textContent, imgs: td.querySelectorAll('img').length, xss: window.__xss ?? null };
    }, u.id);
    assert.deepEqual(shown, { title: TITLE, imgs: 0, xss: null });

    await page.click(`#assets tr[data-asset-id="${u.id}"] button[data-action="play"]`);
    let hover = null;
    const samples = await samplePlayer(page, {
      seconds: CLIP_SECONDS + 15,
      onStarted: async () => {
        // Hover 60 % along the seek bar: the thumbnails cue of that time, its tile loaded.
        await page.waitForFunction(() => {
          const t = window.casterpakDashboard.stats().thumbnails;
          return t && t.cues > 0 && Object.values(t.sprites).every((s) => s !== 'loading');
        }, null, { timeout: 5000 });
        const box = await page.locator('#seekbar').boundingBox();
        await page.mouse.move(box.x + box.width * 0.6, box.y + box.height / 2);
        await page.waitForSelector('#thumb:not([hidden])', { timeout: 2000 });
        hover = await page.evaluate(() => {
          const t = document.getElementById('thumb');
          const img = document.getElementById('thumb-img');
          return {
            time: Number(t.dataset.time), cue: t.dataset.cue || null, src: img.currentSrc,
            loaded: img.complete && img.naturalWidth > 0, label: document.getElementById('thumb-time').textContent,
            thumbnails: window.casterpakDashboard.stats().thumbnails,
          };
        });
        await page.mouse.move(0, 0);
      },
    });
    const v = judge(samples, { fps: CLIP_FPS, duration: CLIP_SECONDS, endSlack: 0.5 });
    logVerdict('asset with hls.js', v, samples);
    console.log(`seek bar hover: ${JSON.stringify(hover)}`);
    assert.ok(v.pass, v.failures.join('\n'));
    assert.equal(samples.at(-1).engine, 'hlsjs');
    assert.ok(hover, 'the seek bar was not hovered (playback never started?)');
    assert.ok(Math.abs(hover.time - 0.6 * samples.at(-1).duration) < 0.3, `hovered time ${hover.time}`);
    assert.ok(hover.cue, 'no thumbnails cue shown under the pointer');
    const [x, , w, h] = hover.cue.split(',').map(Number);
    assert.ok(w > 0 && h > 0, `tile ${hover.cue}`);
    // The ffmpeg sprite has one tile per 2 s: 60 % of 8 s is the 3rd tile.
    assert.equal(x, Math.floor((0.6 * CLIP_SECONDS) / 2) * w, `tile ${hover.cue} for ${hover.time} s`);
    assert.match(hover.src, new RegExp(`/assets/${u.id}/sprite\\.jpg$`));
    assert.ok(hover.loaded, 'the sprite image is not loaded');
    dash.check('asset upload and playback');
  });

  it('plays the asset with Shaka Player (the engine choice)', async () => {
    assert.ok(asset, 'no asset (the upload case failed)');
    const { page } = dash;
    await page.selectOption('#engine', 'shaka');
    try {
      await page.click(`#assets tr[data-asset-id="${asset.id}"] button[data-action="play"]`);
      const samples = await samplePlayer(page, { seconds: CLIP_SECONDS + 15 });
      const v = judge(samples, { fps: CLIP_FPS, duration: CLIP_SECONDS, endSlack: 0.5 });
      logVerdict('asset with Shaka Player', v, samples);
      assert.ok(v.pass, v.failures.join('\n'));
      assert.equal(samples.at(-1).engine, 'shaka');
    } finally {
      await page.selectOption('#engine', 'hlsjs');
    }
    dash.check('asset playback with Shaka Player');
  });

  it('the published DASH and CMAF HLS URLs play in dash.js, Shaka Player and hls.js', async () => {
    assert.ok(asset, 'no asset (the upload case failed)');
    const a = await fetch(`${origin.api}/api/v1/assets/${asset.id}`).then((r) => r.json());
    console.log(`playback: ${JSON.stringify(a.playback)}`);
    for (const [kind, engine] of [['dash', 'dashjs'], ['dash', 'shaka'], ['cmaf', 'hlsjs'], ['cmaf', 'shaka']]) {
      const url = a.playback[kind];
      assert.ok(url, `no playback.${kind}`);
      const v = await playAndJudge(
        browser,
        { pageBase: origin.egress, manifestUrl: url, engine, seconds: CLIP_SECONDS + 8 },
        { fps: CLIP_FPS, duration: CLIP_SECONDS, endSlack: 0.5 },
      );
      console.log(`playback.${kind} with ${engine}: ${summarize(v)}`);
      assert.equal(v.samples.at(-1).engine, engine);
      assert.ok(v.pass, `playback.${kind} with ${engine}:\n${v.failures.join('\n')}`);
    }
  });

  it('renames the asset from the page', async () => {
    assert.ok(asset, 'no asset (the upload case failed)');
    const { page } = dash;
    const row = `#assets tr[data-asset-id="${asset.id}"]`;
    await page.click(`${row} button[data-action="rename"]`);
    await page.fill(`${row} form.rename input`, 'Renamed <b>clip</b>');
    await page.click(`${row} form.rename button:not([type="button"])`);
    await page.waitForFunction((sel) => {
      const t = document.querySelector(`${sel} td[data-field="title"] .title`);
      return t && t.textContent === 'Renamed <b>clip</b>';
    }, row, { timeout: 10_000 });
    const api = await (await fetch(`${origin.api}/api/v1/assets/${asset.id}`)).json();
    assert.equal(api.title, 'Renamed <b>clip</b>');
    dash.check('rename');
  });

  it('must fail: an unreadable file ends errored (code and message shown, no retry) and never reaches ready', async () => {
    const { page } = dash;
    const junk = path.join(work, 'junk.mp4');
    fs.writeFileSync(junk, crypto.randomBytes(200_000));
    const u = await uploadThroughPage(page, junk, null);
    assert.equal(u.state, 'done', `the upload failed: ${u.error}`);
    await assert.rejects(waitForAssetReady(page, u.id, 30_000), /errored in the page/);
    const shown = await page.evaluate((id) => {
      const tr = document.querySelector(`#assets tr[data-asset-id="${id}"]`);
      const err = tr.querySelector('[data-field="error"]');
      const retry = tr.querySelector('button[data-action="retry"]');
      return { error: err && err.textContent, retry: retry ? retry.disabled : null, play: tr.querySelector('button[data-action="play"]').disabled };
    }, u.id);
    console.log(`errored asset: ${JSON.stringify(shown)}`);
    assert.match(shown.error || '', /^unreadable_input: \S/);
    assert.equal(shown.retry, true, 'retry offered for an asset without a usable source');
    assert.equal(shown.play, true, 'play offered for an errored asset');
    await page.click(`#assets tr[data-asset-id="${u.id}"] button[data-action="delete"]`);
    await page.waitForSelector(`#assets tr[data-asset-id="${u.id}"]`, { state: 'detached', timeout: 10_000 });
    dash.check('errored asset');
  });

  it(`previews a live stream, records ${RECORD_SECONDS} s of it from the page and plays the recording`, async () => {
    assert.ok(dash, 'no page (the load case failed)');
    const { page } = dash;
    push = startLiveDashPush({ ingest: origin.ingest, egress: origin.egress, name: STREAM, fps: LIVE_FPS });
    await waitForLiveMpd(`${origin.egress}/${STREAM}/stream.mpd`).catch((e) => {
      throw new Error(`${e.message}\n--- ffmpeg log tail ---\n${push.log()}`);
    });
    const streamRow = `#streams tr[data-stream="${STREAM}"]`;
    await waitForSelector(page, `${streamRow}[data-state="live"] button[data-action="preview"]:not([disabled])`, 'the live stream in the page', 20_000,
      async () => `streams table: ${await page.locator('#streams').innerText()}\n${originLog()}`);

    await page.click(`${streamRow} button[data-action="preview"]`);
    const live = await samplePlayer(page, { seconds: 12 });
    const lv = judge(live, { fps: LIVE_FPS, live: true, maxLatency: 4.0, warmupSeconds: 4 });
    logVerdict('live preview (LL-HLS, hls.js)', lv, live);
    assert.ok(lv.pass, lv.failures.join('\n'));
    assert.match(live.at(-1).url, new RegExp(`^${origin.egress}/${STREAM}/llhls\\.m3u8$`));

    await page.click(`${streamRow} button[data-action="record"]`);
    const recRow = await waitForSelector(page, '#recordings tr[data-recording-id]', 'the new recording in the page', 10_000);
    const id = await recRow.getAttribute('data-recording-id');
    const row = `#recordings tr[data-recording-id="${id}"]`;
    await sleep(RECORD_SECONDS * 1000);
    await page.click(`${row} button[data-action="stop"]`);
    await waitForSelector(page, `${row}[data-state="done"]`, `recording ${id} done in the page`, 40_000,
      async () => `recordings table: ${await page.locator('#recordings').innerText()}\n${originLog()}`);
    const rec = await (await fetch(`${origin.api}/api/v1/recordings/${id}`)).json();
    console.log(`recording: ${JSON.stringify(rec)}`);

    await page.click(`${row} button[data-action="play"]`);
    const samples = await samplePlayer(page, { seconds: RECORD_SECONDS + 20 });
    const last = samples.at(-1);
    const v = judge(samples, { fps: LIVE_FPS, duration: last.duration ?? RECORD_SECONDS, endSlack: 0.5 });
    logVerdict('recording with hls.js', v, samples);
    assert.ok(v.pass, v.failures.join('\n'));
    assert.equal(last.url, rec.urls.hls);
    assert.ok(last.duration !== null && Math.abs(last.duration - RECORD_SECONDS) <= 4,
      `recording duration ${last.duration} s, expected about ${RECORD_SECONDS} s`);
    await push.stop();

    await page.click(`${row} button[data-action="delete"]`);
    await page.waitForSelector(row, { state: 'detached', timeout: 10_000 });
    const gone = await fetch(`${origin.api}/api/v1/recordings/${id}`);
    assert.equal(gone.status, 404, 'the recording is still there after the page deleted it');
    dash.check('live preview and recording');
  });

  it('deletes the asset from the page', async () => {
    assert.ok(asset, 'no asset (the upload case failed)');
    const { page } = dash;
    await page.click(`#assets tr[data-asset-id="${asset.id}"] button[data-action="delete"]`);
    await page.waitForSelector(`#assets tr[data-asset-id="${asset.id}"]`, { state: 'detached', timeout: 15_000 });
    const gone = await fetch(`${origin.api}/api/v1/assets/${asset.id}`);
    assert.equal(gone.status, 404);
    assert.ok(!fs.existsSync(path.join(media, 'assets', asset.id)), 'the published folder is still there');
    dash.check('asset delete');
    await dash.page.close();
  });
});

describe('the dashboard with [[auth.api]] tokens', { timeout: 120_000 }, () => {
  let origin, browser, work, media, clip;
  const admin = crypto.randomBytes(16).toString('hex');
  const reader = crypto.randomBytes(16).toString('hex');

  before(async () => {
    work = tempDir('dashboard-auth');
    media = tempDir('media');
    clip = await makeClip(work);
    const config = path.join(work, 'casterpak.toml');
    fs.writeFileSync(config, `[[auth.api]]\ntoken = "${admin}"\nrole = "admin"\n\n[[auth.api]]\ntoken = "${reader}"\nrole = "read"\n`);
    origin = await startOrigin({
      extraArgs: ['--config', config, '--dashboard-dir', DASHBOARD_DIR, '--media-root', media, '--library-preset', 'ultrafast'],
    });
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    if (origin) {
      await origin.stop();
      if (process.env.CASTERPAK_BROWSER_LOG) console.log(`--- casterpak log tail ---\n${origin.child.log()}`);
    }
    await killAll();
    for (const d of [work, media]) if (d) fs.rmSync(d, { recursive: true, force: true });
  });

  it('no token: 401 message; read token: lists, upload refused with the 403 message; admin token: upload reaches ready over SSE', async () => {
    // The API itself: the page is public, the rest is not.
    assert.equal((await fetch(`${origin.api}/api/v1/streams`)).status, 401);
    assert.equal((await fetch(`${origin.api}/dashboard/`)).status, 200);

    const dash = await openDashboard(browser, origin);
    const { page } = dash;
    await waitForSelector(page, '#notice[data-kind="auth"][data-status="401"]:not([hidden])', 'the 401 message', 10_000);
    const text = await page.locator('#notice-text').innerText();
    console.log(`no token: ${text}`);
    assert.match(text, /401/);
    assert.match(text, /needs a token/);
    assert.equal(await page.locator('#auth-state').innerText(), 'token needed');
    assert.equal(await page.locator('#events-state').getAttribute('data-state'), 'off');
    await sleep(500);
    // One 401 (the first call), not one per list.
    dash.check('no token', [/^HTTP 401 GET .*\/api\/v1\/streams$/, /^console error: Failed to load resource: .*401/]);
    assert.equal(dash.requests.filter((r) => r.url.startsWith(`${origin.api}/api/`)).length, 1, 'more than one API call without a token');

    // A read token: lists, but changes are refused (403, shown).
    await page.fill('#login input[name="token"]', reader);
    await page.click('#login button:not([type="button"])');
    await waitForSelector(page, '#auth-state.ok', 'signed in with the read token', 10_000);
    await waitForSelector(page, '#events-state[data-state="connected"]', 'the events stream with the read token', 10_000);
    assert.equal(await page.locator('#notice').isHidden(), true, 'the 401 message stayed');
    const refused = await uploadThroughPage(page, clip, 'refused');
    assert.equal(refused.state, 'failed');
    assert.match(refused.error, /^403: /);
    await waitForSelector(page, '#notice[data-kind="auth"][data-status="403"]:not([hidden])', 'the 403 message', 5000);
    console.log(`read token upload: ${await page.locator('#notice-text').innerText()}`);
    dash.check('read token', [/^HTTP 403 POST .*\/api\/v1\/uploads$/, /^console error: Failed to load resource: .*403/]);

    // The admin token.
    const firstAdminCall = dash.requests.length;
    await page.fill('#login input[name="token"]', admin);
    await page.click('#login button:not([type="button"])');
    await waitForSelector(page, '#auth-state.ok', 'signed in with the admin token', 10_000);
    await waitForSelector(page, '#events-state[data-state="connected"]', 'the events stream with the admin token', 10_000);
    const u = await uploadThroughPage(page, clip, 'with a token');
    assert.equal(u.state, 'done', `the upload failed: ${u.error}`);
    await waitForAssetReady(page, u.id, READY_TIMEOUT).catch((e) => { throw new Error(`${e.message}\n${origin.child.log().slice(-3000)}`); });
    // Every API call since carried the admin token, the events stream included.
    const calls = dash.requests.slice(firstAdminCall);
    const sent = await Promise.all(calls.filter((r) => new URL(r.url).pathname.startsWith('/api/'))
      .map(async (r) => ({ url: r.url, auth: (await r.request.allHeaders()).authorization || null })));
    assert.ok(sent.some((s) => s.url.endsWith('/api/v1/events')), 'no events request');
    assert.deepEqual(sent.filter((s) => s.auth !== `Bearer ${admin}`), [], 'API requests without the admin token');

    // The token stays for this tab.
    await page.reload();
    await waitForSelector(page, '#auth-state.ok', 'still signed in after a reload', 10_000);
    await waitForSelector(page, `#assets tr[data-asset-id="${u.id}"][data-status="ready"]`, 'the asset after a reload', 10_000);
    dash.check('admin token');
    await page.close();
  });
});
