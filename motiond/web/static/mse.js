// The live view as the camera sent it: fragmented MP4 from /ws/live/<camera>?format=mp4 played
// in a <video> through Media Source Extensions (ManagedMediaSource where that is what the
// browser has: iOS 17.1+). It stays at the live edge: more than MAX_BEHIND_S behind, it jumps
// forward; more than CATCH_UP_S behind, it plays 10% faster until close again. Where MSE or the stream's codec is not supported, or the stream is not H.264/H.265 (a
// JPEG camera), it says so through onUnsupported and the page shows JPEG pictures.

import { url } from './common.js';

const MAX_BEHIND_S = 1.0; // jump to the live edge when this far behind it
const EDGE_S = 0.1; // where a jump lands, before the newest picture
// Between the two: play a little faster until close to the edge again (the browser's own
// start-up buffering would otherwise stay as latency for good).
const CATCH_UP_S = 0.25;
const CAUGHT_UP_S = 0.15;
const CATCH_UP_RATE = 1.1;
const KEEP_S = 10; // seconds of video kept behind the playhead
const MAX_QUEUE = 150; // segments waiting to be appended (a busy page): reconnect beyond
const CLOSE_UNSUPPORTED = 4415;

export function mediaSourceClass() {
  return window.ManagedMediaSource || window.MediaSource || null;
}

// True where this browser can play the live MP4 at all (the codec is checked per stream).
export function canPlayMp4() {
  return mediaSourceClass() !== null;
}

export function liveMp4Url(camera, stream) {
  const target = url('ws/live/' + encodeURIComponent(camera));
  target.protocol = target.protocol === 'https:' ? 'wss:' : 'ws:';
  target.searchParams.set('format', 'mp4');
  target.searchParams.set('stream', stream);
  return target;
}

export class MsePlayer {
  // callbacks: onPlaying(), onUnsupported(reason), onClosed(), onStream(mime message)
  constructor(video, camera, stream, callbacks) {
    this.video = video;
    this.camera = camera;
    this.stream = stream;
    this.callbacks = callbacks;
    this.queue = [];
    this.sourceBuffer = null;
    this.mediaSource = null;
    this.objectUrl = null;
    this.mime = null;
    this.clocks = []; // {media, wall}: a picture's media time and capture time (ms)
    this.latencies = []; // capture to display, ms, the newest last
    this.framesShown = 0;
    this.jumps = 0;
    this.playing = false;
    this.stopped = false;
    this.socket = new WebSocket(liveMp4Url(camera, stream));
    this.socket.binaryType = 'arraybuffer';
    this.socket.addEventListener('message', (event) => this.onMessage(event));
    this.socket.addEventListener('close', (event) => this.onClose(event));
    video.muted = true;
    video.playsInline = true;
    video.disableRemotePlayback = true; // ManagedMediaSource wants it (or an AirPlay source)
  }

  stop() {
    if (this.stopped) return;
    this.stopped = true;
    this.socket.close(1000);
    if (this.video.cancelVideoFrameCallback && this.frameCallback) {
      this.video.cancelVideoFrameCallback(this.frameCallback);
    }
    this.video.removeAttribute('src');
    this.video.load();
    if (this.objectUrl) URL.revokeObjectURL(this.objectUrl);
  }

  onMessage(event) {
    if (this.stopped) return;
    if (typeof event.data !== 'string') {
      this.queue.push(event.data);
      if (this.queue.length > MAX_QUEUE) {
        this.fail('closed'); // the page cannot keep up (a busy phone): start over
        return;
      }
      this.appendNext();
      return;
    }
    let message;
    try {
      message = JSON.parse(event.data);
    } catch {
      return;
    }
    if (message.type === 'mime') this.onMime(message);
    else if (message.type === 'clock') {
      this.clocks.push({ media: message.media_time, wall: message.wall_ms });
      this.clocks = this.clocks.slice(-8);
    } else if (message.type === 'unsupported') this.fail('unsupported', message.reason);
    else if (message.type === 'stream' && this.callbacks.onStream) this.callbacks.onStream(message);
  }

