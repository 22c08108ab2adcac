// casterpak dashboard: live streams, recordings and the media library, through the
// public management API only (the API listener serves this page at /dashboard/).
//
// - Every API call carries the token typed in the header form (kept in this tab's
//   sessionStorage) as `Authorization: Bearer <token>`; with none the calls go without
//   (an API with no [[auth.api]] tokens is open on loopback). 401 and 403 are shown.
// - Live streams (GET /api/v1/streams, polled) with a preview of their LL-HLS playlist;
//   recordings (POST /api/v1/recordings, .../stop, DELETE, GET, polled) and their replay.
// - The library: tus uploads (tus-js-client, /api/v1/uploads), the asset list
//   (GET /api/v1/assets, paged by next_cursor) kept current by the server-sent events of
//   GET /api/v1/events, read with fetch() so that the Bearer header goes with it
//   (EventSource cannot send headers); rename, delete, retry, play with the WebVTT
//   thumbnails shown over the seek bar.
// - Text from the API (titles are user input) goes into the DOM as text only.
//
// window.casterpakDashboard.stats() has the field names of the player page's
// window.casterpak.stats(), so tests/browser's judge() reads both.
import Hls from '/dashboard/node_modules/hls.js/dist/hls.min.mjs';

const TOKEN_KEY = 'casterpak.dashboard.token';
const POLL_MS = 5000;
const EVENTS_KEPT = 100;
const PAGE = 50;

const $ = (sel) => document.querySelector(sel);

// ---- small DOM helpers (text only: never HTML from data) ------------------

/** An element with properties/attributes and children (strings become text nodes). */
function el(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k === 'dataset') Object.assign(e.dataset, v);
    else if (k === 'text') e.textContent = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (k in e && typeof v !== 'string') e[k] = v;
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    e.append(c instanceof Node ? c : String(c));
  }
  return e;
}

/** A list the API would not give (e.g. 503 with the media library off): said in its table. */
function renderUnavailable(table, cols, err) {
  $(`${table} tbody`).replaceChildren(el('tr', { class: 'empty unavailable' },
    el('td', { colspan: cols }, `(unavailable: ${err.status ? `${err.status} ` : ''}${err.message})`)));
}

function button(label, action, props = {}) {
  return el('button', { type: 'button', dataset: { action }, ...props }, label);
}

function badge(text) {
  return el('span', { class: `badge ${text}` }, text);
}

function fmtClock(secs) {
  if (secs === null || secs === undefined || !Number.isFinite(secs)) return '-';
  const s = Math.max(0, Math.floor(secs));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  const mm = h ? String(m).padStart(2, '0') : String(m);
  return `${h ? `${h}:` : ''}${mm}:${String(r).padStart(2, '0')}`;
}

