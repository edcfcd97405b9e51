// Opens the clip page on one clip (started by tests/e2e/test_ipcam.py) and reports what it shows.
//
//   node clip_page.mjs http://127.0.0.1:PORT CLIP_ID
//
// Prints one JSON line: {"canPlayType", "notice", "videoHidden", "loaded", "error"}: what this
// browser says of the clip's codec, the page's notice (empty when none), whether the player is
// hidden, and whether the video loaded a picture (when it is shown).

import { chromium } from 'playwright-core';

import { CHROMIUM_ARGS, CHROMIUM_PATH } from './chromium.mjs';

const [base, clipId] = process.argv.slice(2);
const browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS });
const result = { canPlayType: null, notice: '', videoHidden: null, loaded: false, error: null };
try {
  const page = await browser.newPage();
  await page.goto(`${base}/clips#${encodeURIComponent(clipId)}`);
  await page.waitForSelector('#player:not([hidden])', { timeout: 15000 });
  const clip = await page.evaluate(async (id) => {
    const reply = await fetch(`api/clips/${id.split('/').map(encodeURIComponent).join('/')}`);
    return reply.json();
  }, clipId);
  const types = {
    h264: 'video/mp4; codecs="avc1.4D401F"',
    hevc: 'video/mp4; codecs="hvc1.1.6.L93.B0"',
  };
  Object.assign(
    result,
    await page.evaluate((type) => {
      const video = document.getElementById('player-video');
      const notice = document.getElementById('player-unplayable');
      return {
        canPlayType: document.createElement('video').canPlayType(type),
        notice: notice.hidden ? '' : notice.textContent,
        videoHidden: video.hidden,
      };
    }, types[clip.codec]),
  );
  if (!result.videoHidden) {
    result.loaded = await page.evaluate(
      () =>
        new Promise((resolve) => {
          const video = document.getElementById('player-video');
          if (video.readyState >= 2) return resolve(true);
          video.addEventListener('loadeddata', () => resolve(true), { once: true });
          video.addEventListener('error', () => resolve(false), { once: true });
          setTimeout(() => resolve(video.readyState >= 2), 10000);
        }),
    );
  }
} catch (error) {
  result.error = String(error);
} finally {
  await browser.close();
}
console.log(JSON.stringify(result));
process.exit(result.error ? 1 : 0);
