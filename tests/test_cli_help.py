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


def test_top_level_summaries_are_the_areas_own_words() -> None:
    """`pbxgate --help` lists areas without importing them; its lines must not drift from the
    areas' own help."""
    from pbxgate.cli.main import AREAS, SUMMARIES

    ctx = click.Context(cli)
    for name in AREAS:
        command = cli.get_command(ctx, name)
        assert command is not None and command.help is not None
        assert SUMMARIES[name] == command.help.strip().splitlines()[0], name


def test_help_does_not_load_sqlalchemy() -> None:
    """Every --help of the CDR area, like the rest, starts without SQLAlchemy (start-up time)."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from pbxgate.cli.main import main\n"
        "for args in (['--help'], ['cdr', '--help'], ['cdr', 'calls', '--help'],"
        " ['cdr', 'import', '--help'], ['notify', '--help'], ['serve', '--help']):\n"
        "    try:\n"
        "        main(args)\n"
        "    except SystemExit:\n"
        "        pass\n"
        "print('sqlalchemy' in sys.modules, 'httpx' in sys.modules, 'matplotlib' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=True)  # fmt: skip
    assert done.stdout.splitlines()[-1] == "False False False"


def test_shell_completion_as_the_readme_says() -> None:
    """README: eval "$(_PBXGATE_COMPLETE=bash_source pbxgate)"; completing `pbxgate cdr ca`."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    pbxgate = str(Path(sys.executable).with_name("pbxgate"))
    script = subprocess.run([pbxgate], env={**os.environ, "_PBXGATE_COMPLETE": "bash_source"},
                            capture_output=True, text=True, timeout=60, check=True)  # fmt: skip
    assert "_pbxgate_completion()" in script.stdout
    env = {**os.environ, "_PBXGATE_COMPLETE": "bash_complete", "COMP_WORDS": "pbxgate cdr ca",
           "COMP_CWORD": "2"}  # fmt: skip
    done = subprocess.run([pbxgate], env=env, capture_output=True, text=True, timeout=60,
                          check=True)  # fmt: skip
    assert done.stdout.split() == ["plain,calls"]
