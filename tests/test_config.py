from __future__ import annotations

import os
import stat
from datetime import UTC
from pathlib import Path

import pytest

from pbxgate.cdr.settings import CdrSettings
from pbxgate.cli.main import main
from pbxgate.config import MASK, Secret, Settings
from pbxgate.errors import ConfigError


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_file_then_environment_wins(tmp_path: Path) -> None:
    cfg = write(tmp_path / "c.toml", '[cdr]\ntimezone = "Europe/Moscow"\ninternal_max_digits = 4\n')
    settings = Settings.load(cfg, environ={"PBXGATE_CDR_INTERNAL_MAX_DIGITS": "5"})
    cdr = settings.get(CdrSettings)
    assert cdr.timezone == "Europe/Moscow"
    assert cdr.internal_max_digits == 5


def test_named_source_from_environment_and_password_file(tmp_path: Path) -> None:
    secret_file = write(tmp_path / "pw", "s3cret\n")
    cfg = write(
        tmp_path / "c.toml",
        f'[cdr.sources.freepbx]\nurl = "mysql+pymysql://ro@pbx/asteriskcdrdb"\n'
        f'password_file = "{secret_file}"\n',
    )
    env = {
        "PBXGATE_CDR_SOURCES_FREEPBX_TABLE": "cdr_old",
        "PBXGATE_CDR_SOURCES_PG_URL": "sqlite://",
    }
    cdr = Settings.load(cfg, environ=env).get(CdrSettings)
    assert cdr.sources["freepbx"].password == Secret("s3cret")
    assert cdr.sources["freepbx"].table == "cdr_old"
    assert cdr.sources["pg"].url == "sqlite://"


def test_secret_never_shows_itself() -> None:
    secret = Secret("hunter2")
    assert "hunter2" not in repr(secret) + str(secret) + f"{secret}"
    assert secret.reveal() == "hunter2"


def test_password_env_must_exist(tmp_path: Path) -> None:
    cfg = write(tmp_path / "c.toml", '[cdr.sources.x]\nurl = "sqlite://"\npassword_env = "NOPE"\n')
    with pytest.raises(ConfigError, match=r"\$NOPE"):
        Settings.load(cfg, environ={}).get(CdrSettings)


def test_unknown_setting_is_named(tmp_path: Path) -> None:
    cfg = write(tmp_path / "c.toml", "[cdr]\ntimezon = 'UTC'\n")
    with pytest.raises(ConfigError, match=r"unknown setting cdr\.timezon"):
        Settings.load(cfg, environ={}).get(CdrSettings)


def test_bad_number_is_one_clear_error(tmp_path: Path) -> None:
    cfg = write(tmp_path / "c.toml", "[cdr]\nquery_timeout = 'soon'\n")
    with pytest.raises(ConfigError, match="must be a number"):
        Settings.load(cfg, environ={}).get(CdrSettings)


def test_config_show_masks_secrets(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = write(tmp_path / "c.toml", '[cdr.sources.f]\nurl = "sqlite://"\npassword = "hunter2"\n')
    monkeypatch.setenv("PBXGATE_CDR_SOURCES_G_PASSWORD", "letmein")
    monkeypatch.setenv("PBXGATE_CDR_SOURCES_G_URL", "sqlite://")
    assert main(["--config", str(cfg), "config", "show"]) == 0
    out = capsys.readouterr().out
    assert "hunter2" not in out and "letmein" not in out
    assert out.count(MASK) == 2
    assert "[cdr.sources.f]" in out


def test_missing_config_file_is_one_line_and_nonzero(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", "/nonexistent/x.toml", "config", "show"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: config file /nonexistent/x.toml does not exist")
    assert err.count("\n") == 1


def test_usage_errors_are_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cdr", "calls", "--nope"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: No such option '--nope'")
    assert err.endswith("(see `pbxgate cdr calls --help`)\n") and err.count("\n") == 1


