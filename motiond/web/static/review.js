// The timeline (/review): a bar per camera along the hours of a day, its footage and events
// (GET api/timeline, one request per camera and day), zoom from a day to minutes, tap or drag to
// play from that moment, previous/next event, and the same moment on every camera side by side.
// /review?camera=NAME&t=ISO8601 opens at that moment. Times are epoch seconds throughout.

import { api, el, formatDay, formatTime, initHeader, localDayKey, notify } from './common.js';

const MIN_SPAN = 120; // the closest zoom: two minutes across
const MAX_SPAN = 86400;
const DEEP_LINK_SPAN = 3600; // a deep link opens an hour around its moment
const EVENT_MARGIN = 1.5; // previous/next skip events this close to the cursor
const SEEK_EVERY_MS = 150; // while scrubbing, the video seeks at most this often
const TICK_STEPS = [60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600];
const phone = window.matchMedia('(max-width: 700px)');
const tickFormat = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });

const state = {
  cameras: [], // names
  selected: null, // the camera the player follows (the only one shown on a phone)
  all: false, // the same moment on every camera
  view: { start: 0, end: 0 },
  cursor: null, // the chosen moment, or the playing one
  days: new Map(), // `${camera} ${dayStart}` -> the API's answer (or a pending promise)
};
const players = new Map(); // camera -> { box, video, caption, piece }

const $ = (id) => document.getElementById(id);

// -- days and data ---------------------------------------------------------------------------

function dayStart(t) {
  const d = new Date(t * 1000);
  return new Date(d.getFullYear(), d.getMonth(), d.getDate()).getTime() / 1000;
}

function dayAfter(start) {
  const d = new Date(start * 1000);
  return new Date(d.getFullYear(), d.getMonth(), d.getDate() + 1).getTime() / 1000;
}

function dayBefore(start) {
  const d = new Date(start * 1000);
  return new Date(d.getFullYear(), d.getMonth(), d.getDate() - 1).getTime() / 1000;
}

function daysOf(start, end) {
  const days = [];
  for (let day = dayStart(start); day < end; day = dayAfter(day)) days.push(day);
  return days;
}

function shownCameras() {
  if (phone.matches || !state.all) return state.selected ? [state.selected] : [];
  return state.cameras;
}

function barCameras() {
  return phone.matches ? shownCameras() : state.cameras;
}

// A day still under way is asked again after this long (new clips, a camera going offline).
const TODAY_FRESH_MS = 60000;

async function loadDay(camera, day) {
  const key = `${camera} ${day}`;
  const known = state.days.get(key);
  const stale = known && !(known instanceof Promise) && known.until > Date.now() / 1000 && Date.now() - known.fetchedAt > TODAY_FRESH_MS;
  if (known && !stale) return known instanceof Promise ? known : Promise.resolve(known);
  const until = dayAfter(day);
  const query = new URLSearchParams({ camera, since: String(day), until: String(until) });
  const pending = api('api/timeline?' + query).then(
    (data) => {
      data.fetchedAt = Date.now();
      state.days.set(key, data);
      return data;
    },
    (error) => {
      if (known) state.days.set(key, known);
      else state.days.delete(key);
      notify(`Timeline of ${camera}: ${error.message}`, 'error');
      return null;
    },
  );
  if (!known) state.days.set(key, pending);
  return pending;
}

// The cameras whose days the view needs: the one shown on a phone, every one on a desktop.
function loadedCameras() {
  return phone.matches ? shownCameras() : state.cameras;
}

async function loadView() {
  const loads = [];
  for (const camera of loadedCameras())
    for (const day of daysOf(state.view.start, state.view.end)) loads.push(loadDay(camera, day));
  await Promise.all(loads);
}

