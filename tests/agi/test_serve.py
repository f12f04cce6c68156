"""``pbxgate serve`` as a process: FastAGI + worker to a local fake VK, SIGTERM drains."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from pbxgate.cli.main import main
from pbxgate.config import data_dir
from pbxgate.errors import DeliveryError
from pbxgate.notify.fakevk import FakeVkServer
from tests.agi.fakes import default_responder, environment, fake_asterisk

PBXGATE = Path(sys.executable).with_name("pbxgate")


@contextmanager
def serving(*args: str) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    proc = subprocess.Popen(
        [str(PBXGATE), "serve", "--listen", "127.0.0.1:0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert proc.stderr is not None
        ready = proc.stderr.readline().decode()
        match = re.search(r"FastAGI on 127\.0\.0\.1:(\d+)", ready)
        assert match, ready
        yield proc, int(match.group(1))
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=60)
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()


def stored_event_ids() -> list[str]:
    with sqlite3.connect(data_dir() / "outbox.sqlite3") as db:
        return [row[0] for row in db.execute("SELECT event_id FROM events ORDER BY event_id")]


def test_fastagi_call_reaches_the_fake_vk_and_sigterm_stops_cleanly(tmp_path, monkeypatch):
    shown = threading.Event()
    messages: list[str] = []

    def echo(text: str) -> None:
        messages.append(text)
        shown.set()

    vk = FakeVkServer(0, echo=echo).start()
    try:
        config = tmp_path / "config.toml"
        config.write_text(
            '[notify.vk]\nenabled = true\ntoken = "test-token"\nrecipients = ["42"]\n'
            f'api_base = "{vk.base_url}"\n',
            encoding="utf-8",
        )
        monkeypatch.setenv("PBXGATE_CONFIG", str(config))
        with serving() as (proc, port):
            env = environment("notify", name="Олег Иванов".encode())
            commands = asyncio.run(fake_asterisk(port, env, default_responder("E2E.1")))
            assert commands[-1] == b'SET VARIABLE "PBXGATE_EVENT" "queued"\n'
            assert shown.wait(timeout=30)
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0
            assert proc.stderr is not None
            assert b"stopped after 1 AGI session(s)" in proc.stderr.read()
    finally:
        vk.stop()
    assert len(vk.state.shown) == 1
    assert "84991111111" in vk.state.shown[0].message
    assert "test-token" not in "".join(messages)


def children(pid: int) -> list[tuple[int, str]]:
    """(pid, command line) of each process whose parent is ``pid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:  # gone meanwhile
            continue
        if int(stat.rpartition(")")[2].split()[1]) == pid:
            found.append((int(entry.name), cmdline))
    return found


def worker_process(pid: int, module: str = "pbxgate.notify.apart") -> int:
    (child,) = [c for c, cmd in children(pid) if module in cmd]
    return child


def writer_process(pid: int) -> int:
    return worker_process(pid, "pbxgate.notify.writer")


def fastagi_processes(pid: int) -> list[int]:
    return [child for child, cmd in children(pid) if "pbxgate.agi.apart" in cmd]


def fastagi_process(pid: int) -> int:
    (child,) = fastagi_processes(pid)
    return child


def gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
        except OSError:
            return True
        if state == "Z":  # ended; its parent (this test's child) reaps it
            return True
        time.sleep(0.05)
    return False


def test_the_worker_is_a_process_of_its_own_woken_by_each_commit(tmp_path, monkeypatch):
    """The worker polls every 30 s here: the message comes at once only because the commit
    wakes the worker's process. systemd's SIGTERM reaches both processes; the worker waits for
    the service to stop it, and both end cleanly."""
    vk = FakeVkServer(0).start()
    try:
        config = tmp_path / "config.toml"
        config.write_text(
            "[notify]\npoll_interval = 30\n"
            '[notify.vk]\nenabled = true\ntoken = "test-token"\nrecipients = ["42"]\n'
            f'api_base = "{vk.base_url}"\n',
            encoding="utf-8",
        )
        monkeypatch.setenv("PBXGATE_CONFIG", str(config))
        with serving() as (proc, port):
            child = worker_process(proc.pid)
            assert "test-token" not in Path(f"/proc/{child}/cmdline").read_text()
            time.sleep(1)  # the worker's first pass is over: it now waits up to 30 s
            started = time.monotonic()
            env = environment("notify")
            commands = asyncio.run(fake_asterisk(port, env, default_responder("APART.1")))
            assert commands[-1] == b'SET VARIABLE "PBXGATE_EVENT" "queued"\n'
            while not vk.state.shown and time.monotonic() - started < 20:
                time.sleep(0.02)
            assert vk.state.shown, "the worker was not woken"
            assert time.monotonic() - started < 10
            os.kill(child, signal.SIGTERM)  # as systemd does, to the whole group
            time.sleep(1)  # longer than a stop that lands as a child starts may take to be seen
            assert child in [pid for pid, _ in children(proc.pid)]
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0
            assert gone(child, 10)
    finally:
        vk.stop()
    assert len(vk.state.shown) == 1