function fmtSpan(secs) {
  if (secs === null || secs === undefined || !Number.isFinite(secs)) return '-';
  if (secs < 60) return `${Math.round(secs)} s`;
  const m = Math.floor(secs / 60), s = Math.round(secs % 60);
  if (m < 60) return `${m} min ${s} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

function fmtDate(iso) {
  if (!iso) return '-';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? String(iso) : d.toLocaleString();
}

function fmtBytes(n) {
  if (!Number.isFinite(n)) return '-';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}

function fmtBitrate(bps) {
  if (!Number.isFinite(bps) || bps <= 0) return '';
  return bps >= 1e6 ? `${(bps / 1e6).toFixed(1)} Mbit/s` : `${Math.round(bps / 1000)} kbit/s`;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---- notices ----------------------------------------------------------

const notice = $('#notice');

/** Shows one message over the page: kind 'auth' (401/403), 'error' or 'info'. */
function showNotice(kind, text, status = null) {
  notice.dataset.kind = kind;
  if (status) notice.dataset.status = String(status); else delete notice.dataset.status;
  $('#notice-text').textContent = text;
  notice.hidden = false;
}

function clearNotice(kind = null) {
  if (kind && notice.dataset.kind !== kind) return;
  notice.hidden = true;
  $('#notice-text').textContent = '';
  delete notice.dataset.kind;
  delete notice.dataset.status;
}

$('#notice-close').addEventListener('click', () => clearNotice());

// ---- the API ----------------------------------------------------------

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

const session = {
  token: sessionStorage.getItem(TOKEN_KEY) || '',
  gen: 0,             // bumped by every (re)start: stale loops and answers stop
  blocked: false,     // a 401: nothing is polled until another token is given
};

function authHeaders() {
  return session.token ? { Authorization: `Bearer ${session.token}` } : {};
}

function setAuthState(cls, text) {
  const s = $('#auth-state');
  s.className = cls;
  s.textContent = text;
}

function describeToken() {
  return session.token ? 'with the token you gave' : 'with no token';
}

/** A 401 anywhere: the token is missing or unknown; stop calling until a new one. */
function unauthorized(err) {
  if (session.blocked) return;
  session.blocked = true;
  stopEvents();
  const why = session.token
    ? 'the API refused this token (401 Unauthorized). Check it and enter it again.'
    : 'this API needs a token (401 Unauthorized). Enter an API token above (role read or admin).';
  showNotice('auth', `Not signed in: ${why}\nServer: ${err.message}`, 401);
  setAuthState('bad', session.token ? 'token refused' : 'token needed');
  // Nothing of what an earlier token showed stays on the page.
  streams.list = [];
  recordings.list = [];
  assets.byId.clear();
  assets.next = null;
  renderStreams();
  renderRecordings();
  renderAssets();
}

/** A 403: the token may read but not change (role read). */
function forbidden(err, what) {
  showNotice('auth', `403 Forbidden: ${what} needs an admin token; this token may only read.\nServer: ${err.message}`, 403);
}

/**
 * One API call. `body` is sent as JSON. Resolves to the parsed JSON answer (null for
 * 204); throws an ApiError (status 0 when the API did not answer).
 */
async function api(method, path, { body, what = `${method} ${path}` } = {}) {
  const headers = { Accept: 'application/json', ...authHeaders() };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let res;
  try {
    res = await fetch(path, {
      method, headers, cache: 'no-store',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    throw new ApiError(0, 'network', `the API did not answer (${e.message})`);
  }
  const text = res.status === 204 ? '' : await res.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch (_) { /* not JSON: kept as text */ }
  if (!res.ok) {
    const e = json && json.error;
    const err = new ApiError(res.status, e && e.code || `http_${res.status}`, e && e.message || text || res.statusText);
    if (res.status === 401) unauthorized(err);
    else if (res.status === 403) forbidden(err, what);
    throw err;
  }
  return json;
}

/** Runs an action from a button: disables it meanwhile, shows a failure. */
async function act(btn, what, fn) {
  if (btn) btn.disabled = true;
  try {
    return await fn();
  } catch (err) {
    if (!(err instanceof ApiError) || (err.status !== 401 && err.status !== 403)) {
      const code = err instanceof ApiError ? `${err.status || ''} ${err.code}`.trim() : 'error';
      showNotice('error', `${what} failed: ${code}: ${err.message}`, err.status || null);
    }
    return undefined;
  } finally {
    if (btn) btn.disabled = false;
  }
}

// ---- player -----------------------------------------------------------

const video = $('#video');
const player = {
  gen: 0,
  engine: null,      // 'hlsjs' | 'shaka'
  url: null,
  title: null,
  kind: null,        // 'live' | 'recording' | 'asset'
  ref: null,         // stream name, recording id or asset id
  live: false,
  hls: null,
  shaka: null,
  errors: [],        // every error event, fatal or not
  fatal: false,
  seeks: [],
  thumbs: null,      // {url, cues: [{start, end, src, x, y, w, h}], sprites: Map src -> state}
};

function recordError(source, type, details, fatal) {
  const bufferedStart = video.buffered.length ? video.buffered.start(0) : null;
  player.errors.push({
    time: Date.now() / 1000, source, type, details: String(details), fatal: !!fatal,
    currentTime: video.currentTime, bufferedStart,
  });
  if (fatal) player.fatal = true;
  const box = $('#player-errors');
  box.hidden = false;
  box.textContent = player.errors.slice(-20).map((e) =>
    `${new Date(e.time * 1000).toISOString().slice(11, 23)} ${e.fatal ? 'FATAL ' : ''}${e.source} ${e.type}: ${e.details}`).join('\n');
}

video.addEventListener('error', () => {
  if (!player.url) return;   // emptied by stop()
  const e = video.error;
  recordError('video', 'media', e ? `code ${e.code}: ${e.message}` : 'unknown', true);
});

let shakaLoading = null;
function loadShaka() {
  if (window.shaka) return Promise.resolve(window.shaka);
  if (!shakaLoading) {
    shakaLoading = new Promise((resolve, reject) => {
      const s = document.createElement('script');
      s.src = '/dashboard/node_modules/shaka-player/dist/shaka-player.compiled.js';
      s.onload = () => resolve(window.shaka);
      s.onerror = () => { shakaLoading = null; reject(new Error('Shaka Player could not be loaded')); };
      document.head.append(s);
    });
  }
  return shakaLoading;
}

async function stopPlayer() {
  player.gen++;
  const { hls, shaka } = player;
  player.hls = null;
  player.shaka = null;
  player.url = null;
  if (hls) hls.destroy();
  if (shaka) await shaka.destroy().catch(() => {});
  video.removeAttribute('src');
  video.load();
  $('#now-playing').textContent = '(nothing playing)';
  $('#player-section').classList.add('idle');
  for (const tr of document.querySelectorAll('tr.playing')) tr.classList.remove('playing');
  renderSeekbar();
  renderPlayerStats();
}

/**
 * Plays `url` (HLS) in the page's player. `thumbnails`: the asset's WebVTT thumbnails
 * URL, shown over the seek bar.
 */
async function play({ url, title, kind, ref, live = false, thumbnails = null }) {
  await stopPlayer();
  const gen = player.gen;
  Object.assign(player, {
    engine: $('#engine').value, url, title, kind, ref, live,
    errors: [], fatal: false, seeks: [], thumbs: null,
  });
  $('#player-errors').hidden = true;
  $('#player-errors').textContent = '';
  $('#now-playing').textContent = `${kind === 'live' ? 'live preview' : kind}: ${title}`;
  $('#player-section').classList.remove('idle');
  markPlaying();
  video.muted = true;   // muted autoplay needs no user gesture
  if (thumbnails) loadThumbnails(thumbnails, gen);
  try {
    if (player.engine === 'shaka') await startShaka(url, live, gen);
    else startHls(url, live);
  } catch (e) {
    if (gen === player.gen) recordError(player.engine, 'exception', e && e.message || e, true);
  }
  video.play().catch(() => { /* the engine starts playback once data is there */ });
  $('#player-section').scrollIntoView({ block: 'nearest' });
}

function startHls(url, live) {
  if (!Hls.isSupported()) {
    recordError('hlsjs', 'unsupported', 'MediaSource is not available', true);
    return;
  }
  const hls = new Hls(live ? { lowLatencyMode: true, maxLiveSyncPlaybackRate: 1.5 } : { lowLatencyMode: false });
  hls.on(Hls.Events.ERROR, (_event, data) => {
    const code = data.response && data.response.code ? ` ${data.response.code}` : '';
    const where = (data.frag && data.frag.url) || (data.context && data.context.url) || '';
    const reason = data.reason ? ` (${data.reason})` : '';
    recordError('hlsjs', data.type, `${data.details}${code} ${where}${reason}`.trim(), data.fatal);
  });
  hls.loadSource(url);
  hls.attachMedia(video);
  player.hls = hls;
}

async function startShaka(url, live, gen) {
  const shaka = await loadShaka();
  if (gen !== player.gen) return;
  shaka.polyfill.installAll();
  if (!shaka.Player.isBrowserSupported()) {
    recordError('shaka', 'unsupported', 'shaka.Player.isBrowserSupported() is false', true);
    return;
  }
  const p = new shaka.Player();
  // As on the player page: caption probing trips over live LL-HLS (Shaka 5.2.12).
  p.configure({ manifest: { hls: { disableClosedCaptionsDetection: true } } });
  if (live) p.configure({ streaming: { lowLatencyMode: true } });
  const describe = (err) => (err && typeof err.code === 'number'
    ? `${err.code} ${(err.data || []).map((d) => (d && d.message) || String(d)).join(' ')}`.trim()
    : String(err && err.message || err));
  const critical = (err) => err && err.severity === shaka.util.Error.Severity.CRITICAL;
  p.addEventListener('error', (event) => recordError('shaka', 'error', describe(event.detail), critical(event.detail)));
  p.addEventListener('downloadfailed', (event) => {
    const err = event.error;
    if (!event.aborted && err && err.code === shaka.util.Error.Code.OPERATION_ABORTED) return;
    const uri = event.request && event.request.uris ? event.request.uris[0] : '';
    const code = event.httpResponseCode ? `${event.httpResponseCode} ` : '';
    recordError('shaka', 'http', `${code}${uri} ${event.aborted ? 'timed out' : describe(err)}`.trim(), false);
  });
  player.shaka = p;
  await p.attach(video);
  if (gen !== player.gen) return;
  try {
    await p.load(url);
  } catch (err) {
    if (gen === player.gen) recordError('shaka', 'load', describe(err), true);
  }
}

function markPlaying() {
  for (const tr of document.querySelectorAll('tr.playing')) tr.classList.remove('playing');
  if (!player.url) return;
  const sel = player.kind === 'asset' ? `#assets tr[data-asset-id="${CSS.escape(player.ref)}"]`
    : player.kind === 'recording' ? `#recordings tr[data-recording-id="${CSS.escape(player.ref)}"]`
      : `#streams tr[data-stream="${CSS.escape(player.ref)}"]`;
  const tr = document.querySelector(sel);
  if (tr) tr.classList.add('playing');
}

