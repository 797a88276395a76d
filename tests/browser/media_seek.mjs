// Opens a page served through fanoutd whose <audio> plays a WAV file that
// is also served through fanoutd, seeks to the middle, plays, and reports
// the position playback reached. Prints one JSON line; exits non-zero on
// failure. Driven by media_seek.sh.
//
//   node media_seek.mjs http://127.0.0.1:PORT/page.html

import { chromium } from 'playwright-core';

const url = process.argv[2];
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--autoplay-policy=no-user-gesture-required', '--no-sandbox', '--mute-audio'],
});
try {
  const page = await browser.newPage();
  await page.goto(url);
  const result = await page.evaluate(async () => {
    const audio = document.querySelector('audio');
    const failed = () => new Error('media error ' + (audio.error ? audio.error.code : '?'));
    if (audio.readyState < 1) {
      await new Promise((resolve, reject) => {
        audio.addEventListener('loadedmetadata', resolve, { once: true });
        audio.addEventListener('error', () => reject(failed()), { once: true });
      });
    }
    const target = audio.duration / 2;
    const seeked = new Promise((resolve) => audio.addEventListener('seeked', resolve, { once: true }));
    audio.currentTime = target;
    await seeked;
    await audio.play();
    const started = performance.now();
    while (audio.currentTime < target + 1.0) {
      if (audio.error) throw failed();
      if (performance.now() - started > 30000) {
        throw new Error('playback stuck at ' + audio.currentTime + ' s');
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    return { duration: audio.duration, target, reached: audio.currentTime };
  });
  console.log(JSON.stringify(result));
} finally {
  await browser.close();
}