// Everything loaded for a camera (the days it spans, clips across midnight once).
function cameraData(camera) {
  const merged = { clips: [], segments: [], recorded: [], offline: [], tampered: [], snapshots: [] };
  const seen = new Set();
  for (const [key, data] of state.days) {
    if (!key.startsWith(camera + ' ') || !data || data instanceof Promise) continue;
    for (const name of ['recorded', 'offline', 'tampered', 'snapshots']) merged[name].push(...(data[name] || []));
    for (const clip of data.clips) {
      if (seen.has(clip.id)) continue;
      seen.add(clip.id);
      merged.clips.push(clip);
    }
    for (const segment of data.segments || []) {
      if (seen.has(segment.url)) continue;
      seen.add(segment.url);
      merged.segments.push(segment);
    }
  }
  return merged;
}

// What can be played: continuous segments first, then clips; each {start, end, url, kind}.
function pieces(camera) {
  const data = cameraData(camera);
  const segments = data.segments.map((s) => ({ ...s, kind: 'segment' }));
  const clips = data.clips.map((c) => ({ start: c.start, end: c.end, url: c.url, kind: 'clip', id: c.id }));
  const byStart = (a, b) => a.start - b.start;
  return { segments: segments.sort(byStart), clips: clips.sort(byStart) };
}

// The piece covering t (a segment where there is one), else the next one after t.
function pieceAt(camera, t) {
  const { segments, clips } = pieces(camera);
  const covering = (list) => list.find((p) => p.start <= t && t < p.end);
  const found = covering(segments) || covering(clips);
  if (found) return { piece: found, offset: t - found.start };
  const next = [...segments, ...clips].filter((p) => p.start > t).sort((a, b) => a.start - b.start)[0];
  return next ? { piece: next, offset: 0, later: true } : null;
}

// The piece that takes over when `piece` ends: the one covering its end, else the next.
function pieceAfter(camera, piece) {
  const { segments, clips } = pieces(camera);
  const edge = piece.end - 0.05;
  const candidates = [...segments, ...clips].filter((p) => p.url !== piece.url && p.end > edge + 0.1);
  const covering = candidates.filter((p) => p.start <= edge);
  if (covering.length) {
    const best = covering.find((p) => p.kind === 'segment') || covering[0];
    return { piece: best, offset: Math.max(0, piece.end - best.start) };
  }
  const next = candidates.filter((p) => p.start > edge).sort((a, b) => a.start - b.start)[0];
  return next ? { piece: next, offset: 0 } : null;
}

function eventTimes() {
  const times = [];
  for (const camera of shownCameras()) {
    const data = cameraData(camera);
    times.push(...data.clips.map((c) => c.start));
    times.push(...data.snapshots.map((s) => s.ts));
    times.push(...data.tampered.map((t) => t.start));
    times.push(...data.offline.map((o) => o.start));
  }
  return times.sort((a, b) => a - b);
}

// -- drawing ---------------------------------------------------------------------------------

function position(t) {
  const { start, end } = state.view;
  return ((t - start) / (end - start)) * 100;
}

function spanElement(kind, start, end, title) {
  const left = Math.max(0, position(start));
  const right = Math.min(100, position(end));
  if (right <= 0 || left >= 100) return null;
  const element = el('div', { class: `span ${kind}`, title, 'data-start': start, 'data-end': end });
  element.style.left = left + '%';
  element.style.width = Math.max(right - left, 0.15) + '%';
  return element;
}

function markElement(kind, t, title, extra = {}) {
  const left = position(t);
  if (left < 0 || left > 100) return null;
  const element = el('div', { class: `mark ${kind}`, title, 'data-ts': t, ...extra });
  element.style.left = left + '%';
  return element;
}

function drawAxis() {
  const { start, end } = state.view;
  const span = end - start;
  const width = $('axis').clientWidth || 600;
  const step = TICK_STEPS.find((s) => (s / span) * width >= 64) || 21600;
  const ticks = [];
  // Ticks on local clock times (a multiple of the step after local midnight).
  let t = dayStart(start);
  while (t < start) t += step;
  for (; t <= end; t += step) {
    const date = new Date(t * 1000);
    const midnight = date.getHours() === 0 && date.getMinutes() === 0;
    const label = midnight ? localDayKey(t).slice(5) : tickFormat.format(new Date(t * 1000));
    const tick = el('span', { class: midnight ? 'tick midnight' : 'tick' }, label);
    tick.style.left = position(t) + '%';
    ticks.push(tick);
  }
  $('axis').replaceChildren(...ticks);
  $('span-label').textContent = span >= 3600 ? `${+(span / 3600).toFixed(1)} h` : `${Math.round(span / 60)} min`;
  $('day').value = localDayKey((start + end) / 2);
}

