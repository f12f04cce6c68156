"""pbxgate as a user installs it: the wheel, in a clean virtual environment.

A notifications-only install (no extras) must work and pull neither matplotlib, openpyxl nor
psycopg; what needs an extra says which in one line.
"""

from __future__ import annotations

import os
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def run(*cmd: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=600,
                          check=False, env=env)  # fmt: skip


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    done = run(sys.executable, "-m", "pip", "wheel", "--no-deps",
               "-q", "-w", out, ROOT)  # fmt: skip
    assert done.returncode == 0, done.stderr
    (built,) = out.glob("pbxgate-*.whl")
    return built


def test_the_wheel_carries_what_runs(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "pbxgate_agi.py" in names  # pbxgate-agi's Python side
    # pbxgate-agi itself: the shell script that ignores SIGHUP before the interpreter starts
    (script,) = [n for n in names if n.endswith(".data/scripts/pbxgate-agi")]
    assert zipfile.ZipFile(wheel).read(script).startswith(b"#!/bin/sh\n")
    assert "pbxgate/py.typed" in names
    assert any(n.startswith("pbxgate/cdr/report/templates/") and n.endswith(".j2") for n in names)
    # the web console's pages, scripts and styles come with the package (never from a CDN)
    shipped = Path(__file__).parent.parent / "src" / "pbxgate" / "web"
    for folder in ("templates", "static"):
        for file in (shipped / folder).iterdir():
            assert f"pbxgate/web/{folder}/{file.name}" in names
    meta = next(n for n in names if n.endswith(".dist-info/METADATA"))
    text = zipfile.ZipFile(wheel).read(meta).decode()
    for extra in ("report", "postgresql", "fast", "mysqlclient", "all"):
        assert f"Provides-Extra: {extra}" in text


def test_a_core_install_works_without_the_extras(wheel: Path, tmp_path: Path) -> None:
    home = tmp_path / "venv"
    venv.create(home, with_pip=True)
    py = home / "bin" / "python"
    done = run(py, "-m", "pip", "install", "-q", wheel)
    assert done.returncode == 0, done.stderr
    env = {
        **os.environ,
        "XDG_DATA_HOME": str(tmp_path / "d"),
        "XDG_CONFIG_HOME": str(tmp_path / "c"),
    }
    env = {k: v for k, v in env.items() if not k.startswith("PBXGATE_")}
    # two days: yesterday is a whole day of calls, whatever the time now (charts need data)
    for args in (["--help"], ["cdr", "generate", "--days", "2"], ["cdr", "stats", "--today"]):
        done = run(home / "bin" / "pbxgate", *args, env=env)
        assert done.returncode == 0, (args, done.stderr)
    assert run(home / "bin" / "pbxgate-agi", "--help", env=env).returncode == 0
    probe = "import importlib.util as u; print([m for m in EXTRA if u.find_spec(m)])"
    absent = run(py, "-c", "EXTRA = ('matplotlib', 'openpyxl', 'psycopg'); " + probe)
    assert absent.stdout.strip() == "[]"
    report = run(home / "bin" / "pbxgate", "cdr", "report", "--yesterday", "--format", "html",
                 "-o", tmp_path / "r.html", env=env)  # fmt: skip
    assert report.returncode == 2
    assert report.stderr.strip().splitlines() == [
        "error: a report with charts (HTML, e-mail) needs matplotlib, which is not installed "
        "(pip install 'pbxgate[report]')"
    ]
    pg = run(home / "bin" / "pbxgate", "cdr", "calls", "--source",
             "postgresql://pbx@127.0.0.1/asterisk", env=env)  # fmt: skip
    assert pg.returncode == 3 and "pip install 'pbxgate[postgresql]'" in pg.stderr
