"""Every command that writes a file, pointed at a path that cannot be written: one line naming
the path, exit status 2 (a user's mistake, not an internal error)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pbxgate.cli.main import main

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def commands(bad: Path) -> dict[str, list[str]]:
    return {
        "cdr report html": ["cdr", "report", "--today", "--format", "html", "-o", str(bad)],
        "cdr report xlsx": ["cdr", "report", "--today", "--format", "xlsx", "-o", str(bad)],
        "cdr report csv": ["cdr", "report", "--today", "--format", "csv", "-o", str(bad)],
        "cdr generate --csv": ["cdr", "generate", "--days", "1", "--csv", str(bad)],
        "glbp sim --pcap": [
            "glbp",
            "sim",
            str(EXAMPLES / "glbp" / "article.toml"),
            "--pcap",
            str(bad),
            "--duration",
            "5",
        ],
    }


@pytest.mark.parametrize("name", sorted(commands(Path("x"))))
@pytest.mark.parametrize("where", ["missing folder", "a folder itself", "procfs"])
def test_an_unwritable_output_path_is_one_line(
    name: str, where: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if where == "missing folder":
        bad = tmp_path / "missing" / "dir" / "out.file"
    elif where == "a folder itself":
        bad = tmp_path / "folder"
        bad.mkdir()
    else:  # where not even root can create a file
        bad = Path("/proc/pbxgate-out.file")
    assert main(["cdr", "generate", "--days", "1"]) == 0
    capsys.readouterr()
    code = main(commands(bad)[name])
    err = capsys.readouterr().err
    assert code == 2, err
    (line,) = err.splitlines()
    assert line.startswith("error: ") and str(bad.name) in line and "internal" not in line
