"""``pbxgate cdr report`` end to end over the fixture day in SQLite."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import pytest

from pbxgate.cli.main import main
from tests.report.helpers import write_config

DAY = ["--from", "2016-03-18", "--to", "2016-03-18"]


def run(cfg: Path, capsys: Any, *args: str) -> tuple[int, str, str]:
    code = main(["--config", str(cfg), "cdr", "report", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_text_on_screen_by_default(tmp_path: Path, capsys: Any) -> None:
    code, out, err = run(write_config(tmp_path), capsys, *DAY)
    assert (code, err) == (0, "")
    assert out.startswith("Отчёт о звонках: 2016-03-18\nИсточник: fx")
    assert "перезвонили" in out


def test_json_reads_the_source_like_the_library(tmp_path: Path, capsys: Any) -> None:
    code, out, _ = run(write_config(tmp_path), capsys, *DAY, "--format", "json", "--language", "en")
    assert code == 0
    data = json.loads(out)
    assert data["language"] == "en" and data["source"] == "fx"
    assert {k["key"]: k["value"] for k in data["kpis"]}["missed"] == 4
    assert data["period"]["kind"] == ""


@pytest.mark.parametrize("fmt", ["html", "xlsx", "csv"])
def test_files(tmp_path: Path, capsys: Any, fmt: str) -> None:
    target = tmp_path / f"out.{fmt}"
    code, out, err = run(write_config(tmp_path), capsys, *DAY, "--format", fmt, "-o", str(target))
    assert (code, out, err) == (0, "", f"wrote {target}\n")
    body = target.read_bytes()
    if fmt == "xlsx":
        openpyxl = pytest.importorskip("openpyxl")
        assert "missed" in openpyxl.load_workbook(io.BytesIO(body)).sheetnames
    elif fmt == "html":
        assert body.count(b"data:image/png;base64,") == 1  # one day: the hourly chart only
    else:
        assert body.startswith(b"# period\n")


def test_yesterday_is_the_default_and_an_empty_day_is_fine(tmp_path: Path, capsys: Any) -> None:
    code, out, _ = run(write_config(tmp_path), capsys, "--language", "en")
    assert code == 0
    assert re.search(r"^Calls +0 +0 +±0$", out, re.M) and "no data" in out
    first = out.splitlines()[0]
    assert re.fullmatch(r"Call report: \d{4}-\d\d-\d\d", first)


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--week", "--from", "2016-03-18"], 2, "error: --week cannot be combined with --from"),
        (["--source", "nowhere"], 2, "error: unknown CDR source 'nowhere'"),
        ([*DAY, "--mail", "boss"], 2, "error: --mail 'boss' is not a list of addresses"),
        (["--from", "18.13.2016"], 2, "error: cannot read '18.13.2016' as a date or time"),
    ],
)
def test_bad_input_is_one_line(
    tmp_path: Path, capsys: Any, args: list[str], code: int, message: str
) -> None:
    got, _, err = run(write_config(tmp_path), capsys, *args)
    assert got == code
    assert err.startswith(message) and err.count("\n") == 1


def test_bad_report_settings_are_one_line(tmp_path: Path, capsys: Any) -> None:
    cfg = write_config(tmp_path, extra='language = "de"\n')
    code, _, err = run(cfg, capsys, *DAY)
    assert code == 2
    assert err.startswith("error: invalid [report] settings: language must be one of ru, en")


def test_help_has_an_example(capsys: Any) -> None:
    assert main(["cdr", "report", "--help"]) == 0
    out = capsys.readouterr().out
    assert "pbxgate cdr report --yesterday --mail" in out


def test_config_show_masks_the_smtp_password(tmp_path: Path, capsys: Any) -> None:
    cfg = write_config(tmp_path, smtp='[report.smtp]\npassword = "hunter2-secret"\n')
    assert main(["--config", str(cfg), "config", "show"]) == 0
    out = capsys.readouterr().out
    assert "[report.smtp]" in out and "hunter2-secret" not in out
