"""How an error leaves the CLI: one line and its exit status, with ``--debug`` the traceback
too, and the same status (a script's check must not change with the flag)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from pbxgate.cli import main as cli_main
from pbxgate.errors import DeliveryError, SourceError


@pytest.mark.parametrize(
    ("failure", "line", "code"),
    [
        (SourceError("the CDR source is unreachable"), "error: the CDR source is unreachable", 3),
        (DeliveryError("VK refused the recipient"), "error: VK refused the recipient", 5),
        (PermissionError(13, "Permission denied", "/srv/out.csv"),
         "error: /srv/out.csv: Permission denied", 2),
        (RuntimeError("a bug"), "error: internal error: RuntimeError: a bug (rerun with --debug)",
         70),
    ],
)  # fmt: skip
@pytest.mark.parametrize("debug", [False, True])
def test_an_error_keeps_its_status_with_debug(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    failure: Exception,
    line: str,
    code: int,
    debug: bool,
) -> None:
    def fail(*_: object, **__: object) -> int:
        raise failure

    monkeypatch.setattr(cli_main.cli, "main", fail)
    argv = ["--debug", "cdr", "stats"] if debug else ["cdr", "stats"]
    assert cli_main.main(argv) == code
    err = capsys.readouterr().err
    assert err.splitlines()[-1] == line
    assert ("Traceback (most recent call last)" in err) is debug


def test_a_real_command_fails_the_same_with_debug(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = str(tmp_path / "missing.db")
    codes, errs = [], []
    for extra in ([], ["--debug"]):
        codes.append(cli_main.main([*extra, "cdr", "stats", "--source", missing]))
        errs.append(capsys.readouterr().err)
    assert codes[0] == codes[1] != 0
    assert errs[1].splitlines()[-1] == errs[0].splitlines()[-1]
    assert "Traceback" in errs[1] and "Traceback" not in errs[0]


@pytest.mark.parametrize(
    ("argv", "module", "extra"),
    [
        (["web", "--listen", "127.0.0.1:0"], "uvicorn", "web"),
        (["web", "user", "add", "vera", "--role", "viewer"], "argon2", "web"),
    ],
)
def test_a_missing_optional_package_is_one_line_naming_its_extra(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    argv: list[str],
    module: str,
    extra: str,
) -> None:
    """An install without an extra (``pip install pbxgate``) runs a command that needs it: one
    line naming the extra, not an internal error."""
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setitem(sys.modules, module, None)  # import fails as when it is not installed
    monkeypatch.setenv("PBXGATE_WEB_PASSWORD", "a-long-enough-password-1")
    code = cli_main.main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.startswith("error: ") and "\n" not in err
    assert f"pip install 'pbxgate[{extra}]'" in err and "internal error" not in err


def test_a_missing_module_that_is_no_extra_is_still_an_internal_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def fail(*_: object, **__: object) -> int:
        raise ModuleNotFoundError("No module named 'pbxgate.gone'", name="pbxgate.gone")

    monkeypatch.setattr(cli_main.cli, "main", fail)
    assert cli_main.main(["cdr", "stats"]) == 70
    assert "internal error: ModuleNotFoundError" in capsys.readouterr().err


def test_a_part_missing_from_an_installed_extra_is_not_blamed_on_the_extra(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """starlette installed, one of its modules not (another version than pbxgate's): not
    "needs starlette, which is not installed", which would send the user round in circles."""

    def fail(*_: object, **__: object) -> int:
        raise ModuleNotFoundError("No module named 'starlette.gone'", name="starlette.gone")

    monkeypatch.setattr(cli_main.cli, "main", fail)
    assert cli_main.main(["web"]) == 70
    assert "internal error: ModuleNotFoundError" in capsys.readouterr().err
