// Lighthouse's mobile performance audit of several pages, one Chromium for all of them.
//
// Used by tests/test_browser.py: `node tests/lighthouse.mjs CHROMIUM URL...` prints one JSON
// object mapping each URL to its performance score (0-100), its metrics in milliseconds (CLS
// unitless), the bytes it transferred, this machine's benchmark index and the CPU slow-down
// used. Lighthouse runs with its default mobile settings: a mid-range phone (Moto G Power,
// 412x823 screen), simulated slow 4G (150 ms round trip, 1.6 Mbit/s down) and a CPU slowed
// down. Only the slow-down is calibrated: Lighthouse's default of 4x stands for a host of
// benchmark index 1000 (below which Lighthouse itself warns that the host is too slow for
// it), i.e. a phone of index 250. Right before each page this script measures the host's
// index with Lighthouse's own benchmark and slows the CPU down to that phone (index / 250,
// at least 1), so a loaded or slow machine does not turn into a slower phone.
import lighthouse from "lighthouse";
import { pageFunctions } from "lighthouse/core/lib/page-functions.js";
import * as chromeLauncher from "chrome-launcher";
import * as constants from "lighthouse/core/config/constants.js";
import puppeteer from "puppeteer-core";

const [chromePath, ...urls] = process.argv.slice(2);
const PHONE_BENCHMARK_INDEX = 250;
const METRICS = {
  fcp: "first-contentful-paint",
  lcp: "largest-contentful-paint",
  tbt: "total-blocking-time",
  cls: "cumulative-layout-shift",
  si: "speed-index",
  bytes: "total-byte-weight",
};

async function benchmarkIndex(browser) {
  const page = await browser.newPage();
  try {
    return await page.evaluate(pageFunctions.computeBenchmarkIndex);
  } finally {
    await page.close();
  }
}

const chrome = await chromeLauncher.launch({
  chromePath,
  // Root in CI: no sandbox. The rest keeps Chromium from calling home on a closed network.
  chromeFlags: [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
});
const browser = await puppeteer.connect({ browserURL: `http://127.0.0.1:${chrome.port}` });
const results = {};
try {
  for (const url of urls) {
    const index = await benchmarkIndex(browser);
    const slowdown = Math.max(1, index / PHONE_BENCHMARK_INDEX);
    const { lhr } = await lighthouse(
      url,
      {
        port: chrome.port,
        output: "json",
        logLevel: "error",
        onlyCategories: ["performance"],
        onlyAudits: Object.values(METRICS),
        disableFullPageScreenshot: true,
      },
      {
        extends: "lighthouse:default",
        settings: {
          throttling: { ...constants.throttling.mobileSlow4G, cpuSlowdownMultiplier: slowdown },
        },
      },
    );
    if (lhr.runtimeError) {
      throw new Error(`${url}: ${lhr.runtimeError.code} ${lhr.runtimeError.message}`);
    }
    const page = { score: Math.round(lhr.categories.performance.score * 100) };
    for (const [key, audit] of Object.entries(METRICS)) {
      page[key] = lhr.audits[audit].numericValue;
    }
    page.benchmarkIndex = index;
    page.cpuSlowdown = slowdown;
    results[url] = page;
  }
} finally {
  await browser.disconnect();
  await chrome.kill();
}
console.log(JSON.stringify(results));
