"""A webhook URL's query string and userinfo reach the receiver and nothing else: not config
show, not the logs, not notify status (text or JSON), not the outbox file."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import httpx
import pytest

from pbxgate.cli.main import main
from pbxgate.config import Settings
from pbxgate.notify import service
from pbxgate.notify.recipients import RecipientBook, redact, ref

from .helpers import make_event

KEY = "key=s3cr3t-hook-key"
URL = f"https://bob:pa55w0rd-x@crm.example.org/rest/1/p4th-s3cr3t/calls?{KEY}&from=pbx"
SECRETS = ("s3cr3t-hook-key", "pa55w0rd-x", "p4th-s3cr3t")


def test_redact_and_ref() -> None:
    assert redact(URL) == "https://***@crm.example.org/***?***"
    # Bitrix24 (and Discord, Slack) keep the secret in the path
    bitrix = "https://corp.bitrix24.ru/rest/1/q8w7e6r5t4y3u2i1/crm.lead.add.json"
    assert redact(bitrix) == "https://corp.bitrix24.ru/***"
    assert "q8w7e6r5t4y3u2i1" not in ref(bitrix)
    assert RecipientBook([bitrix]).resolve(ref(bitrix)) == bitrix
    assert redact("https://crm.example.org/") == "https://crm.example.org/"
    assert redact("123456789") == "123456789"
    stored = ref(URL)
    assert stored.startswith(redact(URL) + " [") and not any(s in stored for s in SECRETS)
    assert RecipientBook([URL, "7"]).resolve(stored) == URL
    assert RecipientBook(["7"]).resolve(stored) is None  # the URL left the settings
    assert RecipientBook([]).resolve("7") == "7"


def config(tmp_path: Path) -> Path:
    cfg = tmp_path / "config.toml"
    cfg.write_text(
        f'[notify]\noutbox = "{tmp_path / "outbox.sqlite3"}"\npoll_interval = 3600\n'
        f'[notify.webhook]\nenabled = true\nrecipients = ["{URL}"]\n',
        encoding="utf-8",
    )
    return cfg


def test_delivered_whole_and_shown_nowhere(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    cfg = config(tmp_path)
    settings = Settings.load(cfg)
    requested: list[str] = []

    async def scenario() -> None:
        got = asyncio.Event()

        def handler(req: httpx.Request) -> httpx.Response:
            requested.append(str(req.url))
            got.set()
            return httpx.Response(500 if len(requested) == 1 else 204)

        stop = asyncio.Event()
        task = asyncio.create_task(
            service.run_worker(settings, stop, transport=httpx.MockTransport(handler))
        )
        while not service._wakers:
            await asyncio.sleep(0)
        assert service.accept(settings, make_event(1))
        await asyncio.wait_for(got.wait(), 10)
        stop.set()
        await asyncio.wait_for(task, 10)

    caplog.set_level(logging.DEBUG)
    try:
        asyncio.run(scenario())
    finally:
        service.close_outboxes()
    assert KEY in requested[0]  # the receiver got its key
    shown = [caplog.text]
    for args in (["config", "show"], ["notify", "status"], ["notify", "status", "--json"]):
        capsys.readouterr()
        assert main(["--config", str(cfg), *args]) == 0
        out, err = capsys.readouterr()
        shown += [out, err]
    for blob in (tmp_path / "outbox.sqlite3").parent.glob("outbox.sqlite3*"):
        shown.append(blob.read_bytes().decode("latin-1"))
    for text in shown:
        for secret in SECRETS:
            assert secret not in text
    assert "crm.example.org" in shown[1]  # config show still says where it goes


def test_a_secret_too_short_to_mask_alone_is_masked_with_its_url() -> None:
    """httpx logs each request's URL: ``?k=abc`` is too short to be masked on its own."""
    from pbxgate.notify.logmask import mask

    short = "https://crm.example.org/?k=abc"
    RecipientBook([short])
    assert "k=abc" not in mask(f'HTTP Request: POST {short} "HTTP/1.1 204 No Content"')


def test_an_uppercase_scheme_is_a_url_too() -> None:
    """Found in review: HTTPS://...?key= was stored and shown whole."""
    url = "HTTPS://crm.example.org/hook?key=s3cr3t-upper"
    assert "s3cr3t-upper" not in ref(url) and "s3cr3t-upper" not in redact(url)
    from pbxgate.config import masked

    assert "s3cr3t-upper" not in str(masked({"recipients": [url]}))
