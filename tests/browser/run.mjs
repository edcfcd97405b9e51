// Drives Debian's Chromium through the pages of two running daemons (started by
// tests/e2e/test_browser.py): `plain` without auth, `auth` with one user.
//
//   node run.mjs '{"plain": "http://127.0.0.1:P1", "auth": "http://127.0.0.1:P2",
//                  "user": "...", "password": "...", "artifacts": "/abs/dir"}'
//
// It prints one line per check. A line "@@restart plain" asks the runner to restart that daemon;
// the runner answers "ok restart plain" on stdin. Exit 0: every check passed.

import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';

import { chromium } from 'playwright-core';

import { CHROMIUM_ARGS, CHROMIUM_PATH } from './chromium.mjs';

const config = JSON.parse(process.argv[2]);
const PHONE = {
  viewport: { width: 390, height: 844 },
  deviceScaleFactor: 1, // so the page asks the server for a smaller picture (?width=)
  isMobile: true,
  hasTouch: true,
  colorScheme: 'light',
};
const DESKTOP = { viewport: { width: 1280, height: 860 }, colorScheme: 'dark' };

const started = Date.now();
const seconds = () => ((Date.now() - started) / 1000).toFixed(1).padStart(5);
const log = (text) => console.log(`[${seconds()} s] ${text}`);

mkdirSync(config.artifacts, { recursive: true });

// Console errors and page errors fail the run, except those a step expects (allowed).
const problems = [];
const allowed = new Set();
function watch(page, label) {
  page.on('pageerror', (error) => problems.push(`${label}: uncaught ${error.message}`));
  page.on('console', (message) => {
    const text = message.text();
    if (message.type() !== 'error') return;
    if ([...allowed].some((pattern) => pattern.test(text))) return;
    problems.push(`${label}: console error: ${text}`);
  });
}

let current = null; // the page a failure screenshot is taken of
async function screenshot(page, name) {
  await page.evaluate(() => window.scrollTo(0, 0));
  const file = path.join(config.artifacts, name + '.png');
  await page.screenshot({ path: file, fullPage: true });
  log(`screenshot ${file}`);
}

// The runner (pytest) restarts a daemon when asked; it answers on stdin.
const runnerLines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
async function askRunner(command) {
  console.log('@@' + command);
  const { value } = await runnerLines.next();
  assert.equal(value, 'ok ' + command, `the runner did not do ${command}`);
}

const liveCard = '.camera[data-camera]';

async function framesDrawn(page) {
  return page.$eval(`${liveCard} canvas.live`, (c) => Number(c.dataset.frames || 0));
}

async function waitForFrames(page, atLeast, timeout = 10000) {
  await page.waitForFunction(
    (n) => Number(document.querySelector('.camera canvas.live')?.dataset.frames || 0) >= n,
    atLeast,
    { timeout, polling: 100 },
  );
}

// -- the live page, on a phone ------------------------------------------------------------

