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


def _console(tmp_path: Path, lines: list[str]) -> tuple[list[tuple[str, str]], list[RouterConfig]]:
    saved: list[RouterConfig] = []
    path = tmp_path / "ctl" / "glbp.sock"

    async def scenario() -> list[tuple[str, str]]:
        daemon = Daemon(
            RouterConfig(hostname="R2"), ledger=Ledger(tmp_path / "ledger"), save=saved.append
        )
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


def test_no_daemon_is_one_line_and_exit_6(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(ControlError, match="no GLBP daemon answers"):
        Client(tmp_path / "none.sock")
    code = main(["glbp", "show", "brief", "--control", str(tmp_path / "none.sock")])
    err = capsys.readouterr().err
    assert code == 6
    assert err.count("\n") == 1 and err.startswith("error: no GLBP daemon answers on ")
