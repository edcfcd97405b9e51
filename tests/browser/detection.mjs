// Drives Debian's Chromium through the live page's detection parts (tests/e2e/test_browser_detection.py):
// the overlay of changed regions and learned areas, the day/night and tamper badges, and the
// mask editor, against a daemon with two file cameras: "yard" (a tree swaying, a walker now and
// then) and "porch" (infrared, then its lens covered).
//
//   node detection.mjs '{"url": "http://127.0.0.1:P", "artifacts": "/abs/dir", "chromium": "..."}'
//
// Prints one line per check and, on success, "@@yaml <JSON string>": the mask editor's YAML.
// Exit 0: every check passed.

import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import path from 'node:path';

import { chromium } from 'playwright-core';

import { CHROMIUM_ARGS, CHROMIUM_PATH } from './chromium.mjs';

const config = JSON.parse(process.argv[2]);
const started = Date.now();
const log = (text) => console.log(`[${((Date.now() - started) / 1000).toFixed(1).padStart(5)} s] ${text}`);
mkdirSync(config.artifacts, { recursive: true });

const card = (name) => `.camera[data-camera="${name}"]`;
// Corners clicked on the yard's picture, as fractions of its width and height.
const CORNERS = [
  [0.1, 0.1],
  [0.5, 0.1],
  [0.5, 0.4],
  [0.1, 0.4],
];

async function checkPorch(page) {
  const porch = card('porch');
  await page.waitForFunction(
    (selector) => {
      const badge = document.querySelector(`${selector} .tamper-badge`);
      return badge && !badge.hidden && badge.textContent === 'tampered: covered';
    },
    porch,
    { timeout: 40000, polling: 200 },
  );
  assert.equal(await page.getAttribute(porch, 'data-tampered'), 'covered');
  assert.equal((await page.textContent(`${porch} .mode-badge`)).trim(), 'night (infrared)');
  log('porch: the "tampered: covered" and "night (infrared)" badges show');
}

async function checkOverlay(page) {
  const yard = card('yard');
  const layer = `${yard} canvas.detection-layer`;
  assert.equal(await page.getAttribute(layer, 'hidden'), '', 'the overlay starts hidden');
  await page.click(`${yard} button.show-detection`);
  assert.equal(await page.getAttribute(`${yard} button.show-detection`, 'aria-pressed'), 'true');
  // Learned within nuisance_learning (10 s here): the tree's box is 17 % of the picture.
  await page.waitForFunction(
    (selector) => Number(document.querySelector(`${selector} .ignored`).dataset.share) > 0.06,
    yard,
    { timeout: 45000, polling: 200 },
  );
  const areas = Number(await page.getAttribute(layer, 'data-areas'));
  assert.ok(areas >= 1, `the learned areas are drawn (${areas})`);
  const share = Number(await page.getAttribute(`${yard} .ignored`, 'data-share'));
  assert.ok(share < 0.4, `the page says how much is ignored (${share})`);
  const text = await page.textContent(`${yard} .ignored`);
  assert.match(text, /^ignoring \d/, text);
  log(`yard: the learned tree is drawn over the picture; "${text}"`);
  await page.waitForFunction(
    (selector) => Number(document.querySelector(selector).dataset.boxes || 0) >= 1,
    layer,
    { timeout: 45000, polling: 100 },
  );
  log('yard: changed regions that count are drawn (the walker)');
  // Each box says why it counted or not: the walker "changed", the tree "always moving".
  await page.waitForFunction(
    (selector) => {
      const reasons = (document.querySelector(selector).dataset.reasons || '').split(',');
      return reasons.includes('changed') && reasons.includes('always moving');
    },
    layer,
    { timeout: 45000, polling: 100 },
  );
  log(`yard: boxes are labelled (${await page.getAttribute(layer, 'data-reasons')})`);
  const api = await page.evaluate(() => fetch('api/cameras').then((r) => r.json()));
  const camera = api.find((c) => c.name === 'yard');
  assert.ok(camera.ignored_share > 0.03, `/api/cameras says ${camera.ignored_share}`);
  await page.screenshot({ path: path.join(config.artifacts, 'live-detection.png') });
}

async function checkMaskEditor(page) {
  const yard = card('yard');
  const layer = `${yard} canvas.detection-layer`;
  await page.click(`${yard} button.edit-masks`);
  assert.ok(await page.isVisible(`${yard} .mask-editor`), 'the editor opens');
  // It starts from the masks the camera runs with (here: the frame-number strip).
  const configured = await page.inputValue(`${yard} .mask-yaml`);
  assert.match(configured, /^motion:\n {2}masks:\n {4}- \[\[0, \d+\], \[320, \d+\], \[320, 240\], \[0, 240\]\]\n$/);
  const box = await page.locator(layer).boundingBox();
  for (const [fx, fy] of [...CORNERS, CORNERS[0]]) {
    await page.mouse.click(box.x + fx * box.width, box.y + fy * box.height);
  }
  assert.equal(await page.getAttribute(layer, 'data-masks'), '2', 'clicking the first corner closes it');
  const yaml = await page.inputValue(`${yard} .mask-yaml`);
  log(`the mask editor shows:\n${yaml}`);
  assert.ok(yaml.startsWith(configured), 'the configured mask is kept');
  assert.match(yaml.slice(configured.length), /^ {4}- \[\[\d+, \d+\], \[\d+, \d+\], \[\d+, \d+\], \[\d+, \d+\]\]\n$/);

  await page.click(`${yard} button.copy-yaml`);
  const copied = await page.evaluate(() => navigator.clipboard.readText());
  assert.equal(copied, yaml, 'Copy YAML puts it on the clipboard');
  log('Copy YAML copied it');

  // A second area, undone corner by corner and then as a whole, leaves the first.
  await page.mouse.click(box.x + 0.7 * box.width, box.y + 0.7 * box.height);
  await page.mouse.click(box.x + 0.9 * box.width, box.y + 0.7 * box.height);
  await page.click(`${yard} button.undo-point`);
  await page.click(`${yard} button.undo-point`);
  assert.equal(await page.inputValue(`${yard} .mask-yaml`), yaml);
  await page.screenshot({ path: path.join(config.artifacts, 'live-mask-editor.png') });
  return yaml;
}

const browser = await chromium.launch({
  executablePath: config.chromium || CHROMIUM_PATH,
  args: CHROMIUM_ARGS,
});
let failed = false;
let page = null;
try {
  const context = await browser.newContext({
    viewport: { width: 1280, height: 900 },
    colorScheme: 'dark',
  });
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: config.url });
  page = await context.newPage();
  const problems = [];
  page.on('pageerror', (error) => problems.push(`uncaught ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(`console error: ${message.text()}`);
  });
  await page.goto(config.url + '/');
  await page.waitForSelector(`${card('yard')} canvas.live[data-frames]`, { timeout: 15000 });
  await checkPorch(page);
  await checkOverlay(page);
  const yaml = await checkMaskEditor(page);
  assert.deepEqual(problems, [], 'no console errors or page errors');
  console.log('@@yaml ' + JSON.stringify(yaml));
  log('all detection checks passed');
} catch (error) {
  failed = true;
  console.log(`FAILED: ${error.stack || error}`);
  if (page && !page.isClosed()) {
    const file = path.join(config.artifacts, 'detection-failure.png');
    await page.screenshot({ path: file, fullPage: true }).catch(() => {});
    console.log(`failure screenshot: ${file}`);
  }
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