def test_the_commits_are_a_process_of_their_own(tmp_path, monkeypatch):
    """Each call's event is on disk, written by the writer process, before the call is
    released; systemd's SIGTERM reaches every process: the writer outlives it, and commits the
    call still open when the service is told to stop, before it ends."""
    config = tmp_path / "config.toml"
    config.write_text('[notify.vk]\nenabled = true\ntoken = "test-token"\nrecipients = ["42"]\n')
    monkeypatch.setenv("PBXGATE_CONFIG", str(config))
    with serving("--no-worker") as (proc, port):
        writer = writer_process(proc.pid)
        assert "test-token" not in Path(f"/proc/{writer}/cmdline").read_text()
        for n in range(3):
            env = environment("notify")
            commands = asyncio.run(fake_asterisk(port, env, default_responder(f"WRITER.{n}")))
            assert commands[-1] == b'SET VARIABLE "PBXGATE_EVENT" "queued"\n'
            assert f"incoming:WRITER.{n}" in stored_event_ids()  # already on disk
        os.kill(writer, signal.SIGTERM)  # as systemd does, to the whole group
        time.sleep(1)  # longer than a stop that lands as a child starts may take to be seen
        assert writer in [child for child, _ in children(proc.pid)]
        in_call, go = threading.Event(), threading.Event()
        answer = default_responder("DRAIN.1")

        def slow(line: bytes) -> bytes:  # the caller is still in the AGI step at the stop
            in_call.set()
            go.wait(30)
            return answer(line)

        results: list[list[bytes]] = []
        caller = threading.Thread(
            target=lambda: results.append(
                asyncio.run(fake_asterisk(port, environment("notify"), slow))
            )
        )
        caller.start()
        assert in_call.wait(30)
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        go.set()
        caller.join(30)
        assert results and results[0][-1] == b'SET VARIABLE "PBXGATE_EVENT" "queued"\n'
        assert proc.wait(timeout=30) == 0
        assert gone(writer, 10)
        assert proc.stderr is not None
        assert b"this process commits" not in proc.stderr.read()  # the writer did
    assert stored_event_ids() == sorted(
        ["incoming:DRAIN.1", *(f"incoming:WRITER.{n}" for n in range(3))]
    )


@pytest.mark.parametrize(
    "find", [worker_process, writer_process, fastagi_process], ids=["worker", "writer", "fastagi"]
)
def test_a_killed_service_stops_its_children(find):
    with serving() as (proc, _):
        child = find(proc.pid)
        proc.kill()
        proc.wait(timeout=10)
        assert gone(child, 15)  # its input ended with the service


@pytest.mark.parametrize(
    ("find", "what"),
    [
        (worker_process, "the delivery worker process"),
        (writer_process, "the outbox writer process"),
        (fastagi_process, "the FastAGI process 1"),
    ],
    ids=["worker", "writer", "fastagi"],
)
def test_a_child_that_dies_ends_the_service_in_one_line(find, what):
    """As a worker thread that failed would: systemd's Restart= brings them all back."""
    with serving() as (proc, _):
        os.kill(find(proc.pid), signal.SIGKILL)
        assert proc.wait(timeout=30) == 5
        assert proc.stderr is not None
        errors = [line for line in proc.stderr.read().decode().splitlines() if "error" in line]
    assert errors == [f"error: {what} was killed by signal 9"]


def test_calls_go_through_while_the_service_process_itself_is_stopped():
    """FastAGI runs in a process of its own: nothing the service's own process does (the web
    console's reports, the scheduled reports, the manager's follower) can hold a call. Here
    that process is stopped outright, and calls are still answered, each event on disk first
    (before, FastAGI shared that process's loop and interpreter lock)."""
    with serving() as (proc, port):
        os.kill(proc.pid, signal.SIGSTOP)
        try:
            for n in range(3):
                call = fake_asterisk(port, environment("notify"), default_responder(f"ALONE.{n}"))
                commands = asyncio.run(asyncio.wait_for(call, 10))
                assert commands[-1] == b'SET VARIABLE "PBXGATE_EVENT" "queued"\n'
                assert f"incoming:ALONE.{n}" in stored_event_ids()
        finally:
            os.kill(proc.pid, signal.SIGCONT)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        assert proc.stderr is not None
        assert b"stopped after 3 AGI session(s)" in proc.stderr.read()


