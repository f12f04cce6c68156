// Keeps a part of a page up to date without reloading it: every element with an id and
// data-refresh="SECONDS" is fetched again from the same address and swapped in place, while
// the tab is visible and the user is not typing in it. A reload would move the reader's
// focus and scroll (WCAG 2.2.1); this keeps both, and the open/closed state of <details>.
"use strict";
(function () {
  for (const part of document.querySelectorAll("[data-refresh][id]")) {
    const seconds = Math.max(10, Number(part.dataset.refresh) || 60);
    setInterval(async function () {
      if (document.visibilityState !== "visible") return;
      if (part.contains(document.activeElement) && document.activeElement.matches("input, select, textarea")) return;
      try {
        const answer = await fetch(location.href, { credentials: "same-origin", cache: "no-store" });
        if (!answer.ok || answer.redirected) return; // logged out: the next navigation says so
        const fresh = new DOMParser().parseFromString(await answer.text(), "text/html").getElementById(part.id);
        if (!fresh) return;
        const open = Array.from(part.querySelectorAll("details"), (d) => d.open);
        part.innerHTML = fresh.innerHTML;
        part.querySelectorAll("details").forEach((d, i) => { if (open[i]) d.open = true; });
      } catch (e) {
        // offline for a moment: try again at the next tick
      }
    }, seconds * 1000);
  }
})();
