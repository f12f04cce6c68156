"""What the web console's tests share: a console over the fixture day of tests/cdr in SQLite
with one user of each role, an in-process HTTP client, a login."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from pbxgate.config import Settings
from pbxgate.web.app import create_app
from pbxgate.web.settings import WebSettings
from pbxgate.web.users import Role, UserStore
from tests.report.helpers import write_config

NOW = datetime(2016, 3, 18, 23, 0)  # the fixture day, late evening: "today" is that day
PASSWORDS = {"vera": "viewer-pass-1", "lena": "listener-pass-1", "anna": "admin-pass-123"}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def console(tmp_path: Path) -> Iterator[tuple[Any, Clock]]:
    cfg = write_config(tmp_path, extra=f'[web]\ndatabase = "{tmp_path}/web.sqlite3"\n')
    settings = Settings.load(cfg)
    users = UserStore(settings.get(WebSettings).database_path)
    users.add("vera", PASSWORDS["vera"], Role.VIEWER)
    users.add("lena", PASSWORDS["lena"], Role.LISTENER)
    users.add("anna", PASSWORDS["anna"], Role.ADMIN)
    clock = Clock()
    app = create_app(settings, users=users, now=lambda: NOW, clock=clock)
    yield app, clock


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")


async def log_in(http: httpx.AsyncClient, name: str, password: str | None = None) -> httpx.Response:
    page = await http.get("/login")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert token is not None
    form = {
        "user": name,
        "password": password or PASSWORDS[name],
        "csrf": token[1],
        "next": "/calls",
    }
    return await http.post("/login", data=form)
