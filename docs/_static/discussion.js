// The discussion view (initdocs.book.discussion): one prompt at a time. Keys: ArrowRight,
// PageDown or Space for the next prompt, ArrowLeft, PageUp or Shift+Space for the previous,
// Home and End for the first and the last. The position is announced ("Prompt 2 of 6"),
// and the address (#prompt-2) keeps it across a reload. Without this script every prompt
// stays on the page.
(() => {
  const root = document.documentElement;
  const slides = [...document.querySelectorAll(".discussion-slide")];
  const controls = document.querySelector(".discussion-controls");
  if (!slides.length || !controls) return;
  const position = controls.querySelector(".discussion-position");
  const previous = controls.querySelector(".discussion-previous");
  const next = controls.querySelector(".discussion-next");
  const theme = document.querySelector(".discussion-theme");
  let current = -1;

  function show(index, remember = true) {
    index = Math.max(0, Math.min(slides.length - 1, index));
    if (index === current) return;
    current = index;
    slides.forEach((slide, i) => { slide.hidden = i !== index; });
    position.textContent = `Prompt ${index + 1} of ${slides.length}`;
    previous.setAttribute("aria-disabled", String(index === 0));
    next.setAttribute("aria-disabled", String(index === slides.length - 1));
    // not while the page loads: the browser would scroll to the address's prompt on "load"
    if (remember) history.replaceState(null, "", `#${slides[index].id}`);
  }

  function fromAddress() {
    const found = slides.findIndex((slide) => `#${slide.id}` === location.hash);
    return found < 0 ? 0 : found;
  }

  function themeLabel() {
    theme.textContent = root.dataset.theme === "dark" ? "Light theme" : "Dark theme";
  }

  document.addEventListener("keydown", (event) => {
    if (event.defaultPrevented || event.altKey || event.ctrlKey || event.metaKey) return;
    const target = event.target instanceof Element ? event.target : null;
    const control = target && target.closest("a, button, input, select, textarea, summary");
    const key = event.key === " " ? "Space" : event.key;
    if (control && (key === "Space" || key === "Enter")) return; // the control's own action
    const steps = {
      ArrowRight: 1, PageDown: 1, Space: event.shiftKey ? -1 : 1, ArrowLeft: -1, PageUp: -1,
    };
    if (key in steps) show(current + steps[key]);
    else if (key === "Home") show(0);
    else if (key === "End") show(slides.length - 1);
    else return;
    event.preventDefault();
  });
  previous.addEventListener("click", () => show(current - 1));
  next.addEventListener("click", () => show(current + 1));
  addEventListener("hashchange", () => show(fromAddress()));
  theme.addEventListener("click", () => {
    const mode = root.dataset.theme === "dark" ? "light" : "dark";
    root.dataset.mode = root.dataset.theme = mode;
    try {
      localStorage.setItem("mode", mode); // the theme's own keys: the book's pages follow
      localStorage.setItem("theme", mode);
    } catch (error) { /* storage off: the choice lasts for this page */ }
    themeLabel();
  });
  matchMedia("(prefers-color-scheme: dark)").addEventListener("change", (event) => {
    if (root.dataset.mode !== "auto") return;
    root.dataset.theme = event.matches ? "dark" : "light";
    themeLabel();
  });

  root.classList.add("discussion-js");
  controls.hidden = theme.hidden = false;
  themeLabel();
  show(fromAddress(), false);
})();
