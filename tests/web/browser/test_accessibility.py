"""Every page of the console checked by axe-core (Deque's accessibility engine, the one
browsers' own audits use) in Chromium, against WCAG 2.1 A and AA: no serious or critical
violation on any page, in either language, on a desktop or a phone-sized screen.

axe-core comes from the npm registry: ``$PBXGATE_TEST_AXE`` names axe.min.js (``.ci/run``
installs it under /var/cache/pbxgate/npm)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from tests.web.browser.conftest import Console, log_in

pytestmark = pytest.mark.browser

AXE = Path(
    os.environ.get("PBXGATE_TEST_AXE") or "/var/cache/pbxgate/npm/node_modules/axe-core/axe.min.js"
)
PAGES = ("/today", "/calls?period=week", "/missed?period=week", "/live", "/notifications",
         "/reports?period=yesterday", "/glbp", "/api")  # fmt: skip


def axe_script() -> str:
    if not AXE.is_file():
        if os.environ.get("PBXGATE_TEST_REQUIRE_ALL"):
            pytest.fail(f"axe-core not found at {AXE} (npm install axe-core; PBXGATE_TEST_AXE)")
        pytest.skip("axe-core not installed")
    return AXE.read_text(encoding="utf-8")


def violations(page: Any, script: str) -> list[str]:
    # Evaluated by the browser's DevTools protocol: an inline <script> tag would be refused by
    # the console's Content Security Policy (script-src 'self'), as it should be.
    page.evaluate(script)
    result = page.evaluate(
        """async () => {
            const r = await axe.run(document, {runOnly: {type: 'tag',
                values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}});
            return r.violations.filter(v => v.impact === 'serious' || v.impact === 'critical')
                .map(v => ({id: v.id, help: v.help,
                            nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))}));
        }"""
    )
    return [json.dumps(v, ensure_ascii=False) for v in result]


@pytest.mark.parametrize("size", [(1280, 800), (390, 844)], ids=["desktop", "phone"])
@pytest.mark.parametrize("locale", ["ru-RU", "en-GB"])
def test_no_serious_violations_on_any_page(
    browser: Any, demo: Console, size: tuple[int, int], locale: str
) -> None:
    script = axe_script()
    context = browser.new_context(viewport={"width": size[0], "height": size[1]}, locale=locale)
    page = context.new_page()
    page.goto(demo.url + "/login")
    found = {"/login": violations(page, script)}
    log_in(page, demo, "/today")
    rows = page.request.get(demo.url + "/api/calls?period=yesterday&min_billsec=25").json()
    player = next(r["recording_url"] for r in rows["rows"] if r.get("recording_url"))
    for path in (*PAGES, player):
        page.goto(demo.url + path)
        page.wait_for_load_state("networkidle") if path != "/live" else None
        found[path] = violations(page, script)
    context.close()
    bad = [f"{path}: {v}" for path, found_here in found.items() for v in found_here]
    assert not bad, "\n".join(bad)