function drawRow(camera) {
  const data = cameraData(camera);
  const items = [];
  for (const r of data.recorded) items.push(spanElement('recorded', r.start, r.end, 'recorded'));
  for (const o of data.offline)
    items.push(spanElement('offline', o.start, o.end, `offline ${formatTime(o.start)}–${formatTime(o.end)}`));
  for (const c of data.clips) {
    const item = spanElement('clip', c.start, c.end, `motion ${formatTime(c.start)}–${formatTime(c.end)}`);
    if (!item) continue;
    item.dataset.clip = c.id;
    if (c.poster) item.dataset.poster = c.poster;
    items.push(item);
  }
  for (const s of data.snapshots) items.push(markElement('snapshot', s.ts, `snapshot ${formatTime(s.ts)}`, { 'data-url': s.url }));
  for (const t of data.tampered)
    items.push(markElement('tamper', t.start, `${t.detail || t.kind} ${formatTime(t.start)}`));
  const cursor = el('div', { class: 'cursor', hidden: state.cursor === null });
  if (state.cursor !== null) cursor.style.left = position(state.cursor) + '%';
  const bar = el('div', { class: 'bar', 'data-camera': camera }, ...items.filter(Boolean), cursor);
  const label = el('button', { type: 'button', class: 'row-label', 'aria-pressed': String(camera === state.selected) }, camera);
  label.addEventListener('click', () => selectCamera(camera));
  return el('div', { class: 'row', 'data-camera': camera }, label, bar);
}

function draw() {
  drawAxis();
  $('rows').replaceChildren(...barCameras().map(drawRow));
  drawCursor();
}

function drawCursor() {
  const timeline = $('timeline');
  timeline.dataset.viewStart = String(state.view.start);
  timeline.dataset.viewEnd = String(state.view.end);
  if (state.cursor !== null) timeline.dataset.cursor = String(state.cursor);
  for (const cursor of document.querySelectorAll('.bar .cursor')) {
    const inside = state.cursor !== null && position(state.cursor) >= 0 && position(state.cursor) <= 100;
    cursor.hidden = !inside;
    if (inside) cursor.style.left = position(state.cursor) + '%';
  }
  $('moment').textContent = state.cursor === null ? 'Tap or drag along a bar to play from that moment.' : `${formatDay(state.cursor)} ${formatTime(state.cursor)}`;
}

// -- the view --------------------------------------------------------------------------------

async function setView(start, end) {
  const span = Math.min(MAX_SPAN, Math.max(MIN_SPAN, end - start));
  const middle = (start + end) / 2;
  state.view = { start: middle - span / 2, end: middle + span / 2 };
  draw();
  await loadView();
  draw();
}

function zoom(factor, around = null) {
  const { start, end } = state.view;
  const pivot = around ?? (state.cursor !== null && state.cursor >= start && state.cursor <= end ? state.cursor : (start + end) / 2);
  const span = Math.min(MAX_SPAN, Math.max(MIN_SPAN, (end - start) * factor));
  const share = (pivot - start) / (end - start);
  return setView(pivot - share * span, pivot - share * span + span);
}

function pan(fraction) {
  const span = state.view.end - state.view.start;
  return setView(state.view.start + fraction * span, state.view.end + fraction * span);
}

function showDay(day) {
  return setView(day, dayAfter(day));
}

async function ensureVisible(t) {
  const { start, end } = state.view;
  if (t >= start && t <= end) return;
  const span = end - start;
  await setView(t - span / 2, t + span / 2);
}

// -- playing ---------------------------------------------------------------------------------

