"""The console in Chromium: logging in, Today, the menu, a phone-sized screen."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.web.browser.conftest import Console, log_in

pytestmark = pytest.mark.browser


def test_login_lands_on_today_with_the_apis_figures(page: Any, demo: Console, shots: Path) -> None:
    page.goto(demo.url + "/calls")
    assert page.url.startswith(demo.url + "/login?next=/calls")
    assert page.evaluate("document.activeElement.id") == "user"  # the form is ready to type in
    log_in(page, demo, "/today")
    assert page.url == demo.url + "/today"
    assert page.locator("h1").first.inner_text().startswith("Today")
    shown = {
        tile.get_attribute("data-key"): tile.locator(".value").inner_text()
        for tile in page.locator(".kpi").all()
    }
    api = page.request.get(demo.url + "/api/today").json()  # the same session's cookie
    assert set(shown) == {kpi["key"] for kpi in api["kpis"]}
    calls = next(kpi for kpi in api["kpis"] if kpi["key"] == "calls")
    assert shown["calls"].replace(",", "").replace("\u202f", "").strip() == str(calls["value"])
    assert page.locator("table.hourly tbody tr").count() == len(api["hourly"])
    assert page.errors == []
    page.screenshot(path=str(shots / "today.png"), full_page=True)


def test_a_wrong_password_is_refused_in_place(page: Any, demo: Console) -> None:
    page.goto(demo.url + "/login")
    page.fill("#user", demo.user)
    page.fill("#password", "not the password")
    page.click("#login")
    alert = page.get_by_role("alert")
    assert alert.inner_text() == "Wrong name or password"
    assert page.url == demo.url + "/login"
    assert page.request.get(demo.url + "/api/today").status == 401  # still not logged in


def test_russian_by_default_and_logout(browser: Any, demo: Console) -> None:
    context = browser.new_context(locale="ru-RU")
    page = context.new_page()
    log_in(page, demo, "/today")
    assert page.locator("h1").first.inner_text().startswith("Сегодня")
    page.get_by_role("button", name="Выйти").click()
    page.wait_for_url(demo.url + "/login")
    assert page.request.get(demo.url + "/api/today").status == 401
    context.close()


def test_on_a_phone_nothing_is_wider_than_the_screen(
    browser: Any, demo: Console, shots: Path
) -> None:
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True,
        has_touch=True, locale="ru-RU",
    )  # fmt: skip
    page = context.new_page()
    log_in(page, demo, "/today")
    # wide tables scroll inside themselves; the page itself never scrolls sideways
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.screenshot(path=str(shots / "today-phone.png"), full_page=False)
    context.close()


def test_today_refreshes_in_place_keeping_what_the_reader_opened(page: Any, demo: Console) -> None:
    page.clock.install()
    log_in(page, demo, "/today")
    page.click("#today-body details summary")  # "as a table", opened by the reader
    page.focus("#today-body details summary")
    fetched: list[str] = []
    page.on("request", lambda request: fetched.append(request.url))
    page.clock.fast_forward(61_000)
    page.wait_for_function("() => document.querySelector('#today-body h1') !== null")
    page.wait_for_timeout(500)
    assert fetched.count(demo.url + "/today") == 1  # fetched once, not reloaded
    assert page.locator("#today-body details").evaluate("d => d.open")
    assert page.locator("#today-body table.hourly tbody tr").count() == 24
    assert page.errors == []
