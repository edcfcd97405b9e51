// The clip browser: clips (or snapshots) grouped by day and camera, filters, "load more", and a
// player for the clip named in the URL's fragment (clips#<clip id>) with keep, download, delete.

import {
  api,
  clipThumbUrl,
  el,
  encodePath,
  formatBytes,
  formatDay,
  formatDuration,
  formatPercent,
  formatTime,
  initHeader,
  localDayKey,
  notify,
  toDate,
} from './common.js';

const PAGE_SIZE = 30;
const TABS = ['clips', 'warn', 'snapshot'];
const NOUNS = { clips: 'clips', warn: 'motion snapshots', snapshot: 'snapshots' };
const NOUN = { clips: 'clip', warn: 'motion snapshot', snapshot: 'snapshot' };

const state = { tab: 'clips', camera: '', date: '', pageSize: PAGE_SIZE };
const list = {
  offset: 0,
  total: 0,
  loading: false,
  generation: 0, // bumped on every reload so a late page of an old query is dropped
  days: new Map(), // day key -> {section, cameras: Map(camera -> grid)}
  clips: new Map(), // clip id -> clip, for the player and the cards
};
let playing = null; // the clip in the player

const $ = (id) => document.getElementById(id);

// -- state in the URL: ?tab=&camera=&date= and #<clip id> -------------------------------------

function readState() {
  const params = new URLSearchParams(location.search);
  state.tab = TABS.includes(params.get('tab')) ? params.get('tab') : 'clips';
  state.camera = params.get('camera') || '';
  state.date = /^\d{4}-\d{2}-\d{2}$/.test(params.get('date') || '') ? params.get('date') : '';
  const limit = Number(params.get('limit'));
  state.pageSize = Number.isInteger(limit) && limit >= 1 && limit <= 500 ? limit : PAGE_SIZE;
}

function writeState() {
  const params = new URLSearchParams();
  if (state.tab !== 'clips') params.set('tab', state.tab);
  if (state.camera) params.set('camera', state.camera);
  if (state.date) params.set('date', state.date);
  if (state.pageSize !== PAGE_SIZE) params.set('limit', String(state.pageSize));
  const query = params.toString();
  history.replaceState(null, '', 'clips' + (query ? '?' + query : '') + location.hash);
}

function hashClipId() {
  const raw = location.hash.slice(1);
  if (!raw) return '';
  try {
    return decodeURIComponent(raw);
  } catch {
    return '';
  }
}

function clipHref(id) {
  return 'clips' + location.search + '#' + encodePath(id);
}

// Local midnight to midnight of a YYYY-MM-DD, as epoch seconds.
function dayRange(day) {
  const [year, month, date] = day.split('-').map(Number);
  const since = new Date(year, month - 1, date).getTime() / 1000;
  const until = new Date(year, month - 1, date + 1).getTime() / 1000;
  return { since, until };
}

// -- the list ---------------------------------------------------------------------------------

function queryPath() {
  const params = new URLSearchParams({
    limit: String(state.pageSize),
    offset: String(list.offset),
  });
  if (state.camera) params.set('camera', state.camera);
  if (state.tab === 'clips') {
    if (state.date) {
      const { since, until } = dayRange(state.date);
      params.set('since', String(since));
      params.set('until', String(until));
    }
    return 'api/clips?' + params;
  }
  params.set('kind', state.tab);
  return 'api/snapshots?' + params;
}

function groupFor(when, camera) {
  const key = localDayKey(when);
  let day = list.days.get(key);
  if (!day) {
    const section = el('section', { class: 'day', 'data-day': key }, el('h2', {}, formatDay(when)));
    day = { section, cameras: new Map() };
    list.days.set(key, day);
    $('list').append(section);
  }
  let grid = day.cameras.get(camera);
  if (!grid) {
    grid = el('div', { class: 'grid' });
    day.section.append(el('h3', { class: 'camera-title' }, camera), grid);
    day.cameras.set(camera, grid);
  }
  return grid;
}

