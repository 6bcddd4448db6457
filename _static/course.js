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
