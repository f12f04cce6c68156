// Every page: a wide table, picture or listing that scrolls sideways inside itself (on a phone)
// is given a place in the tab order, so that it can be scrolled with the keyboard (WCAG 2.1.1).
"use strict";
(function () {
  const SCROLLERS = "table, pre, figure, .scroll";
  function mark() {
    for (const box of document.querySelectorAll(SCROLLERS)) {
      const scrolls = box.scrollWidth > box.clientWidth + 1 || box.scrollHeight > box.clientHeight + 1;
      if (scrolls && !box.hasAttribute("tabindex")) {
        box.setAttribute("tabindex", "0");
        box.dataset.scrollFocus = "1";
      } else if (!scrolls && box.dataset.scrollFocus) {
        box.removeAttribute("tabindex");
        delete box.dataset.scrollFocus;
      }
    }
  }
  addEventListener("resize", mark);
  new MutationObserver(mark).observe(document.body, { childList: true, subtree: true });
  mark();
})();