def test_several_fastagi_processes_take_the_calls_and_stop_together():
    """``--processes 2``: both accept on the one socket, every call is committed, the stop
    drains both and counts the calls of each."""
    with serving("--processes", "2", "--no-worker") as (proc, port):
        assert len(fastagi_processes(proc.pid)) == 2
        # the service holds no copy of the listening socket: it closes when they stop
        assert not [fd for fd in Path(f"/proc/{proc.pid}/fd").iterdir() if listens(fd, port)]

        async def calls() -> list[list[bytes]]:
            return await asyncio.gather(
                *(
                    fake_asterisk(port, environment("notify"), default_responder(f"MANY.{n}"))
                    for n in range(40)
                )
            )

        results = asyncio.run(calls())
        assert all(r[-1] == b'SET VARIABLE "PBXGATE_EVENT" "queued"\n' for r in results)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        assert proc.stderr is not None
        assert b"stopped after 40 AGI session(s)" in proc.stderr.read()
    assert stored_event_ids() == sorted(f"incoming:MANY.{n}" for n in range(40))
    with pytest.raises(OSError):  # nobody listens any more
        socket.create_connection(("127.0.0.1", port), timeout=5).close()


def listens(fd: Path, port: int) -> bool:
    """Whether the descriptor ``fd`` (/proc/PID/fd/N) is a socket listening on ``port``."""
    try:
        target = os.readlink(fd)
    except OSError:
        return False
    if not target.startswith("socket:["):
        return False
    inode = target[len("socket:[") : -1]
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            cols = line.split()
            if cols[9] == inode and cols[3] == "0A" and int(cols[1].rsplit(":", 1)[1], 16) == port:
                return True
    return False