async function checkLivePage(browser) {
  const context = await browser.newContext(PHONE);
  const page = (current = await context.newPage());
  watch(page, 'live (phone)');
  const sockets = [];
  page.on('websocket', (socket) => sockets.push(socket.url()));
  await page.goto(config.plain + '/');

  await waitForFrames(page, 3);
  const picture = await page.$eval(`${liveCard} canvas.live`, (c) => ({
    width: c.width,
    height: c.height,
    cssWidth: c.clientWidth,
  }));
  assert.ok(picture.width > 0 && picture.height > 0, 'the live picture has a size');
  const asked = Number(new URL(sockets[0]).searchParams.get('width'));
  assert.ok(asked > 0 && asked <= picture.cssWidth + 1, `asked for ?width=${asked} on a phone`);
  assert.ok(picture.width < 640, `the server sent a smaller picture (${picture.width} px)`);
  log(`live picture drawn: ${picture.width}x${picture.height} (asked for width ${asked})`);

  const chart = `${liveCard} canvas.delta-chart`;
  const updates = await page.$eval(chart, (c) => Number(c.dataset.updates || 0));
  await page.waitForFunction(
    ({ selector, before }) => {
      const c = document.querySelector(selector);
      return Number(c.dataset.updates) >= before + 4 && Number(c.dataset.points) >= 10;
    },
    { selector: chart, before: updates },
    { timeout: 5000 },
  );
  const threshold = await page.textContent(`${liveCard} .threshold-now`);
  assert.match(threshold, /^0\.10 %$/, 'the chart legend shows the threshold (motion.threshold)');
  log(`delta chart updating (threshold ${threshold})`);

  await page.waitForFunction(
    () => Number(document.querySelector('.camera .latency').dataset.ms) > 0,
    null,
    { timeout: 8000 },
  );
  const latency = await page.textContent(`${liveCard} .latency`);
  const ms = Number(latency.match(/(\d+) ms/)[1]);
  assert.ok(ms > 0 && ms < 1500, `a plausible latency: ${latency}`);
  log(`measured ${latency}`);

  await page.waitForSelector(`${liveCard}[data-recording="true"]`, { timeout: 20000 });
  assert.ok(await page.isVisible(`${liveCard} .rec-badge`), 'the recording badge shows');
  assert.equal((await page.textContent(`${liveCard} .rec-badge`)).trim(), 'recording');
  log('the page shows "recording" while the demo figure walks by');
  await page.waitForTimeout(700); // let the chart show the motion above the threshold
  await screenshot(page, 'live-phone');

  await page.waitForSelector(`${liveCard}[data-recording="false"]`, { timeout: 25000 });
  await page.waitForSelector('#recent-clips a.thumb img', { timeout: 10000 });
  await page.waitForSelector('#recent-warn a.thumb img', { timeout: 10000 });
  log('the finished clip and its motion snapshots appear under "Newest clips"');

  await page.click(`${liveCard} button.snapshot`);
  await page.waitForFunction(
    () => document.querySelector('.camera .snapshot-result img')?.naturalWidth > 0,
    null,
    { timeout: 8000 },
  );
  log('the snapshot button saved a snapshot and shows it');

  await page.click(`${liveCard} button.arm-toggle`);
  await page.waitForSelector(`${liveCard}[data-armed="false"]`, { timeout: 5000 });
  assert.equal((await page.textContent(`${liveCard} .armed-badge`)).trim(), 'disarmed');
  const disarmed = await page.evaluate(() => fetch('api/cameras').then((r) => r.json()));
  assert.equal(disarmed[0].armed, false, 'the API says disarmed');
  await page.click(`${liveCard} button.arm-toggle`);
  await page.waitForSelector(`${liveCard}[data-armed="true"]`, { timeout: 5000 });
  log('disarm and arm through the toggle button');
  await context.close();
}

// -- the clip browser, on a phone -----------------------------------------------------------

