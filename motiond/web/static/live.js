// The live page: one card per camera with its picture, its state, a chart of the changed
// fraction against the threshold, and the measured latency; below, the newest clips and motion
// snapshots. See docs/web-contract.md. The picture is the camera's own H.264/H.265 in a <video>
// (mse.js) where the browser plays it; until its first picture, and where it cannot (a JPEG
// camera, no MSE, a codec the browser lacks: H.265 outside Safari), WebSocket JPEGs drawn on a
// canvas. With the video playing, the JPEG socket carries only the status (frames=0).
// ?camera=NAME shows that camera alone.

import {
  api,
  clipThumbUrl,
  el,
  encodePath,
  formatDuration,
  formatPercent,
  formatTime,
  goToLogin,
  initHeader,
  notify,
  url,
} from './common.js';
import { DetectionLayer } from './detection.js';
import { MsePlayer, canPlayMp4 } from './mse.js';

const CHART_SECONDS = 30;
const PING_INTERVAL_MS = 2000;
const FIRST_RETRY_MS = 500;
const MAX_RETRY_MS = 10000;
const RECENT_REFRESH_MS = 60000;
const RECENT_COUNT = 8;
const RESIZE_RECONNECT_RATIO = 0.25; // reconnect for a new width only when it differs this much
const CLOSE_POLICY = 1008;
const CLOSE_TRY_AGAIN_LATER = 1013;
const CLOSE_UNKNOWN_CAMERA = 4404;
const VIDEO_RETRY_MS = 3000;

const cameras = new Map();

function nextAnimationFrame() {
  return new Promise((resolve) => requestAnimationFrame(resolve));
}

