// The timeline page (/review) in Debian's Chromium, at desktop and phone widths (started by
// tests/e2e/test_browser_review.py, which placed clips, segments, history and a snapshot at
// known times before starting the daemon).
//
//   node review.mjs '{"url": "http://127.0.0.1:P", "base": B, "midnight": M,
//                     "segments": [[start, end], ...], "artifacts": "/abs/dir"}'
//
// Times are epoch seconds; the pages run in UTC. One line per check; exit 0: all passed.

import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import path from 'node:path';

import { chromium } from 'playwright-core';

import { CHROMIUM_ARGS, CHROMIUM_PATH } from './chromium.mjs';

const config = JSON.parse(process.argv[2]);
const B = config.base;
const M = config.midnight;
const DESKTOP = { viewport: { width: 1280, height: 900 }, timezoneId: 'UTC', colorScheme: 'dark' };
const PHONE = {
  viewport: { width: 390, height: 844 },
  deviceScaleFactor: 1,
  isMobile: true,
  hasTouch: true,
  timezoneId: 'UTC',
};
const TOLERANCE = 1.0; // seconds: playback starts this close to the moment asked for

const started = Date.now();
const log = (text) => console.log(`[${((Date.now() - started) / 1000).toFixed(1).padStart(5)} s] ${text}`);
mkdirSync(config.artifacts, { recursive: true });