async function checkClipsPage(browser) {
  const context = await browser.newContext(PHONE);
  const page = (current = await context.newPage());
  watch(page, 'clips (phone)');
  const media = [];
  page.on('response', (response) => {
    if (response.url().includes('/media/clips/')) {
      media.push({ status: response.status(), headers: response.headers() });
    }
  });
  await page.goto(config.plain + '/clips');
  await page.waitForSelector('.clip-card .poster img', { timeout: 10000 });
  const summary = await page.textContent('#summary');
  assert.match(summary, /^\d+ clips?/, `the summary counts clips: ${summary}`);
  await page.waitForFunction(() =>
    [...document.querySelectorAll('.clip-card .poster img')].every((img) => img.naturalWidth > 0),
  );
  assert.ok(await page.isVisible('.day > h2'), 'clips are grouped by day');
  log(`clip list: ${summary}`);
  await screenshot(page, 'clips-phone');

  await page.evaluate(() => {
    const video = document.getElementById('player-video');
    window.loadedData = new Promise((resolve) =>
      video.addEventListener('loadeddata', () => resolve(video.videoWidth), { once: true }),
    );
  });
  await page.click('.clip-card .card-link');
  await page.waitForSelector('#player:not([hidden])');
  const videoWidth = await page.evaluate(() => window.loadedData);
  assert.ok(videoWidth > 0, 'the clip decodes (videoWidth > 0)');
  const clipId = decodeURIComponent(new URL(page.url()).hash.slice(1));
  log(`playing ${clipId}: loadeddata, ${videoWidth} px wide`);

  const seek = await page.evaluate(async () => {
    const video = document.getElementById('player-video');
    const duration = video.duration;
    await new Promise((resolve) => {
      video.addEventListener('seeked', resolve, { once: true });
      video.currentTime = Math.max(0, duration - 0.4);
    });
    video.pause();
    return { duration, at: video.currentTime };
  });
  assert.ok(seek.duration > 1 && Number.isFinite(seek.duration), `duration ${seek.duration}`);
  assert.ok(seek.at > seek.duration - 1, `seeked to ${seek.at} of ${seek.duration}`);
  assert.ok(media.length > 0, 'the video was fetched from media/clips/');
  assert.ok(
    media.every((m) => [200, 206].includes(m.status) && m.headers['accept-ranges'] === 'bytes'),
    `media responses advertise ranges: ${JSON.stringify(media.map((m) => m.status))}`,
  );
  const range = await page.evaluate(async () => {
    const src = document.getElementById('player-video').currentSrc;
    const response = await fetch(src, { headers: { Range: 'bytes=100-1099' } });
    return {
      status: response.status,
      contentRange: response.headers.get('Content-Range'),
      length: (await response.arrayBuffer()).byteLength,
    };
  });
  assert.equal(range.status, 206);
  assert.equal(range.length, 1000);
  assert.match(range.contentRange, /^bytes 100-1099\/\d+$/);
  log(
    `seeked to ${seek.at.toFixed(2)} s of ${seek.duration.toFixed(2)} s; Range: ${range.contentRange}`,
  );
  await page.waitForTimeout(300);
  await screenshot(page, 'clips-player-phone');

  const download = await page.getAttribute('#player-download', 'href');
  assert.ok(download.endsWith('?download=1'), `download link ${download}`);
  const disposition = await page.evaluate(
    (href) => fetch(href, { method: 'HEAD' }).then((r) => r.headers.get('Content-Disposition')),
    download,
  );
  assert.match(disposition || '', /^attachment/, 'the download link downloads');

  await page.click('#player-keep');
  await page.waitForSelector('#player-keep[aria-pressed="true"]', { timeout: 5000 });
  await page.waitForSelector('.clip-card.kept.selected');
  const kept = await page.evaluate(
    (id) =>
      fetch('api/clips/' + id.split('/').map(encodeURIComponent).join('/')).then((r) => r.json()),
    clipId,
  );
  assert.equal(kept.keep, true, 'PATCH keep reached the server');
  log('keep toggled (PATCH) and shown on the card');
  await context.close();
  return clipId;
}

// -- the same pages on a desktop, dark ------------------------------------------------------

async function checkDesktop(browser, clipId) {
  const context = await browser.newContext(DESKTOP);
  const page = (current = await context.newPage());
  watch(page, 'desktop');
  await page.goto(config.plain + '/');
  await waitForFrames(page, 3);
  await page.waitForFunction(
    () => Number(document.querySelector('.camera .latency').dataset.ms) > 0,
  );
  await page.waitForSelector('#recent-clips a.thumb img');
  await screenshot(page, 'live-desktop');

  // A link to one clip opens it in the player.
  await page.goto(config.plain + '/clips#' + clipId);
  await page.waitForSelector('#player:not([hidden])');
  await page.waitForFunction(() => document.getElementById('player-video').readyState >= 2);
  await page.waitForSelector('.clip-card.selected .poster img');
  await page.waitForTimeout(300);
  await screenshot(page, 'clips-desktop');
  log('a clips#<id> link opens that clip');

  // The day filter (since/until of the local day) and the camera filter.
  const day = await page.$eval('.day', (section) => section.dataset.day);
  await page.fill('#filter-date', day);
  await page.waitForSelector(`.day[data-day="${day}"] .clip-card`);
  assert.equal(new URL(page.url()).searchParams.get('date'), day);
  const before = new Date(new Date(day + 'T12:00').getTime() - 86400000).toISOString().slice(0, 10);
  await page.fill('#filter-date', before);
  await page.waitForFunction(() =>
    document.getElementById('summary').textContent.startsWith('No clips'),
  );
  assert.equal(await page.$$eval('.clip-card', (cards) => cards.length), 0);
  await page.selectOption('#filter-camera', 'demo');
  await page.click('#filter-clear');
  await page.waitForSelector('.clip-card');
  log(`the day filter shows ${day}'s clips and none the day before`);

  await page.click('#tab-warn');
  await page.waitForSelector('.snapshot-card img');
  await page.waitForFunction(() =>
    [...document.querySelectorAll('.snapshot-card img')].every((img) => img.naturalWidth > 0),
  );
  assert.match(await page.textContent('#summary'), /motion snapshot/);
  await screenshot(page, 'snapshots-desktop');
  log('motion snapshots listed');

  // One per page: "Load more" fetches the next (limit/offset).
  await page.goto(config.plain + '/clips?tab=warn&limit=1');
  await page.waitForSelector('.snapshot-card img');
  assert.equal(await page.$$eval('.snapshot-card', (cards) => cards.length), 1);
  await page.click('#more');
  await page.waitForFunction(() => document.querySelectorAll('.snapshot-card').length === 2);
  log('"Load more" pages through the list');

  await page.click('#tab-snapshot');
  await page.waitForSelector('.snapshot-card img');
  assert.match(await page.textContent('.snapshot-card'), /taken on demand/);
  log('the on-demand snapshot is listed under Snapshots');
  await context.close();
}