function median(values) {
  if (!values.length) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

function cssColor(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || 'gray';
}

// One camera: its card, its WebSocket and what it measures.
class LiveCamera {
  constructor(info, onClipFinished) {
    this.info = info;
    this.name = info.name;
    this.onClipFinished = onClipFinished;
    this.card = document
      .getElementById('camera-template')
      .content.firstElementChild.cloneNode(true);
    this.card.dataset.camera = this.name;
    this.part = (selector) => this.card.querySelector(selector);
    this.part('.camera-name').textContent = this.name;
    this.canvas = this.part('canvas.live');
    this.video = this.part('video.live-video');
    this.player = null; // the MP4 view, while it runs
    this.videoActive = false; // the video shows the picture (the JPEG socket: status only)
    this.videoRefused = ''; // why this camera cannot be shown as video here (stays so)
    this.stream = localStorage.getItem('motiond.stream.' + this.name) || 'main';
    this.videoTimer = null;
    if (info.width && info.height) {
      this.canvas.width = info.width;
      this.canvas.height = info.height;
    }
    this.chart = this.part('canvas.delta-chart');
    this.detection = new DetectionLayer(this.part);
    this.detection.setSize(info.width, info.height);
    this.socket = null;
    this.retryTimer = null;
    this.pingTimer = null;
    this.attempt = 0;
    this.gone = false; // the server says this camera does not exist (4404)
    this.requestedWidth = 0;
    this.greeted = false; // a hello arrived on the current socket
    this.history = []; // {t, delta}: every frame's delta of the last CHART_SECONDS
    this.pings = new Map(); // ping id -> performance.now() when sent
    this.pingId = 0;
    this.rtts = [];
    this.latencies = [];
    this.drawTimes = [];
    this.frameMeta = null; // the "frame" message announcing the next binary frame
    this.decoding = false;
    this.waiting = null; // the newest frame that arrived while one was being decoded
    this.framesDrawn = 0;
    this.chartUpdates = 0;
    this.recording = Boolean(info.recording);
    this.armed = info.armed !== false;
    this.threshold = info.threshold;

    this.part('.arm-toggle').addEventListener('click', () => this.toggleArmed());
    this.part('.snapshot').addEventListener('click', () => this.takeSnapshot());
    this.part('.stream-toggle').addEventListener('click', () => this.switchStream());
    this.applyStatus(info);
    this.part('.delta-now').textContent = formatPercent(info.last_delta);
    this.part('.threshold-now').textContent = formatPercent(info.threshold);
    new ResizeObserver(() => this.onResize()).observe(this.part('.picture'));
  }

  // -- the socket -------------------------------------------------------------------------

  wantedWidth() {
    const cssWidth = this.part('.picture').clientWidth;
    if (!cssWidth) return 0;
    const width = Math.round(cssWidth * (window.devicePixelRatio || 1));
    return this.info.width && width >= this.info.width ? 0 : width;
  }

  connect() {
    if (this.socket || this.gone || document.hidden) return;
    clearTimeout(this.retryTimer);
    const target = url(this.info.live_url || 'ws/live/' + encodeURIComponent(this.name));
    target.protocol = target.protocol === 'https:' ? 'wss:' : 'ws:';
    this.requestedWidth = this.wantedWidth();
    if (this.requestedWidth) target.searchParams.set('width', String(this.requestedWidth));
    if (this.videoActive) target.searchParams.set('frames', '0');
    let socket;
    try {
      socket = new WebSocket(target);
    } catch (error) {
      this.setOverlay('cannot connect: ' + error.message);
      return;
    }
    socket.binaryType = 'blob';
    this.socket = socket;
    this.greeted = false;
    // Events of a socket this page has already let go of (disconnect()) are ignored.
    socket.addEventListener('open', () => socket === this.socket && this.onOpen());
    socket.addEventListener('message', (event) => socket === this.socket && this.onMessage(event));
    socket.addEventListener('close', (event) => socket === this.socket && this.onClose(event));
    this.startVideo();
  }

  disconnect() {
    this.stopVideo();
    this.closeSocket();
  }

  closeSocket() {
    if (!this.socket) return;
    const socket = this.socket;
    this.socket = null;
    this.forget();
    socket.close(1000);
  }

  // Drops what belonged to the socket that just went away.
  forget() {
    clearInterval(this.pingTimer);
    this.pings.clear();
    this.frameMeta = null;
    this.waiting = null;
    this.card.dataset.socket = 'closed';
  }

  onOpen() {
    this.card.dataset.socket = 'open';
    this.ping();
    this.pingTimer = setInterval(() => this.ping(), PING_INTERVAL_MS);
  }

  ping() {
    if (!this.socket || this.socket.readyState !== WebSocket.OPEN) return;
    this.pingId += 1;
    this.pings.set(this.pingId, performance.now());
    this.socket.send(JSON.stringify({ type: 'ping', id: this.pingId }));
  }

  onMessage(event) {
    if (typeof event.data === 'string') {
      let message;
      try {
        message = JSON.parse(event.data);
      } catch {
        return;
      }
      this.onText(message);
      return;
    }
    const frame = { blob: event.data, received: performance.now(), meta: this.frameMeta };
    this.frameMeta = null;
    if (this.decoding) {
      this.waiting = frame; // a slow decode skips frames rather than falling behind
    } else {
      this.show(frame);
    }
  }

  onText(message) {
    switch (message.type) {
      case 'hello':
        this.attempt = 0;
        this.greeted = true;
        if (message.width && message.height) {
          this.info.width = message.width;
          this.info.height = message.height;
          this.detection.setSize(message.width, message.height);
        }
        if (!this.framesDrawn && !this.videoActive) this.setOverlay('waiting for the picture…');
        break;
      case 'frame':
        this.frameMeta = message;
        break;
      case 'status':
        this.applyStatus(message);
        this.addDelta(message);
        this.detection.onStatus(message);
        break;
      case 'areas':
        this.detection.onAreas(message);
        break;
      case 'pong': {
        const sent = this.pings.get(message.id);
        this.pings.delete(message.id);
        if (sent !== undefined) {
          this.rtts.push(performance.now() - sent);
          this.rtts = this.rtts.slice(-5);
        }
        break;
      }
      default:
        break;
    }
  }

  onClose(event) {
    this.socket = null;
    this.forget();
    if (event.code === CLOSE_UNKNOWN_CAMERA) {
      this.gone = true;
      this.setOverlay('this camera is no longer configured');
      return;
    }
    if (event.code === CLOSE_POLICY || !this.greeted) {
      // Refused, or the handshake failed (a 401 shows as 1006): maybe the session expired.
      this.setOverlay(
        event.code === CLOSE_POLICY ? 'refused by the server; retrying…' : 'reconnecting…',
      );
      this.checkSession();
    } else if (event.code === CLOSE_TRY_AGAIN_LATER) {
      this.setOverlay('too many viewers; retrying…');
    } else {
      this.setOverlay('reconnecting…');
    }
    this.card.dataset.socket = 'reconnecting';
    this.scheduleReconnect();
  }

  async checkSession() {
    try {
      const session = await api('api/session');
      if (session && session.auth && !session.user) goToLogin();
    } catch {
      // unreachable: the reconnect loop keeps trying
    }
  }

  scheduleReconnect() {
    const delay = Math.min(MAX_RETRY_MS, FIRST_RETRY_MS * 2 ** this.attempt);
    this.attempt += 1;
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.connect(), delay * (0.8 + 0.4 * Math.random()));
  }

  // -- the video (the camera's own H.264 or H.265) -------------------------------------------

  startVideo() {
    if (this.player || this.videoRefused || !canPlayMp4() || document.hidden) return;
    clearTimeout(this.videoTimer);
    this.player = new MsePlayer(this.video, this.name, this.stream, {
      onPlaying: () => this.onVideoPlaying(),
      onUnsupported: (reason) => this.onVideoRefused(reason),
      onClosed: () => this.onVideoClosed(),
      onStream: (message) => this.onVideoStream(message),
    });
    this.card.dataset.view = this.videoActive ? 'video' : 'jpeg';
  }

  stopVideo() {
    clearTimeout(this.videoTimer);
    if (this.player) {
      const player = this.player;
      this.player = null;
      player.stop();
    }
  }

  onVideoStream(message) {
    const toggle = this.part('.stream-toggle');
    const streams = Array.isArray(message.streams) ? message.streams : ['main'];
    toggle.hidden = streams.length < 2;
    toggle.textContent = message.stream === 'sub' ? 'Full resolution' : 'Low resolution';
    toggle.title = `Now: the ${message.stream} stream, ${message.width}x${message.height}`;
    this.video.dataset.stream = message.stream;
    this.video.dataset.mime = message.mime;
  }

  onVideoPlaying() {
    if (this.videoActive) return;
    this.videoActive = true;
    this.video.hidden = false;
    this.canvas.hidden = true;
    this.card.dataset.view = 'video';
    this.updateOverlay();
    this.closeSocket(); // again, status only
    this.connect();
  }

  // JPEG pictures again: the video stopped (or never started).
  showJpeg() {
    if (!this.videoActive) return;
    this.videoActive = false;
    this.video.hidden = true;
    this.canvas.hidden = false;
    this.card.dataset.view = 'jpeg';
    this.closeSocket(); // again, with pictures
    this.connect();
  }

  onVideoRefused(reason) {
    this.player = null;
    this.videoRefused = reason;
    this.card.dataset.videoRefused = reason;
    this.card.dataset.view = 'jpeg';
    this.showJpeg();
  }

  onVideoClosed() {
    this.player = null;
    this.showJpeg();
    clearTimeout(this.videoTimer);
    this.videoTimer = setTimeout(() => this.startVideo(), VIDEO_RETRY_MS);
  }

  switchStream() {
    this.stream = this.stream === 'sub' ? 'main' : 'sub';
    localStorage.setItem('motiond.stream.' + this.name, this.stream);
    this.stopVideo();
    this.showJpeg(); // JPEG pictures until the other stream's first keyframe
    this.startVideo();
  }

  videoLatency() {
    const player = this.player;
    if (!this.videoActive || !player || !player.latencies.length) return;
    const latency = Math.round(median(player.latencies.slice(-30)));
    const text = this.part('.latency');
    text.textContent = `latency ${latency} ms`;
    text.dataset.ms = String(latency);
  }

  onResize() {
    this.drawChart();
    clearTimeout(this.resizeTimer);
    this.resizeTimer = setTimeout(() => {
      const wanted = this.wantedWidth();
      const had = this.requestedWidth || this.info.width || 0;
      const now = wanted || this.info.width || 0;
      if (this.socket && !this.videoActive && had && Math.abs(now - had) / had > RESIZE_RECONNECT_RATIO) {
        this.disconnect();
        this.connect();
      }
    }, 500);
  }

  // -- the picture ------------------------------------------------------------------------

  async show(frame) {
    this.decoding = true;
    try {
      const bitmap = await createImageBitmap(new Blob([frame.blob], { type: 'image/jpeg' }));
      await nextAnimationFrame();
      if (this.canvas.width !== bitmap.width || this.canvas.height !== bitmap.height) {
        this.canvas.width = bitmap.width;
        this.canvas.height = bitmap.height;
      }
      this.canvas.getContext('2d').drawImage(bitmap, 0, 0);
      bitmap.close();
      this.onDrawn(frame, performance.now());
    } catch {
      // an undecodable frame is skipped
    }
    this.decoding = false;
    if (this.waiting) {
      const next = this.waiting;
      this.waiting = null;
      this.show(next);
    }
  }

  onDrawn(frame, drawnAt) {
    this.framesDrawn += 1;
    this.canvas.dataset.frames = String(this.framesDrawn);
    if (!this.part('.overlay').hidden) this.updateOverlay();
    this.drawTimes.push(drawnAt);
    while (this.drawTimes.length && this.drawTimes[0] < drawnAt - 2000) this.drawTimes.shift();
    const rtt = median(this.rtts);
    if (frame.meta && typeof frame.meta.age_ms === 'number' && rtt !== null) {
      // Capture to display, per the contract: age at the server, one way on the network,
      // and the time this page took to decode and draw it.
      this.latencies.push(frame.meta.age_ms + rtt / 2 + (drawnAt - frame.received));
      this.latencies = this.latencies.slice(-5);
      const latency = Math.round(median(this.latencies));
      const text = this.part('.latency');
      text.textContent = `latency ${latency} ms`;
      text.dataset.ms = String(latency);
    }
  }

  shownFps() {
    const times = this.drawTimes;
    if (times.length < 2) return null;
    return ((times.length - 1) * 1000) / (times[times.length - 1] - times[0]);
  }

  setOverlay(text) {
    const overlay = this.part('.overlay');
    overlay.textContent = text;
    overlay.dataset.kind = text.startsWith('waiting') ? 'waiting' : 'problem';
    overlay.hidden = !text;
  }

  updateOverlay() {
    if (this.socket && this.socket.readyState === WebSocket.OPEN) {
      if (this.online === false) this.setOverlay('camera offline');
      else if (!this.framesDrawn && !this.videoActive) this.setOverlay('waiting for the picture…');
      else this.setOverlay('');
    }
  }

  // -- state ------------------------------------------------------------------------------

  applyStatus(status) {
    const wasRecording = this.recording;
    this.online = status.online;
    this.recording = Boolean(status.recording);
    this.armed = status.armed !== false;
    this.card.dataset.online = String(Boolean(status.online));
    this.card.dataset.recording = String(this.recording);
    this.card.dataset.armed = String(this.armed);

    const online = this.part('.online-badge');
    online.textContent = status.online ? 'online' : 'offline';
    online.dataset.state = status.online ? 'ok' : 'bad';
    this.part('.rec-badge').hidden = !this.recording;
    const armed = this.part('.armed-badge');
    armed.textContent = this.armed ? 'armed' : 'disarmed';
    armed.dataset.state = this.armed ? 'ok' : 'warn';
    const toggle = this.part('.arm-toggle');
    toggle.textContent = this.armed ? 'Disarm' : 'Arm';
    toggle.title = this.armed
      ? 'Stop recording clips from this camera (the live view goes on)'
      : 'Record clips again when something moves';
    this.applySceneStatus(status);

    this.videoLatency();
    const shown = this.shownFps();
    const cameraFps = typeof status.fps === 'number' ? status.fps.toFixed(1) : '–';
    this.part('.fps').textContent =
      `camera ${cameraFps} fps` + (shown === null ? '' : ` · shown ${shown.toFixed(1)} fps`);
    this.updateOverlay();
    if (wasRecording && !this.recording) this.onClipFinished();
  }

  // Day or night, tampering, and the share of the picture learned as always moving.
  applySceneStatus(status) {
    const mode = this.part('.mode-badge');
    mode.hidden = !status.day_night;
    mode.textContent = status.day_night === 'night' ? 'night (infrared)' : 'day';
    mode.dataset.mode = status.day_night || '';
    const tamper = this.part('.tamper-badge');
    tamper.hidden = !status.tampered;
    tamper.textContent = status.tampered ? `tampered: ${status.tampered}` : '';
    this.card.dataset.tampered = status.tampered || '';
    if (typeof status.ignored_share === 'number') {
      const ignored = this.part('.ignored');
      ignored.textContent = `ignoring ${formatPercent(status.ignored_share)}`;
      ignored.dataset.share = String(status.ignored_share);
    }
  }

  async toggleArmed() {
    const button = this.part('.arm-toggle');
    button.disabled = true;
    const action = this.armed ? 'disarm' : 'arm';
    try {
      const camera = await api(`api/cameras/${encodeURIComponent(this.name)}/${action}`, {
        method: 'POST',
      });
      this.applyStatus(camera);
    } catch (error) {
      notify(`Could not ${action} ${this.name}: ${error.message}`, 'error');
    } finally {
      button.disabled = false;
    }
  }

  async takeSnapshot() {
    const button = this.part('.snapshot');
    const result = this.part('.snapshot-result');
    button.disabled = true;
    try {
      const snapshot = await api(`api/cameras/${encodeURIComponent(this.name)}/snapshot`, {
        method: 'POST',
      });
      const link = el(
        'a',
        { href: snapshot.url, target: '_blank', rel: 'noopener', class: 'snapshot-link' },
        el('img', { src: snapshot.url, alt: 'Snapshot', width: 96, height: 72 }),
        `Snapshot saved ${formatTime(snapshot.time) || ''}`,
      );
      result.replaceChildren(link);
    } catch (error) {
      result.textContent =
        error.status === 503
          ? 'No snapshot: the camera is offline.'
          : 'Snapshot failed: ' + error.message;
    } finally {
      result.hidden = false;
      button.disabled = false;
    }
  }

  // -- the delta chart --------------------------------------------------------------------

  addDelta(status) {
    const now = performance.now();
    if (Array.isArray(status.deltas) && status.deltas.length) {
      // Every frame's delta since the last status: spread them over the time since then.
      const since =
        this.lastStatusAt && now - this.lastStatusAt < 2000 ? this.lastStatusAt : now - 250;
      const step = (now - since) / status.deltas.length;
      status.deltas.forEach((delta, i) => this.history.push({ t: since + step * (i + 1), delta }));
    } else if (typeof status.delta === 'number') {
      this.history.push({ t: now, delta: status.delta });
    }
    this.lastStatusAt = now;
    while (this.history.length && this.history[0].t < now - (CHART_SECONDS + 1) * 1000) {
      this.history.shift();
    }
    this.part('.delta-now').textContent = formatPercent(status.delta);
    this.part('.threshold-now').textContent = formatPercent(status.threshold);
    this.threshold = status.threshold;
    if (typeof status.largest === 'number') {
      this.part('.largest-now').textContent = formatPercent(status.largest);
      this.part('.min-area').textContent = formatPercent(status.min_area);
    }
    this.drawChart();
  }

  drawChart() {
    const canvas = this.chart;
    const ratio = window.devicePixelRatio || 1;
    const width = canvas.clientWidth;
    const height = canvas.clientHeight;
    if (!width || !height) return;
    if (canvas.width !== Math.round(width * ratio)) canvas.width = Math.round(width * ratio);
    if (canvas.height !== Math.round(height * ratio)) canvas.height = Math.round(height * ratio);
    const ctx = canvas.getContext('2d');
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, width, height);

    const now = performance.now();
    const start = now - CHART_SECONDS * 1000;
    const points = this.history;
    const threshold = typeof this.threshold === 'number' ? this.threshold : 0;
    const peak = points.reduce((max, p) => Math.max(max, p.delta), 0);
    const top = Math.max(threshold * 2, peak * 1.1, 0.001);
    const padTop = 14;
    const x = (t) => ((t - start) / (CHART_SECONDS * 1000)) * width;
    const y = (v) => height - 1 - (Math.min(v, top) / top) * (height - padTop - 1);

    if (points.length) {
      const area = new Path2D();
      area.moveTo(x(points[0].t), y(0));
      for (const p of points) area.lineTo(x(p.t), y(p.delta));
      area.lineTo(x(points[points.length - 1].t), y(0));
      area.closePath();
      ctx.fillStyle = cssColor('--chart-fill');
      ctx.fill(area);
      // What is above the threshold (changed frames) in the alarm colour.
      ctx.save();
      ctx.beginPath();
      ctx.rect(0, 0, width, y(threshold));
      ctx.clip();
      ctx.fillStyle = cssColor('--chart-over');
      ctx.fill(area);
      ctx.restore();

      ctx.beginPath();
      points.forEach((p, i) =>
        i ? ctx.lineTo(x(p.t), y(p.delta)) : ctx.moveTo(x(p.t), y(p.delta)),
      );
      ctx.strokeStyle = cssColor('--chart-line');
      ctx.lineWidth = 1.5;
      ctx.stroke();
    }

    ctx.beginPath();
    ctx.setLineDash([5, 4]);
    ctx.moveTo(0, y(threshold));
    ctx.lineTo(width, y(threshold));
    ctx.strokeStyle = cssColor('--chart-threshold');
    ctx.lineWidth = 1.5;
    ctx.stroke();
    ctx.setLineDash([]);

    ctx.font = '11px system-ui, sans-serif';
    ctx.fillStyle = cssColor('--muted');
    ctx.textBaseline = 'top';
    ctx.fillText(formatPercent(top), 2, 1);
    ctx.textAlign = 'right';
    ctx.fillStyle = cssColor('--chart-threshold');
    ctx.textBaseline = 'bottom';
    ctx.fillText('threshold', width - 2, y(threshold) - 2);
    ctx.textAlign = 'left';

    this.chartUpdates += 1;
    canvas.dataset.points = String(points.length);
    canvas.dataset.updates = String(this.chartUpdates);
  }
}

