"""``pbxgate web user ...`` and ``pbxgate web audit`` through the CLI's own entry point."""

from __future__ import annotations

import io
import json
import stat
from pathlib import Path

import pytest

from pbxgate.cli.main import main
from pbxgate.web import users as users_module
from pbxgate.web.settings import WebSettings
from pbxgate.web.users import Role, UserStore

PASSWORD = "correct horse battery"
FAST = {"time_cost": 1, "memory_cost": 8, "parallelism": 1}


@pytest.fixture(autouse=True)
def fast_argon2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(users_module, "HASHER_OPTIONS", FAST)


def run(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    *args: str,
    stdin: str = "",
) -> tuple[int, str, str]:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    code = main(list(args))
    out, err = capsys.readouterr()
    assert PASSWORD not in out + err
    return code, out, err


def database(home: Path) -> Path:
    return home / "data" / "pbxgate" / "web.sqlite3"


def store(home: Path) -> UserStore:
    return UserStore(database(home))


def test_add_from_stdin_then_list(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, isolated_home: Path
) -> None:
    code, out, err = run(capsys, monkeypatch, "web", "user", "add", "anna", "--role",
                         "listener", stdin=PASSWORD + "\n")  # fmt: skip
    assert (code, out, err) == (0, "added anna as listener\n", "")
    assert stat.S_IMODE(database(isolated_home).stat().st_mode) == 0o600
    with store(isolated_home) as s:
        user = s.verify("anna", PASSWORD)
    assert user is not None and user.role is Role.LISTENER
    code, out, _ = run(capsys, monkeypatch, "web", "user", "list")
    assert code == 0 and out.startswith("anna             listener  added 20")
    code, out, _ = run(capsys, monkeypatch, "web", "user", "list", "--json")
    assert json.loads(out)["role"] == "listener" and "hash" not in out


def test_default_role_is_viewer_and_crlf_is_not_the_password(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, isolated_home: Path
) -> None:
    assert run(capsys, monkeypatch, "web", "user", "add", "anna",
               stdin=PASSWORD + "\r\n")[0] == 0  # fmt: skip
    with store(isolated_home) as s:
        user = s.verify("anna", PASSWORD)
    assert user is not None and user.role is Role.VIEWER


def test_password_asked_twice_on_a_terminal(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, isolated_home: Path
) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    answers = iter([PASSWORD, "a typo in it!", PASSWORD, PASSWORD])
    prompts: list[str] = []

    def hidden(prompt: str) -> str:
        prompts.append(prompt)
        return next(answers)

    monkeypatch.setattr("click.termui.hidden_prompt_func", hidden)
    monkeypatch.setattr("sys.stdin", Terminal())
    assert main(["web", "user", "add", "anna"]) == 0
    out, err = capsys.readouterr()
    assert PASSWORD not in out + err
    assert "do not match" in err and out == "added anna as viewer\n"
    assert len(prompts) == 4
    with store(isolated_home) as s:
        assert s.verify("anna", PASSWORD) is not None


def test_passwd_role_remove_and_audit(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, isolated_home: Path
) -> None:
    run(capsys, monkeypatch, "web", "user", "add", "anna", stdin=PASSWORD + "\n")
    new = "a different passphrase"
    code, out, _ = run(capsys, monkeypatch, "web", "user", "passwd", "anna", stdin=new + "\n")
    assert (code, out) == (0, "password of anna changed\n")
    code, out, _ = run(capsys, monkeypatch, "web", "user", "role", "anna", "admin")
    assert (code, out) == (0, "anna is now admin\n")
    with store(isolated_home) as s:
        assert s.verify("anna", PASSWORD) is None
        user = s.verify("anna", new)
        assert user is not None and user.role is Role.ADMIN
    code, out, _ = run(capsys, monkeypatch, "web", "user", "remove", "anna")
    assert (code, out) == (0, "removed anna\n")
    code, out, _ = run(capsys, monkeypatch, "web", "audit")
    lines = out.splitlines()
    assert code == 0 and len(lines) == 4 and new not in out
    assert [line.split("  ")[2:] for line in lines] == [
        ["user-remove", "anna"],
        ["user-role", "anna to admin"],
        ["user-passwd", "anna"],
        ["user-add", "anna as viewer"],
    ]
    assert all(line.split("  ")[1].startswith("cli:") for line in lines)
    code, out, _ = run(capsys, monkeypatch, "web", "audit", "--limit", "1", "--json")
    assert json.loads(out)["action"] == "user-remove"


