#!/usr/bin/env node
// Renders a lag report page (`walship lag --report FILE --html OUT`, or a drill's lag.html) in
// headless Chromium to a PNG, as a person would see it: the README's screenshot comes from here.
//
//   node scripts/render-lag-report.mjs REPORT.html OUT.png [--width PX]
//
// The browser is Debian's chromium (apt-get install -y --no-install-recommends chromium), driven
// by the playwright-core package (a devDependency): browser downloads by test tools fail on these
// machines, so none is ever downloaded; CHROMIUM names another binary. Before the screenshot the
// page is checked as drawn: its embedded data (#walship-lag-data) parses, and each standby in it
// has its line in both charts. Not part of CI (the page's structure is checked there).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';

const usage = 'usage: node scripts/render-lag-report.mjs REPORT.html OUT.png [--width PX]';
const args = process.argv.slice(2);
const widthAt = args.indexOf('--width');
const width = widthAt === -1 ? 1040 : Number(args.splice(widthAt, 2)[1]);
const [input, output] = args;
if (input === undefined || output === undefined || !Number.isInteger(width) || width < 320) {
  console.error(usage);
  process.exit(2);
}
if (!fs.existsSync(input)) {
  console.error(`render-lag-report: "${input}" does not exist. Make one with walship lag --report FILE --html OUT.`);
  process.exit(1);
}
const executablePath = process.env.CHROMIUM ?? '/usr/bin/chromium';
if (!fs.existsSync(executablePath)) {
  console.error(`render-lag-report: no Chromium at ${executablePath}. Install Debian's: apt-get install -y --no-install-recommends chromium (or set CHROMIUM).`);
  process.exit(1);
}

const { chromium } = await import('playwright-core');
// As root (these machines) Chromium's sandbox cannot start; the page is a local file of ours.
const browser = await chromium.launch({ executablePath, headless: true, args: ['--no-sandbox'] });
try {
  const page = await browser.newPage({ viewport: { width, height: 720 }, deviceScaleFactor: 1 });
  const errors = [];
  page.on('pageerror', (error) => errors.push(error.message));
  page.on('requestfailed', (request) => errors.push(`request failed: ${request.url()}`));
  await page.goto(pathToFileURL(path.resolve(input)).href, { waitUntil: 'load' });
  const drawn = await page.evaluate(() => {
    const data = JSON.parse(document.getElementById('walship-lag-data')?.textContent ?? 'null');
    if (data === null) return null;
    return {
      samples: data.samples,
      standbys: data.standbys.map((standby) => ({
        name: standby.name,
        lines: [...document.querySelectorAll('path.series')].filter((element) => element.getAttribute('data-standby') === standby.name).length,
      })),
      charts: document.querySelectorAll('svg').length,
    };
  });
  if (drawn === null) throw new Error(`${input} has no embedded lag data (#walship-lag-data): is it a walship lag report?`);
  const missing = drawn.standbys.filter((standby) => standby.lines < drawn.charts);
  if (missing.length > 0) throw new Error(`no line drawn for ${missing.map((s) => s.name).join(', ')} in every chart`);
  if (errors.length > 0) throw new Error(`the page had errors: ${errors.join('; ')}`);
  await page.screenshot({ path: output, fullPage: true });
  console.log(`wrote ${output}: ${drawn.samples} samples, ${drawn.charts} charts, standbys ${drawn.standbys.map((s) => s.name).join(', ')}`);
} finally {
  await browser.close();
}
