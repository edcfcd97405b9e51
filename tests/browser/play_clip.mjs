// Plays one clip in Debian's Chromium and seeks to its end (started by tests/integration/test_recovery.py).
//
//   node play_clip.mjs http://127.0.0.1:PORT/media/clips/cam/2026-11-21/061502Z.mp4
//
// Prints one JSON line: {"ok": bool, "duration", "videoWidth", "seekedTo", "ended", "error"}.
// Exit 0 when the clip loaded, seeked to 0.1 s before its end, showed a picture there and played
// through to its end without a media error.

import { chromium } from 'playwright-core';

import { CHROMIUM_ARGS, CHROMIUM_PATH } from './chromium.mjs';

const url = process.argv[2];

const browser = await chromium.launch({
  executablePath: CHROMIUM_PATH,
  args: [...CHROMIUM_ARGS, '--autoplay-policy=no-user-gesture-required'],
});
let result;
try {
  const page = await browser.newPage();
  // A page of the clip's own origin (Chromium's page for the file itself): from about:blank
  // Chromium refuses the load ("Format error").
  await page.goto(url);
  result = await page.evaluate(async (src) => {
    for (const own of document.querySelectorAll('video')) own.remove();
    const video = document.createElement('video');
    video.muted = true;
    video.preload = 'auto';
    document.body.append(video);
    const outcome = { duration: null, videoWidth: 0, seekedTo: null, ended: false, error: null };
    // Resolves on `name`, rejects on a media error or after `ms`.
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
      const loaded = next('loadeddata', 10000);
      video.src = src;
      await loaded;
      outcome.duration = video.duration;
      if (!Number.isFinite(video.duration) || video.duration <= 0.1) {
        throw new Error(`duration is ${video.duration}`);
      }
      const seeked = next('seeked', 10000);
      video.currentTime = video.duration - 0.1;
      await seeked;
      outcome.seekedTo = video.currentTime;
      if (outcome.seekedTo < video.duration - 0.2) throw new Error(`seeked to ${outcome.seekedTo} only`);
      outcome.videoWidth = video.videoWidth;
      if (video.readyState < 2) throw new Error(`no picture after the seek (readyState ${video.readyState})`);
      const ended = next('ended', 10000);
      await video.play();
      await ended;
      outcome.ended = true;
    } catch (error) {
      outcome.error = String(error.message || error);
    }
    if (video.error && !outcome.error) outcome.error = `media error ${video.error.code}`;
    return outcome;
  }, url);
} finally {
  await browser.close();
}
result.ok = !result.error && result.ended && result.videoWidth > 0;
console.log(JSON.stringify(result));
process.exit(result.ok ? 0 : 1);