// -- reconnecting when the daemon restarts --------------------------------------------------

async function checkReconnect(browser) {
  const context = await browser.newContext(PHONE);
  const page = (current = await context.newPage());
  watch(page, 'reconnect');
  await page.goto(config.plain + '/');
  await waitForFrames(page, 3);
  const sawReconnecting = page.waitForFunction(
    () => {
      const overlay = document.querySelector('.camera .overlay');
      return !overlay.hidden && overlay.textContent === 'reconnecting…';
    },
    null,
    { timeout: 30000, polling: 50 },
  );
  // While the daemon is down, the browser logs failed connections.
  allowed.add(/WebSocket connection to .* failed/);
  allowed.add(/Failed to load resource: net::ERR_CONNECTION_REFUSED/);
  await askRunner('restart plain');
  await sawReconnecting;
  const before = await framesDrawn(page);
  await waitForFrames(page, before + 3, 20000);
  await page.waitForSelector('.camera .overlay', { state: 'hidden' });
  allowed.clear();
  log('after the daemon restarted, the page showed "reconnecting…" and then frames again');

  // A hidden tab closes its socket and opens it again when shown.
  const setHidden = (hidden) =>
    page.evaluate((value) => {
      Object.defineProperty(document, 'hidden', { value, configurable: true });
      document.dispatchEvent(new Event('visibilitychange'));
    }, hidden);
  await setHidden(true);
  await page.waitForSelector('.camera[data-socket="closed"]');
  await page.waitForTimeout(300);
  const paused = await framesDrawn(page);
  await page.waitForTimeout(700);
  assert.equal(await framesDrawn(page), paused, 'no frames while the tab is hidden');
  await setHidden(false);
  await waitForFrames(page, paused + 3);
  log('a hidden tab gets no frames, and they come back when it is shown');
  await context.close();
}

// -- auth: login, the live view, delete, logout ---------------------------------------------

async function login(page, password) {
  await page.fill('input[name=username]', config.user);
  await page.fill('input[name=password]', password);
  await page.click('button[type=submit]');
}

