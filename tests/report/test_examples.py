"""The report examples stay true: the sample config binds, its schedules parse, and every cron
line's command is one pbxgate accepts."""

from __future__ import annotations

import shlex
import tomllib
from pathlib import Path
from typing import Any

import pytest

from pbxgate.cdr.report.cron import Cron
from pbxgate.cdr.report.schedule import load_plans
from pbxgate.cdr.report.settings import ReportSettings
from pbxgate.cli.main import main
from pbxgate.config import Settings

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_sample_config_binds_and_its_schedules_parse() -> None:
    raw = tomllib.loads((EXAMPLES / "report" / "config.toml").read_text(encoding="utf-8"))
    # The password files live on the PBX; everything else binds as written.
    raw["report"]["smtp"].pop("password_file")
    raw["cdr"]["sources"]["freepbx"].pop("password_file")
    settings = Settings(raw, environ={})
    report = settings.get(ReportSettings)
    assert report.smtp.security == "starttls" and report.smtp.port == 587
    plans = {p.name: p for p in load_plans(settings)}
    assert sorted(plans) == ["daily", "monthly", "weekly"]
    assert plans["weekly"].cron.weekdays == {1}
    assert plans["monthly"].schedule.format == "xlsx"


def cron_lines() -> list[list[str]]:
    text = (EXAMPLES / "cron" / "pbxgate-report").read_text(encoding="utf-8")
    return [
        shlex.split(line)
        for line in text.splitlines()
        if line.strip() and not line.startswith("#") and "=" not in line.split()[0]
    ]


@pytest.mark.parametrize("fields", cron_lines(), ids=lambda f: " ".join(f[:5]))
def test_cron_lines_parse(fields: list[str], capsys: Any) -> None:
    Cron.parse(" ".join(fields[:5]))
    assert fields[5] == "asterisk" and fields[6] == "pbxgate"
    args = [a for a in fields[7:] if a]
    # --help after the options: click parses (and refuses unknown) options, then shows help.
    assert main([*args, "--help"]) == 0
    assert "Call report" in capsys.readouterr().out