def test_a_second_service_on_one_outbox_says_why_its_worker_cannot_start():
    with serving():
        second = subprocess.run(
            [str(PBXGATE), "serve", "--listen", "127.0.0.1:0"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert second.returncode == 5
    errors = [line for line in second.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: another worker is already delivering from "
                      f"{data_dir() / 'outbox.sqlite3'} (run one pbxgate serve (or notify "
                      f"worker) per outbox)"]  # fmt: skip


@pytest.mark.parametrize("processes", ["1", "0"], ids=["own-process", "in-process"])
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_stop_signal_lets_an_open_session_finish(sig, processes):
    with serving("--no-worker", "--processes", processes) as (proc, port):

        async def call() -> list[bytes]:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(environment("notify"))
            first = await reader.readline()
            proc.send_signal(sig)  # mid-session: the server must drain, not cut
            writer.write(default_responder("DRAIN.1")(first))
            second = await reader.readline()
            writer.write(b"200 result=1\n")
            assert await reader.read() == b""
            writer.close()
            await writer.wait_closed()
            return [first, second]

        commands = asyncio.run(call())
        assert commands[1] == b'SET VARIABLE "PBXGATE_EVENT" "queued"\n'
        assert proc.wait(timeout=30) == 0
    assert stored_event_ids() == ["incoming:DRAIN.1"]


def test_bad_listen_is_one_line(capsys):
    assert main(["serve", "--listen", "localhost"]) == 2
    err = capsys.readouterr().err
    assert err == "error: --listen 'localhost' is not HOST:PORT (e.g. 127.0.0.1:4573)\n"


def test_port_in_use_is_one_line(capsys):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["serve", "--no-worker", "--listen", f"127.0.0.1:{port}"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: cannot listen on 127.0.0.1:{port}: ")
    assert len(err.splitlines()) == 1


@pytest.mark.parametrize("text", ["127.0.0.1:4573", "[::1]:4573", "0.0.0.0:0"])
def test_parse_listen(text):
    from pbxgate.agi.runner import parse_listen

    host, port = parse_listen(text)
    assert f"{host}:{port}".replace("::1", "[::1]") == text


def test_an_empty_listen_host_is_refused(tmp_path, capsys):
    """asyncio would take "" for every interface, silently; FastAGI has no authentication."""
    cfg = tmp_path / "config.toml"
    cfg.write_text('[agi]\nlisten_host = ""\n', encoding="utf-8")
    assert main(["--config", str(cfg), "serve", "--no-worker"]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert "listen_host is empty" in line and "every interface" in line


@pytest.mark.parametrize(
    ("setting", "value"),
    [("idle_timeout", "nan"), ("idle_timeout", "inf"), ("commit_timeout", "nan"),
     ("commit_timeout", "0"), ("drain_timeout", "-1"), ("drain_timeout", "inf")],
)  # fmt: skip
def test_a_timeout_that_is_no_number_of_seconds_is_refused(tmp_path, capsys, setting, value):
    """NaN ended no wait (``now >= nan`` is never true): idle peers held their sessions for
    ever; a negative drain was taken as it came."""
    cfg = tmp_path / "config.toml"
    cfg.write_text(f"[agi]\n{setting} = {value}\n", encoding="utf-8")
    assert main(["--config", str(cfg), "serve", "--no-worker"]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert setting in line and "seconds" in line


@pytest.mark.parametrize(("host", "warned"), [("127.0.0.1", False), ("0.0.0.0", True)])
def test_listening_beyond_loopback_is_warned_about(host, warned, caplog):
    import logging

    from pbxgate.agi.runner import run_service
    from pbxgate.config import Settings

    async def go() -> None:
        stop = asyncio.Event()
        await run_service(Settings(), stop, listen=(host, 0), worker=None,
                          on_ready=lambda _: stop.set())  # fmt: skip

    with caplog.at_level(logging.WARNING, logger="pbxgate.agi.runner"):
        asyncio.run(go())
    messages = [r.getMessage() for r in caplog.records if r.name == "pbxgate.agi.runner"]
    assert bool(messages) is warned
    if warned:
        assert "no authentication" in messages[0]


def test_settings_refused_after_the_writer_started_end_it_and_the_service(tmp_path, monkeypatch):
    """The internal-number rule is read once the outbox writer runs: its error ends the service
    in one line, and the writer with it (before, the service waited for it for ever)."""
    config = tmp_path / "config.toml"
    config.write_text('[cdr]\ninternal_pattern = "("\n', encoding="utf-8")
    monkeypatch.setenv("PBXGATE_CONFIG", str(config))
    proc = subprocess.Popen(
        [str(PBXGATE), "serve", "--listen", "127.0.0.1:0", "--no-worker"],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 2
    assert err.splitlines() == [
        "error: cdr.internal_pattern is not a valid regex: missing ), unterminated subpattern at "
        "position 0"
    ]
    assert not started_with(str(config))  # no child of it left behind


def started_with(config: str) -> list[int]:
    """The pbxgate processes that run with this PBXGATE_CONFIG (an orphan's parent is 1)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            cmdline = (entry / "cmdline").read_bytes()
            environ = (entry / "environ").read_bytes()
        except OSError:  # not a process, or gone meanwhile
            continue
        if b"pbxgate.notify" in cmdline and f"PBXGATE_CONFIG={config}".encode() in environ:
            found.append(int(entry.name))
    return found


def test_fastagi_listens_only_once_the_writer_holds_the_outbox():
    """A node just (re)started takes no call it cannot commit at once: with hagi:// the calls
    go to the other node until its writer is up (before, the first calls waited for the
    writer's interpreter to start, a third of a second)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen(
        [str(PBXGATE), "serve", "--listen", f"127.0.0.1:{port}", "--no-worker"],
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline and proc.poll() is None
                time.sleep(0.005)
        writer = writer_process(proc.pid)
        opened = [os.readlink(fd) for fd in Path(f"/proc/{writer}/fd").iterdir()]
        assert str(data_dir() / "outbox.sqlite3") in opened
    finally:
        proc.kill()
        proc.wait(timeout=30)


def in_process_service(
    tmp_path: Path, processes: int, on_ready: Callable[[tuple[str, int]], None] | None = None
) -> tuple[Any, asyncio.Event]:
    """``run_service`` as ``pbxgate serve`` runs it (the writer and FastAGI in processes of
    their own, no worker), in this process: its parts can be replaced."""
    from pbxgate.agi.runner import run_service
    from pbxgate.config import Settings

    settings = Settings({"notify": {"outbox": str(tmp_path / "outbox.sqlite3")}})
    stop = asyncio.Event()
    service = run_service(
        settings, stop, listen=("127.0.0.1", 0), worker=None, apart=True, processes=processes,
        on_ready=on_ready,
    )  # fmt: skip
    return service, stop


def test_a_fastagi_process_that_cannot_start_stops_the_others_and_the_service(
    tmp_path, monkeypatch
):
    """The third of three cannot be started (no more processes allowed): the two started are
    stopped, and the service ends in one line, rather than waiting for ever for a writer that
    serves their sockets."""
    from pbxgate.agi import apart

    real = apart.FastAgiProcess.start

    async def start(self: apart.FastAgiProcess) -> None:
        if self.what.endswith(" 3"):
            raise DeliveryError("cannot start the FastAGI process 3: [Errno 11] try again")
        await real(self)

    monkeypatch.setattr(apart.FastAgiProcess, "start", start)

    async def main() -> None:
        service, _ = in_process_service(tmp_path, 3)
        with pytest.raises(DeliveryError, match="cannot start the FastAGI process 3"):
            await asyncio.wait_for(service, 30)

    asyncio.run(main())
    assert not [pid for pid, cmd in children(os.getpid()) if "pbxgate" in cmd and not gone(pid, 5)]


def test_a_fastagi_process_that_does_not_stop_is_killed_and_the_stop_says_so(tmp_path, monkeypatch):
    """A FastAGI process that does not end when told to (here: stopped by a signal) is
    killed once its calls' and the writer's bounds are past, and the service ends with that
    line rather than as if all was well (the bounds shortened here)."""
    from pbxgate.agi import apart

    monkeypatch.setattr(apart, "CLOSE_WAIT", 0.5)

    async def main() -> None:
        ready = asyncio.Event()
        service, stop = in_process_service(tmp_path, 1, on_ready=lambda _: ready.set())
        task = asyncio.ensure_future(service)
        deadline = time.monotonic() + 60
        while not ready.is_set():  # its processes have started (and ignore stop signals)
            assert time.monotonic() < deadline and not task.done()
            await asyncio.sleep(0.05)
        (fastagi,) = [p for p, cmd in children(os.getpid()) if "pbxgate.agi.apart" in cmd]
        os.kill(fastagi, signal.SIGSTOP)
        stop.set()
        with pytest.raises(DeliveryError, match=r"did not end .* after it was told to stop"):
            await asyncio.wait_for(task, 60)
        assert gone(fastagi, 10)

    asyncio.run(main())


def test_a_host_without_one_of_the_address_families_listens_on_the_others(monkeypatch):
    """ "localhost" is 127.0.0.1 and ::1; on a host with IPv6 disabled the second cannot be
    made: the first is listened on, as asyncio's own server does."""
    from pbxgate.agi import apart

    real = socket.socket

    def made(family: int = socket.AF_INET, *args: Any, **kw: Any) -> socket.socket:
        if family == socket.AF_INET6:
            raise OSError(97, "Address family not supported by protocol")
        return real(family, *args, **kw)

    monkeypatch.setattr(apart.socket, "socket", made)
    socks = apart.bind("localhost", 0)
    try:
        assert [s.family for s in socks] == [socket.AF_INET]
    finally:
        for sock in socks:
            sock.close()


def test_a_port_another_process_began_to_listen_on_meanwhile_is_one_line():
    """The service binds the port and its FastAGI processes listen once the writer is up: a
    second service started in that time can take the port first. One line, not a traceback."""
    from pbxgate.agi import apart
    from pbxgate.agi.fastagi import FastAgiServer
    from pbxgate.agi.settings import AgiSettings
    from pbxgate.errors import ConfigError

    ours = socket.socket()
    ours.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ours.bind(("127.0.0.1", 0))
    ours.setblocking(False)
    port = ours.getsockname()[1]
    with socket.socket() as theirs:
        theirs.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        theirs.bind(("127.0.0.1", port))
        theirs.listen()

        async def main() -> None:
            server = FastAgiServer(AgiSettings(), {})
            with pytest.raises(ConfigError) as caught:
                await apart._listen(server, [ours])
            assert str(caught.value) == (
                f"cannot listen on 127.0.0.1:{port}: Address already in use"
            )

        try:
            asyncio.run(main())
        finally:
            ours.close()


def test_an_address_the_host_has_not_is_left_out(monkeypatch):
    """A name with an address this host cannot bind (IPv6 disabled while /etc/hosts still
    gives ::1 for localhost; here a documentation address) is listened on at the others."""
    from pbxgate.agi import apart

    def addresses(host: str, port: int, *args: Any, **kw: Any) -> list[Any]:
        stream = (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "")
        return [(*stream, ("127.0.0.1", port)), (*stream, ("192.0.2.1", port))]

    monkeypatch.setattr(apart.socket, "getaddrinfo", addresses)
    socks = apart.bind("localhost", 0)
    try:
        assert [s.getsockname()[0] for s in socks] == ["127.0.0.1"]
    finally:
        for sock in socks:
            sock.close()