function clipCard(clip) {
  const thumb = clipThumbUrl(clip);
  const poster = thumb
    ? el('img', { src: thumb, alt: '', loading: 'lazy', width: 320, height: 240 })
    : el('span', { class: 'no-poster' }, 'no picture');
  const changed = `${clip.changed_frames ?? '?'} changed frames`;
  return el(
    'article',
    { class: 'card clip-card' + (clip.keep ? ' kept' : ''), 'data-clip': clip.id },
    el(
      'a',
      {
        class: 'card-link',
        href: clipHref(clip.id),
        'aria-label': `Play the clip from ${formatTime(clip.start_ts)}`,
      },
      el(
        'span',
        { class: 'poster' },
        poster,
        el('span', { class: 'duration' }, formatDuration(clip.duration)),
      ),
      el(
        'span',
        { class: 'card-text' },
        el(
          'span',
          { class: 'card-title' },
          formatTime(clip.start_ts),
          el('span', { class: 'keep-mark' }, 'kept'),
        ),
        el('span', { class: 'card-meta' }, changed),
      ),
    ),
  );
}

// Warn snapshots are a clip's first change (-start.jpg) and its biggest (-peak.jpg).
function snapshotLabel(snapshot) {
  if (snapshot.url.endsWith('-start.jpg')) return 'first change';
  if (snapshot.url.endsWith('-peak.jpg')) return 'most change';
  return '';
}

function snapshotCard(snapshot) {
  const time = formatTime(snapshot.time);
  const label = snapshotLabel(snapshot);
  return el(
    'article',
    { class: 'card snapshot-card' },
    el(
      'a',
      { class: 'card-link', href: snapshot.url, target: '_blank', rel: 'noopener' },
      el(
        'span',
        { class: 'poster' },
        el('img', {
          src: snapshot.url,
          alt: `Snapshot at ${time}`,
          loading: 'lazy',
          width: 320,
          height: 240,
        }),
      ),
    ),
    el(
      'span',
      { class: 'card-text' },
      el('span', { class: 'card-title' }, time),
      label && el('span', { class: 'card-meta' }, label),
      snapshot.clip_id
        ? el('a', { class: 'card-meta', href: clipHref(snapshot.clip_id) }, 'play the clip')
        : el(
            'span',
            { class: 'card-meta' },
            snapshot.kind === 'warn' ? 'motion' : 'taken on demand',
          ),
    ),
  );
}

function updateSummary() {
  const noun = NOUNS[state.tab];
  const where = [
    state.camera && `from ${state.camera}`,
    state.tab === 'clips' && state.date && `on ${formatDay(dayRange(state.date).since)}`,
  ]
    .filter(Boolean)
    .join(' ');
  const shown = list.offset;
  $('summary').textContent = list.total
    ? `${list.total} ${list.total === 1 ? NOUN[state.tab] : noun}${where ? ' ' + where : ''}` +
      (shown < list.total ? ` (showing ${shown})` : '')
    : `No ${noun}${where ? ' ' + where : ''}.`;
  $('more').hidden = shown >= list.total;
}

async function loadPage() {
  if (list.loading) return;
  list.loading = true;
  const generation = list.generation;
  $('more').disabled = true;
  try {
    const page = await api(queryPath());
    if (generation !== list.generation) return;
    const items = state.tab === 'clips' ? page.clips : page.snapshots;
    for (const item of items) {
      if (state.tab === 'clips') {
        list.clips.set(item.id, item);
        groupFor(item.start_ts ?? item.start, item.camera).append(clipCard(item));
      } else {
        groupFor(item.time, item.camera).append(snapshotCard(item));
      }
    }
    markSelected();
    list.offset += items.length;
    list.total = page.total;
    updateSummary();
    notify('');
  } catch (error) {
    if (error.status !== 401)
      notify(`Cannot load the ${NOUNS[state.tab]}: ${error.message}`, 'error');
  } finally {
    list.loading = false;
    $('more').disabled = false;
  }
}

function reload() {
  list.generation += 1;
  list.loading = false;
  list.offset = 0;
  list.total = 0;
  list.days.clear();
  $('list').replaceChildren();
  $('summary').textContent = 'Loading…';
  $('more').hidden = true;
  for (const tab of document.querySelectorAll('[role=tab]')) {
    tab.setAttribute('aria-selected', String(tab.dataset.tab === state.tab));
  }
  $('filter-date-label').hidden = state.tab !== 'clips';
  $('filter-camera').value = state.camera;
  $('filter-date').value = state.date;
  loadPage();
}

// -- the player -------------------------------------------------------------------------------

