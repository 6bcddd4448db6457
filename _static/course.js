/* Interview quotes and the transcript.
 *
 * A quote's link names the first line of its range (transcript.html#line-95) and, in its class
 * interview-lines-95-101, the last; here it is pointed at the whole range (transcript.html#lines-95-101).
 * On the transcript page every line of the range in the address is marked .in-quoted-range (course.css
 * highlights it), again whenever the address changes.
 */
(() => {
  "use strict";
  const RANGE = /^#lines-(\d+)-(\d+)$/;

  function linkQuotesToTheirRanges() {
    document.querySelectorAll("a.interview-location").forEach((link) => {
      const range = Array.from(link.classList).map((c) => /^interview-lines-(\d+)-(\d+)$/.exec(c)).find(Boolean);
      if (range) {
        link.hash = `#lines-${range[1]}-${range[2]}`;
      }
    });
  }

  function highlightQuotedRange() {
    if (!document.querySelector(".interview-transcript")) {
      return;
    }
    document.querySelectorAll(".interview-transcript .in-quoted-range").forEach((line) => {
      line.classList.remove("in-quoted-range");
    });
    const range = RANGE.exec(window.location.hash);
    if (!range) {
      return;
    }
    const [first, last] = [Number(range[1]), Number(range[2])];
    for (let number = first; number <= last; number++) {
      const line = document.getElementById(`line-${number}`);
      if (line) {
        line.classList.add("in-quoted-range");
      }
    }
    // a range no quote uses has no anchor of its own for the browser to scroll to
    if (!document.getElementById(range[0].slice(1))) {
      const line = document.getElementById(`line-${first}`);
      if (line) {
        line.scrollIntoView();
      }
    }
  }

  function start() {
    linkQuotesToTheirRanges();
    highlightQuotedRange();
    window.addEventListener("hashchange", highlightQuotedRange);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();

/* Accessible names the theme leaves out or contradicts: the sidebar's chapter toggles (a chevron only) get
 * a name; buttons whose visible text says more than their label ("Search Ctrl+K", "Show code cell source")
 * are named by that text; the colour-mode icons are hidden from assistive technology behind the button's
 * own label.
 */
(() => {
  "use strict";

  function name() {
    document.querySelectorAll(".bd-sidenav details > summary:not([aria-label])").forEach((summary) => {
      const link = summary.closest("li") && summary.closest("li").querySelector(":scope > a");
      summary.setAttribute("aria-label", `Pages of ${link ? link.textContent.trim() : "this section"}`);
    });
    document.querySelectorAll(".search-button-field[aria-label]").forEach((button) => {
      button.removeAttribute("aria-label");
    });
    document.querySelectorAll(".theme-switch-button .theme-switch").forEach((icon) => {
      icon.removeAttribute("title");
      icon.removeAttribute("aria-labelledby");
      icon.querySelectorAll("title").forEach((title) => title.remove());
      icon.setAttribute("aria-hidden", "true");
    });
    document.querySelectorAll('summary[aria-label="Toggle hidden content"]').forEach((summary) => {
      summary.removeAttribute("aria-label");
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", name);
  } else {
    name();
  }
})();
