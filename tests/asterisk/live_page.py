"""The web console's Live page, open in Debian's Chromium while the office's calls are made.

A :class:`LivePage` logs in to a ``pbxgate serve``'s console and keeps /live open in a thread
of its own (Playwright's sync API keeps an event loop running in the thread that drives it, so
it never runs in the test's). A script added to the page before the console's own records,
at every change of the calls' table, what the table holds (each row's call, caller, number
dialled, state and source) with the browser's clock: the same wall clock the office stamps
its calls with.
"""

from __future__ import annotations

import shutil
import threading
from typing import Any

from tests.asterisk.instance import AsteriskError

# Every change of the table: {"at": seconds since the epoch, "rows": [{key, caller, ...}]}.
RECORDER = """
window.__changes = [];
document.addEventListener("DOMContentLoaded", () => {
  const body = document.getElementById("live-calls-body");
  if (!body) { return; }
  const note = () => window.__changes.push({
    at: Date.now() / 1000,
    rows: Array.from(body.rows).map((tr) => ({
      key: tr.getAttribute("data-call"), caller: tr.getAttribute("data-caller"),
      called: tr.getAttribute("data-called"), state: tr.getAttribute("data-state"),
      source: tr.getAttribute("data-source"), text: tr.innerText,
    })),
  });
  new MutationObserver(note).observe(body, {childList: true, subtree: true, attributes: true});
  note();
});
"""


class LivePage:
    """/live of the console at ``url``, open from :meth:`start` to :meth:`stop`."""

    def __init__(self, url: str, user: str, password: str) -> None:
        self.url, self.user, self.password = url, user, password
        self.changes: list[dict[str, Any]] = []
        self.errors: list[str] = []
        self._ready = threading.Event()
        self._stop = threading.Event()
        self._failed: BaseException | None = None
        self._thread = threading.Thread(target=self._watch, name="live-page", daemon=True)

    def start(self, timeout: float = 60) -> None:
        self._thread.start()
        if not self._ready.wait(timeout) or self._failed is not None:
            self._stop.set()
            raise AsteriskError(f"the Live page did not open: {self._failed}")

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=60)
        if self._failed is not None:
            raise AsteriskError(f"the Live page failed: {self._failed}")

    def _watch(self) -> None:
        from playwright.sync_api import sync_playwright

        try:
            executable = shutil.which("chromium")
            if executable is None:
                raise AsteriskError("chromium is not installed (apt-get install chromium)")
            with sync_playwright() as driver:
                browser = driver.chromium.launch(executable_path=executable, args=["--no-sandbox"])
                try:
                    page = browser.new_context(locale="en-GB").new_page()
                    page.on("pageerror", lambda exc: self.errors.append(str(exc)))
                    page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
                    page.add_init_script(RECORDER)
                    page.goto(self.url + "/login?next=/live")
                    page.fill("#user", self.user)
                    page.fill("#password", self.password)
                    page.click("#login")
                    page.wait_for_selector('#live-status[data-state="on"]', timeout=30_000)
                    self._ready.set()
                    self._stop.wait()
                    self.changes = page.evaluate("() => window.__changes")
                finally:
                    browser.close()
        except BaseException as exc:
            self._failed = exc
            self._ready.set()


def appearances(changes: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each call the page listed: its row's fields, when it was first and last listed, and
    the states it showed, in order."""
    calls: dict[str, dict[str, Any]] = {}
    for change in changes:
        for row in change["rows"]:
            seen = calls.setdefault(row["key"], {**row, "first": change["at"], "states": []})
            seen.update(row, last=change["at"])
            if not seen["states"] or seen["states"][-1] != row["state"]:
                seen["states"].append(row["state"])
        listed = {row["key"] for row in change["rows"]}
        for key, seen in calls.items():
            if key not in listed and "gone" not in seen:
                seen["gone"] = change["at"]
            elif key in listed:
                seen.pop("gone", None)
    return calls


__all__ = ["LivePage", "appearances"]
