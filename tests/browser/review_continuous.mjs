// The timeline on footage the daemon is recording right now (started by
// tests/e2e/test_browser_review.py): continuous segments of the demo camera.
//
//   node review_continuous.mjs '{"url": "http://127.0.0.1:P", "camera": "demo",
//                                "segments": [{"start", "end", "url"}, ...]}'
//
// Opens /review at a moment inside the first segment and checks that it plays from within 1 s
// of it, then that playback goes on into the second segment. Exit 0: both held.

import assert from 'node:assert/strict';

import { chromium } from 'playwright-core';

import { CHROMIUM_ARGS, CHROMIUM_PATH } from './chromium.mjs';

const config = JSON.parse(process.argv[2]);
const [first, second] = config.segments;
const moment = first.end - 2;
const browser = await chromium.launch({
  executablePath: CHROMIUM_PATH,
  args: [...CHROMIUM_ARGS, '--autoplay-policy=no-user-gesture-required'],
});
let failed = false;
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 }, timezoneId: 'UTC' });
  const errors = [];
  page.on('pageerror', (error) => errors.push(error.message));
  const t = new Date(moment * 1000).toISOString();
  await page.goto(`${config.url}/review?camera=${config.camera}&t=${encodeURIComponent(t)}`);
  const video = `video[data-camera="${config.camera}"]`;
  const from = await page.waitForFunction(
    (selector) => {
      const v = document.querySelector(selector);
      return v?.dataset.playedFrom !== undefined && v.readyState >= 2 ? v.dataset.playedFrom : false;
    },
    video,
    { timeout: 15000 },
  );
  const playedFrom = Number(await from.jsonValue());
  assert.equal(await page.$eval(video, (v) => v.dataset.url), first.url, 'the segment covering the moment');
  assert.ok(Math.abs(playedFrom - moment) <= 1, `played from ${playedFrom}, asked for ${moment}`);
  console.log(`played the recorded segment from ${(playedFrom - first.start).toFixed(2)} s into it (asked ${(moment - first.start).toFixed(2)})`);
  await page.waitForFunction(
    ({ selector, url }) => {
      const v = document.querySelector(selector);
      return v.dataset.url === url && v.currentTime > 0.5 && !v.paused;
    },
    { selector: video, url: second.url },
    { timeout: 15000 },
  );
  console.log('playback went on into the next recorded segment');
  assert.deepEqual(errors, [], 'no page errors');
} catch (error) {
  failed = true;
  console.log(`FAILED: ${error.stack || error}`);
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