$('#player-close').addEventListener('click', () => stopPlayer());

// ---- player numbers (the contract with tests/browser, as on the player page) ----

function bufferedRanges() {
  const out = [];
  for (let i = 0; i < video.buffered.length; i++) out.push([video.buffered.start(i), video.buffered.end(i)]);
  return out;
}

function bufferAhead() {
  const t = video.currentTime;
  for (const [s, e] of bufferedRanges()) if (s <= t + 0.1 && t <= e) return e - t;
  return 0;
}

function wallClockLatency() {
  if (!player.live) return null;
  const now = Date.now() / 1000;
  if (player.hls && player.hls.playingDate) return now - player.hls.playingDate.getTime() / 1000;
  if (player.shaka && player.shaka.isLive()) {
    const d = player.shaka.getPlayheadTimeAsDate();
    if (d) return now - d.getTime() / 1000;
  }
  return null;
}

function playerLatency() {
  if (!player.live) return null;
  if (player.hls && Number.isFinite(player.hls.latency)) return player.hls.latency;
  if (player.shaka && player.shaka.isLive()) {
    const l = player.shaka.getStats().liveLatency;
    return Number.isFinite(l) ? l : null;
  }
  return null;
}

function stats() {
  const q = video.getVideoPlaybackQuality ? video.getVideoPlaybackQuality() : {};
  const t = player.thumbs;
  return {
    engine: player.url ? player.engine : null,
    url: player.url,
    kind: player.kind,
    ref: player.ref,
    title: player.title,
    wallClock: Date.now() / 1000,
    currentTime: video.currentTime,
    duration: Number.isFinite(video.duration) ? video.duration : null,
    buffered: bufferedRanges(),
    bufferLength: bufferAhead(),
    totalVideoFrames: q.totalVideoFrames ?? null,
    droppedVideoFrames: q.droppedVideoFrames ?? null,
    errors: player.errors.slice(),
    fatal: player.fatal,
    latencyWallClock: wallClockLatency(),
    latencyPlayer: playerLatency(),
    playbackRate: video.playbackRate,
    readyState: video.readyState,
    paused: video.paused,
    ended: video.ended,
    seeks: player.seeks.slice(),
    thumbnails: t ? { url: t.url, cues: t.cues.length, sprites: Object.fromEntries(t.sprites) } : null,
  };
}

function renderPlayerStats() {
  const out = $('#player-stats');
  if (!player.url) { out.textContent = ''; return; }
  const s = stats();
  const parts = [
    `${fmtClock(s.currentTime)} / ${s.duration === null ? (player.live ? 'live' : '-') : fmtClock(s.duration)}`,
    `buffer ${s.bufferLength.toFixed(1)} s`,
    `frames ${s.totalVideoFrames ?? '-'} (${s.droppedVideoFrames ?? '-'} dropped)`,
  ];
  if (player.hls && player.hls.currentLevel >= 0 && player.hls.levels[player.hls.currentLevel]) {
    const l = player.hls.levels[player.hls.currentLevel];
    if (l.height) parts.push(`${l.width}x${l.height}`);
  }
  if (s.latencyWallClock !== null) parts.push(`latency ${s.latencyWallClock.toFixed(2)} s`);
  out.textContent = parts.join(' · ');
}

/** A seek asked from the seek bar (or a test), recorded so it is not judged as played media. */
function seek(to) {
  player.seeks.push({ wallClock: Date.now() / 1000, from: video.currentTime, to });
  video.currentTime = to;
}

// ---- seek bar and WebVTT thumbnails ------------------------------------

const seekbar = $('#seekbar');
const thumb = $('#thumb');
const thumbImg = $('#thumb-img');

/** The seekable span: [0, duration] for VOD, the seekable range for live. */
function seekRange() {
  if (!player.url) return null;
  if (Number.isFinite(video.duration) && video.duration > 0) return [0, video.duration];
  if (video.seekable.length) {
    const a = video.seekable.start(0), b = video.seekable.end(video.seekable.length - 1);
    if (b > a) return [a, b];
  }
  return null;
}

function renderSeekbar() {
  const range = seekRange();
  seekbar.classList.toggle('disabled', !range);
  const played = seekbar.querySelector('.sb-played');
  const buffered = seekbar.querySelector('.sb-buffered');
  if (!range) {
    played.style.width = '0';
    buffered.style.left = '0';
    buffered.style.width = '0';
    seekbar.setAttribute('aria-valuemax', '0');
    seekbar.setAttribute('aria-valuenow', '0');
    seekbar.removeAttribute('aria-valuetext');
    return;
  }
  const [a, b] = range;
  const pct = (t) => `${Math.max(0, Math.min(100, ((t - a) / (b - a)) * 100))}%`;
  played.style.width = pct(video.currentTime);
  const r = bufferedRanges().find(([s, e]) => s <= video.currentTime + 0.5 && video.currentTime <= e);
  buffered.style.left = r ? pct(r[0]) : '0';
  buffered.style.width = r ? `calc(${pct(r[1])} - ${pct(r[0])})` : '0';
  seekbar.setAttribute('aria-valuemin', String(Math.floor(a)));
  seekbar.setAttribute('aria-valuemax', String(Math.floor(b)));
  seekbar.setAttribute('aria-valuenow', String(Math.floor(video.currentTime)));
  seekbar.setAttribute('aria-valuetext', `${fmtClock(video.currentTime)} of ${fmtClock(b)}`);
}

