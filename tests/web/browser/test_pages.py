"""The console's pages in Chromium, as office staff use them: the missed-call board, reports,
the GLBP picture. Each test logs in afresh (its own browser context)."""

from __future__ import annotations

import asyncio
import re
import signal
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.agi.fakes import default_responder, environment, fake_asterisk
from tests.web.browser.conftest import PBXGATE, Console, log_in

pytestmark = pytest.mark.browser


def test_mark_a_missed_call_handled_and_take_it_back(page: Any, demo: Console, shots: Path) -> None:
    log_in(page, demo, "/missed?period=week&unhandled=1")
    rows = page.get_by_test_id("missed-row")
    before = rows.count()
    assert before > 0  # a generated week always misses some calls
    row = rows.first
    linkedid = row.get_attribute("data-linkedid")
    row.get_by_test_id("handled-comment").fill("перезвонила, договорились на завтра")
    row.get_by_test_id("handled-submit").click()
    page.wait_for_load_state()
    # "not yet handled only" is still on: the call has left the board
    assert page.locator(f'[data-linkedid="{linkedid}"]').count() == 0
    assert rows.count() == before - 1
    page.goto(demo.url + "/missed?period=week")
    marked = page.locator(f'[data-linkedid="{linkedid}"]')
    mark = marked.get_by_test_id("handled-mark")
    assert "demo" in mark.inner_text() and "договорились на завтра" in mark.inner_text()
    board = page.request.get(demo.url + "/api/missed?period=week").json()
    stored = next(r for r in board["rows"] if r["linkedid"] == linkedid)
    assert stored["handled"]["who"] == "demo"
    page.screenshot(path=str(shots / "missed.png"), full_page=False)
    marked.get_by_test_id("unhandled-submit").click()
    page.wait_for_load_state()
    assert page.locator(f'[data-linkedid="{linkedid}"]').get_by_test_id("handled-form").count() == 1
    audit = [line for line in demo.audit() if linkedid in line]
    assert any("missed-handled" in line for line in audit), audit
    assert page.errors == []


def test_a_report_in_the_page_and_its_download(page: Any, demo: Console, shots: Path) -> None:
    log_in(page, demo, "/reports?period=week")
    frame = page.frame_locator("#report-frame")
    assert frame.locator("h1").first.inner_text()  # the report's own page, inside the console
    charts = frame.locator("img")
    assert charts.count() > 0
    assert all(
        charts.nth(i).evaluate("img => img.complete && img.naturalWidth > 0")
        for i in range(charts.count())
    )
    with page.expect_download() as download:
        page.click("#report-download-xlsx")
    saved = download.value.path()
    assert Path(saved).read_bytes()[:2] == b"PK"  # an XLSX is a zip
    assert download.value.suggested_filename.endswith(".xlsx")
    page.screenshot(path=str(shots / "reports.png"), full_page=False)
    assert page.errors == []


def test_glbp_picture_shows_the_articles_routers(page: Any, demo: Console, shots: Path) -> None:
    log_in(page, demo, "/glbp")
    avg = page.locator('svg g.router[data-role="AVG"]')
    avg.first.wait_for(timeout=20_000)  # the play converges within a few simulated seconds
    routers = {box.get_attribute("data-router") for box in page.locator("svg g.router").all()}
    assert routers == {"R2", "R3", "R4"}
    assert avg.count() == 1
    assert page.locator("svg g.host").count() >= 1
    page.screenshot(path=str(shots / "glbp.png"), full_page=False)
    assert page.errors == []


def test_filter_calls_and_export_exactly_them(page: Any, demo: Console, shots: Path) -> None:
    log_in(page, demo, "/calls")
    page.select_option("#f-period", "week")
    page.select_option("#f-direction", "inbound")
    page.fill("#f-min-billsec", "60")
    page.click("#f-submit")
    page.wait_for_load_state()
    assert "direction=inbound" in page.url and "min_billsec=60" in page.url  # shareable
    api = page.request.get(demo.url + "/api/calls?" + page.url.split("?", 1)[1]).json()
    assert api["total"] > 0
    assert all(r["direction"] == "inbound" and r["talk"] >= 60 for r in api["rows"])
    shown = page.locator("table.calls tbody tr[data-linkedid]")
    assert [shown.nth(i).get_attribute("data-linkedid") for i in range(shown.count())] == [
        r["linkedid"] for r in api["rows"]
    ]
    with page.expect_download() as download:
        page.click("#export-csv")
    exported = Path(download.value.path()).read_text(encoding="utf-8-sig").splitlines()
    assert len(exported) == api["total"] + 1  # a header, then every filtered call
    page.screenshot(path=str(shots / "calls.png"), full_page=False)
    assert page.errors == []