  onMime(message) {
    if (this.callbacks.onStream) this.callbacks.onStream(message);
    const Source = mediaSourceClass();
    if (!Source || !Source.isTypeSupported(message.mime)) {
      this.fail('unsupported', `this browser cannot play ${message.mime}`);
      return;
    }
    if (this.sourceBuffer) {
      // New stream parameters: the same track goes on with another codec configuration.
      if (this.mime !== message.mime && this.sourceBuffer.changeType) {
        this.sourceBuffer.changeType(message.mime);
      }
      this.mime = message.mime;
      return;
    }
    this.mime = message.mime;
    this.mediaSource = new Source();
    this.objectUrl = URL.createObjectURL(this.mediaSource);
    this.video.src = this.objectUrl;
    this.mediaSource.addEventListener('sourceopen', () => {
      if (this.stopped) return;
      this.sourceBuffer = this.mediaSource.addSourceBuffer(this.mime);
      this.sourceBuffer.mode = 'segments';
      this.sourceBuffer.addEventListener('updateend', () => this.onAppended());
      this.appendNext();
    });
  }

  appendNext() {
    const buffer = this.sourceBuffer;
    if (!buffer || buffer.updating || !this.queue.length || this.stopped) return;
    try {
      buffer.appendBuffer(this.queue.shift());
    } catch (error) {
      if (error.name === 'QuotaExceededError') {
        this.trim(0);
      } else {
        this.fail('closed');
      }
    }
  }

  onAppended() {
    if (this.stopped) return;
    this.followEdge();
    if (!this.trim(KEEP_S)) this.appendNext();
  }

  // Drops what is more than ``keep`` seconds behind the playhead; true if it started to.
  trim(keep) {
    const buffer = this.sourceBuffer;
    if (!buffer || buffer.updating || !buffer.buffered.length) return false;
    const start = buffer.buffered.start(0);
    const until = this.video.currentTime - keep;
    if (until - start < 2) return false;
    buffer.remove(start, until);
    return true;
  }

  followEdge() {
    const video = this.video;
    const ranges = video.buffered;
    if (!ranges.length) return;
    const last = ranges.length - 1;
    const end = ranges.end(last);
    const start = ranges.start(last);
    const inLast = video.currentTime >= start && video.currentTime <= end;
    const behind = end - video.currentTime;
    if (!inLast || behind > MAX_BEHIND_S) {
      if (this.playing) this.jumps += 1;
      video.currentTime = Math.max(start, end - EDGE_S);
      video.playbackRate = 1;
    } else if (video.playbackRate === 1 && behind > CATCH_UP_S) {
      video.playbackRate = CATCH_UP_RATE;
    } else if (video.playbackRate !== 1 && behind < CAUGHT_UP_S) {
      video.playbackRate = 1;
    }
    if (!this.playing) {
      this.playing = true;
      video.play().catch(() => {});
      this.watchFrames();
    }
  }

  watchFrames() {
    const video = this.video;
    if (!video.requestVideoFrameCallback) {
      video.addEventListener('playing', () => this.callbacks.onPlaying(), { once: true });
      return;
    }
    const onFrame = (now, metadata) => {
      if (this.stopped) return;
      this.framesShown += 1;
      if (this.framesShown === 1) this.callbacks.onPlaying();
      this.measure(metadata);
      this.frameCallback = video.requestVideoFrameCallback(onFrame);
    };
    this.frameCallback = video.requestVideoFrameCallback(onFrame);
  }

  // Capture to display: the picture's capture time (from the server's clock messages) to
  // when the browser shows it. Both clocks are this machine's or NTP's: approximate.
  measure(metadata) {
    const clock = this.clocks.length ? this.clocks[this.clocks.length - 1] : null;
    if (!clock || typeof metadata.mediaTime !== 'number') return;
    const captured = clock.wall + (metadata.mediaTime - clock.media) * 1000;
    const shown = performance.timeOrigin + metadata.expectedDisplayTime;
    const latency = shown - captured;
    if (latency < -1000 || latency > 60000) return; // clocks apart: no figure
    this.latencies.push(latency);
    if (this.latencies.length > 600) this.latencies.shift();
    // The last second's figures, for whoever measures the page (the tests, the benchmark).
    this.video.dataset.latencies = this.latencies.slice(-15).map(Math.round).join(',');
  }

  behind() {
    const ranges = this.video.buffered;
    return ranges.length ? ranges.end(ranges.length - 1) - this.video.currentTime : null;
  }

  fail(kind, reason) {
    if (this.stopped) return;
    this.stop();
    if (kind === 'unsupported') this.callbacks.onUnsupported(reason || 'unsupported');
    else this.callbacks.onClosed();
  }

  onClose(event) {
    if (this.stopped) return;
    if (event.code === CLOSE_UNSUPPORTED) this.fail('unsupported', event.reason);
    else this.fail('closed');
  }
}
