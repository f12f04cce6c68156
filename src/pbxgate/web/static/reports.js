// Reports page: the report's frame as tall as the report (no inner scroll bar), and typing a
// from/to date switches the period to "from… to…" (the two cannot be combined). Without
// JavaScript the frame scrolls and the server says in one line what to fix.
"use strict";

function fitReportFrame(frame) {
  try {
    const doc = frame.contentDocument;
    if (doc && doc.documentElement) {
      frame.style.height = doc.documentElement.scrollHeight + 24 + "px";
    }
  } catch (err) {
    // a frame we may not read keeps its CSS height
  }
}

document.addEventListener("DOMContentLoaded", () => {
  const frame = document.getElementById("report-frame");
  if (frame) {
    frame.addEventListener("load", () => fitReportFrame(frame));
    fitReportFrame(frame);
    window.addEventListener("resize", () => fitReportFrame(frame));
  }
  const period = document.getElementById("report-period");
  for (const id of ["report-from", "report-to"]) {
    const input = document.getElementById(id);
    if (input && period) {
      input.addEventListener("input", () => {
        if (input.value) period.value = "";
      });
    }
  }
  if (period) {
    period.addEventListener("change", () => {
      if (!period.value) return;
      for (const id of ["report-from", "report-to"]) {
        const input = document.getElementById(id);
        if (input) input.value = "";
      }
    });
  }
});