function player(camera) {
  let entry = players.get(camera);
  if (entry) return entry;
  const video = el('video', { playsinline: true, preload: 'auto', controls: true, 'data-camera': camera });
  video.muted = true;
  const caption = el('p', { class: 'player-caption' });
  const box = el('figure', { class: 'review-player', 'data-camera': camera }, video, caption);
  entry = { box, video, caption, piece: null, camera };
  video.addEventListener('timeupdate', () => onTimeUpdate(entry));
  video.addEventListener('ended', () => onEnded(entry));
  players.set(camera, entry);
  return entry;
}

function momentOf(entry) {
  return entry.piece ? entry.piece.start + entry.video.currentTime : null;
}

function load(entry, found, play) {
  const { video } = entry;
  entry.piece = found.piece;
  video.dataset.pieceStart = String(found.piece.start);
  video.dataset.kind = found.piece.kind;
  video.dataset.url = found.piece.url;
  const offset = Math.max(0, found.offset);
  delete video.dataset.playedFrom;
  // Where playback really began (the tests compare it with the moment asked for).
  const began = () => {
    if (entry.piece === found.piece) video.dataset.playedFrom = String(found.piece.start + video.currentTime);
  };
  // Footage later than the moment asked for waits, paused, for a press on play: the cursor
  // stays at the moment (previous/next event step from there).
  const playing = play && !found.later;
  const begin = () => {
    // A later choice of footage may have come first (its metadata was there already): this
    // one is stale and must not seek or pause over it.
    if (entry.piece !== found.piece) return;
    // A video already playing fires no 'playing' after a seek, only 'seeked'.
    if (playing) video.addEventListener(video.paused ? 'playing' : 'seeked', began, { once: true });
    video.currentTime = offset;
    if (playing) video.play().catch(() => {});
    else video.pause();
  };
  if (video.getAttribute('src') === found.piece.url && video.readyState >= 1) {
    begin();
  } else {
    video.src = found.piece.url;
    video.addEventListener('loadedmetadata', begin, { once: true });
  }
  const time = formatTime(found.piece.start + offset);
  const later = found.later ? ` (nothing at ${formatTime(state.cursor)}; the next footage: press play)` : '';
  entry.caption.textContent = `${entry.camera} · ${time}${later}`;
}

function playAt(t, play = true) {
  state.cursor = t;
  drawCursor();
  const shown = shownCameras();
  for (const camera of shown) {
    const entry = player(camera);
    const found = pieceAt(camera, t);
    entry.video.hidden = !found;
    if (found) {
      load(entry, found, play);
    } else {
      entry.piece = null;
      entry.video.pause();
      entry.video.removeAttribute('src');
      delete entry.video.dataset.pieceStart;
      entry.caption.textContent = `${camera} · no footage at or after ${formatTime(t)}`;
    }
  }
  $('players').replaceChildren(...shown.map((c) => player(c).box));
  $('players').dataset.count = String(shown.length);
  const query = new URLSearchParams({ camera: state.selected, t: new Date(t * 1000).toISOString() });
  history.replaceState(null, '', '?' + query);
}

function onTimeUpdate(entry) {
  if (entry.camera !== state.selected || scrub.active || entry.video.paused) return;
  const t = momentOf(entry);
  if (t === null) return;
  state.cursor = t;
  if (t > state.view.end) pan(0.5);
  drawCursor();
}

function onEnded(entry) {
  if (!entry.piece) return;
  const next = pieceAfter(entry.camera, entry.piece);
  if (next) load(entry, next, true);
}

async function goToEvent(direction) {
  const from = state.cursor ?? (state.view.start + state.view.end) / 2;
  const pick = () => {
    const times = eventTimes();
    return direction > 0 ? times.find((t) => t > from + EVENT_MARGIN) : times.reverse().find((t) => t < from - EVENT_MARGIN);
  };
  let t = pick();
  // Nothing loaded that way: look a week further, a day at a time.
  for (let day = dayStart(from), n = 0; t === undefined && n < 7; n++) {
    day = direction > 0 ? dayAfter(day) : dayBefore(day);
    if (day > Date.now() / 1000) break;
    await Promise.all(shownCameras().map((c) => loadDay(c, day)));
    t = pick();
  }
  if (t === undefined) {
    notify(direction > 0 ? 'No later event.' : 'No earlier event within a week.');
    return;
  }
  await ensureVisible(t);
  playAt(t);
}