function clipDetails(clip) {
  const parts = [
    formatDuration(clip.duration),
    clip.changed_frames == null
      ? `${clip.frames} frames`
      : `${clip.frames} frames, ${clip.changed_frames} changed`,
    clip.peak_delta != null && `peak ${formatPercent(clip.peak_delta)} of the picture`,
    clip.width &&
      `${clip.width}×${clip.height} ${clip.codec || ''} ${clip.fps ? clip.fps.toFixed(1) + ' fps' : ''}`.trim(),
    clip.mode === 'copy' && 'as the camera sent it',
    clip.mode === 'transcode' && clip.source_codec && !['rawvideo', 'mjpeg'].includes(clip.source_codec) &&
      `re-encoded from ${CODEC_NAMES[clip.source_codec] || clip.source_codec}`,
    clip.audio && 'with sound',
    formatBytes(clip.size),
  ];
  if (clip.dropped_frames) parts.push(`${clip.dropped_frames} frames dropped`);
  if (clip.recovered) parts.push('recovered after a crash');
  return parts.filter(Boolean).join(' · ');
}

// What a browser is asked before it is given a clip (RFC 6381 codec strings, typical levels).
const CODEC_TYPES = {
  h264: 'video/mp4; codecs="avc1.4D401F"',
  hevc: 'video/mp4; codecs="hvc1.1.6.L93.B0"',
  vp9: 'video/mp4; codecs="vp09.00.31.08"',
  mpeg4: 'video/mp4; codecs="mp4v.20.9"',
};
const CODEC_NAMES = { h264: 'H.264', hevc: 'H.265 (HEVC)', vp9: 'VP9', mpeg4: 'MPEG-4 Part 2' };

// Why this browser cannot play the clip, or '' when it can (as far as it says).
function unplayableReason(clip, video) {
  const type = CODEC_TYPES[clip.codec];
  if (!type || video.canPlayType(type) !== '') return '';
  const name = CODEC_NAMES[clip.codec] || clip.codec;
  return `This browser cannot play ${name} video. Download the clip, or open this page in a browser that plays it` +
    (clip.codec === 'hevc' ? ' (Safari, or Chrome and Edge with hardware decoding).' : '.');
}

function showClip(clip) {
  playing = clip;
  const video = $('player-video');
  const reason = unplayableReason(clip, video);
  $('player-unplayable').textContent = reason;
  $('player-unplayable').hidden = !reason;
  video.hidden = Boolean(reason);
  if (video.dataset.clip !== clip.id) {
    video.dataset.clip = clip.id;
    video.poster = clip.poster_url || '';
    // Muted lets playback start without a gesture; clips with sound unmute from the controls.
    video.muted = true;
    if (reason) {
      video.removeAttribute('src');
      video.load();
    } else {
      video.src = clip.url;
      video.play().catch(() => {});
    }
  }
  const start = toDate(clip.start_ts ?? clip.start);
  $('player-title').textContent = `${clip.camera} · ${formatDay(start)} ${formatTime(start)}`;
  $('player-details').textContent = clipDetails(clip);
  $('player-download').href = clip.url + '?download=1';
  // The timeline opened at the clip's start (the same deep link as the MQTT last clip's).
  const moment = new Date((clip.start_ts ?? Date.parse(clip.start) / 1000) * 1000).toISOString();
  $('player-review').href = `review?camera=${encodeURIComponent(clip.camera)}&t=${moment}`;
  const keep = $('player-keep');
  keep.setAttribute('aria-pressed', String(Boolean(clip.keep)));
  keep.textContent = clip.keep ? 'Kept' : 'Keep';
  keep.title = clip.keep
    ? 'Kept clips are never removed by retention. Click to unkeep.'
    : 'Never remove this clip by retention';
  const shots = (clip.snapshot_urls || []).map((shot) =>
    el(
      'a',
      { class: 'thumb', href: shot, target: '_blank', rel: 'noopener' },
      el('img', { src: shot, alt: 'What moved', loading: 'lazy', width: 160, height: 120 }),
    ),
  );
  $('player-snapshots').replaceChildren(...shots);
  markSelected();
  const player = $('player');
  if (player.hidden) {
    player.hidden = false;
    player.scrollIntoView({ block: 'start', behavior: 'smooth' });
  }
}

// Outlines the playing clip's card (the list may arrive after the player opened).
function markSelected() {
  for (const card of document.querySelectorAll('.clip-card.selected'))
    card.classList.remove('selected');
  if (!playing) return;
  const card = document.querySelector(`.clip-card[data-clip="${CSS.escape(playing.id)}"]`);
  if (card) card.classList.add('selected');
}