for (const ev of ['timeupdate', 'durationchange', 'progress', 'seeked', 'emptied', 'loadedmetadata']) {
  video.addEventListener(ev, renderSeekbar);
}

/** WebVTT timestamp ([hh:]mm:ss.ttt) in seconds, or null. */
function vttTime(s) {
  const m = /^(?:(\d+):)?(\d{1,2}):(\d{2})(?:[.,](\d{1,3}))?$/.exec(s.trim());
  if (!m) return null;
  return (Number(m[1] || 0) * 3600) + Number(m[2]) * 60 + Number(m[3]) + Number((m[4] || '0').padEnd(3, '0')) / 1000;
}

/** Cues of a thumbnails track: `<image>#xywh=x,y,w,h`, the image relative to the track's URL. */
function parseThumbnailsVtt(text, base) {
  const cues = [];
  for (const block of text.replace(/\r\n?/g, '\n').split(/\n{2,}/)) {
    const lines = block.split('\n').filter((l) => l.trim() !== '');
    const i = lines.findIndex((l) => l.includes('-->'));
    if (i < 0 || !lines[i + 1]) continue;
    const [from, rest] = lines[i].split('-->');
    const start = vttTime(from), end = vttTime(rest.trim().split(/\s+/)[0]);
    if (start === null || end === null) continue;
    const payload = lines[i + 1].trim();
    const hash = payload.indexOf('#');
    let src;
    try { src = new URL(hash < 0 ? payload : payload.slice(0, hash), base).href; } catch (_) { continue; }
    const xywh = hash < 0 ? null : /xywh=(?:pixel:)?(\d+),(\d+),(\d+),(\d+)/.exec(payload.slice(hash));
    const [x, y, w, h] = xywh ? xywh.slice(1).map(Number) : [0, 0, null, null];
    cues.push({ start, end, src, x, y, w, h });
  }
  return cues;
}

async function loadThumbnails(url, gen) {
  let cues;
  try {
    const res = await fetch(url, { cache: 'no-cache' });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    cues = parseThumbnailsVtt(await res.text(), url);
  } catch (e) {
    if (gen === player.gen) recordError('thumbnails', 'load', `${url}: ${e.message}`, false);
    return;
  }
  if (gen !== player.gen) return;
  const sprites = new Map();
  player.thumbs = { url, cues, sprites };
  // Fetch every sprite once up front so the first hover shows a tile at once.
  for (const src of new Set(cues.map((c) => c.src))) {
    sprites.set(src, 'loading');
    const img = new Image();
    img.onload = () => sprites.set(src, 'loaded');
    img.onerror = () => {
      sprites.set(src, 'failed');
      if (gen === player.gen) recordError('thumbnails', 'sprite', `${src} could not be loaded`, false);
    };
    img.src = src;
  }
}

function cueAt(t) {
  const cues = player.thumbs ? player.thumbs.cues : [];
  return cues.find((c) => c.start <= t && t < c.end) || (cues.length && t >= cues[cues.length - 1].start ? cues[cues.length - 1] : null);
}

function timeAtPointer(ev) {
  const range = seekRange();
  if (!range) return null;
  const box = seekbar.getBoundingClientRect();
  const f = Math.max(0, Math.min(1, (ev.clientX - box.left) / box.width));
  return { t: range[0] + f * (range[1] - range[0]), x: f * box.width };
}

function showThumb(ev) {
  const at = timeAtPointer(ev);
  if (!at) { thumb.hidden = true; return; }
  const cue = cueAt(at.t);
  thumb.classList.toggle('no-tile', !cue || !cue.w);
  if (cue && cue.w) {
    if (thumbImg.getAttribute('src') !== cue.src) thumbImg.src = cue.src;
    thumbImg.width = cue.w;
    thumbImg.height = cue.h;
    thumbImg.style.width = `${cue.w}px`;
    thumbImg.style.height = `${cue.h}px`;
    thumbImg.style.objectPosition = `${-cue.x}px ${-cue.y}px`;
    thumb.dataset.cue = `${cue.x},${cue.y},${cue.w},${cue.h}`;
  } else {
    delete thumb.dataset.cue;
  }
  $('#thumb-time').textContent = fmtClock(at.t);
  thumb.dataset.time = at.t.toFixed(3);
  // Kept inside the bar: the tile is centred on the pointer but never cut at an edge.
  const half = ((cue && cue.w) || 40) / 2 + 1;
  const box = seekbar.getBoundingClientRect();
  thumb.style.left = `${Math.max(half, Math.min(box.width - half, at.x))}px`;
  thumb.hidden = false;
}

let dragging = false;
seekbar.addEventListener('pointermove', (ev) => {
  showThumb(ev);
  if (dragging) { const at = timeAtPointer(ev); if (at) seek(at.t); }
});
seekbar.addEventListener('pointerleave', () => { if (!dragging) thumb.hidden = true; });
seekbar.addEventListener('pointerdown', (ev) => {
  const at = timeAtPointer(ev);
  if (!at) return;
  dragging = true;
  seekbar.setPointerCapture(ev.pointerId);
  seek(at.t);
});
seekbar.addEventListener('pointerup', (ev) => {
  dragging = false;
  if (seekbar.hasPointerCapture(ev.pointerId)) seekbar.releasePointerCapture(ev.pointerId);
});
seekbar.addEventListener('keydown', (ev) => {
  const range = seekRange();
  if (!range) return;
  const step = { ArrowLeft: -5, ArrowRight: 5, PageDown: -30, PageUp: 30 }[ev.key];
  if (step === undefined && ev.key !== 'Home' && ev.key !== 'End') return;
  ev.preventDefault();
  const to = ev.key === 'Home' ? range[0] : ev.key === 'End' ? range[1] - 0.5 : video.currentTime + step;
  seek(Math.max(range[0], Math.min(range[1], to)));
});