def test_user_logout_ends_every_session(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, isolated_home: Path
) -> None:
    run(capsys, monkeypatch, "web", "user", "add", "anna", stdin=PASSWORD + "\n")
    with store(isolated_home) as s:
        before = s.get("anna").generation  # type: ignore[union-attr]
    code, out, _ = run(capsys, monkeypatch, "web", "user", "logout", "anna")
    assert (code, out) == (0, "every session of anna has ended\n")
    with store(isolated_home) as s:
        assert s.get("anna").generation != before  # type: ignore[union-attr]
        assert s.verify("anna", PASSWORD) is not None  # the password stays
        assert [(e.action, e.detail) for e in s.audit_log(1)] == [("user-logout", "anna")]


@pytest.mark.parametrize(
    ("args", "stdin", "message", "exit_code"),
    [
        (["user", "add", "anna"], "short\n", "error: the password is too short", 2),
        (["user", "add", "anna"], "", "error: no password on standard input", 2),
        (["user", "add", "anna"], "anna\n", "too short", 2),
        (["user", "add", "administrator"], "Administrator\n", "must not be the user name", 2),
        (["user", "add", "bad name"], PASSWORD + "\n", "user name 'bad name' is not allowed", 2),
        (["user", "add", "anna", "--role", "root"], PASSWORD + "\n", "'root' is not one of", 2),
        (["user", "passwd", "boris"], PASSWORD + "\n", "error: no user 'boris'", 2),
        (["user", "role", "boris", "admin"], "", "error: no user 'boris'", 2),
        (["user", "remove", "boris"], "", "error: no user 'boris'", 2),
        (["user", "logout", "boris"], "", "error: no user 'boris'", 2),
        (["audit", "--limit", "0"], "", "0 is not in the range", 2),
    ],
)
def test_errors_are_one_line(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    stdin: str,
    message: str,
    exit_code: int,
) -> None:
    code, out, err = run(capsys, monkeypatch, "web", *args, stdin=stdin)
    assert code == exit_code and out == ""
    assert len(err.splitlines()) == 1 and err.startswith("error: ") and message in err


def test_existing_user_refused_before_the_password_is_read(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    run(capsys, monkeypatch, "web", "user", "add", "anna", stdin=PASSWORD + "\n")
    stdin = io.StringIO("another password\n")
    monkeypatch.setattr("sys.stdin", stdin)
    assert main(["web", "user", "add", "anna"]) == 2
    _, err = capsys.readouterr()
    assert err == "error: user 'anna' exists (pbxgate web user passwd anna sets a new password)\n"
    assert stdin.read() == "another password\n"  # not read


def test_empty_lists(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    assert run(capsys, monkeypatch, "web", "user", "list") == (
        0, "", "no users yet: add one with pbxgate web user add NAME --role admin\n")  # fmt: skip
    assert run(capsys, monkeypatch, "web", "audit") == (0, "", "the audit log is empty\n")


def test_database_from_settings(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = tmp_path / "elsewhere" / "console.db"
    monkeypatch.setenv("PBXGATE_WEB_DATABASE", str(path))
    run(capsys, monkeypatch, "web", "user", "add", "anna", stdin=PASSWORD + "\n")
    with UserStore(path) as s:
        assert [u.name for u in s.users()] == ["anna"]


def test_web_help_names_the_commands(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, _ = run(capsys, monkeypatch, "web", "--help")
    assert code == 0 and "`pbxgate web` serves it" in out and "user" in out and "audit" in out


def test_web_serves_on_a_listen_address_it_can_read(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    served: list[tuple[str, int]] = []
    monkeypatch.setattr("uvicorn.run", lambda app, host, port, **kw: served.append((host, port)))
    code, _, err = run(capsys, monkeypatch, "web", "--listen", "127.0.0.1:8091")
    assert code == 0 and served == [("127.0.0.1", 8091)]
    assert "pbxgate web console on http://127.0.0.1:8091/" in err
    code, _, err = run(capsys, monkeypatch, "web", "--listen", "nowhere")
    assert code == 2 and err.strip() == "error: --listen 'nowhere' is not host:port"


def test_roles_on_the_command_line_are_the_librarys() -> None:
    from pbxgate.cli.web import ROLES

    assert tuple(r.value for r in Role) == ROLES


def test_settings_section_is_known(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, isolated_home: Path
) -> None:
    code, out, _ = run(capsys, monkeypatch, "config", "show", "--json")
    web = json.loads(out)["settings"]["web"]
    assert code == 0 and web["listen"] == "127.0.0.1:8080"
    # no proxy is believed until named: a local process cannot fake X-Forwarded-For
    assert web["trusted_proxies"] == [] and web["secure_cookies"] == "auto"
    assert WebSettings().database_path == database(isolated_home)
