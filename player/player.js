// casterpak player page.
//
// index.html?url=<manifest>[&engine=dashjs|hlsjs|shaka|native][&latency=<seconds>][&lowLatency=1][&rate=<x>]
//
// subtitles=<lang> shows the subtitle track of that language (hls.js, Shaka, dash.js);
// stats().textTracks lists the <video> text tracks with their loaded cues.
// audio=<lang> plays the audio track of that language; stats().audioLanguage says which
// one the player has selected.
//
// lowLatency=1 turns on Shaka Player's low-latency mode (streaming.lowLatencyMode: LL-HLS
// parts and blocking reloads); dash.js and hls.js use theirs whenever the stream offers it.
//
// Plays one manifest with dash.js (.mpd), hls.js (.m3u8), Shaka Player (DASH
// or HLS, engine=shaka) or the browser's own <video src> (engine=native),
// shows what a person (and the browser tests) need to judge playback, and
// lists the origin's streams from GET /streams.
//
// window.casterpak.stats() is the contract with tests/browser: keep its
// field names stable.
'use strict';

(function () {
  const params = new URLSearchParams(location.search);
  const video = document.getElementById('video');

  const state = {
    engine: null,
    url: null,
    errors: [],        // every error event, fatal or not (hls.js hides damage in non-fatal ones)
    fatal: false,
    dash: null,        // dashjs MediaPlayer
    hls: null,         // Hls instance
    shaka: null,       // shaka.Player
    seeks: [],         // seeks asked through window.casterpak.seek(): {wallClock, from, to}
    mpd: null,         // {dynamic, ast (epoch s), periodStart (s)} from the last MPD dash.js loaded
  };

  function recordError(source, type, details, fatal) {
    // Where the playhead and the media were when it happened: lets a reader
    // tell a skipped start gap from a hole in the middle.
    const bufferedStart = video.buffered.length ? video.buffered.start(0) : null;
    state.errors.push({
      time: Date.now() / 1000, source, type, details: String(details), fatal: !!fatal,
      currentTime: video.currentTime, bufferedStart,
    });
    if (fatal) state.fatal = true;
    renderErrors();
  }

  // The <video> element's own errors (decode errors, unsupported source) are
  // always fatal for playback, whatever engine feeds it.
  video.addEventListener('error', () => {
    const e = video.error;
    recordError('video', 'media', e ? `code ${e.code}: ${e.message}` : 'unknown', true);
  });

  function engineFor(url, wanted) {
    if (wanted) return wanted;
    const path = new URL(url, location.href).pathname;
    if (path.endsWith('.mpd')) return 'dashjs';
    if (path.endsWith('.m3u8')) return 'hlsjs';
    return 'native';
  }

  function epochSeconds(v) {
    if (v instanceof Date) return v.getTime() / 1000;
    if (typeof v === 'string') return Date.parse(v) / 1000;
    return null;
  }

  function startDash(url, latency) {
    const player = dashjs.MediaPlayer().create();
    const streaming = { liveCatchup: { enabled: true } };
    // Without &latency= the MPD's ServiceDescription/Latency@target drives the delay.
    // Low-latency mode switches itself on from availabilityTimeComplete="false".
    if (latency > 0) streaming.delay = { liveDelay: latency };
    if (subtitles) streaming.text = { defaultEnabled: true };
    player.updateSettings({ streaming });

    const E = dashjs.MediaPlayer.events;
    player.on(E.ERROR, (e) => {
      const err = e.error || {};
      // 27 = a media segment could not be loaded; dash.js carries on after it.
      recordError('dashjs', 'error', `${err.code}: ${err.message}`, err.code !== 27);
    });
    player.on(E.PLAYBACK_ERROR, (e) => recordError('dashjs', 'playbackError', e.error && e.error.message || e.error, true));
    // dash.js retries failed requests silently and raises an error only when
    // all retries failed; count every failed HTTP response, as hls.js does.
    player.on(E.METRIC_ADDED, (e) => {
      if (e.metric === 'HttpList' && e.value && e.value.responsecode >= 400) {
        recordError('dashjs', 'http', `${e.value.responsecode} ${e.value.url}`, false);
      }
    });
    // Presentation time 0 is at availabilityStartTime (+ Period@start) for
    // ffmpeg's live MPDs, which gives the wall-clock latency independently of
    // dash.js's own clock synchronisation.
    player.on(E.MANIFEST_LOADED, (e) => {
      const m = e.data;
      if (!m) return;
      const periods = m.Period_asArray || m.Period || [];
      const first = Array.isArray(periods) ? periods[0] : periods;
      state.mpd = {
        dynamic: m.type === 'dynamic',
        ast: epochSeconds(m.availabilityStartTime),
        periodStart: first && typeof first.start === 'number' ? first.start : 0,
      };
    });
    player.initialize(video, url, true);
    // Only an initialised player takes initial media settings (dash.js 5).
    if (subtitles) player.setInitialMediaSettingsFor('text', { lang: subtitles });
    if (audioLang) player.setInitialMediaSettingsFor('audio', { lang: audioLang });
    state.dash = player;
  }

  function startHls(url, latency) {
    if (!Hls.isSupported()) {
      recordError('hlsjs', 'unsupported', 'MediaSource is not available', true);
      return;
    }
    const config = { lowLatencyMode: true, maxLiveSyncPlaybackRate: 1.5 };
    if (latency > 0) config.liveSyncDuration = latency;
    if (subtitles) config.subtitlePreference = { lang: subtitles };
    if (audioLang) config.audioPreference = { lang: audioLang };
    const hls = new Hls(config);
    hls.on(Hls.Events.ERROR, (_event, data) => {
      const what = data.response && data.response.code ? ` ${data.response.code}` : '';
      const url = (data.frag && data.frag.url) || (data.context && data.context.url) || '';
      const reason = data.reason ? ` (${data.reason})` : '';
      recordError('hlsjs', data.type, `${data.details}${what} ${url}${reason}`.trim(), data.fatal);
    });
    hls.loadSource(url);
    hls.attachMedia(video);
    state.hls = hls;
  }

  // Shaka Player (DASH and HLS). Reports what the harness judges the other
  // engines on: every error event (CRITICAL ones fatal), every failed HTTP
  // download even when a retry succeeded (like dash.js above), and the
  // damage Shaka repairs silently: a jumped gap (like hls.js's
  // bufferSeekOverHole, with the same "seeking from A to B" wording) and a
  // detected stall (like hls.js's bufferStalledError).
  function startShaka(url, latency) {
    shaka.polyfill.installAll();
    if (!shaka.Player.isBrowserSupported()) {
      recordError('shaka', 'unsupported', 'shaka.Player.isBrowserSupported() is false', true);
      return;
    }
    const player = new shaka.Player();
    // Shaka's HLS parser probes media segments for CEA-608/708 captions and,
    // on a live LL-HLS playlist, may pick the segment still in progress (parts
    // only, no URI yet) and fail the load with "Cannot read properties of
    // undefined (reading 'match')" (Shaka 5.2.12). The origin's streams
    // carry no captions the page shows anyway.
    player.configure({ manifest: { hls: { disableClosedCaptionsDetection: true } } });
    if (latency > 0) player.configure({ streaming: { liveSync: { enabled: true, targetLatency: latency } } });
    if (params.get('lowLatency') === '1') player.configure({ streaming: { lowLatencyMode: true } });
    const codeNames = {};
    for (const [name, code] of Object.entries(shaka.util.Error.Code)) codeNames[code] = name;
    const categoryNames = {};
    for (const [name, cat] of Object.entries(shaka.util.Error.Category)) categoryNames[cat] = name;
    const describe = (err) => {
      if (!err || typeof err.code !== 'number') return String(err && err.message || err);
      const data = (err.data || []).map((d) => {
        let text;
        try { text = (d && d.message) || (d && typeof d === 'object' ? JSON.stringify(d) : String(d)); } catch (_) { text = String(d); }
        return text && text.length > 200 ? `${text.slice(0, 200)}...` : text;
      });
      return `${err.code} ${codeNames[err.code] || '?'} ${data.join(' ')}`.trim();
    };
    const fatalError = (err) => err && err.severity === shaka.util.Error.Severity.CRITICAL;
    player.addEventListener('error', (event) => {
      const err = event.detail;
      recordError('shaka', categoryNames[err && err.category] || 'error', describe(err), fatalError(err));
    });
    player.addEventListener('downloadfailed', (event) => {
      // OPERATION_ABORTED is Shaka cancelling its own request (a seek, a quality
      // switch, unload). Its `aborted` flag means the other thing: the request
      // timed out (connection or stall timeout), which is counted.
      const err = event.error;
      if (!event.aborted && err && err.code === shaka.util.Error.Code.OPERATION_ABORTED) return;
      const uri = event.request && event.request.uris ? event.request.uris[0] : '';
      const code = event.httpResponseCode ? `${event.httpResponseCode} ` : '';
      const why = event.aborted ? 'timed out' : err ? describe(err) : '';
      recordError('shaka', 'http', `${code}${uri} ${why}`.trim(), false);
    });
    // The playhead before a gap jump: Shaka has already moved it when it says so.
    let lastTime = 0;
    video.addEventListener('timeupdate', () => { if (!video.seeking) lastTime = video.currentTime; });
    player.addEventListener('gapjumped', () => {
      recordError('shaka', 'mediaError', `gapJumped (seeking from ${lastTime} to ${video.currentTime})`, false);
      lastTime = video.currentTime;
    });
    player.addEventListener('stalldetected', () => recordError('shaka', 'mediaError', `stallDetected at ${video.currentTime}`, false));
    state.shaka = player;
    player.attach(video)
      .then(() => player.load(url))
      .then(() => {
        if (audioLang) {
          const a = player.getAudioTracks().find((x) => x.language === audioLang);
          if (a) player.selectAudioTrack(a);
          else recordError('shaka', 'audio', `no audio track in ${audioLang}`, false);
        }
        if (subtitles) {
          const t = player.getTextTracks().find((x) => x.language === subtitles);
          if (t) player.selectTextTrack(t);
          else recordError('shaka', 'text', `no text track in ${subtitles}`, false);
        }
      })
      .then(() => video.play().catch(() => { /* autoplay: Shaka starts once data is there */ }))
      .catch((err) => {
        // load() rejects with the error the 'error' event already carried, or with one it did not.
        const details = describe(err);
        if (!state.errors.some((e) => e.source === 'shaka' && e.details === details)) {
          recordError('shaka', 'load', details, true);
        }
      });
  }

  function startNative(url) {
    video.src = url;
  }

  function hlsIsLive() {
    const hls = state.hls;
    const details = hls.latestLevelDetails ||
      (hls.levels && hls.levels[hls.currentLevel] && hls.levels[hls.currentLevel].details);
    return !!(details && details.live);
  }

  // Seconds between now and the moment the frame on screen was captured,
  // or null when the stream gives no way to know.
  function wallClockLatency() {
    const now = Date.now() / 1000;
    if (state.dash && state.mpd && state.mpd.dynamic && state.mpd.ast !== null) {
      return now - (state.mpd.ast + state.mpd.periodStart + video.currentTime);
    }
    if (state.hls && hlsIsLive() && state.hls.playingDate) {
      return now - state.hls.playingDate.getTime() / 1000;   // from #EXT-X-PROGRAM-DATE-TIME
    }
    if (state.shaka && state.shaka.isLive()) {
      const date = state.shaka.getPlayheadTimeAsDate();   // availabilityStartTime or PROGRAM-DATE-TIME based
      if (date) return now - date.getTime() / 1000;
    }
    if (state.engine === 'native' && video.getStartDate && video.duration === Infinity) {
      const start = video.getStartDate().getTime();
      if (!Number.isNaN(start)) return now - (start / 1000 + video.currentTime);
    }
    return null;
  }

  function playerLatency() {
    if (state.dash && state.dash.isReady() && state.dash.isDynamic()) {
      const l = state.dash.getCurrentLiveLatency();
      return Number.isFinite(l) ? l : null;
    }
    if (state.hls && hlsIsLive() && Number.isFinite(state.hls.latency)) return state.hls.latency;
    if (state.shaka && state.shaka.isLive()) {
      const l = state.shaka.getStats().liveLatency;
      return Number.isFinite(l) ? l : null;
    }
    return null;
  }

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

  function stats() {
    const q = video.getVideoPlaybackQuality ? video.getVideoPlaybackQuality() : {};
    return {
      engine: state.engine,
      url: state.url,
      wallClock: Date.now() / 1000,
      currentTime: video.currentTime,
      duration: Number.isFinite(video.duration) ? video.duration : null,
      buffered: bufferedRanges(),
      bufferLength: bufferAhead(),
      totalVideoFrames: q.totalVideoFrames ?? null,
      droppedVideoFrames: q.droppedVideoFrames ?? null,
      errors: state.errors.slice(),
      fatal: state.fatal,
      latencyWallClock: wallClockLatency(),
      latencyPlayer: playerLatency(),
      targetLatency: state.dash && state.dash.isReady() && state.dash.isDynamic() ? state.dash.getTargetLiveDelay()
        : state.shaka && state.shaka.isLive() && state.shaka.getConfiguration().streaming.liveSync.enabled
          ? state.shaka.getConfiguration().streaming.liveSync.targetLatency : null,
      lowLatencyMode: state.dash ? state.dash.getLowLatencyModeEnabled()
        : state.shaka ? state.shaka.getConfiguration().streaming.lowLatencyMode : null,
      playbackRate: video.playbackRate,
      readyState: video.readyState,
      paused: video.paused,
      ended: video.ended,
      seeks: state.seeks.slice(),
      textTracks: textTracks(),
      audioLanguage: audioLanguage(),
    };
  }

  // The language of the audio track the player has selected, or null.
  function audioLanguage() {
    try {
      if (state.hls) {
        const t = state.hls.audioTracks[state.hls.audioTrack];
        return t ? t.lang || null : null;
      }
      if (state.shaka) {
        const t = state.shaka.getAudioTracks().find((x) => x.active);
        return t ? t.language || null : null;
      }
      if (state.dash && state.dash.isReady()) {
        const t = state.dash.getCurrentTrackFor('audio');
        return t ? t.lang || null : null;
      }
    } catch (_) { /* not loaded yet */ }
    return null;
  }

  // The <video> text tracks (every engine renders subtitles through them here): kind,
  // language, mode and the loaded cues (start, end in media seconds, text).
  function textTracks() {
    const out = [];
    for (let i = 0; i < video.textTracks.length; i++) {
      const t = video.textTracks[i];
      const cues = [];
      for (let k = 0; t.cues && k < t.cues.length && k < 200; k++) {
        const c = t.cues[k];
        cues.push({ start: c.startTime, end: c.endTime, text: c.text });
      }
      out.push({ kind: t.kind, label: t.label, language: t.language, mode: t.mode, cues });
    }
    return out;
  }

  // ---- display ----------------------------------------------------------

  function fmt(v, digits = 2) {
    if (v === null || v === undefined) return '-';
    if (typeof v === 'number') return v.toFixed(digits);
    return String(v);
  }

  function renderStats() {
    const s = stats();
    const rows = [
      ['engine', s.engine || '-'],
      ['url', s.url || '-'],
      ['latency (wall clock)', fmt(s.latencyWallClock) + ' s'],
      ['latency (player)', fmt(s.latencyPlayer) + ' s'],
      ['target latency', fmt(s.targetLatency) + ' s'],
      ['low-latency mode', fmt(s.lowLatencyMode)],
      ['current time', fmt(s.currentTime, 3) + ' s'],
      ['buffer ahead', fmt(s.bufferLength) + ' s'],
      ['buffered ranges', s.buffered.map(([a, b]) => `${a.toFixed(2)}-${b.toFixed(2)}`).join(', ') || '-'],
      ['frames decoded / dropped', `${fmt(s.totalVideoFrames, 0)} / ${fmt(s.droppedVideoFrames, 0)}`],
      ['playback rate', fmt(s.playbackRate, 3)],
      ['ready state', s.readyState + (s.paused ? ' (paused)' : '') + (s.ended ? ' (ended)' : '')],
    ];
    const body = document.querySelector('#stats tbody');
    body.replaceChildren(...rows.map(([k, v]) => {
      const tr = document.createElement('tr');
      for (const text of [k, v]) {
        const td = document.createElement('td');
        td.textContent = text;
        tr.appendChild(td);
      }
      return tr;
    }));
  }

  function renderErrors() {
    const box = document.getElementById('errors');
    box.textContent = state.errors.length === 0 ? '(none)' : state.errors.map((e) =>
      `${new Date(e.time * 1000).toISOString().slice(11, 23)} ${e.fatal ? 'FATAL ' : ''}${e.source} ${e.type}: ${e.details}`).join('\n');
  }

  function playLink(url, engine) {
    const q = new URLSearchParams({ url });
    if (engine) q.set('engine', engine);
    return '?' + q.toString();
  }

  // GET /streams is optional: on any failure the list just stays empty.
  async function refreshStreams() {
    const list = document.getElementById('streams');
    let streams = [];
    try {
      const res = await fetch('/streams', { cache: 'no-store' });
      if (res.ok) streams = (await res.json()).streams || [];
    } catch (_) { /* no /streams here */ }
    if (streams.length === 0) {
      list.replaceChildren(Object.assign(document.createElement('li'), { textContent: '(none)' }));
      return;
    }
    list.replaceChildren(...streams.map((s) => {
      const li = document.createElement('li');
      if (s.state === 'ended') li.className = 'ended';
      li.append(`${s.name} (${s.state}): `);
      for (const m of s.manifests || []) {
        const a = document.createElement('a');
        a.href = playLink(m.url, m.kind === 'dash' ? 'dashjs' : 'hlsjs');
        a.textContent = m.kind;
        li.append(a, ' ');
      }
      return li;
    }));
  }

  // ---- start ------------------------------------------------------------

  const form = document.getElementById('open');
  for (const name of ['url', 'engine', 'latency']) {
    if (params.get(name)) form.elements[name].value = params.get(name);
  }

  const url = params.get('url');
  const subtitles = params.get('subtitles');
  const audioLang = params.get('audio');
  if (url) {
    const latency = parseFloat(params.get('latency'));
    state.url = new URL(url, location.href).href;
    state.engine = engineFor(state.url, params.get('engine'));
    video.muted = true;   // muted autoplay is allowed without a user gesture
    try {
      if (state.engine === 'dashjs') startDash(state.url, latency);
      else if (state.engine === 'hlsjs') startHls(state.url, latency);
      else if (state.engine === 'shaka') startShaka(state.url, latency);
      else startNative(state.url);
    } catch (e) {
      recordError(state.engine, 'exception', e && e.message || e, true);
    }
    video.play().catch(() => { /* dash.js/hls.js/Shaka start playback themselves once data is there */ });
    // rate=<x> plays at that speed (the browser tests play on-demand media at 2x): set
    // again whenever media loads or playback starts, as a player may reset it on load.
    const rate = parseFloat(params.get('rate'));
    if (rate > 0) {
      const apply = () => { if (video.playbackRate !== rate) { video.defaultPlaybackRate = rate; video.playbackRate = rate; } };
      for (const ev of ['loadedmetadata', 'playing']) video.addEventListener(ev, apply);
      apply();
    }
  }

  // A seek asked from outside (the browser tests), recorded so that the jump
  // is not judged as played media. Every engine follows <video> seeks, except
  // dash.js on a live stream: its live catch-up (maxDrift) undoes a plain
  // <video> seek back into the DVR window, so the seek goes through dash.js.
  function seek(to) {
    state.seeks.push({ wallClock: Date.now() / 1000, from: video.currentTime, to });
    if (state.dash && state.dash.isReady() && state.dash.isDynamic()) {
      state.dash.seekToPresentationTime(to);
    } else {
      video.currentTime = to;
    }
  }

  window.casterpak = { stats, seek };
  setInterval(renderStats, 500);
  renderStats();
  refreshStreams();
  setInterval(refreshStreams, 5000);
})();