// ---- live streams -----------------------------------------------------

const streams = { list: [], loading: false };

function renditionsText(reps) {
  const parts = reps.map((r) => {
    if (r.kind === 'video') return `${r.width && r.height ? `${r.width}x${r.height}` : 'video'}${r.bandwidth ? ` ${fmtBitrate(r.bandwidth)}` : ''}`;
    return r.kind;
  });
  return parts.length ? parts.join(', ') : '-';
}

function renderStreams() {
  const body = $('#streams tbody');
  if (streams.list.length === 0) {
    body.replaceChildren(el('tr', { class: 'empty' }, el('td', { colspan: 5 }, '(none)')));
    return;
  }
  body.replaceChildren(...streams.list.map((s) => {
    const live = s.state === 'live';
    const archive = s.oldest ? `${fmtDate(s.oldest)} – ${fmtDate(s.newest)}` : '(empty)';
    const preview = s.urls && s.urls.llhls;
    return el('tr', { dataset: { stream: s.name, state: s.state } },
      el('td', {}, s.name, el('span', { class: 'sub' }, `${s.sessions} session${s.sessions === 1 ? '' : 's'}`)),
      el('td', {}, badge(s.state), s.disabled ? ' ' : null, s.disabled ? badge('disabled') : null),
      el('td', {}, renditionsText(s.representations || [])),
      el('td', {}, archive),
      el('td', { class: 'actions' },
        button('Preview', 'preview', {
          disabled: !(live && preview), title: preview ? 'play the LL-HLS playlist' : 'no LL-HLS playlist',
          onclick: () => play({ url: preview, title: s.name, kind: 'live', ref: s.name, live: true }),
        }),
        button('Record', 'record', {
          disabled: !live || s.disabled, title: 'start a recording from now',
          onclick: (ev) => startRecording(ev.currentTarget, s.name),
        })));
  }));
  markPlaying();
}

async function refreshStreams() {
  if (streams.loading) return;
  streams.loading = true;
  const gen = session.gen;
  try {
    const r = await api('GET', '/api/v1/streams');
    if (gen !== session.gen) return;
    streams.list = r.streams || [];
    renderStreams();
  } catch (err) {
    if (gen === session.gen && err.status !== 401) renderUnavailable('#streams', 5, err);
    throw err;
  } finally {
    streams.loading = false;
  }
}

// ---- recordings -------------------------------------------------------

const recordings = { list: [], loading: false };

function renderRecordings() {
  const body = $('#recordings tbody');
  if (recordings.list.length === 0) {
    body.replaceChildren(el('tr', { class: 'empty' }, el('td', { colspan: 7 }, '(none)')));
    return;
  }
  const list = recordings.list.slice().sort((a, b) => (a.created_at < b.created_at ? 1 : -1));
  body.replaceChildren(...list.map((r) => {
    const open = r.state === 'pending' || r.state === 'recording';
    const playable = r.state === 'recording' || r.state === 'done';
    return el('tr', { dataset: { recordingId: r.id, state: r.state } },
      el('td', {}, r.title || r.id, r.title ? el('span', { class: 'sub' }, r.id) : null,
        r.description ? el('span', { class: 'sub' }, r.description) : null),
      el('td', {}, r.stream),
      el('td', {}, badge(r.state)),
      el('td', {}, fmtDate(r.start)),
      el('td', {}, r.end ? fmtDate(r.end) : (open ? '(open)' : '-')),
      el('td', {}, fmtClock(r.duration_secs)),
      el('td', { class: 'actions' },
        open ? button('Stop', 'stop', { onclick: (ev) => stopRecording(ev.currentTarget, r) }) : null,
        button('Play', 'play', {
          disabled: !playable,
          onclick: () => play({ url: r.urls.hls, title: r.title || r.id, kind: 'recording', ref: r.id, live: r.state === 'recording' }),
        }),
        r.state === 'done' ? el('a', { href: r.urls.mp4, download: '', dataset: { action: 'download' } }, 'MP4') : null,
        button('Delete', 'delete', { onclick: (ev) => deleteRecording(ev.currentTarget, r) })));
  }));
  markPlaying();
}

async function refreshRecordings() {
  if (recordings.loading) return;
  recordings.loading = true;
  const gen = session.gen;
  try {
    const r = await api('GET', '/api/v1/recordings');
    if (gen !== session.gen) return;
    recordings.list = r.recordings || [];
    renderRecordings();
  } catch (err) {
    if (gen === session.gen && err.status !== 401) renderUnavailable('#recordings', 7, err);
    throw err;
  } finally {
    recordings.loading = false;
  }
}

function upsertRecording(r) {
  const i = recordings.list.findIndex((x) => x.id === r.id);
  if (i >= 0) recordings.list[i] = r; else recordings.list.push(r);
  renderRecordings();
}

async function startRecording(btn, stream) {
  await act(btn, `Recording ${stream}`, async () => {
    const title = `${stream} ${new Date().toLocaleString()}`;
    const r = await api('POST', '/api/v1/recordings', { body: { stream, title }, what: 'starting a recording' });
    upsertRecording(r);
  });
}

async function stopRecording(btn, r) {
  await act(btn, `Stopping ${r.title || r.id}`, async () => {
    const done = await api('POST', `/api/v1/recordings/${encodeURIComponent(r.id)}/stop`, { what: 'stopping a recording' });
    upsertRecording(done);
  });
}

async function deleteRecording(btn, r) {
  if (!confirm(`Delete the recording "${r.title || r.id}"? Its archived media is released.`)) return;
  await act(btn, `Deleting ${r.title || r.id}`, async () => {
    if (player.kind === 'recording' && player.ref === r.id) await stopPlayer();
    await api('DELETE', `/api/v1/recordings/${encodeURIComponent(r.id)}`, { what: 'deleting a recording' });
    recordings.list = recordings.list.filter((x) => x.id !== r.id);
    renderRecordings();
  });
}

// ---- library: uploads (tus) -------------------------------------------

const uploads = [];   // {name, size, sent, state, progressEvents, id, error}

