// The theme's interactive scripts, run when the reader first interacts with the page.
//
// Inlined in the head of every page by initdocs.book.weight (`initdocs_interaction_script`).
// The scripts that only wire up controls (menus, tooltips, the search dialog, copy buttons,
// sidebar toggles) are written as <script type="initdocs/on-interaction" src=...>, which the
// browser neither fetches nor runs. Once the page has loaded and the browser is idle, this
// script prefetches them (then they are in the cache; prefetched with the page, they took a
// slow connection's bandwidth from the first screen: Lighthouse's LCP, 2.1-2.3 s, reached 2.6 s).
// On the reader's first pointer move, touch, key, focus, wheel or scroll, it turns them into
// real scripts, in their order. A phone that loads a chapter spends its first seconds on the
// text, not on the theme's script work (its "total blocking time" was over 100 ms).
//
// Until then the page is the HTML and its stylesheets (where code blocks and tables already
// have their tab stops, see weight.tab_stops), and three things are done here:
// 1. the theme: a reader whose choice is "auto" (the default) gets the system's light or dark
//    scheme before the first paint, and follows it when it changes (the theme's script did it
//    only after the first paint: a dark-mode reader saw the page light first);
// 2. the first use of a control: a click on a button or menu toggle, or the search shortcut
//    (Ctrl+K, or Cmd+K on a Mac), that comes before the scripts have run is held and replayed
//    once they have;
// 3. the chapter below its first screen: from the fourth section on, each block (paragraph,
//    heading, formula, list, table) is laid out only as it nears the screen
//    (content-visibility: auto), so the layouts of the first paint are of the first screen,
//    not the whole chapter; once the page has loaded, these blocks are laid out a few at a
//    time while the browser is idle, each step a few milliseconds, and are then drawn as on
//    any page (the scroll bar and links into the page are exact, and tools that hit-test the
//    page, such as an accessibility audit's contrast check, see all of it). Laid out as the
//    page loaded, a chapter's text took one or two long tasks on a phone (Lighthouse's total
//    blocking time up to 300 ms in one run of three). Without JavaScript, nothing is deferred.
// window.initdocsInteractive is "waiting", then "loading", then "ready"; window.initdocsDrawn
// is false until the whole page is laid out.
(() => {
  "use strict";
  const root = document.documentElement;

  // 1. The theme (pydata-sphinx-theme's inline script has set data-mode from the stored choice).
  const dark = matchMedia("(prefers-color-scheme: dark)");
  const followTheSystem = () => {
    if ((root.dataset.mode || "auto") === "auto") {
      root.dataset.theme = dark.matches ? "dark" : "light";
    }
  };
  followTheSystem();
  dark.addEventListener("change", followTheSystem);

  // 2. The scripts, on the first interaction.
  const TRIGGERS = [
    "pointermove",
    "pointerdown",
    "touchstart",
    "keydown",
    "focusin",
    "wheel",
    "scroll",
  ];
  const CONTROL = "button, [data-bs-toggle], [role='button']";
  const held = [];
  window.initdocsInteractive = "waiting";

  const ready = () => {
    window.initdocsInteractive = "ready";
    for (const replay of held.splice(0)) replay();
  };

  const load = () => {
    if (window.initdocsInteractive !== "waiting") return;
    window.initdocsInteractive = "loading";
    for (const type of TRIGGERS) removeEventListener(type, load, true);
    if (document.readyState === "loading") {
      // the page is still arriving: its last placeholders are not there yet
      document.addEventListener("DOMContentLoaded", run);
    } else {
      run();
    }
  };

  const run = () => {
    const waiting = [...document.querySelectorAll('script[type="initdocs/on-interaction"]')];
    let pending = waiting.length;
    for (const placeholder of waiting) {
      const script = document.createElement("script");
      for (const { name, value } of placeholder.attributes) {
        if (name !== "type") script.setAttribute(name, value);
      }
      script.async = false; // run in the order they are written, like deferred scripts
      script.onload = script.onerror = () => --pending || ready();
      placeholder.replaceWith(script);
    }
    if (!pending) ready();
  };

  for (const type of TRIGGERS) addEventListener(type, load, { capture: true, passive: true });

  const prefetch = () => {
    for (const placeholder of document.querySelectorAll('script[type="initdocs/on-interaction"]')) {
      const link = document.createElement("link");
      link.rel = "prefetch";
      link.as = "script";
      link.href = placeholder.src;
      document.head.append(link);
    }
  };
  addEventListener("load", () => {
    if (window.requestIdleCallback) requestIdleCallback(prefetch, { timeout: 3000 });
    else setTimeout(prefetch, 1000); // Safari has no idle callback
  });

  addEventListener(
    "click",
    (event) => {
      if (window.initdocsInteractive === "ready") return;
      const control = event.target instanceof Element && event.target.closest(CONTROL);
      if (!control) return;
      event.preventDefault();
      event.stopImmediatePropagation();
      held.push(() => control.click());
      load();
    },
    true,
  );

  addEventListener(
    "keydown",
    (event) => {
      if (window.initdocsInteractive === "ready") return;
      if (!(event.ctrlKey || event.metaKey) || String(event.key).toLowerCase() !== "k") return;
      event.preventDefault();
      const { key, code, ctrlKey, metaKey, shiftKey, altKey } = event;
      const options = { key, code, ctrlKey, metaKey, shiftKey, altKey, bubbles: true };
      held.push(() => dispatchEvent(new KeyboardEvent("keydown", options)));
      load();
    },
    true,
  );

  // 3. The page below the first screen: laid out near the screen, the rest when idle.
  // From the fourth section of the chapter on, which starts below the first screen (the test
  // checks it on a phone and on desktop screens up to 1920x1200): a block that is on screen
  // at the first paint must not be deferred, since with stylesheets still loading as the
  // HTML is parsed Chromium lays it out at its placeholder size first (a layout shift).
  const FROM = ".bd-article > section > section:nth-of-type(n + 4)";
  const LATER = `:is(${FROM}, ${FROM} section) > :not(section, div.cell)`; // cells: initdocs.css
  const DRAWN = "initdocs-drawn";
  const STEP_MS = 3; // the longest a step lays out blocks, plus the one it is on
  const sheet = document.createElement("style");
  sheet.textContent =
    `@media screen { ${LATER}:not(.${DRAWN}) ` +
    "{ content-visibility: auto; contain-intrinsic-size: auto 6rem; } }";
  document.head.append(sheet);
  window.initdocsDrawn = false;

  const whenIdle = (callback) => {
    if (window.requestIdleCallback) requestIdleCallback(callback);
    else setTimeout(callback, 16); // Safari has no idle callback
  };
  addEventListener("load", () => {
    const blocks = document.querySelectorAll(LATER);
    let next = 0;
    const step = () => {
      const start = performance.now();
      while (next < blocks.length && performance.now() - start < STEP_MS) {
        const block = blocks[next++];
        block.classList.add(DRAWN);
        void block.offsetHeight; // laid out now, in this step, not all at once in a frame
      }
      if (next < blocks.length) whenIdle(step);
      else window.initdocsDrawn = true;
    };
    whenIdle(step);
  });
})();