def test_config_show_lists_every_area_and_refuses_unknown_sections(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = write(tmp_path / "c.toml", "[agi]\nlisten_port = 4999\n")
    assert main(["--config", str(cfg), "config", "show"]) == 0
    out = capsys.readouterr().out
    assert "[agi]" in out and "listen_port = 4999" in out
    assert "[notify]" in out and "[report]" in out and "[cdr]" in out
    cfg = write(tmp_path / "c.toml", "[glbp]\nfoo = 1\n")
    assert main(["--config", str(cfg), "config", "show"]) == 2
    assert "unknown section [glbp]" in capsys.readouterr().err


def test_a_password_written_in_a_url_is_masked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = write(
        tmp_path / "c.toml", '[cdr.sources.f]\nurl = "mysql+pymysql://ro:S3cretPw@pbx/cdr"\n'
    )
    assert main(["--config", str(cfg), "config", "show"]) == 0
    out = capsys.readouterr().out
    assert "S3cretPw" not in out and f'url = "mysql+pymysql://ro:{MASK}@pbx/cdr"' in out


TYPOS = {
    "section": '[ntoify.vk]\nenabled = true\nrecipients = ["1"]\n',
    "top-level": '[cdrr]\ntimezone = "Europe/Moscow"\n',
    "key": '[notify.vk]\nenabled = true\nrecipents = ["1"]\n',
    "nested key": '[cdr.sources.x]\nurl = "sqlite:///x.db"\ntabel = "cdr"\n',
    "schedule key": '[report.schedules.daily]\ncron = "0 8 * * *"\nrecipients = ["a@b"]\n',
}
COMMANDS = [
    ["cdr", "calls", "--today"],
    ["cdr", "stats", "--today"],
    ["cdr", "report"],
    ["notify", "status"],
    ["notify", "worker", "--until-idle"],
    ["serve", "--no-worker"],
    ["config", "show"],
]


@pytest.mark.parametrize("typo", sorted(TYPOS))
@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_refuses_a_misspelt_setting(
    typo: str, command: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from pbxgate.cli.main import main

    cfg = tmp_path / "config.toml"
    cfg.write_text(TYPOS[typo], encoding="utf-8")
    assert main(["--config", str(cfg), *command]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("error: unknown s"), line


def test_a_secret_another_area_needs_is_not_read_by_the_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The check reads names only: `cdr calls` works while VK's token variable is unset."""
    from pbxgate.cli.main import main

    cfg = tmp_path / "config.toml"
    cfg.write_text(
        '[notify.vk]\nenabled = true\ntoken_env = "PBXGATE_TEST_UNSET_TOKEN"\nrecipients = ["1"]\n',
        encoding="utf-8",
    )
    assert main(["--config", str(cfg), "cdr", "generate", "--days", "1"]) == 0
    assert main(["--config", str(cfg), "cdr", "calls", "--today"]) == 0


def test_config_set_is_safe_to_run_again(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The README's SMTP step, run twice, used to append a second [report.smtp] and break
    every command; `config set` leaves the file as after one run, comments kept."""
    cfg = tmp_path / "config.toml"
    cfg.write_text('# mine\n[cdr]\ntimezone = "Europe/Moscow"  # the PBX\n', encoding="utf-8")
    for _ in range(2):
        assert main(["--config", str(cfg), "config", "set", "report.smtp.port", "8025"]) == 0
    assert main(["--config", str(cfg), "config", "set", "cdr.timezone", "Asia/Omsk"]) == 0
    assert main(["--config", str(cfg), "config", "set", "notify.vk.recipients", '["1", "2"]']) == 0
    text = cfg.read_text(encoding="utf-8")
    assert text.count("[report.smtp]") == 1 and "# mine" in text
    settings = Settings.load(cfg)
    assert settings.raw["report"]["smtp"]["port"] == 8025
    assert settings.raw["cdr"]["timezone"] == "Asia/Omsk"
    assert settings.raw["notify"]["vk"]["recipients"] == ["1", "2"]
    assert 'timezone = "Asia/Omsk"  # the PBX\n' in text  # the changed line keeps its comment
    assert main(["--config", str(cfg), "cdr", "stats", "--today"]) in (0, 3)  # the file reads


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("report.smtpp.port", "1", "unknown setting report.smtpp"),
        ("cdrr.timezone", "x", "unknown section [cdrr]"),
        ("report.smtp.password", "hunter2", "would put a secret on the command line"),
        ("port", "1", "is not SECTION[.TABLE].KEY"),
    ],
)
def test_config_set_refuses_what_the_file_cannot_take(
    name: str, value: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tmp_path / "config.toml"
    cfg.write_text("[cdr]\n", encoding="utf-8")
    assert main(["--config", str(cfg), "config", "set", name, value]) == 2
    assert message in capsys.readouterr().err
    assert cfg.read_text(encoding="utf-8") == "[cdr]\n"  # nothing written


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("cdr.timezone", "Mars/Base"),
        ("cdr.timezone", "Europe"),  # a folder of the zone database: was "Is a directory"
        ("cdr.sources.pbx.timezone", "Europe/Mosow"),
        ("report.schedules.daily.timezone", "UTC+3"),
    ],
)
def test_config_set_refuses_an_unknown_time_zone(
    name: str,
    value: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """It was written, and `config show` took it; the first command to read a window then
    failed. Now `config set` writes nothing, and `config show` says what is wrong."""
    cfg = tmp_path / "config.toml"
    text = (
        '[cdr]\ntimezone = "Europe/Moscow"\n[cdr.sources.pbx]\nurl = "sqlite:////tmp/x.db"\n'
        '[report.schedules.daily]\ncron = "0 8 * * *"\nto = ["a@example.org"]\n'
    )
    cfg.write_text(text, encoding="utf-8")
    # the file is checked as it will be read: a variable set now does not hide its value
    monkeypatch.setenv("PBXGATE_CDR_TIMEZONE", "UTC")
    assert main(["--config", str(cfg), "config", "set", name, value]) == 2
    monkeypatch.delenv("PBXGATE_CDR_TIMEZONE")
    err = capsys.readouterr().err
    assert f"timezone: unknown time zone '{value}'" in err and "nothing was written" in err
    assert cfg.read_text(encoding="utf-8") == text
    table = name.rsplit(".", 1)[0]
    if table == "cdr":
        bad = text.replace('"Europe/Moscow"', f'"{value}"')
    else:
        bad = text.replace(f"[{table}]\n", f'[{table}]\ntimezone = "{value}"\n')
    cfg.write_text(bad, encoding="utf-8")
    assert main(["--config", str(cfg), "config", "show"]) == 2
    assert f"unknown time zone '{value}'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[cdr]\nsources = "x"\n', "cdr.sources must be a table"),
        ('[notify]\nvk = "x"\n', "notify.vk must be a table"),  # used to be ignored silently
        ("[report]\nschedules = 5\n", "report.schedules must be a table"),
        # an entry of a table of tables: was a traceback from the environment overlay
        ('[cdr.sources]\npbx = "x"\n', "cdr.sources.pbx must be a table"),
        ("[ami.managers]\nbranch = 5\n", "ami.managers.branch must be a table"),
    ],
)
def test_a_value_where_a_table_belongs_is_one_line(
    text: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Found by the fuzzing suite (tests/fuzz): `sources = "x"` was an internal error."""
    cfg = tmp_path / "config.toml"
    cfg.write_text(text, encoding="utf-8")
    assert main(["--config", str(cfg), "config", "show"]) == 2
    assert capsys.readouterr().err.strip() == f"error: {message}"


def test_environment_overrides_still_apply_over_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = tmp_path / "config.toml"
    cfg.write_text('[cdr]\ntimezone = "Europe/Moscow"\n', encoding="utf-8")
    monkeypatch.setenv("PBXGATE_CDR_TIMEZONE", "Asia/Omsk")
    assert Settings.load(cfg).get(CdrSettings).timezone == "Asia/Omsk"


def test_config_set_leaves_multiline_strings_alone_and_reads_values_as_the_section_does(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Found in review: a template line "[{{ caller_name }}]" was taken for a table header and
    the value written into the template; 0660 was written as a (bad) number."""
    cfg = tmp_path / "config.toml"
    template = '"""\n[{{ caller_name }}]\noutbox_mode = 1\n"""'
    cfg.write_text(f'[notify]\nincoming_template = {template}\noutbox_mode = "0600"\n')
    os.chmod(cfg, 0o640)
    assert main(["--config", str(cfg), "config", "set", "notify.outbox_mode", "0660"]) == 0
    raw = Settings.load(cfg).raw["notify"]
    assert raw["outbox_mode"] == "0660"
    assert raw["incoming_template"] == "[{{ caller_name }}]\noutbox_mode = 1\n"
    assert stat.S_IMODE(cfg.stat().st_mode) == 0o640  # the file's mode is kept
    assert main(["--config", str(cfg), "config", "set", "notify.outbox_mode", "0644"]) == 2
    assert "nothing was written" in capsys.readouterr().err
    assert Settings.load(cfg).raw["notify"]["outbox_mode"] == "0660"


def test_a_secret_loses_its_line_ends_and_one_with_a_control_character_is_refused() -> None:
    """An EnvironmentFile written on Windows leaves a carriage return after the token: it is
    dropped. A control character inside cannot go in an HTTP header, and the error that quoted
    the header would show the token: refused in one line that does not show it."""
    from pbxgate.notify.settings import NotifySettings

    raw = {"notify": {"vk": {"enabled": True, "token_env": "VK_TOKEN", "recipients": ["1"]}}}
    settings = Settings(raw, environ={"VK_TOKEN": "vk1.a.secret-token\r\n"})
    assert settings.get(NotifySettings).vk.token.reveal() == "vk1.a.secret-token"  # type: ignore[union-attr]
    settings = Settings(raw, environ={"VK_TOKEN": "vk1.a.secret\ttoken"})
    with pytest.raises(ConfigError, match=r"\$VK_TOKEN holds a control character") as caught:
        settings.get(NotifySettings)
    assert "secret" not in str(caught.value)


def test_config_set_keeps_the_comment_after_a_value_that_holds_a_hash(tmp_path: Path) -> None:
    from pbxgate.configedit import set_value

    cfg = tmp_path / "config.toml"
    cfg.write_text('[notify.webhook]\nsecret_file = "/etc/a#b"   # rotated monthly\n')
    new = set_value(cfg, "notify.webhook.secret_file", "/etc/c#d")
    assert new == '[notify.webhook]\nsecret_file = "/etc/c#d"   # rotated monthly\n'
    cfg.write_text('[cdr]\ninternal_pattern = "^#"\n')  # no comment: none made up
    assert set_value(cfg, "cdr.internal_pattern", "^1") == '[cdr]\ninternal_pattern = "^1"\n'


def test_a_wrong_time_zone_never_stops_a_call_s_notification(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The zone is for times shown and windows read: the event of a call is queued whatever
    [cdr] timezone says (the worker that shows its time says what is wrong)."""
    cfg = tmp_path / "config.toml"
    cfg.write_text(
        f'[cdr]\ntimezone = "Mars/Base"\n[notify]\noutbox = "{tmp_path / "o.sqlite3"}"\n',
        encoding="utf-8",
    )
    assert main(["--config", str(cfg), "notify", "send-test-event"]) == 0
    assert capsys.readouterr().out.startswith("queued incoming:")
    assert main(["--config", str(cfg), "cdr", "stats", "--today"]) == 2
    assert "unknown time zone 'Mars/Base'" in capsys.readouterr().err


def test_utc_in_any_case_is_one_zone_everywhere() -> None:
    from pbxgate.cdr.window import zone
    from pbxgate.notify.timezone import load_zone

    for name in ("utc", "UTC", "gmt"):
        assert load_zone(name) == zone(name) == UTC
    with pytest.raises(ConfigError, match="unknown time zone 'America' in \\[cdr\\] timezone"):
        load_zone("America")