function uploadItem(u) {
  const bar = el('progress', { max: 100, value: 0 });
  const text = el('span', { class: 'state' }, 'starting');
  const cancel = button('Cancel', 'cancel-upload');
  const li = el('li', { dataset: { upload: String(u.index) } },
    el('span', { class: 'name' }, u.name), bar, text, cancel);
  u.render = () => {
    const pct = u.size > 0 ? (u.sent / u.size) * 100 : (u.state === 'done' ? 100 : 0);
    bar.value = pct;
    li.className = u.state;
    li.dataset.state = u.state;
    const bytes = `${fmtBytes(u.sent)} of ${fmtBytes(u.size)}`;
    text.textContent = u.state === 'done' ? `uploaded (${fmtBytes(u.size)}): processing, see the list below`
      : u.state === 'failed' ? `failed: ${u.error}`
        : u.state === 'cancelled' ? 'cancelled'
          : `${pct.toFixed(0)} % · ${bytes}`;
    cancel.hidden = u.state !== 'uploading';
  };
  cancel.addEventListener('click', () => {
    // abort(true) also terminates the upload on the server (tus DELETE): the asset goes too.
    u.state = 'cancelled';
    u.render();
    u.upload.abort(true).catch(() => {});
  });
  return li;
}

function startUpload(file, title) {
  const u = { index: uploads.length, name: file.name, size: file.size, sent: 0, state: 'uploading', progressEvents: 0, id: null, error: null };
  uploads.push(u);
  const upload = new tus.Upload(file, {
    endpoint: new URL('/api/v1/uploads', location.href).href,
    headers: authHeaders(),
    metadata: { filename: file.name, title: title || file.name },
    chunkSize: 16 * 1024 * 1024,
    retryDelays: [0, 1000, 3000, 5000],
    removeFingerprintOnSuccess: true,
    onProgress(sent, total) {
      u.sent = sent;
      u.size = total;
      u.progressEvents++;
      u.render();
    },
    onSuccess() {
      u.state = 'done';
      u.sent = u.size;
      u.id = upload.url ? upload.url.split('/').pop() : null;
      u.render();
    },
    onError(err) {
      if (u.state === 'cancelled') return;
      const res = err && err.originalResponse;
      const status = res ? res.getStatus() : 0;
      let message = err && err.message || String(err);
      if (res) {
        try { message = JSON.parse(res.getBody()).error.message || message; } catch (_) { /* not JSON */ }
      }
      u.state = 'failed';
      u.error = status ? `${status}: ${message}` : message;
      u.render();
      if (status === 401) unauthorized(new ApiError(401, 'unauthorized', message));
      else if (status === 403) forbidden(new ApiError(403, 'forbidden', message), 'uploading');
    },
  });
  u.upload = upload;
  const li = uploadItem(u);
  $('#uploads').prepend(li);
  u.render();
  // An interrupted upload of the same file (from this browser) resumes where it stopped.
  upload.findPreviousUploads().then((previous) => {
    if (previous.length) upload.resumeFromPreviousUpload(previous[0]);
  }).catch(() => { /* no storage: a fresh upload */ }).then(() => upload.start());
}

$('#upload').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const files = [...$('#file').files];
  if (files.length === 0) return;
  const title = $('#title').value.trim();
  for (const f of files) startUpload(f, files.length === 1 ? title : '');
  $('#upload').reset();
});

// ---- library: assets --------------------------------------------------

const assets = {
  byId: new Map(),
  next: null,           // next_cursor of the last page read
  filter: { q: '', status: '' },
  loading: false,
  editing: new Set(),   // ids whose title is being edited (their title cell is left alone)
};

function filtered() {
  return assets.filter.q !== '' || assets.filter.status !== '';
}

function sortedAssets() {
  return [...assets.byId.values()].sort((a, b) =>
    (a.created_at === b.created_at ? (a.id < b.id ? 1 : -1) : (a.created_at < b.created_at ? 1 : -1)));
}

function progressCell(a) {
  const p = a.progress || {};
  if (a.status === 'ready') return el('td', {}, 'done');
  if (a.status === 'errored') return el('td', {}, '-');
  const pct = Number.isFinite(p.percent) ? p.percent : 0;
  const parts = [`${pct.toFixed(0)} %`];
  if (p.phase) parts.push(p.phase);
  if (Number.isFinite(p.eta_secs) && p.eta_secs > 0) parts.push(`ETA ${fmtSpan(p.eta_secs)}`);
  return el('td', { dataset: { field: 'progress' } },
    el('progress', { max: 100, value: pct }),
    el('span', { class: 'progress-text' }, parts.join(' · ')));
}

function titleCell(a) {
  const td = el('td', { dataset: { field: 'title' } }, el('span', { class: 'title' }, a.title));
  if (a.filename && a.filename !== a.title) td.append(el('span', { class: 'sub' }, a.filename));
  td.append(el('span', { class: 'sub' }, a.id));
  if (a.status === 'errored' && a.error) {
    const box = el('div', { class: 'asset-error', dataset: { field: 'error' } },
      el('code', {}, a.error.code), ': ', a.error.message || '');
    if (a.error.log_tail) {
      box.append(el('details', {}, el('summary', {}, 'ffmpeg log'), el('pre', {}, a.error.log_tail)));
    }
    td.append(box);
  }
  return td;
}

function renameForm(a, tr) {
  const input = el('input', { value: a.title, maxlength: 4096, 'aria-label': 'new title' });
  const cancel = () => { assets.editing.delete(a.id); renderAssetRow(tr, assets.byId.get(a.id) || a); };
  const form = el('form', { class: 'rename' }, input, el('button', {}, 'Save'), button('Cancel', 'cancel-rename', { onclick: cancel }));
  input.addEventListener('keydown', (ev) => { if (ev.key === 'Escape') cancel(); });
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const title = input.value.trim();
    if (!title) return;
    await act(form.querySelector('button'), 'Renaming', async () => {
      const updated = await api('PATCH', `/api/v1/assets/${encodeURIComponent(a.id)}`, { body: { title }, what: 'renaming an asset' });
      assets.editing.delete(a.id);
      upsertAsset(updated);
    });
  });
  return { form, input };
}

