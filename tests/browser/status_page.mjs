// Opens fanoutd's admin status page while a throttled fetch, held by the
// origin, has several readers, and checks that the page updates itself:
// the fetch's row shows the readers attached; once the page has shown
// them it releases the origin (RELEASE-URL), and the progress bar
// advances without a reload. Saves a screenshot. Prints one JSON line;
// exits non-zero on failure. Driven by status_page.sh.
//
//   node status_page.mjs http://127.0.0.1:ADMIN/ PATH-PART READERS SCREENSHOT.png RELEASE-URL

import { chromium } from 'playwright-core';

const [url, part, readers, screenshot, release] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox'],
});
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  let loads = 0;
  page.on('load', () => { loads++; });
  await page.goto(url);
  const row = `#fetches tr[data-key*="${part}"]`;
  // The row appears, with every reader attached.
  await page.waitForFunction(([selector, n]) => {
    const r = document.querySelector(selector);
    return r && r.querySelector('td.readers').textContent === n;
  }, [row, readers], { timeout: 45000, polling: 100 });
  const progress = () => page.$eval(`${row} .bar`, (bar) => Number(bar.dataset.progress));
  const first = await progress();
  const released = await fetch(release);
  if (!released.ok) throw new Error(`${release}: ${released.status}`);
  await page.waitForFunction(([selector, before]) => {
    const bar = document.querySelector(`${selector} .bar`);
    return bar && Number(bar.dataset.progress) > before + 1;
  }, [row, first], { timeout: 30000, polling: 100 });
  const second = await progress();
  const rate = await page.$eval(`${row} td.rate`, (td) => td.textContent);
  const shownReaders = await page.$eval(`${row} td.readers`, (td) => td.textContent);
  await page.screenshot({ path: screenshot, fullPage: true });
  if (loads !== 1) throw new Error(`the page loaded ${loads} times; it must update in place`);
  if (!/\/s$/.test(rate)) throw new Error(`no upstream rate shown: '${rate}'`);
  console.log(JSON.stringify({ first, second, rate, readers: shownReaders, loads }));
} finally {
  await browser.close();
}
