"""The live-calls stream: in-process subscribers and the Unix socket of ``pbxgate serve``."""

from __future__ import annotations

import asyncio
import json
import os
import stat
import subprocess
import sys
import threading
from dataclasses import replace
from pathlib import Path

from pbxgate.ami.calls import ENDED, RINGING, TALKING, CallState
from pbxgate.ami.live import LiveHub, read_socket, serve_socket
from pbxgate.cli.main import main as cli

from .test_ami import NEWCHANNEL, FakeManager, serve_settings

CALL = CallState(linkedid="1.1", caller_number="84991111111", caller_name="", did="600",
                 context="from-trunk", channel="IAX2/trunk-1", state=RINGING,
                 started_at=10.0)  # fmt: skip


def test_a_subscriber_gets_the_calls_in_progress_then_every_change_in_order() -> None:
    hub = LiveHub()
    hub.publish(CALL)
    hub.publish(replace(CALL, linkedid="1.9", started_at=5.0))

    async def main() -> tuple[list[str], list[tuple[str, str]]]:
        async with hub.subscribe() as (snapshot, changes):
            # published from another thread, as the manager's follower does
            def later() -> None:
                hub.publish(replace(CALL, ringing=("101",)))
                hub.publish(replace(CALL, state=TALKING, answered_by="101"))
                hub.publish(replace(CALL, state=ENDED))

            threading.Thread(target=later).start()
            seen = []
            async for state in changes:
                seen.append((state.state, ",".join(state.ringing)))
                if state.state == ENDED:
                    break
            return [c.linkedid for c in snapshot], seen

    snapshot, seen = asyncio.run(main())
    assert snapshot == ["1.9", "1.1"]  # oldest first
    assert seen == [(RINGING, "101"), (TALKING, ""), (ENDED, "")]
    assert [c.linkedid for c in hub.snapshot()] == ["1.9"]  # the ended call left
    assert hub.subscribers == 0


def test_a_subscriber_that_falls_behind_is_dropped_and_others_go_on() -> None:
    hub = LiveHub(backlog=3)

    async def main() -> tuple[int, int]:
        async with hub.subscribe() as (_, slow), hub.subscribe() as (_, quick):
            got = 0
            for n in range(10):
                hub.publish(replace(CALL, linkedid=f"2.{n}"))
                await asyncio.sleep(0)  # the hub's deliveries run
                await asyncio.sleep(0)
                got += 1 if await anext(quick) else 0
            slow_got = [s async for s in slow]  # ends: dropped
            return got, len(slow_got)

    quick, slow = asyncio.run(main())
    assert quick == 10
    assert slow == 3


def test_the_socket_is_its_owners_alone_and_streams_snapshot_then_changes(tmp_path: Path) -> None:
    hub = LiveHub()
    hub.publish(CALL)
    path = tmp_path / "run" / "live.sock"

    async def main() -> list[dict[str, object]]:
        stop = asyncio.Event()
        server = asyncio.ensure_future(serve_socket(hub, path, stop))
        while not path.exists():
            await asyncio.sleep(0.01)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        got = []
        stream = read_socket(path)
        got.append(await anext(stream))
        hub.publish(replace(CALL, state=ENDED, cause="Normal Clearing"))
        got.append(await anext(stream))
        await stream.aclose()
        stop.set()
        await server
        return got

    snapshot, change = asyncio.run(main())
    assert snapshot["type"] == "snapshot"
    assert [c["linkedid"] for c in snapshot["calls"]] == ["1.1"]  # type: ignore[union-attr]
    assert change["type"] == "call"
    assert change["call"]["state"] == ENDED  # type: ignore[index]
    assert not path.exists()  # removed at the end


