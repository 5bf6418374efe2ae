// Lighthouse's mobile performance audit of several pages, one Chromium for all of them.
//
// Used by tests/test_browser.py: `node tests/lighthouse.mjs CHROMIUM URL...` prints one JSON
// object mapping each URL to its performance score (0-100), its metrics in milliseconds (CLS
// unitless), the bytes it transferred, its accessibility, best-practices and SEO scores
// (0-100), this machine's benchmark index and the CPU slow-down used, all from the median of
// three runs (LIGHTHOUSE_RUNS), and the total blocking time of every run. Lighthouse runs
// with its default mobile settings: a mid-range phone (Moto G Power, 412x823 screen),
// simulated slow 4G (150 ms round trip, 1.6 Mbit/s down) and a CPU slowed down. Only the
// slow-down is calibrated: Lighthouse's default of 4x stands for a host of benchmark index
// 1000 (below which Lighthouse itself warns that the host is too slow for it), i.e. a phone
// of index 250. Right before each run this script measures the host's index with
// Lighthouse's own benchmark and slows the CPU down to that phone (index / 250, at least 1),
// so a loaded or slow machine does not turn into a slower phone.
import lighthouse from "lighthouse";
import { pageFunctions } from "lighthouse/core/lib/page-functions.js";
import * as chromeLauncher from "chrome-launcher";
import * as constants from "lighthouse/core/config/constants.js";
import { computeMedianRun, filterToValidRuns } from "lighthouse/core/lib/median-run.js";
import puppeteer from "puppeteer-core";

const [chromePath, ...urls] = process.argv.slice(2);
const PHONE_BENCHMARK_INDEX = 250;
// Runs per page (LIGHTHOUSE_RUNS, default 3); the median run is reported.
const RUNS = Number(process.env.LIGHTHOUSE_RUNS || 3);
const METRICS = {
  fcp: "first-contentful-paint",
  lcp: "largest-contentful-paint",
  tbt: "total-blocking-time",
  cls: "cumulative-layout-shift",
  si: "speed-index",
  bytes: "total-byte-weight",
};
// Scored in the same run, as PageSpeed Insights shows them beside performance (0-100).
const CATEGORIES = { accessibility: "accessibility", bestPractices: "best-practices", seo: "seo" };

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
    // Lighthouse's own advice on variability: run a page several times and keep the median
    // run (the run nearest the median first contentful paint and time to interactive).
    const runs = [];
    for (let run = 0; run < RUNS; run++) {
      const index = await benchmarkIndex(browser);
      const slowdown = Math.max(1, index / PHONE_BENCHMARK_INDEX);
      const { lhr } = await lighthouse(
        url,
        {
          port: chrome.port,
          output: "json",
          logLevel: "error",
          onlyCategories: ["performance", ...Object.values(CATEGORIES)],
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
      lhr.initdocs = { benchmarkIndex: index, cpuSlowdown: slowdown };
      runs.push(lhr);
    }
    const lhr = computeMedianRun(filterToValidRuns(runs));
    const page = { score: Math.round(lhr.categories.performance.score * 100) };
    for (const [key, audit] of Object.entries(METRICS)) {
      page[key] = lhr.audits[audit].numericValue;
    }
    for (const [key, category] of Object.entries(CATEGORIES)) {
      page[key] = Math.round(lhr.categories[category].score * 100);
    }
    Object.assign(page, lhr.initdocs);
    page.runs = runs.length;
    page.tbtRuns = runs.map((run) => Math.round(run.audits[METRICS.tbt].numericValue));
    results[url] = page;
  }
} finally {
  await browser.disconnect();
  await chrome.kill();
}
console.log(JSON.stringify(results));
