"""Shared test fixtures: golden files, database DSNs, an isolated home for settings and data."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "asterisk22"
if not FIXTURES.is_dir():  # CI lays shared/ beside the clone; a developer may set it explicitly
    FIXTURES = Path(os.environ.get("PBXGATE_SHARED", "../shared")) / "fixtures" / "asterisk22"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-goldens",
        action="store_true",
        default=False,
        help="Rewrite golden files from the current output (review the diff).",
    )


@pytest.fixture
def update_goldens(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-goldens"))


@pytest.fixture
def golden(update_goldens: bool):  # type: ignore[no-untyped-def]
    """``golden(path, text)``: compare ``text`` with the file, or rewrite it on --update-goldens."""

    def check(path: Path, actual: str | bytes) -> None:
        if update_goldens or not path.exists():
            if not update_goldens:
                pytest.fail(f"golden file {path} is missing; run pytest --update-goldens")
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(actual, bytes):
                path.write_bytes(actual)
            else:
                path.write_text(actual, encoding="utf-8")
            return
        expected: str | bytes = (
            path.read_bytes() if isinstance(actual, bytes) else path.read_text(encoding="utf-8")
        )
        assert actual == expected, f"output differs from golden {path.name}"

    return check


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Every test gets its own config and data directories and no stray PBXGATE_* settings."""
    for var in list(os.environ):
        if var.startswith("PBXGATE_") and not var.startswith("PBXGATE_TEST_"):
            monkeypatch.delenv(var)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    yield tmp_path


def free_port() -> int:
    """A port nothing listens on now (aiosmtpd's Controller cannot be given port 0)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


_REACHABLE: dict[str, str] = {}  # DSN -> "" when it answered, else the one-line reason


def require_dsn(var: str) -> str:
    """The DSN in ``var``; skipped when unset, but a failure in CI (PBXGATE_TEST_REQUIRE_ALL=1).
    A DSN whose server or database cannot be reached fails in one line, not a traceback."""
    dsn = os.environ.get(var, "")
    if not dsn:
        if os.environ.get("PBXGATE_TEST_REQUIRE_ALL"):
            pytest.fail(f"{var} is not set but CI requires every backend")
        pytest.skip(f"{var} not set")
    if dsn not in _REACHABLE:
        _REACHABLE[dsn] = _reach(dsn)
    if _REACHABLE[dsn]:
        pytest.fail(f"{var}: {_REACHABLE[dsn]}", pytrace=False)
    return dsn


def _reach(dsn: str) -> str:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import SQLAlchemyError

    url = make_url(dsn)
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        reason = str(exc.orig if getattr(exc, "orig", None) else exc).splitlines()[0]
        return (
            f"cannot use database {url.database!r} at {url.host}:{url.port or 'default port'} "
            f"({reason}); create it first, e.g. CREATE DATABASE {url.database}"
        )
    finally:
        engine.dispose()
    return ""


@pytest.fixture(scope="session")
def asterisk_fixtures() -> Path:
    if not FIXTURES.is_dir():
        pytest.fail(f"shared fixtures not found at {FIXTURES}; set PBXGATE_SHARED")
    return FIXTURES