def test_pbxgate_ami_live_without_a_serve_is_one_clear_line(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[ami]\nlive_socket = "{tmp_path / "none.sock"}"\n')
    assert cli(["--config", str(cfg), "ami", "live"]) != 0
    err = capsys.readouterr().err
    assert err.startswith(f"error: no live-calls stream at {tmp_path / 'none.sock'}")
    assert "Traceback" not in err


def test_serve_with_ami_streams_the_live_calls_to_pbxgate_ami_live(tmp_path: Path) -> None:
    """pbxgate serve follows the (fake) manager; pbxgate ami live, another process, prints
    the calls from its socket without logging in to the manager itself."""
    from pbxgate.agi.runner import run_service

    sock = tmp_path / "live.sock"
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[ami]\nlive_socket = "{sock}"\n')

    async def main() -> list[str]:
        manager = FakeManager()
        port = await manager.start()
        settings = serve_settings(port, tmp_path)
        settings.raw["ami"]["live_socket"] = str(sock)
        stop = asyncio.Event()
        service = asyncio.create_task(
            run_service(settings, stop, listen=("127.0.0.1", 0), worker=None)
        )
        try:
            async with asyncio.timeout(20):
                while manager.logins < 1 or not sock.exists():
                    await asyncio.sleep(0.02)
                await manager.push(NEWCHANNEL)
                proc = await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "pbxgate.cli.main", "--config", str(cfg),
                    "ami", "live", "--json", stdout=subprocess.PIPE,
                    env={**os.environ},
                )  # fmt: skip
                assert proc.stdout is not None
                lines = [await proc.stdout.readline()]
                hangup = b"Event: Hangup\r\nChannel: IAX2/trunk-4\r\nLinkedid: 1733.1\r\n\r\n"
                await manager.push(hangup)
                lines.append(await proc.stdout.readline())
                proc.terminate()
                await proc.wait()
        finally:
            stop.set()
            await service
            await manager.close()
        return [line.decode() for line in lines]

    first, second = (json.loads(line) for line in asyncio.run(main()))
    assert first["type"] == "snapshot"
    assert [c["caller_number"] for c in first["calls"]] == ["84991111111"]
    assert (second["type"], second["call"]["state"]) == ("call", ENDED)


def test_a_second_serve_never_takes_a_running_ones_socket_and_a_dead_ones_is_replaced(
    tmp_path: Path, caplog
) -> None:  # type: ignore[no-untyped-def]
    import socket as sockets

    path = tmp_path / "live.sock"
    dead = sockets.socket(sockets.AF_UNIX, sockets.SOCK_STREAM)
    dead.bind(str(path))  # left by a process that was killed: bound, nobody listening
    dead.close()

    async def main() -> tuple[bool, bool]:
        stop_a, stop_b = asyncio.Event(), asyncio.Event()
        a = asyncio.ensure_future(serve_socket(LiveHub(), path, stop_a))
        await asyncio.sleep(0.2)
        b = asyncio.ensure_future(serve_socket(LiveHub(), path, stop_b))
        await asyncio.sleep(0.2)
        stream = read_socket(path)
        first = await anext(stream)  # still the first one's
        await stream.aclose()
        stop_b.set()
        await b
        still = path.exists()
        stop_a.set()
        await a
        return first["type"] == "snapshot" and still, path.exists()

    served, left = asyncio.run(main())
    assert served and not left
    assert "another process streams there" in caplog.text


def test_a_snapshot_of_many_calls_reads_whole(tmp_path: Path) -> None:
    hub = LiveHub()
    for n in range(400):  # about 200 KiB on one line
        hub.publish(replace(CALL, linkedid=f"5.{n}", caller_name="Иван Петрович" * 4))
    path = tmp_path / "live.sock"

    async def main() -> int:
        stop = asyncio.Event()
        server = asyncio.ensure_future(serve_socket(hub, path, stop))
        while not path.exists():
            await asyncio.sleep(0.01)
        stream = read_socket(path)
        snapshot = await anext(stream)
        await stream.aclose()
        stop.set()
        await server
        return len(snapshot["calls"])  # type: ignore[arg-type]

    assert asyncio.run(main()) == 400


def test_the_default_socket_is_one_per_pbx(tmp_path: Path) -> None:
    from pbxgate.ami.settings import AmiSettings

    assert AmiSettings(live_socket=Path("")).live_socket_path().name == "live.sock"
    assert AmiSettings(pbx="msk-1").live_socket_path().name == "live-msk-1.sock"
    assert AmiSettings(live_socket=tmp_path / "x.sock").live_socket_path() == tmp_path / "x.sock"


def test_a_file_that_is_not_a_socket_is_never_removed(tmp_path: Path, caplog) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "outbox.sqlite3"  # a typo in [ami] live_socket
    path.write_bytes(b"precious")

    async def main() -> None:
        stop = asyncio.Event()
        server = asyncio.ensure_future(serve_socket(LiveHub(), path, stop))
        await asyncio.sleep(0.2)
        stop.set()
        await server

    asyncio.run(main())
    assert path.read_bytes() == b"precious"
    assert "is there and is not a socket" in caplog.text