function renderAssetRow(tr, a) {
  tr.dataset.status = a.status;
  const poster = a.poster
    ? el('img', { class: 'poster', src: a.poster, alt: '', loading: 'lazy', width: 96, height: 54 })
    : el('span', { class: 'poster none' });
  let title;
  if (assets.editing.has(a.id)) {
    title = tr.querySelector('td[data-field="title-edit"]');
    if (!title) {
      const { form, input } = renameForm(a, tr);
      title = el('td', { dataset: { field: 'title-edit' } }, form);
      setTimeout(() => input.focus(), 0);
    }
  } else {
    title = titleCell(a);
  }
  const source = a.source;
  const renditions = (a.renditions || []).map((r) => r.name).join(', ') ||
    (source && source.width ? `source ${source.width}x${source.height}` : '-');
  tr.replaceChildren(
    el('td', {}, poster),
    title,
    el('td', { dataset: { field: 'status' } }, badge(a.status)),
    progressCell(a),
    el('td', {}, fmtClock(a.duration_secs)),
    el('td', {}, renditions),
    el('td', {}, fmtDate(a.created_at)),
    el('td', { class: 'actions' },
      button('Play', 'play', {
        disabled: !(a.status === 'ready' && a.playback && a.playback.hls),
        onclick: () => play({ url: a.playback.hls, title: a.title, kind: 'asset', ref: a.id, thumbnails: a.thumbnails }),
      }),
      button('Rename', 'rename', {
        disabled: assets.editing.has(a.id),
        onclick: () => { assets.editing.add(a.id); renderAssetRow(tr, assets.byId.get(a.id) || a); },
      }),
      a.status === 'errored' ? button('Retry', 'retry', {
        disabled: !a.source,
        title: a.source ? 'transcode again' : 'no usable source: upload the file again',
        onclick: (ev) => retryAsset(ev.currentTarget, a),
      }) : null,
      button('Delete', 'delete', { onclick: (ev) => deleteAsset(ev.currentTarget, a) })));
}

function renderAssets() {
  const body = $('#assets tbody');
  const list = sortedAssets();
  if (list.length === 0) {
    body.replaceChildren(el('tr', { class: 'empty' }, el('td', { colspan: 8 }, filtered() ? '(no match)' : '(none)')));
  } else {
    // Rows are kept (keyed by id) so an open rename form survives an update of another asset.
    const old = new Map([...body.querySelectorAll('tr[data-asset-id]')].map((tr) => [tr.dataset.assetId, tr]));
    const rows = list.map((a) => {
      let tr = old.get(a.id);
      if (!tr) tr = el('tr', { dataset: { assetId: a.id } });
      // Drawn again when the asset or its edit state changed (an event may have come
      // in before the answer that ends an edit).
      const key = `${assets.editing.has(a.id)}|${JSON.stringify(a)}`;
      if (tr.dataset.rendered !== key || assets.editing.has(a.id)) {
        renderAssetRow(tr, a);
        tr.dataset.rendered = key;
      }
      return tr;
    });
    body.replaceChildren(...rows);
  }
  $('#assets-more').hidden = !assets.next;
  markPlaying();
}

function upsertAsset(a) {
  const old = assets.byId.get(a.id);
  // Events may arrive out of order with a list answer: keep the newer copy.
  if (old && old.updated_at > a.updated_at) return;
  assets.byId.set(a.id, a);
  renderAssets();
}

async function refreshAssets({ more = false } = {}) {
  if (assets.loading) return;
  assets.loading = true;
  const gen = session.gen;
  try {
    const q = new URLSearchParams({ limit: String(PAGE) });
    if (assets.filter.q) q.set('q', assets.filter.q);
    if (assets.filter.status) q.set('status', assets.filter.status);
    if (more && assets.next) q.set('cursor', assets.next);
    const r = await api('GET', `/api/v1/assets?${q}`);
    if (gen !== session.gen) return;
    if (!more) {
      // A fresh first page: what it lists, plus the pages loaded after it, stay.
      const keep = new Set((r.assets || []).map((a) => a.id));
      const oldest = r.next_cursor ? r.assets[r.assets.length - 1].created_at : null;
      for (const [id, a] of assets.byId) {
        if (!keep.has(id) && (oldest === null || a.created_at >= oldest)) assets.byId.delete(id);
      }
      if (!r.next_cursor) assets.next = null;
    }
    for (const a of r.assets || []) {
      const old = assets.byId.get(a.id);
      if (!old || old.updated_at <= a.updated_at) assets.byId.set(a.id, a);
    }
    if (more || !assets.next) assets.next = r.next_cursor || null;
    renderAssets();
  } catch (err) {
    if (gen === session.gen && err.status !== 401 && !more) renderUnavailable('#assets', 8, err);
    throw err;
  } finally {
    assets.loading = false;
  }
}

async function retryAsset(btn, a) {
  await act(btn, `Retrying ${a.title}`, async () => {
    upsertAsset(await api('POST', `/api/v1/assets/${encodeURIComponent(a.id)}/retry`, { what: 'retrying an asset' }));
  });
}

async function deleteAsset(btn, a) {
  if (!confirm(`Delete "${a.title}"? Its renditions are removed from the origin.`)) return;
  await act(btn, `Deleting ${a.title}`, async () => {
    if (player.kind === 'asset' && player.ref === a.id) await stopPlayer();
    await api('DELETE', `/api/v1/assets/${encodeURIComponent(a.id)}`, { what: 'deleting an asset' });
    assets.byId.delete(a.id);
    renderAssets();
  });
}

$('#asset-filter').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const f = ev.currentTarget.elements;
  assets.filter = { q: f.q.value.trim(), status: f.status.value };
  assets.byId.clear();
  assets.next = null;
  refreshAssets().catch(() => {});
});

$('#assets-more').addEventListener('click', (ev) => act(ev.currentTarget, 'Loading more assets', () => refreshAssets({ more: true })));

// ---- server-sent events (fetch + a stream reader: the Bearer header goes along) ----

const events = { ctrl: null, state: 'off', log: [], received: 0, refetch: null };

function setEventsState(state, detail = '') {
  events.state = state;
  const s = $('#events-state');
  s.dataset.state = state;
  s.textContent = { connected: 'live updates: on', connecting: 'live updates: connecting…', off: 'live updates: off', retrying: `live updates: reconnecting (${detail})` }[state] || state;
}

