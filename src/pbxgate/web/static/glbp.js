// GLBP page: ask /api/glbp every few seconds and put the new picture, show glbp brief texts,
// simulated time and events in place. The picture is SVG the server drew; nothing else runs.
// Without JavaScript the page reloads itself (<noscript> refresh).
"use strict";

(() => {
  const root = document.getElementById("glbp-sources");
  if (!root) return;
  const api = root.dataset.api;
  const every = Math.max(1, Number(root.dataset.refresh) || 2) * 1000;
  let timer = null;
  let busy = false;

  function text(id, value) {
    const el = document.getElementById(id);
    if (el && el.textContent !== value) el.textContent = value;
  }

  function showLog(list, lines) {
    // Append only the lines not shown yet, so a screen reader hears the new events only.
    const shown = Array.from(list.children, (li) => li.textContent);
    let start = 0;
    while (start < lines.length && shown.includes(lines[start])) start += 1;
    for (const line of lines.slice(start)) {
      const li = document.createElement("li");
      li.textContent = line;
      list.appendChild(li);
    }
    while (list.children.length > lines.length) list.removeChild(list.firstElementChild);
  }

  function update(state) {
    state.sources.forEach((src, n) => {
      const section = document.getElementById("glbp-source-" + n);
      if (!section) return;
      const error = document.getElementById("glbp-error-" + n);
      if (error) {
        error.hidden = !src.error;
        text("glbp-error-" + n, src.error || "");
      }
      const picture = document.getElementById("glbp-picture-" + n);
      if (picture && picture.innerHTML !== src.svg) picture.innerHTML = src.svg;
      if (src.clock !== undefined) text("glbp-time-" + n, src.clock);
      if (src.round !== undefined) text("glbp-round-" + n, String(src.round));
      for (const router of src.routers) {
        for (const pre of section.querySelectorAll("pre[data-router]")) {
          if (pre.dataset.router === router.name && pre.textContent !== router.brief) {
            pre.textContent = router.brief;
          }
        }
      }
      const log = document.getElementById("glbp-log-" + n);
      if (log) showLog(log, src.log);
    });
  }

  async function poll() {
    timer = null;
    if (busy || document.hidden) return; // a hidden page resumes on visibilitychange
    busy = true;
    try {
      const answer = await fetch(api, { headers: { Accept: "application/json" } });
      if (answer.status === 401) return; // logged out: stop asking
      if (answer.ok) update(await answer.json());
    } catch (err) {
      // the console is restarting or the network is down: try again next time
    } finally {
      busy = false;
    }
    timer = setTimeout(poll, every);
  }

  document.addEventListener("visibilitychange", () => {
    if (!document.hidden && timer === null && !busy) poll();
  });
  timer = setTimeout(poll, every);
})();