def test_play_a_recording_seek_and_change_speed(page: Any, demo: Console, shots: Path) -> None:
    log_in(page, demo, "/")
    rows = page.request.get(demo.url + "/api/calls?period=yesterday&min_billsec=25&per_page=500")
    recorded = next(r for r in rows.json()["rows"] if r.get("recording_url"))
    page.goto(demo.url + recorded["recording_url"])
    audio = page.locator("#player-audio")
    page.click("#player-forward")  # starts at 10 s even before playing
    audio.evaluate("a => a.play()")
    page.wait_for_function(
        "() => { const a = document.getElementById('player-audio'); return a.currentTime > 10.2 }"
    )
    page.click("#player-back")
    assert audio.evaluate("a => a.currentTime") < 10
    page.select_option("#player-speed", "1.5")
    assert audio.evaluate("a => a.playbackRate") == 1.5
    assert audio.evaluate("a => a.duration") == pytest.approx(20, abs=0.2)  # the demo's tone
    page.screenshot(path=str(shots / "recording.png"), full_page=False)
    with page.expect_download() as download:
        page.click("#player-download")
    assert Path(download.value.path()).read_bytes()[:4] == b"RIFF"
    audit = [line for line in demo.audit() if recorded["linkedid"] in line]
    assert any("recording-play" in line for line in audit), audit
    assert any("recording-download" in line for line in audit), audit
    assert page.errors == []


def test_a_fastagi_call_appears_on_the_live_page(page: Any, demo: Console, shots: Path) -> None:
    """``pbxgate serve`` beside the console, on the demo's outbox: a call Asterisk hands to
    FastAGI shows on the open Live page without a reload."""
    serve = subprocess.Popen(
        [str(PBXGATE), "--config", str(demo.config), "serve", "--listen", "127.0.0.1:0",
         "--no-worker"],
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert serve.stderr is not None
        started = serve.stderr.readline()
        port = re.search(r"FastAGI on 127\.0\.0\.1:(\d+)", started)
        assert port, started
        log_in(page, demo, "/live")
        page.wait_for_selector('#live-status[data-state="on"]')
        assert page.locator('#live-calls-body tr[data-caller="+79161234567"]').count() == 0
        env = environment("notify", callerid="+79161234567", extension="74951234567")
        session = threading.Thread(
            target=lambda: asyncio.run(fake_asterisk(int(port[1]), env, default_responder("L.1")))
        )
        session.start()
        row = page.locator('#live-calls-body tr[data-caller="+79161234567"]')
        row.wait_for(timeout=10_000)
        assert row.get_attribute("data-called") == "74951234567"
        # told to screen readers: live.js clears the region, then fills it 50 ms later
        page.wait_for_function(
            "() => document.querySelector('#live-announce').textContent.includes('+7916')",
            timeout=5_000,
        )
        assert "+7916" in page.locator("#live-announce").inner_text()
        session.join(timeout=10)
        page.screenshot(path=str(shots / "live.png"), full_page=False)
        assert page.errors == []
    finally:
        serve.send_signal(signal.SIGTERM)
        serve.wait(timeout=30)
        if serve.stderr is not None:
            serve.stderr.close()


def test_a_calls_legs_open_under_its_row(page: Any, demo: Console) -> None:
    log_in(page, demo, "/calls?period=week&direction=inbound")
    calls = page.request.get(demo.url + "/api/calls?period=week&direction=inbound&per_page=500")
    several = next(r for r in calls.json()["rows"] if r["legs"] >= 3)  # a ring group or queue
    detail = page.request.get(demo.url + f"/api/calls/{several['linkedid']}").json()
    page.goto(demo.url + "/calls?period=week&direction=inbound&per_page=500")
    row = page.locator(f'tr[data-linkedid="{several["linkedid"]}"]')
    toggle = row.get_by_test_id("legs-toggle")
    assert toggle.get_attribute("aria-expanded") == "false"
    toggle.click()
    assert toggle.get_attribute("aria-expanded") == "true"
    timeline = page.locator("#" + str(toggle.get_attribute("aria-controls")))
    timeline.locator(".timeline .tl-item").first.wait_for()
    assert timeline.locator(".timeline .tl-item").count() == len(detail["legs"])
    assert page.errors == []
