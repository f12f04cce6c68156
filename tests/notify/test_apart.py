"""The delivery worker's process (pbxgate.notify.apart): what crosses its pipes."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from pbxgate.config import Settings
from pbxgate.errors import ConfigError, DeliveryError
from pbxgate.notify.apart import WorkerProcess, _dumps_error, _loads_error


def test_a_worker_without_settings_says_so_in_one_line() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pbxgate.notify.apart"],
        input=b"\x00\x00",  # the service died before it wrote the settings' length
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.decode().splitlines() == [
        "error: the delivery worker got no settings: the service closed the worker's input "
        "before its settings"
    ]
    assert done.stdout == b""


def test_the_reason_a_worker_cannot_start_keeps_its_kind_and_hint() -> None:
    sent = ConfigError("[notify.vk] token is missing", hint="set PBXGATE_NOTIFY_VK_TOKEN")
    line = _dumps_error(sent)
    assert b"\n" not in line
    got = _loads_error(line)
    assert type(got) is ConfigError
    assert str(got) == "[notify.vk] token is missing (set PBXGATE_NOTIFY_VK_TOKEN)"
    assert got.exit_code == 2


def test_a_reason_is_data_never_code() -> None:
    """Only pbxgate's own kinds of error come back; anything else is a DeliveryError with the
    message, and a line that is not a reason says so."""
    got = _loads_error(_dumps_error(PermissionError("the outbox folder is read-only")))
    assert (type(got), str(got)) == (DeliveryError, "the outbox folder is read-only")
    odd = _loads_error(b'{"kind": "SystemExit", "message": "bye"}')
    assert (type(odd), str(odd)) == (DeliveryError, "bye")
    for junk in (b"not json", b"[]", b'{"kind": "ConfigError"}', b"\x80\x04\x95"):
        assert str(_loads_error(junk)) == (
            "the delivery worker process failed (its reason was unreadable)"
        ), junk


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_stop_signal_that_reaches_the_worker_as_it_starts_is_a_stop(
    tmp_path: Path, sig: signal.Signals
) -> None:
    """systemd and a terminal signal the whole group: one that arrives before the child's
    interpreter could ignore it ends the child, and that is no failure of the worker."""

    async def main() -> tuple[int | None, BaseException | None]:
        settings = Settings({"notify": {"outbox": str(tmp_path / "outbox.sqlite3")}})
        worker = WorkerProcess(settings)
        await worker.start()
        assert worker.pid is not None
        os.kill(worker.pid, sig)  # at once: the interpreter is still starting
        await asyncio.wait_for(asyncio.shield(worker.finished), 30)
        await worker.stop()
        return worker.pid, worker.finished.exception()

    pid, error = asyncio.run(main())
    assert error is None
    assert not Path(f"/proc/{pid}").exists()