// -- pointer: tap, drag (scrub), pinch, wheel, hover ------------------------------------------

const scrub = { active: false, lastSeek: 0, pointers: new Map(), pinch: null };

function timeAt(bar, clientX) {
  const box = bar.getBoundingClientRect();
  const share = Math.min(1, Math.max(0, (clientX - box.left) / box.width));
  return state.view.start + share * (state.view.end - state.view.start);
}

function onPointerDown(event) {
  const bar = event.target.closest('.bar');
  if (!bar) return;
  scrub.pointers.set(event.pointerId, event.clientX);
  if (scrub.pointers.size === 2) {
    const [a, b] = [...scrub.pointers.values()];
    scrub.active = false;
    scrub.pinch = { distance: Math.abs(a - b) || 1, view: { ...state.view }, middle: timeAt(bar, (a + b) / 2) };
    return;
  }
  event.preventDefault();
  bar.setPointerCapture(event.pointerId);
  if (bar.dataset.camera !== state.selected) selectCamera(bar.dataset.camera, false);
  scrub.active = true;
  scrub.bar = bar;
  state.cursor = timeAt(bar, event.clientX);
  drawCursor();
}

function onPointerMove(event) {
  if (!scrub.pointers.has(event.pointerId)) {
    hover(event);
    return;
  }
  scrub.pointers.set(event.pointerId, event.clientX);
  if (scrub.pinch && scrub.pointers.size === 2) {
    const [a, b] = [...scrub.pointers.values()];
    const factor = scrub.pinch.distance / (Math.abs(a - b) || 1);
    const { start, end } = scrub.pinch.view;
    const span = Math.min(MAX_SPAN, Math.max(MIN_SPAN, (end - start) * factor));
    const share = (scrub.pinch.middle - start) / (end - start);
    state.view = { start: scrub.pinch.middle - share * span, end: scrub.pinch.middle - share * span + span };
    draw();
    return;
  }
  if (!scrub.active) return;
  state.cursor = timeAt(scrub.bar, event.clientX);
  drawCursor();
  if (performance.now() - scrub.lastSeek > SEEK_EVERY_MS) {
    scrub.lastSeek = performance.now();
    playAt(state.cursor, false);
  }
}

function onPointerUp(event) {
  scrub.pointers.delete(event.pointerId);
  if (scrub.pinch) {
    if (scrub.pointers.size === 0) {
      scrub.pinch = null;
      setView(state.view.start, state.view.end);
    }
    return;
  }
  if (!scrub.active) return;
  scrub.active = false;
  playAt(timeAt(scrub.bar, event.clientX));
}

function onWheel(event) {
  const bar = event.target.closest('.bar') || $('rows').querySelector('.bar');
  if (!bar) return;
  event.preventDefault();
  if (Math.abs(event.deltaX) > Math.abs(event.deltaY) || event.shiftKey) {
    pan(((event.deltaX || event.deltaY) > 0 ? 1 : -1) * 0.1);
  } else {
    zoom(event.deltaY > 0 ? 1.25 : 0.8, timeAt(bar, event.clientX));
  }
}

function hover(event) {
  const box = $('hover');
  const clip = event.target.closest?.('.span.clip');
  if (!clip || event.pointerType === 'touch' || !clip.dataset.poster) {
    box.hidden = true;
    return;
  }
  const img = box.querySelector('img');
  if (img.getAttribute('src') !== clip.dataset.poster) img.src = clip.dataset.poster;
  box.querySelector('span').textContent = clip.title;
  box.hidden = false;
  box.style.left = Math.min(event.clientX + 12, window.innerWidth - 210) + 'px';
  box.style.top = event.clientY + 16 + 'px';
}

// -- controls --------------------------------------------------------------------------------

