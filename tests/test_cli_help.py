"""Every command's --help shows an example: the promise the README makes."""

from __future__ import annotations

from collections.abc import Iterator

import click
import pytest

from pbxgate.cli.main import cli, main


def commands(cmd: click.Command, path: list[str]) -> Iterator[list[str]]:
    yield path
    if isinstance(cmd, click.Group):
        ctx = click.Context(cmd)
        for name in cmd.list_commands(ctx):
            sub = cmd.get_command(ctx, name)
            assert sub is not None, name
            yield from commands(sub, [*path, name])


@pytest.mark.parametrize("path", list(commands(cli, [])), ids=lambda p: " ".join(p) or "pbxgate")
def test_help_has_an_example(path: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*path, "--help"]) == 0
    out = capsys.readouterr().out
    assert "Example" in out, f"pbxgate {' '.join(path)} --help shows no example"