async function checkAuth(browser) {
  const context = await browser.newContext(PHONE);
  const page = (current = await context.newPage());
  watch(page, 'auth');
  await page.goto(config.auth + '/');
  const atLogin = new URL(page.url());
  assert.equal(atLogin.pathname, '/login', `redirected to the login page: ${page.url()}`);
  assert.equal(atLogin.searchParams.get('next'), '/');
  log(`not logged in: / redirects to ${atLogin.pathname}${atLogin.search}`);

  allowed.add(/status of 401/);
  await login(page, 'not the password');
  await page.waitForSelector('#login-error:not(:empty)');
  assert.match(await page.textContent('#login-error'), /Wrong/);
  allowed.clear();
  await screenshot(page, 'login-phone');
  log('a wrong password shows the error');

  await login(page, config.password);
  await page.waitForURL(config.auth + '/', { timeout: 10000 });
  await waitForFrames(page, 3);
  await page.waitForSelector('#session:not([hidden])');
  assert.equal(await page.textContent('#session-user'), config.user);
  log('logged in: the live picture shows, and the header names the user');

  // The session ends (expired, or the daemon's secret changed): the next API call goes to login.
  await context.clearCookies();
  allowed.add(/status of 401/);
  await page.click(`${liveCard} button.snapshot`);
  await page.waitForURL(/\/login\?next=%2F$/, { timeout: 5000 });
  allowed.clear();
  await login(page, config.password);
  await page.waitForURL(config.auth + '/', { timeout: 10000 });
  log('a 401 from the API sends the page to the login, and back after it');

  // Deleting a clip (this daemon's first clip is done ~12 s after its start).
  await page.goto(config.auth + '/clips');
  await page.waitForSelector('.clip-card', { timeout: 20000 });
  const before = await page.$$eval('.clip-card', (cards) => cards.length);
  await page.click('.clip-card .card-link');
  await page.waitForSelector('#player:not([hidden])');
  const clipId = decodeURIComponent(new URL(page.url()).hash.slice(1));
  page.once('dialog', (dialog) => dialog.accept());
  await page.click('#player-delete');
  await page.waitForSelector('#player', { state: 'hidden' });
  await page.waitForFunction(
    (n) => document.querySelectorAll('.clip-card').length === n - 1,
    before,
  );
  allowed.add(/status of 404/); // the check below asks for the deleted clip
  const status = await page.evaluate(
    (id) =>
      fetch('api/clips/' + id.split('/').map(encodeURIComponent).join('/')).then((r) => r.status),
    clipId,
  );
  assert.equal(status, 404, 'the deleted clip is gone from the API');
  allowed.clear();
  log(`deleted ${clipId} after confirming`);

  await page.click('#logout');
  await page.waitForURL(/\/login$/);
  await page.goto(config.auth + '/clips');
  assert.equal(new URL(page.url()).searchParams.get('next'), '/clips');
  await login(page, config.password);
  await page.waitForURL(config.auth + '/clips');
  await page.waitForSelector('#summary:not(:empty)');
  log('logged out; logging in again from /clips comes back to /clips');
  await context.close();

  const desktop = await browser.newContext(DESKTOP);
  const loginPage = (current = await desktop.newPage());
  watch(loginPage, 'login (desktop)');
  await loginPage.goto(config.auth + '/');
  await loginPage.waitForSelector('#login-form');
  // Wrong passwords until the daemon refuses to check more (429); the page says so.
  allowed.add(/status of 40[1]|status of 429/);
  for (let attempt = 0; attempt < 8; attempt += 1) {
    await loginPage.fill('input[name=username]', config.user);
    await loginPage.fill('input[name=password]', 'wrong ' + attempt);
    await loginPage.click('button[type=submit]');
    await loginPage.waitForFunction(
      () =>
        !document.querySelector('button[type=submit]').disabled &&
        document.getElementById('login-error').textContent !== '',
    );
    if (/Too many/.test(await loginPage.textContent('#login-error'))) break;
    await loginPage.evaluate(() => (document.getElementById('login-error').textContent = ''));
  }
  assert.match(await loginPage.textContent('#login-error'), /Too many failed attempts/);
  allowed.clear();
  log('after repeated wrong passwords the login page says to wait (429)');
  await screenshot(loginPage, 'login-desktop');
  await desktop.close();
}

// -- main -------------------------------------------------------------------------------------

const browser = await chromium.launch({
  executablePath: config.chromium || CHROMIUM_PATH,
  args: CHROMIUM_ARGS,
});
let failed = false;
try {
  await checkLivePage(browser);
  const clipId = await checkClipsPage(browser);
  await checkDesktop(browser, clipId);
  await checkReconnect(browser);
  await checkAuth(browser);
  assert.deepEqual(problems, [], 'no console errors, page errors or CSP violations');
  log('all browser checks passed');
} catch (error) {
  failed = true;
  console.log(`FAILED: ${error.stack || error}`);
  if (problems.length) console.log('problems seen:\n  ' + problems.join('\n  '));
  if (current && !current.isClosed()) {
    const file = path.join(config.artifacts, 'failure.png');
    await current.screenshot({ path: file, fullPage: true }).catch(() => {});
    console.log(`failure screenshot: ${file}`);
  }
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