async function selectCamera(camera, redraw = true) {
  state.selected = camera;
  $('camera').value = camera;
  for (const label of document.querySelectorAll('.row .row-label'))
    label.setAttribute('aria-pressed', String(label.textContent === camera));
  if (redraw) {
    await loadView();
    draw();
    if (state.cursor !== null) playAt(state.cursor);
  }
}

function onKey(event) {
  if (event.target.closest('input, select, textarea') || event.ctrlKey || event.metaKey || event.altKey) return;
  if (event.key === ',' || event.key === 'ArrowLeft') {
    event.preventDefault();
    goToEvent(-1);
  } else if (event.key === '.' || event.key === 'ArrowRight') {
    event.preventDefault();
    goToEvent(1);
  }
}

function wire() {
  $('zoom-in').addEventListener('click', () => zoom(0.5));
  $('zoom-out').addEventListener('click', () => zoom(2));
  $('pan-left').addEventListener('click', () => pan(-0.5));
  $('pan-right').addEventListener('click', () => pan(0.5));
  $('day-prev').addEventListener('click', () => showDay(dayBefore(dayStart((state.view.start + state.view.end) / 2))));
  $('day-next').addEventListener('click', () => showDay(dayAfter(dayStart((state.view.start + state.view.end) / 2))));
  $('day').addEventListener('change', () => {
    const [y, m, d] = $('day').value.split('-').map(Number);
    if (y) showDay(new Date(y, m - 1, d).getTime() / 1000);
  });
  $('event-prev').addEventListener('click', () => goToEvent(-1));
  $('event-next').addEventListener('click', () => goToEvent(1));
  $('camera').addEventListener('change', () => selectCamera($('camera').value));
  $('all-cameras').addEventListener('change', () => {
    state.all = $('all-cameras').checked;
    if (state.cursor !== null) playAt(state.cursor);
  });
  const timeline = $('timeline');
  timeline.addEventListener('pointerdown', onPointerDown);
  timeline.addEventListener('pointermove', onPointerMove);
  timeline.addEventListener('pointerup', onPointerUp);
  timeline.addEventListener('pointercancel', onPointerUp);
  timeline.addEventListener('pointerleave', () => ($('hover').hidden = true));
  timeline.addEventListener('wheel', onWheel, { passive: false });
  document.addEventListener('keydown', onKey);
  phone.addEventListener('change', () => loadView().then(draw));
  // Today's data again now and then, while the page is in view.
  setInterval(() => {
    const busy = scrub.active || scrub.pinch;
    if (document.visibilityState === 'visible' && !busy && state.view.end > Date.now() / 1000 - 60) loadView().then(draw);
  }, TODAY_FRESH_MS);
  window.addEventListener('resize', () => drawAxis());
}

function deepLink() {
  const params = new URLSearchParams(location.search);
  const raw = params.get('t');
  let t = null;
  if (raw) {
    t = /^[0-9]+(\.[0-9]+)?$/.test(raw) ? Number(raw) : Date.parse(raw) / 1000;
    if (!Number.isFinite(t)) {
      notify(`Not a moment: ${raw}`, 'error');
      t = null;
    }
  }
  return { camera: params.get('camera'), t };
}

async function main() {
  initHeader();
  wire();
  let cameras = [];
  try {
    cameras = (await api('api/cameras')).map((c) => c.name);
  } catch (error) {
    notify(`Cameras: ${error.message}`, 'error');
  }
  const link = deepLink();
  if (link.camera && !cameras.includes(link.camera)) cameras.push(link.camera);
  state.cameras = cameras;
  state.selected = link.camera || cameras[0] || null;
  $('camera').replaceChildren(...cameras.map((c) => el('option', { value: c }, c)));
  if (state.selected) $('camera').value = state.selected;
  state.all = !phone.matches && cameras.length > 1;
  $('all-cameras').checked = state.all;
  if (!cameras.length) {
    notify('No cameras.');
    return;
  }
  if (link.t !== null) {
    await setView(link.t - DEEP_LINK_SPAN / 2, link.t + DEEP_LINK_SPAN / 2);
    playAt(link.t);
  } else {
    await showDay(dayStart(Date.now() / 1000));
  }
  document.body.dataset.ready = 'true';
}

main();