const problems = [];
function watch(page, label) {
  page.on('pageerror', (error) => problems.push(`${label}: uncaught ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(`${label}: console error: ${message.text()}`);
  });
}

const iso = (t) => new Date(t * 1000).toISOString();

async function open(context, camera, t, label) {
  const page = await context.newPage();
  watch(page, label);
  await page.goto(`${config.url}/review?camera=${camera}&t=${encodeURIComponent(iso(t))}`);
  await page.waitForSelector('body[data-ready="true"]', { timeout: 15000 });
  return page;
}

async function view(page) {
  return page.$eval('#timeline', (t) => ({
    start: Number(t.dataset.viewStart),
    end: Number(t.dataset.viewEnd),
    cursor: t.dataset.cursor === undefined ? null : Number(t.dataset.cursor),
  }));
}

// The screen x of moment t on a camera's bar, and the bar's middle height.
async function pointOf(page, camera, t) {
  const box = await page.locator(`.bar[data-camera="${camera}"]`).boundingBox();
  const { start, end } = await view(page);
  return { x: box.x + ((t - start) / (end - start)) * box.width, y: box.y + box.height / 2 };
}

// Waits until the camera's player has started playing a piece, other than `before`; returns
// the moment playback began (piece start + currentTime at 'playing').
async function playedFrom(page, camera, before = null) {
  const handle = await page.waitForFunction(
    ({ camera, before }) => {
      const video = document.querySelector(`video[data-camera="${camera}"]`);
      const from = video?.dataset.playedFrom;
      return from !== undefined && from !== before && video.readyState >= 2 ? from : false;
    },
    { camera, before },
    { timeout: 15000, polling: 50 },
  );
  return Number(await handle.jsonValue());
}

const currentFrom = (page, camera) =>
  page.$eval(`video[data-camera="${camera}"]`, (v) => v.dataset.playedFrom ?? null).catch(() => null);

function near(actual, expected, what, tolerance = TOLERANCE) {
  assert.ok(Math.abs(actual - expected) <= tolerance, `${what}: ${actual} is not within ${tolerance} s of ${expected}`);
}

async function timeline(page, camera, since, until) {
  return page.evaluate(
    ([camera, since, until]) => fetch(`api/timeline?camera=${camera}&since=${since}&until=${until}`).then((r) => r.json()),
    [camera, since, until],
  );
}

// -- desktop ---------------------------------------------------------------------------------

async function checkBars(page) {
  const { start, end } = await view(page);
  const bar = await page.locator('.bar[data-camera="front"]').boundingBox();
  const data = await timeline(page, 'front', Math.floor(start), Math.ceil(end));
  assert.ok(data.clips.length >= 3, `the API lists the front clips (${data.clips.length})`);
  for (const clip of data.clips.filter((c) => c.start >= start && c.end <= end)) {
    const box = await page.locator(`.bar[data-camera="front"] .span.clip[data-clip="${clip.id}"]`).boundingBox();
    const left = bar.x + ((clip.start - start) / (end - start)) * bar.width;
    const right = bar.x + ((clip.end - start) / (end - start)) * bar.width;
    assert.ok(Math.abs(box.x - left) <= 2, `clip ${clip.id} starts at x ${box.x}, expected ${left}`);
    assert.ok(Math.abs(box.x + box.width - right) <= 2.5, `clip ${clip.id} ends at x ${box.x + box.width}, expected ${right}`);
  }
  log(`the bar shows each of the ${data.clips.length} front clips at its time (within 2 px)`);
  const offline = await page.$eval('.bar[data-camera="front"] .span.offline', (e) => [Number(e.dataset.start), Number(e.dataset.end)]);
  assert.deepEqual(offline, [B + 400, B + 460], 'the offline span from the history');
  const tamper = await page.$eval('.bar[data-camera="back"] .mark.tamper', (e) => Number(e.dataset.ts));
  assert.equal(tamper, B + 195, 'the tamper alert at the time the picture went bad');
  const snapshot = await page.$eval('.bar[data-camera="front"] .mark.snapshot', (e) => Number(e.dataset.ts));
  assert.equal(snapshot, B + 30, 'the on-demand snapshot');
  const segments = await page.$$eval('.bar[data-camera="back"] .span.recorded', (all) => all.length);
  assert.ok(segments >= 1, 'continuous footage drawn as recorded');
  log('offline span, tamper alert, snapshot and recorded footage are drawn');

  const clip = data.clips[0];
  await page.mouse.move(...Object.values(await pointOf(page, 'front', (clip.start + clip.end) / 2)));
  await page.waitForSelector('#hover:not([hidden])', { timeout: 3000 });
  const poster = await page.$eval('#hover img', (img) => img.getAttribute('src'));
  assert.equal(poster, clip.poster, 'hovering a clip shows its poster');
  await page.waitForFunction(() => document.querySelector('#hover img').naturalWidth > 0);
  log('hovering a clip shows its poster');
}

async function clickAt(page, camera, t) {
  const before = await currentFrom(page, camera);
  const { x, y } = await pointOf(page, camera, t);
  await page.mouse.click(x, y);
  return playedFrom(page, camera, before);
}

async function checkClickAndSameMoment(page) {
  near(await clickAt(page, 'front', B + 5), B + 5, 'a click inside the first clip plays from that moment');
  log('a click at a moment plays the clip from within 1 s of it');
  const before = await currentFrom(page, 'back');
  const front = await clickAt(page, 'front', B + 67);
  const back = await playedFrom(page, 'back', before);
  near(front, B + 67, 'front at the same moment');
  near(back, B + 67, 'back at the same moment');
  const shown = await page.$$eval('#players video:not([hidden])', (all) => all.map((v) => v.dataset.camera));
  assert.deepEqual(shown.sort(), ['back', 'front'], 'both cameras side by side');
  log(`the same moment on both cameras: front from ${(front - B).toFixed(2)}, back from ${(back - B).toFixed(2)}`);
}

async function checkEvents(page) {
  await clickAt(page, 'front', B + 5);
  const expectCursor = async (expected, how) => {
    await page.waitForFunction(
      (t) => {
        const cursor = Number(document.getElementById('timeline').dataset.cursor);
        return cursor >= t - 0.01 && cursor <= t + 1.5;
      },
      expected,
      { timeout: 8000 },
    ).catch(async () => {
      throw new Error(`${how}: the cursor is at ${(await view(page)).cursor - B}, expected ${expected - B}`);
    });
  };
  await page.keyboard.press('.');
  await expectCursor(B + 30, 'key "." (the snapshot)');
  await page.keyboard.press('ArrowRight');
  await expectCursor(B + 60, 'ArrowRight (the second clip)');
  near(await playedFrom(page, 'front'), B + 60, 'the next event plays from its start');
  await page.click('#event-next');
  await expectCursor(B + 65, 'the Next button (the back camera clip)');
  await page.keyboard.press(',');
  await expectCursor(B + 60, 'key ","');
  await page.click('#event-prev');
  await expectCursor(B + 30, 'the Previous button');
  log('next/previous event: keys . , and arrow, and the buttons, step through the events');
}

async function checkContinuation(page) {
  const [first, second] = config.segments;
  await clickAt(page, 'back', first[1] - 1.5);
  const kind = await page.$eval('video[data-camera="back"]', (v) => v.dataset.kind);
  assert.equal(kind, 'segment', 'continuous footage is played where there is some');
  await page.waitForFunction(
    (start) => {
      const video = document.querySelector('video[data-camera="back"]');
      return Number(video.dataset.pieceStart) === start && video.currentTime > 0.3 && !video.paused;
    },
    second[0],
    { timeout: 12000 },
  );
  log('playback went on from one segment into the next');
}

async function checkZoom(page) {
  const span = async () => {
    const { start, end } = await view(page);
    return end - start;
  };
  const before = await span();
  await page.click('#zoom-in');
  await page.waitForFunction((s) => {
    const t = document.getElementById('timeline').dataset;
    return Math.abs(Number(t.viewEnd) - Number(t.viewStart) - s / 2) < 1;
  }, before);
  const { x, y } = await pointOf(page, 'front', B + 60);
  await page.mouse.move(x, y);
  await page.mouse.wheel(0, -200);
  await page.waitForFunction((s) => {
    const t = document.getElementById('timeline').dataset;
    return Number(t.viewEnd) - Number(t.viewStart) < s / 2 - 1;
  }, before);
  const after = await span();
  const moved = await pointOf(page, 'front', B + 60);
  assert.ok(Math.abs(moved.x - x) < 3, 'the wheel zooms around the pointer');
  await page.click('#zoom-out');
  await page.click('#zoom-out');
  await page.click('#zoom-out');
  log(`zoom: ${before / 60} min -> button ${before / 120} min -> wheel ${(after / 60).toFixed(1)} min`);
}

async function checkMidnight(context) {
  const page = await open(context, 'front', M, 'review across midnight');
  const { start, end } = await view(page);
  assert.ok(start < M && end > M, 'the view spans midnight');
  const clips = await page.$$eval('.bar[data-camera="front"] .span.clip', (all) => all.map((e) => Number(e.dataset.start)));
  assert.deepEqual(clips.filter((s) => Math.abs(s - (M - 4)) < 1).length, 1, 'the clip across midnight, once');
  assert.ok(await page.isVisible('.tick.midnight'), 'midnight is marked on the axis');
  near(await playedFrom(page, 'front'), M, 'a deep link at midnight plays from it');
  await page.close();
  log('across midnight: both days drawn, the clip across it shown once and played');
}

// The clip page's "On the timeline" link opens the timeline at the clip's start.
async function checkClipPageLink(context) {
  const page = await context.newPage();
  watch(page, 'clip page');
  await page.goto(`${config.url}/review`);
  const data = await timeline(page, 'front', B - 60, B + 3600);
  const clip = data.clips.find((c) => Math.abs(c.start - (B + 60)) < 1);
  await page.goto(`${config.url}/clips#${encodeURIComponent(clip.id)}`);
  await page.waitForSelector('#player:not([hidden]) #player-review[href*="review?"]', { timeout: 15000 });
  await page.click('#player-review');
  await page.waitForSelector('body[data-ready="true"]', { timeout: 15000 });
  assert.equal(new URL(page.url()).searchParams.get('camera'), 'front');
  near(await playedFrom(page, 'front'), clip.start, 'the clip page link plays the clip from its start', 0.5);
  await page.close();
  log('the clip page links to the timeline at the clip, which plays it from its start');
}

async function desktop(browser) {
  const context = await browser.newContext(DESKTOP);
  const page = await open(context, 'front', B + 62, 'review (desktop)');
  near(await playedFrom(page, 'front'), B + 62, 'the deep link plays from its moment');
  const { start, end } = await view(page);
  assert.ok(start < B + 62 && B + 62 < end, 'the deep link opens with its moment in view');
  log('a deep link (/review?camera=front&t=...) opens and plays at its moment');
  await checkBars(page);
  await checkClickAndSameMoment(page);
  await checkEvents(page);
  await checkContinuation(page);
  await checkZoom(page);
  await page.screenshot({ path: path.join(config.artifacts, 'review-desktop.png'), fullPage: true });
  await checkMidnight(context);
  await checkClipPageLink(context);
  await context.close();
}

// -- phone -----------------------------------------------------------------------------------

async function phone(browser) {
  const context = await browser.newContext(PHONE);
  const page = await open(context, 'back', B + 67, 'review (phone)');
  const rows = await page.$$eval('.row', (all) => all.map((r) => r.dataset.camera));
  assert.deepEqual(rows, ['back'], 'a phone shows one camera at a time');
  near(await playedFrom(page, 'back'), B + 67, 'the deep link on a phone');
  const [first] = config.segments;
  const before = await currentFrom(page, 'back');
  const { x, y } = await pointOf(page, 'back', first[0] + 3);
  await page.touchscreen.tap(x, y);
  near(await playedFrom(page, 'back', before), first[0] + 3, 'a tap plays from that moment');
  log('phone: one camera, a tap plays the continuous footage from within 1 s');

  // Touch scrubbing: a finger down, moved along the bar, lifted: plays from where it is lifted.
  const bar = await page.locator('.bar[data-camera="back"]').boundingBox();
  const client = await context.newCDPSession(page);
  const to = await pointOf(page, 'back', B + 70);
  const scrubBefore = await currentFrom(page, 'back');
  const touch = (type, px) =>
    client.send('Input.dispatchTouchEvent', {
      type,
      touchPoints: type === 'touchEnd' ? [] : [{ x: px, y: bar.y + bar.height / 2 }],
    });
  await touch('touchStart', x);
  for (let step = 1; step <= 8; step++) await touch('touchMove', x + ((to.x - x) * step) / 8);
  await touch('touchEnd', to.x);
  near(await playedFrom(page, 'back', scrubBefore), B + 70, 'scrubbing plays from where the finger is lifted', 1.5);
  log('phone: touch scrubbing along the bar plays from where it ends');

  // Pinch: two fingers moving apart zoom in around their middle.
  const wide = await view(page);
  const middle = bar.x + bar.width / 2;
  const fingers = (spread) => [
    { x: middle - spread, y: bar.y + bar.height / 2, id: 0 },
    { x: middle + spread, y: bar.y + bar.height / 2, id: 1 },
  ];
  await client.send('Input.dispatchTouchEvent', { type: 'touchStart', touchPoints: fingers(20) });
  for (let step = 1; step <= 6; step++)
    await client.send('Input.dispatchTouchEvent', { type: 'touchMove', touchPoints: fingers(20 + step * 15) });
  await client.send('Input.dispatchTouchEvent', { type: 'touchEnd', touchPoints: [] });
  await page.waitForFunction(
    (span) => {
      const t = document.getElementById('timeline').dataset;
      return Number(t.viewEnd) - Number(t.viewStart) < span / 3;
    },
    wide.end - wide.start,
    { timeout: 5000 },
  );
  const narrow = await view(page);
  log(`phone: a pinch zoomed from ${((wide.end - wide.start) / 60).toFixed(0)} to ${((narrow.end - narrow.start) / 60).toFixed(1)} min`);

  await page.selectOption('#camera', 'front');
  await page.waitForFunction(() => [...document.querySelectorAll('.row')].map((r) => r.dataset.camera).join() === 'front');
  await page.waitForSelector('.bar[data-camera="front"] .span.clip', { timeout: 5000 });
  log('phone: the camera menu switches the bar to the other camera');
  await page.screenshot({ path: path.join(config.artifacts, 'review-phone.png'), fullPage: true });
  await context.close();
}

const browser = await chromium.launch({
  executablePath: CHROMIUM_PATH,
  args: [...CHROMIUM_ARGS, '--autoplay-policy=no-user-gesture-required'],
});
let failed = false;
try {
  await desktop(browser);
  await phone(browser);
  if (problems.length) throw new Error('page errors:\n' + problems.join('\n'));
  log('all timeline checks passed');
} catch (error) {
  failed = true;
  console.log(`FAILED: ${error.stack || error}`);
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
