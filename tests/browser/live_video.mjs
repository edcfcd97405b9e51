// The live page's video in Debian's Chromium (started by tests/e2e/test_live_video.py).
//
//   node live_video.mjs '{"base": "http://127.0.0.1:P", "video": "door", "seconds": 30,
//                         "jpeg": ["mjpeg-cam", "hevc-cam"], "grid": true, "gridVideo": ["door"]}'
//
// For the `video` camera: opens its full view, waits for the <video> to show the picture (the
// card's data-view "video") and samples it once a second for `seconds`: currentTime, frames
// shown (getVideoPlaybackQuality), how far behind the newest buffered picture it plays, and the
// page's latency figures (capture to display: the page's median, and the last 15 pictures'). For each `jpeg` camera: that the page shows JPEG
// pictures and says why not video. With `grid`: the all-cameras page shows a tile per camera,
// each with a picture. Prints one JSON line with all of it.

import { chromium } from 'playwright-core';

import { CHROMIUM_ARGS, CHROMIUM_PATH } from './chromium.mjs';

const config = JSON.parse(process.argv[2]);
const browser = await chromium.launch({
  executablePath: CHROMIUM_PATH,
  args: [...CHROMIUM_ARGS, '--autoplay-policy=no-user-gesture-required'],
});
const result = { errors: [] };
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  page.on('pageerror', (error) => result.errors.push(error.message));

  const card = (name) => `article.camera[data-camera="${name}"]`;
  await page.goto(`${config.base}/?camera=${encodeURIComponent(config.video)}`);
  const opened = Date.now();
  await page.waitForSelector(`${card(config.video)}[data-view="video"]`, { timeout: 20000 });
  result.secondsToVideo = (Date.now() - opened) / 1000;
  result.mime = await page.$eval(`${card(config.video)} video`, (v) => v.dataset.mime);
  result.samples = [];
  for (let i = 0; i < config.seconds; i += 1) {
    await page.waitForTimeout(1000);
    result.samples.push(
      await page.$eval(card(config.video), (article) => {
        const video = article.querySelector('video');
        const ranges = video.buffered;
        const end = ranges.length ? ranges.end(ranges.length - 1) : null;
        return {
          currentTime: video.currentTime,
          frames: video.getVideoPlaybackQuality().totalVideoFrames,
          behind: end === null ? null : end - video.currentTime,
          paused: video.paused,
          hidden: video.hidden,
          canvasHidden: article.querySelector('canvas.live').hidden,
          latencyMs: Number(article.querySelector('.latency').dataset.ms ?? NaN),
          frameLatenciesMs: (video.dataset.latencies || '').split(',').filter(Boolean).map(Number),
          view: article.dataset.view,
        };
      }),
    );
  }

  // The detection overlay and the mask editor over the video: the layer covers the video's box,
  // draws with each status, and clicks on it make a mask in the camera's (main stream) pixels.
  const door = card(config.video);
  await page.click(`${door} button.show-detection`);
  const drawsBefore = Number(await page.getAttribute(`${door} canvas.detection-layer`, 'data-draws'));
  await page.waitForTimeout(1500);
  const layerBox = await page.locator(`${door} canvas.detection-layer`).boundingBox();
  const videoBox = await page.locator(`${door} video`).boundingBox();
  await page.click(`${door} button.edit-masks`);
  for (const [fx, fy] of [[0.1, 0.1], [0.4, 0.1], [0.4, 0.4], [0.1, 0.1]]) {
    await page.mouse.click(layerBox.x + fx * layerBox.width, layerBox.y + fy * layerBox.height);
  }
  result.overlay = {
    drawsBefore,
    drawsAfter: Number(await page.getAttribute(`${door} canvas.detection-layer`, 'data-draws')),
    layerBox,
    videoBox,
    yaml: await page.inputValue(`${door} .mask-yaml`),
  };

  // The main/sub switch: the sub stream plays in the same element, then main again.
  result.streams = [];
  for (const wanted of ['sub', 'main']) {
    await page.click(`${door} button.stream-toggle`);
    await page.waitForFunction(
      ([selector, stream]) => {
        const article = document.querySelector(selector);
        const video = article.querySelector('video');
        return article.dataset.view === 'video' && video.dataset.stream === stream &&
          video.videoWidth > 0 && !video.paused;
      },
      [door, wanted],
      { timeout: 20000 },
    );
    const before = await page.$eval(`${door} video`, (v) => v.getVideoPlaybackQuality().totalVideoFrames);
    await page.waitForTimeout(1000);
    result.streams.push(
      await page.$eval(`${door} video`, (video, framesBefore) => ({
        stream: video.dataset.stream,
        width: video.videoWidth,
        height: video.videoHeight,
        framesInASecond: video.getVideoPlaybackQuality().totalVideoFrames - framesBefore,
      }), before),
    );
  }

  result.jpeg = {};
  for (const name of config.jpeg || []) {
    await page.goto(`${config.base}/?camera=${encodeURIComponent(name)}`);
    await page.waitForFunction(
      (selector) => {
        const article = document.querySelector(selector);
        const frames = Number(article?.querySelector('canvas.live').dataset.frames || 0);
        return article && article.dataset.videoRefused && frames >= 3;
      },
      card(name),
      { timeout: 20000 },
    );
    result.jpeg[name] = await page.$eval(card(name), (article) => ({
      view: article.dataset.view,
      refused: article.dataset.videoRefused,
      videoHidden: article.querySelector('video').hidden,
      canvasFrames: Number(article.querySelector('canvas.live').dataset.frames),
    }));
  }

  if (config.grid) {
    await page.goto(`${config.base}/grid`);
    // Every tile shows a picture; those of `gridVideo` cameras as video.
    await page.waitForFunction(
      (videos) => {
        const tiles = [...document.querySelectorAll('.tile')];
        return (
          tiles.length &&
          tiles.every((tile) =>
            videos.includes(tile.dataset.camera)
              ? tile.dataset.view === 'video'
              : Number(tile.querySelector('img').dataset.frames) > 0,
          )
        );
      },
      config.gridVideo || [],
      { timeout: 20000 },
    );
    result.grid = await page.$$eval('.tile', (tiles) =>
      tiles.map((tile) => ({
        camera: tile.dataset.camera,
        view: tile.dataset.view || 'jpeg',
        href: tile.getAttribute('href'),
      })),
    );
  }
  result.ok = true;
} catch (error) {
  result.ok = false;
  result.error = String(error);
} finally {
  await browser.close();
}
console.log(JSON.stringify(result));
