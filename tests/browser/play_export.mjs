// Downloads an export (GET /api/export) as a browser does and plays it from the downloaded
// file, in Debian's Chromium (started by tests/e2e/test_continuous.py).
//
//   node play_export.mjs http://127.0.0.1:PORT '/api/export?camera=door&start=...&end=...'
//
// Prints one JSON line: {"ok", "duration", "videoWidth", "seeks": [[asked, got], ...], "ended",
// "error"}. Exit 0 when the export loaded, seeked to its middle and to 0.1 s before its end
// showing a picture each time, and played through to its end without a media error.

import { chromium } from 'playwright-core';

import { CHROMIUM_ARGS, CHROMIUM_PATH } from './chromium.mjs';

const [base, path] = process.argv.slice(2);

const browser = await chromium.launch({
  executablePath: CHROMIUM_PATH,
  args: [...CHROMIUM_ARGS, '--autoplay-policy=no-user-gesture-required'],
});
let result;
try {
  const page = await browser.newPage();
  await page.goto(`${base}/`);
  result = await page.evaluate(async (path) => {
    const outcome = { duration: null, videoWidth: 0, seeks: [], ended: false, error: null };
    const video = document.createElement('video');
    video.muted = true;
    video.preload = 'auto';
    document.body.append(video);
    const next = (name, ms) =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no ${name} within ${ms} ms`)), ms);
        video.addEventListener(name, () => { clearTimeout(timer); resolve(); }, { once: true });
        video.addEventListener('error', () => {
          clearTimeout(timer);
          reject(new Error(`media error ${video.error?.code}: ${video.error?.message}`));
        }, { once: true });
      });
    try {
      const response = await fetch(path);
      if (!response.ok) throw new Error(`export answered ${response.status}`);
      if (!/^attachment; filename=/.test(response.headers.get('Content-Disposition') || '')) {
        throw new Error('no attachment header');
      }
      const file = await response.blob();
      const loaded = next('loadeddata', 10000);
      video.src = URL.createObjectURL(file);
      await loaded;
      outcome.duration = video.duration;
      if (!Number.isFinite(video.duration) || video.duration <= 1) {
        throw new Error(`duration is ${video.duration}`);
      }
      for (const asked of [video.duration / 2, video.duration - 0.1]) {
        const seeked = next('seeked', 10000);
        video.currentTime = asked;
        await seeked;
        outcome.seeks.push([asked, video.currentTime]);
        if (Math.abs(video.currentTime - asked) > 0.15) throw new Error(`seeked to ${video.currentTime}, not ${asked}`);
        if (video.readyState < 2) throw new Error(`no picture after the seek to ${asked}`);
      }
      outcome.videoWidth = video.videoWidth;
      const ended = next('ended', 10000);
      await video.play();
      await ended;
      outcome.ended = true;
    } catch (error) {
      outcome.error = String(error.message || error);
    }
    if (video.error && !outcome.error) outcome.error = `media error ${video.error.code}`;
    return outcome;
  }, path);
} finally {
  await browser.close();
}
result.ok = !result.error && result.ended && result.videoWidth > 0;
console.log(JSON.stringify(result));
process.exit(result.ok ? 0 : 1);
