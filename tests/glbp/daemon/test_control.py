"""The daemon's console socket: IOS lines in, output and prompt out, changes saved."""

from __future__ import annotations

import asyncio
import stat
from pathlib import Path

import pytest

from pbxgate.cli.main import main
from pbxgate.glbp.config import RouterConfig
from pbxgate.glbp.daemon import Client, ControlError
from pbxgate.glbp.daemon.control import serve
from pbxgate.glbp.daemon.ledger import Ledger
from pbxgate.glbp.daemon.runtime import Daemon


def _console(
    tmp_path: Path, lines: list[str], *, started: bool = True
) -> tuple[list[tuple[str, str]], list[RouterConfig]]:
    saved: list[RouterConfig] = []
    path = tmp_path / "ctl" / "glbp.sock"

    async def scenario() -> list[tuple[str, str]]:
        daemon = Daemon(
            RouterConfig(hostname="R2"), ledger=Ledger(tmp_path / "ledger"), save=saved.append
        )
        daemon.started = started  # a router with no groups: nothing on the host to start
        server = await serve(daemon, path)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600

        def talk() -> list[tuple[str, str]]:
            with Client(path) as client:
                return [client.execute(line) for line in lines]

        try:
            return await asyncio.to_thread(talk)
        finally:
            server.close()
            await server.wait_closed()

    return asyncio.run(scenario()), saved


def test_configuration_and_write_memory(tmp_path: Path) -> None:
    replies, saved = _console(
        tmp_path,
        ["", "configure terminal", "hostname R9", "end", "write memory", "show startup-config"],
    )
    prompts = [prompt for _, prompt in replies]
    assert prompts == ["R2#", "R2(config)#", "R9(config)#", "R9#", "R9#", "R9#"]
    assert [c.hostname for c in saved] == ["R9"]
    assert "hostname R9" in replies[-1][0]


def test_show_glbp_of_a_router_without_groups(tmp_path: Path) -> None:
    replies, saved = _console(tmp_path, ["show glbp brief", "show glbp bogus-word-xyz"])
    assert replies[0][0].startswith("Interface   Grp  Fwd Pri State")
    assert "Invalid input" in replies[1][0]
    assert saved == []


def test_a_change_the_host_cannot_run_is_undone(tmp_path: Path) -> None:
    lines = ["configure terminal", "interface eth7", "glbp 1 ip 192.168.0.254", "end",
             "show running-config"]  # fmt: skip
    replies, saved = _console(tmp_path, lines)
    assert replies[2][0].startswith("% interface Ethernet7 of the configuration is not on")
    assert replies[2][1] == "R2(config-if)#"  # the console stays where it was
    assert "glbp" not in replies[-1][0]  # the running configuration never took it
    assert saved == []


def test_the_console_waits_for_the_router(tmp_path: Path) -> None:
    replies, _ = _console(tmp_path, ["configure terminal"], started=False)
    assert replies == [("% The router is starting or stopping; try again\n", "R2#")]


def test_a_second_daemon_does_not_take_the_socket(tmp_path: Path) -> None:
    path = tmp_path / "glbp.sock"

    async def scenario() -> None:
        daemon = Daemon(RouterConfig(), ledger=Ledger(tmp_path / "ledger"))
        server = await serve(daemon, path)
        try:
            with pytest.raises(ControlError, match="already answers"):
                await serve(daemon, path)
        finally:
            server.close()
            await server.wait_closed()
        second = await serve(daemon, path)  # the first is gone: its stale socket is replaced
        second.close()
        await second.wait_closed()

    asyncio.run(scenario())


def test_no_daemon_is_one_line_and_exit_6(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(ControlError, match="no GLBP daemon answers"):
        Client(tmp_path / "none.sock")
    code = main(["glbp", "show", "brief", "--control", str(tmp_path / "none.sock")])
    err = capsys.readouterr().err
    assert code == 6
    assert err.count("\n") == 1 and err.startswith("error: no GLBP daemon answers on ")
