"""The delivery worker's process (pbxgate.notify.apart): what crosses its pipes."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pbxgate.config import Settings
from pbxgate.errors import ConfigError, DeliveryError
from pbxgate.notify import apart
from pbxgate.notify.apart import WorkerProcess, _dumps_error, _loads_error


@pytest.mark.parametrize(
    ("module", "what"),
    [("pbxgate.notify.apart", "delivery worker"), ("pbxgate.notify.writer", "outbox writer")],
)
def test_a_child_without_settings_says_so_in_one_line(module: str, what: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", module],
        input=b"\x00\x00",  # the service died before it wrote the settings' length
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.decode().splitlines() == [
        f"error: the {what} got no settings: the service closed its input before the settings"
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


def test_an_area_s_own_kind_of_error_keeps_its_kind_and_exit_status() -> None:
    from pbxgate.agi.errors import RouteError  # the AGI side's own: exits with 6
    from pbxgate.glbp.auth import AuthConfigError  # a ConfigError: exits with 2

    got = _loads_error(_dumps_error(AuthConfigError("key chain 'x' is empty")))
    assert (type(got), got.exit_code, str(got)) == (ConfigError, 2, "key chain 'x' is empty")
    got = _loads_error(_dumps_error(RouteError("no AGI handler for 'x'", hint="use notify")))
    assert (type(got).__name__, got.exit_code) == ("PbxgateError", 6)
    assert str(got) == "no AGI handler for 'x' (use notify)"


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


@pytest.mark.parametrize("told", [True, False], ids=["service-stopping", "worker-alone"])
def test_a_worker_ended_by_sigterm_as_it_starts_is_a_stop_only_with_the_service(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, told: bool
) -> None:
    """systemd and a terminal signal the whole group: a SIGTERM that ends the worker before its
    interpreter could ignore it is a stop when the service is stopping too; the same SIGTERM to
    the worker alone is a failure (systemd's Restart=on-failure brings both back)."""
    interpreter = tmp_path / "python"  # an interpreter that is killed as it starts
    interpreter.write_text("#!/bin/sh\nkill -TERM $$\n", encoding="utf-8")
    interpreter.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(interpreter))

    async def main() -> BaseException | None:
        stopping = asyncio.Event()
        if told:
            stopping.set()
        settings = Settings({"notify": {"outbox": str(tmp_path / "outbox.sqlite3")}})
        worker = WorkerProcess(settings, stopping=stopping)
        await worker.start()
        await asyncio.wait_for(asyncio.wait([worker.finished]), 30)
        return worker.finished.exception()

    error = asyncio.run(main())
    if told:
        assert error is None
    else:
        assert isinstance(error, DeliveryError)
        assert str(error) == "the delivery worker process was killed by signal 15"


def test_the_child_entry_runs_only_the_services_children() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pbxgate.notify.child", "http.server"],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.decode().splitlines() == [
        "error: not one of pbxgate serve's child processes"
    ]