async function openClipFromHash() {
  const id = hashClipId();
  if (!id) {
    closePlayer(false);
    return;
  }
  let clip = list.clips.get(id);
  if (!clip) {
    try {
      clip = await api('api/clips/' + encodePath(id));
    } catch (error) {
      if (error.status !== 401)
        notify(error.status === 404 ? 'That clip no longer exists.' : error.message, 'error');
      return;
    }
  }
  showClip(clip);
}

function closePlayer(clearHash = true) {
  playing = null;
  const video = $('player-video');
  video.pause();
  video.removeAttribute('src');
  delete video.dataset.clip;
  video.load();
  $('player').hidden = true;
  markSelected();
  if (clearHash && location.hash)
    history.replaceState(null, '', location.pathname + location.search);
}

function replaceClip(clip) {
  list.clips.set(clip.id, clip);
  const card = document.querySelector(`.clip-card[data-clip="${CSS.escape(clip.id)}"]`);
  if (card) card.classList.toggle('kept', Boolean(clip.keep));
  if (playing && playing.id === clip.id) showClip(clip);
}

async function toggleKeep() {
  if (!playing) return;
  const button = $('player-keep');
  button.disabled = true;
  try {
    replaceClip(
      await api('api/clips/' + encodePath(playing.id), {
        method: 'PATCH',
        body: { keep: !playing.keep },
      }),
    );
  } catch (error) {
    if (error.status !== 401) notify('Could not change keep: ' + error.message, 'error');
  } finally {
    button.disabled = false;
  }
}

async function deletePlaying() {
  if (!playing) return;
  const clip = playing;
  const when = `${formatDay(clip.start_ts)} ${formatTime(clip.start_ts)}`;
  if (!confirm(`Delete the clip from ${clip.camera}, ${when}? This cannot be undone.`)) return;
  try {
    await api('api/clips/' + encodePath(clip.id), { method: 'DELETE' });
  } catch (error) {
    if (error.status !== 401) notify('Could not delete the clip: ' + error.message, 'error');
    return;
  }
  closePlayer();
  list.clips.delete(clip.id);
  const card = document.querySelector(`.clip-card[data-clip="${CSS.escape(clip.id)}"]`);
  if (card) {
    const grid = card.parentElement;
    card.remove();
    if (!grid.children.length) {
      grid.previousElementSibling.remove(); // the camera's heading
      grid.remove();
    }
    for (const [key, day] of list.days) {
      if (!day.section.querySelector('.card')) {
        day.section.remove();
        list.days.delete(key);
      }
    }
    for (const day of list.days.values()) {
      for (const [camera, g] of day.cameras) if (!g.isConnected) day.cameras.delete(camera);
    }
    list.offset -= 1;
  }
  list.total = Math.max(0, list.total - 1);
  updateSummary();
  notify('Clip deleted.');
}

// -- wiring -----------------------------------------------------------------------------------

async function loadCameraChoices() {
  try {
    const cameras = await api('api/cameras');
    const select = $('filter-camera');
    for (const camera of cameras) select.append(el('option', { value: camera.name }, camera.name));
    if (state.camera && !cameras.some((c) => c.name === state.camera)) {
      select.append(el('option', { value: state.camera }, state.camera)); // an old camera's clips
    }
    select.value = state.camera;
  } catch {
    // the list still works without the choices
  }
}

function init() {
  readState();
  for (const tab of document.querySelectorAll('[role=tab]')) {
    tab.addEventListener('click', () => {
      if (tab.dataset.tab !== state.tab) closePlayer();
      state.tab = tab.dataset.tab;
      writeState();
      reload();
    });
  }
  $('filter-camera').addEventListener('change', (event) => {
    state.camera = event.target.value;
    writeState();
    reload();
  });
  $('filter-date').addEventListener('change', (event) => {
    state.date = event.target.value;
    writeState();
    reload();
  });
  $('filter-clear').addEventListener('click', () => {
    state.camera = '';
    state.date = '';
    writeState();
    reload();
  });
  $('filters').addEventListener('submit', (event) => event.preventDefault());
  $('more').addEventListener('click', loadPage);
  $('player-keep').addEventListener('click', toggleKeep);
  $('player-delete').addEventListener('click', deletePlaying);
  $('player-close').addEventListener('click', () => closePlayer());
  window.addEventListener('hashchange', openClipFromHash);

  initHeader();
  loadCameraChoices();
  reload();
  openClipFromHash();
}

init();
