"""Browser tests of the web console: Debian's Chromium (/usr/bin/chromium) driven by
Playwright, against ``pbxgate web --demo`` run as the README tells a newcomer to run it.

Screenshots go to ``$PBXGATE_TEST_SCREENSHOTS`` when it is set (``make screenshots`` sets it to
docs/screenshots), else to the test's temporary folder.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

STARTUP_SECONDS = 60
PBXGATE = Path(sys.executable).with_name("pbxgate")


@dataclass
class Console:
    url: str
    user: str
    password: str
    process: subprocess.Popen[str]
    config: Path
    log: list[str] = field(default_factory=list)

    def audit(self) -> list[str]:
        """The console's audit log, as ``pbxgate web audit`` prints it."""
        done = subprocess.run(
            [str(PBXGATE), "--config", str(self.config), "web", "audit", "--limit", "50"],
            capture_output=True, text=True, timeout=60, check=True,
        )  # fmt: skip
        return done.stdout.splitlines()


def chromium() -> str:
    found = shutil.which("chromium")
    if found is None:
        if os.environ.get("PBXGATE_TEST_REQUIRE_ALL"):
            pytest.fail("chromium is not installed but CI requires it (apt-get install chromium)")
        pytest.skip("chromium not installed")
    return found


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture(scope="session")
def demo() -> Iterator[Console]:
    """``pbxgate web --demo`` in a subprocess: its URL and the demo user it printed."""
    listen = f"127.0.0.1:{free_port()}"
    process = subprocess.Popen(
        [str(PBXGATE), "web", "--demo", "--listen", listen],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    log: list[str] = []
    deadline = time.monotonic() + STARTUP_SECONDS
    found = folder = None
    while found is None and time.monotonic() < deadline:
        line = process.stderr.readline()
        if not line:
            break
        log.append(line)
        folder = re.search(r"generating two weeks of calls in (\S+) \.\.\.", line) or folder
        found = re.search(r"log in as '(\w+)' with the password (\S+)", line)
    assert found, "pbxgate web --demo did not print its user:\n" + "".join(log)
    # the rest of its output is kept, so that a full pipe never stops the console
    drain = threading.Thread(target=lambda: log.extend(process.stderr or ()), daemon=True)
    drain.start()
    url = f"http://{listen}"
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.1)
    assert folder, "".join(log)
    console = Console(url, found[1], found[2], process, Path(folder[1]) / "config.toml", log)
    yield console
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=20)
    finally:
        process.kill()
        drain.join(timeout=5)
        process.stderr.close()


@pytest.fixture
def browser() -> Iterator[Any]:
    """Chromium for one test. Playwright's sync API keeps an event loop running in this
    thread while it is open, which would break every later test's asyncio.run: so it is
    started and stopped around each test, never left open between tests."""
    from playwright.sync_api import sync_playwright

    executable = chromium()
    with sync_playwright() as driver:
        launched = driver.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    """Where this test's screenshots go."""
    target = Path(os.environ.get("PBXGATE_TEST_SCREENSHOTS") or tmp_path)
    target.mkdir(parents=True, exist_ok=True)
    return target


@pytest.fixture
def page(browser: Any, demo: Console) -> Iterator[Any]:
    """A new browser context (no cookies) with a 1280x800 window, English pages, and every
    page error or console error collected in ``page.errors``."""
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="en-GB")
    tab = context.new_page()
    tab.errors = []
    tab.on("pageerror", lambda exc: tab.errors.append(str(exc)))
    tab.on(
        "console",
        lambda message: tab.errors.append(message.text) if message.type == "error" else None,
    )
    tab.set_default_timeout(10_000)
    yield tab
    context.close()


def log_in(page: Any, demo: Console, target: str = "/") -> None:
    page.goto(demo.url + target)
    page.fill("#user", demo.user)
    page.fill("#password", demo.password)
    page.click("#login")
    page.wait_for_load_state()