def test_a_worker_that_ends_unasked_is_a_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The service would go on without delivering, and then exit 0: systemd's
    Restart=on-failure would not bring the worker back."""
    interpreter = tmp_path / "python"  # an interpreter that ends at once, and well
    interpreter.write_text("#!/bin/sh\nexit 0\n", encoding="utf-8")
    interpreter.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(interpreter))

    async def main() -> BaseException | None:
        settings = Settings({"notify": {"outbox": str(tmp_path / "outbox.sqlite3")}})
        worker = WorkerProcess(settings)
        await worker.start()
        await asyncio.wait_for(asyncio.wait([worker.finished]), 30)
        return worker.finished.exception()

    error = asyncio.run(main())
    assert isinstance(error, DeliveryError)
    assert str(error) == "the delivery worker process ended on its own"


def test_a_worker_that_does_not_stop_is_killed_and_the_stop_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker that does not end once told to (a database that never answers its close) is
    killed after its sends' wait and a few seconds more: the service's stop stays within
    systemd's stop timeout, and says why."""
    interpreter = tmp_path / "python"  # ready, then deaf to the end of its input
    interpreter.write_text("#!/bin/sh\necho ready\nexec sleep 3600\n", encoding="utf-8")
    interpreter.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(interpreter))
    monkeypatch.setattr(apart, "WORKER_STOP_WAIT", 0.2)
    monkeypatch.setattr(apart, "CANCEL_WAIT", 0.3)

    async def main(wait: float | None = None) -> tuple[BaseException | None, float]:
        settings = Settings({"notify": {"outbox": str(tmp_path / "outbox.sqlite3")}})
        worker = WorkerProcess(settings)
        await worker.start()
        await asyncio.wait_for(worker.started(), 30)
        loop = asyncio.get_running_loop()
        began = loop.time()
        try:
            await asyncio.wait_for(worker.stop(wait), 30)
        except DeliveryError as exc:
            return exc, loop.time() - began
        return None, loop.time() - began

    error, took = asyncio.run(main())
    assert str(error) == "the delivery worker process did not stop in 0.5 s; it was killed"
    assert 0.45 <= took < 10
    # what is left of the service's stop, when that is less
    error, took = asyncio.run(main(wait=0.25))
    assert str(error) == "the delivery worker process did not stop in 0.25 s; it was killed"
    assert 0.2 <= took < 10


def _pipe_bytes(fd: int) -> bytes:
    try:
        return os.read(fd, 64)
    except BlockingIOError:
        return b""


def test_wake_ups_close_together_are_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The first wake-up goes at once; those within WAKE_GAP of it go as one at its end (from
    the loop or from another thread, as the fallback commit thread wakes), and none is lost."""
    gap = 0.3  # longer than the real one: a slow machine's pauses stay within it
    monkeypatch.setattr(apart, "WAKE_GAP", gap)

    async def main() -> list[bytes]:
        settings = Settings({"notify": {"outbox": str(tmp_path / "outbox.sqlite3")}})
        worker = WorkerProcess(settings)
        read_end, write_end = os.pipe()
        os.set_blocking(read_end, False)
        worker._settings_sent(write_end)  # as once the child has its settings
        seen = []
        worker.wake()
        seen.append(_pipe_bytes(read_end))  # at once
        worker.wake()
        worker.wake()
        seen.append(_pipe_bytes(read_end))  # held: within the gap
        await asyncio.sleep(gap * 2)
        seen.append(_pipe_bytes(read_end))  # the two as one, at the gap's end
        await asyncio.sleep(gap * 2)
        seen.append(_pipe_bytes(read_end))  # nothing owed
        worker.wake()  # a gap later: at once again
        seen.append(_pipe_bytes(read_end))
        await asyncio.to_thread(worker.wake)  # within the gap, from another thread
        seen.append(_pipe_bytes(read_end))
        await asyncio.sleep(gap * 2)
        seen.append(_pipe_bytes(read_end))
        await asyncio.sleep(gap * 2)
        worker.wake()
        worker.wake()  # owed at the gap's end
        seen.append(_pipe_bytes(read_end))
        worker._input_lost()  # stopped with a wake-up owed: it is dropped, nothing raised
        worker.wake()
        await asyncio.sleep(gap * 2)
        seen.append(_pipe_bytes(read_end))  # the end of the pipe: nothing more came
        os.close(read_end)
        return seen

    assert asyncio.run(main()) == [b"w", b"", b"w", b"", b"w", b"", b"w", b"w", b""]


def test_a_child_whose_service_has_gone_says_nothing_more_and_no_traceback() -> None:
    """A child that outlives the service (killed with SIGKILL) still ends cleanly: its last
    words go nowhere, with no traceback in the journal."""
    code = (
        "import sys\n"
        "from pbxgate.notify.apart import say\n"
        "sys.stdin.readline()\n"
        "say(b'stats {}')\n"
        "say(b'error {}')\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stdin is not None
    proc.stdout.close()  # the service has gone: nobody reads
    assert proc.stderr is not None
    proc.stdin.write(b"go\n")
    proc.stdin.close()
    assert proc.wait(timeout=30) == 0
    assert proc.stderr.read() == b""
    proc.stderr.close()