// -- newest clips and snapshots ------------------------------------------------------------

function clipThumb(clip) {
  const thumb = clipThumbUrl(clip);
  const poster = thumb
    ? el('img', { src: thumb, alt: '', loading: 'lazy', width: 160, height: 120 })
    : el('span', { class: 'no-poster' }, 'no picture');
  return el(
    'a',
    { class: 'thumb', href: 'clips#' + encodePath(clip.id), 'data-clip': clip.id },
    poster,
    el('span', { class: 'thumb-title' }, formatTime(clip.start_ts ?? clip.start)),
    el('span', { class: 'thumb-meta' }, `${clip.camera} · ${formatDuration(clip.duration)}`),
  );
}

function warnThumb(snapshot) {
  const href = snapshot.clip_id ? 'clips#' + encodePath(snapshot.clip_id) : snapshot.url;
  return el(
    'a',
    { class: 'thumb', href },
    el('img', { src: snapshot.url, alt: '', loading: 'lazy', width: 160, height: 120 }),
    el('span', { class: 'thumb-title' }, formatTime(snapshot.time)),
    el('span', { class: 'thumb-meta' }, snapshot.camera),
  );
}

async function loadRecent() {
  const clipsBox = document.getElementById('recent-clips');
  const warnBox = document.getElementById('recent-warn');
  try {
    const [clips, warn] = await Promise.all([
      api(`api/clips?limit=${RECENT_COUNT}`),
      api(`api/snapshots?kind=warn&limit=${RECENT_COUNT}`),
    ]);
    clipsBox.replaceChildren(...clips.clips.map(clipThumb));
    if (!clips.clips.length) clipsBox.append(el('p', { class: 'muted' }, 'No clips yet.'));
    warnBox.replaceChildren(...warn.snapshots.map(warnThumb));
    if (!warn.snapshots.length)
      warnBox.append(el('p', { class: 'muted' }, 'Nothing has moved yet.'));
  } catch (error) {
    if (error.status !== 401) clipsBox.replaceChildren(el('p', { class: 'muted' }, error.message));
  }
}

