// All cameras at once: a tile per camera, the sub stream's H.264 in a <video> where the
// browser plays it (mse.js), else JPEG pictures at the tile's width and 5 fps. A tap opens the
// camera's full view on the live page (?camera=NAME).

import { api, el, initHeader, notify, url } from './common.js';
import { MsePlayer, canPlayMp4 } from './mse.js';

const JPEG_FPS = 5;
const RETRY_MS = 3000;

class Tile {
  constructor(info) {
    this.name = info.name;
    this.video = el('video', { muted: true, playsinline: true, hidden: true });
    this.image = el('img', { alt: `${info.name}, live`, width: 480, height: 270 });
    this.label = el('span', { class: 'tile-name' }, info.name);
    this.element = el(
      'a',
      { class: 'tile', href: '?camera=' + encodeURIComponent(info.name), 'data-camera': info.name },
      this.image,
      this.video,
      this.label,
    );
    this.player = null;
    this.socket = null;
    this.refused = false;
    this.frames = 0;
  }

  start() {
    this.startJpeg();
    if (canPlayMp4() && !this.refused) this.startVideo();
  }

  startVideo() {
    this.player = new MsePlayer(this.video, this.name, 'sub', {
      onPlaying: () => {
        this.video.hidden = false;
        this.image.hidden = true;
        this.element.dataset.view = 'video';
        this.stopJpeg();
      },
      onUnsupported: () => {
        this.refused = true;
        this.player = null;
        this.showJpeg();
      },
      onClosed: () => {
        this.player = null;
        this.showJpeg();
        setTimeout(() => this.startVideo(), RETRY_MS);
      },
    });
  }

  showJpeg() {
    this.video.hidden = true;
    this.image.hidden = false;
    this.element.dataset.view = 'jpeg';
    if (!this.socket) this.startJpeg();
  }

  startJpeg() {
    const target = url('ws/live/' + encodeURIComponent(this.name));
    target.protocol = target.protocol === 'https:' ? 'wss:' : 'ws:';
    const width = Math.round((this.element.clientWidth || 480) * (window.devicePixelRatio || 1));
    target.searchParams.set('width', String(width));
    target.searchParams.set('fps', String(JPEG_FPS));
    const socket = new WebSocket(target);
    this.socket = socket;
    socket.addEventListener('message', (event) => {
      if (typeof event.data === 'string' || socket !== this.socket) return;
      const previous = this.image.src;
      this.image.src = URL.createObjectURL(new Blob([event.data], { type: 'image/jpeg' }));
      if (previous.startsWith('blob:')) URL.revokeObjectURL(previous);
      this.frames += 1;
      this.image.dataset.frames = String(this.frames);
    });
    socket.addEventListener('close', () => {
      if (socket !== this.socket) return;
      this.socket = null;
      setTimeout(() => !this.socket && this.image.hidden === false && this.startJpeg(), RETRY_MS);
    });
  }

  stopJpeg() {
    const socket = this.socket;
    this.socket = null;
    if (socket) socket.close(1000);
  }
}

async function loadGrid() {
  const box = document.getElementById('grid');
  let list;
  try {
    list = await api('api/cameras');
  } catch (error) {
    if (error.status === 401) return;
    notify(`Cannot load the cameras (${error.message}); retrying…`, 'error');
    setTimeout(loadGrid, RETRY_MS);
    return;
  }
  notify('');
  box.replaceChildren();
  if (!list.length) box.append(el('p', { class: 'muted' }, 'No cameras are configured.'));
  box.dataset.count = String(list.length);
  for (const info of list) {
    const tile = new Tile(info);
    box.append(tile.element);
    tile.start();
  }
}

initHeader();
loadGrid();