function stopEvents() {
  if (events.ctrl) events.ctrl.abort();
  events.ctrl = null;
  setEventsState('off');
}

function logEvent(type, data) {
  const subject = data && (data.asset ? data.asset.title : data.asset_id || data.stream || '');
  const rec = data && data.recording ? ` ${data.recording.title || data.recording.id} (${data.recording.state})` : '';
  const when = data && data.time ? new Date(data.time) : new Date();
  events.log.unshift({
    type, time: when.toISOString(), subject: `${subject || ''}${rec}`,
    id: data && (data.asset_id || (data.recording && data.recording.id)) || null,
  });
  events.log.length = Math.min(events.log.length, EVENTS_KEPT);
  const list = $('#events');
  list.prepend(el('li', { dataset: { type } }, `${when.toLocaleTimeString()} ${type} ${subject || ''}${rec}`));
  while (list.children.length > EVENTS_KEPT) list.lastElementChild.remove();
}

/** A library list answer later than the events that asked for it (a filtered list). */
function refetchAssetsSoon() {
  clearTimeout(events.refetch);
  events.refetch = setTimeout(() => refreshAssets().catch(() => {}), 300);
}

function onEvent(type, raw) {
  let data = null;
  try { data = JSON.parse(raw); } catch (_) { /* not JSON: logged as is */ }
  events.received++;
  logEvent(type, data);
  if (!data) return;
  if (type.startsWith('asset.') || type.startsWith('upload.')) {
    if (filtered()) { refetchAssetsSoon(); return; }
    if (type === 'asset.deleted' || !data.asset) {
      if (data.asset_id && assets.byId.delete(data.asset_id)) renderAssets();
      if (type === 'asset.deleted' && player.kind === 'asset' && player.ref === data.asset_id) stopPlayer();
    } else {
      upsertAsset(data.asset);
    }
  } else if (type.startsWith('stream.')) {
    refreshStreams().catch(() => {});
  } else if (type.startsWith('recording.')) {
    refreshRecordings().catch(() => {});
  }
}

/** Reads `GET /api/v1/events` until aborted; reconnects with a growing pause. */
async function runEvents(gen) {
  let pause = 1000;
  while (gen === session.gen && !session.blocked) {
    const ctrl = new AbortController();
    events.ctrl = ctrl;
    setEventsState('connecting');
    try {
      const res = await fetch('/api/v1/events', {
        headers: { Accept: 'text/event-stream', ...authHeaders() }, cache: 'no-store', signal: ctrl.signal,
      });
      if (res.status === 401) { unauthorized(new ApiError(401, 'unauthorized', await res.text())); return; }
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      setEventsState('connected');
      pause = 1000;
      // What changed while not connected: the lists again, then every change as it comes.
      refreshAssets().catch(() => {});
      refreshRecordings().catch(() => {});
      refreshStreams().catch(() => {});
      await readSse(res.body, onEvent);
      if (gen !== session.gen) return;
      throw new Error('the server closed the stream');
    } catch (e) {
      if (ctrl.signal.aborted || gen !== session.gen) return;
      setEventsState('retrying', e.message);
      await sleep(pause);
      pause = Math.min(pause * 2, 15000);
    }
  }
}

/** The W3C event-stream format: `event:`/`data:` fields, a blank line ends an event. */
async function readSse(body, dispatch) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '', type = '', data = [];
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += value;
    let m;
    // A line ends at CRLF, LF or CR (a CR at the very end may still get its LF).
    while ((m = /\r\n|\n|\r(?!$)/.exec(buf))) {
      const line = buf.slice(0, m.index);
      buf = buf.slice(m.index + m[0].length);
      if (line === '') {
        if (data.length) dispatch(type || 'message', data.join('\n'));
        type = '';
        data = [];
        continue;
      }
      if (line.startsWith(':')) continue;   // a comment: the keep-alive
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      let v = colon < 0 ? '' : line.slice(colon + 1);
      if (v.startsWith(' ')) v = v.slice(1);
      if (field === 'event') type = v;
      else if (field === 'data') data.push(v);
    }
  }
}

// ---- sign-in and start --------------------------------------------------

let pollTimer = null;

async function start() {
  const gen = ++session.gen;
  session.blocked = false;
  streams.loading = false;   // an answer for the previous start is dropped anyway
  stopEvents();
  clearInterval(pollTimer);
  clearNotice('auth');
  setAuthState('', 'connecting…');
  // One call first: a missing token gives one 401, not one per list. Another error
  // status is the streams list's own trouble (shown in its table): the API answered.
  try {
    await refreshStreams();
  } catch (err) {
    if (gen !== session.gen) return;
    if (err.status === 401) return;   // unauthorized() said so
    if (err.status) return startLists(gen);
    setAuthState('bad', 'API unreachable');
    showNotice('error', `The API did not answer GET /api/v1/streams: ${err.status || ''} ${err.message}`.trim(), err.status || null);
    setTimeout(() => { if (gen === session.gen) start(); }, POLL_MS);
    return;
  }
  if (gen !== session.gen) return;
  startLists(gen);
}

function startLists(gen) {
  clearNotice('error');
  setAuthState('ok', `connected ${describeToken()}`);
  runEvents(gen);   // its connection reads the recordings and the assets
  pollTimer = setInterval(() => {
    if (gen !== session.gen || session.blocked || document.hidden) return;
    refreshStreams().catch(() => {});
    refreshRecordings().catch(() => {});
  }, POLL_MS);
}

$('#login').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const input = ev.currentTarget.elements.token;
  session.token = input.value.trim();
  input.value = '';
  if (session.token) sessionStorage.setItem(TOKEN_KEY, session.token);
  else sessionStorage.removeItem(TOKEN_KEY);
  start();
});

$('#logout').addEventListener('click', () => {
  session.token = '';
  sessionStorage.removeItem(TOKEN_KEY);
  $('#login').elements.token.value = '';
  start();
});

setInterval(renderPlayerStats, 500);

window.casterpakDashboard = {
  stats,
  seek,
  uploads: () => uploads.map(({ name, size, sent, state, progressEvents, id, error }) => ({ name, size, sent, state, progressEvents, id, error })),
  events: () => ({ state: events.state, received: events.received, log: events.log.slice() }),
  auth: () => ({ token: session.token !== '', blocked: session.blocked }),
};

start();