let recentTimer = null;
function refreshRecentSoon() {
  // The clip is indexed once its sidecar is written, shortly after recording stops.
  clearTimeout(recentTimer);
  recentTimer = setTimeout(loadRecent, 1500);
}

// -- the page ------------------------------------------------------------------------------

async function loadCameras() {
  const box = document.getElementById('cameras');
  let list;
  try {
    list = await api('api/cameras');
  } catch (error) {
    if (error.status === 401) return;
    notify(`Cannot load the cameras (${error.message}); retrying…`, 'error');
    setTimeout(loadCameras, 3000);
    return;
  }
  notify('');
  box.replaceChildren();
  if (!list.length) box.append(el('p', { class: 'muted' }, 'No cameras are configured.'));
  const only = new URLSearchParams(location.search).get('camera');
  if (only && list.some((info) => info.name === only)) {
    list = list.filter((info) => info.name === only);
  }
  box.dataset.count = String(list.length);
  for (const info of list) {
    const camera = new LiveCamera(info, refreshRecentSoon);
    cameras.set(camera.name, camera);
    box.append(camera.card);
    camera.connect();
  }
}

document.addEventListener('visibilitychange', () => {
  // A hidden tab gets no frames at all; it reconnects when shown again.
  for (const camera of cameras.values()) {
    if (document.hidden) camera.disconnect();
    else camera.connect();
  }
  if (!document.hidden) loadRecent();
});

initHeader();
loadCameras();
loadRecent();
setInterval(() => {
  if (!document.hidden) loadRecent();
}, RECENT_REFRESH_MS);
