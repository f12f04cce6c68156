"""API tokens in the web database and through ``pbxgate web token ...``: made once, kept only
as a hash, bounded by a role, listed without the secret, revoked at once, audited."""

from __future__ import annotations

import hashlib
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pbxgate.cli.main import main
from pbxgate.errors import InputError
from pbxgate.web import users as users_module
from pbxgate.web.users import TOKEN_PREFIX, Role, UserStore

FAST = {"time_cost": 1, "memory_cost": 8, "parallelism": 1}


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(autouse=True)
def fast_argon2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(users_module, "HASHER_OPTIONS", FAST)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(tmp_path: Path, clock: Clock) -> UserStore:
    made = UserStore(tmp_path / "web.sqlite3", clock=clock)
    made.add("anna", "admin-pass-123", Role.ADMIN)
    made.add("vera", "viewer-pass-1", Role.VIEWER)
    return made


def test_a_token_is_random_shown_once_and_kept_as_a_hash(store: UserStore) -> None:
    made, secret = store.add_token("anna", Role.LISTENER, " grafana ")
    again, other = store.add_token("anna")
    assert secret.startswith(TOKEN_PREFIX) and len(secret) == len(TOKEN_PREFIX) + 43
    assert other != secret and again.id != made.id
    assert (made.user, made.role, made.label, made.last_used) == ("anna", Role.LISTENER,
                                                                   "grafana", None)  # fmt: skip
    assert again.role is Role.VIEWER  # the least, unless asked for more
    raw = store.path.read_bytes()
    assert secret.encode() not in raw and secret[len(TOKEN_PREFIX) :].encode() not in raw
    assert hashlib.sha256(secret.encode()).hexdigest().encode() in raw
    assert store.tokens() == [made, again] and store.tokens("vera") == []
    user = store.token_user(secret)
    assert user is not None and user.name == "anna" and user.role is Role.LISTENER


def test_a_token_does_at_most_the_lesser_role(store: UserStore) -> None:
    with pytest.raises(InputError, match="cannot do more than its user"):
        store.add_token("vera", Role.ADMIN)
    with pytest.raises(InputError, match="no user 'nobody'"):
        store.add_token("nobody")
    with pytest.raises(InputError, match="printable"):
        store.add_token("vera", label="a\nb")
    _, secret = store.add_token("anna", Role.ADMIN)
    store.set_role("anna", Role.LISTENER)
    user = store.token_user(secret)
    assert user is not None and user.role is Role.LISTENER


def test_revoked_and_unknown_tokens_stand_for_nobody(store: UserStore) -> None:
    made, secret = store.add_token("vera")
    assert store.remove_token(made.id) == made
    assert store.token_user(secret) is None and store.tokens() == []
    with pytest.raises(InputError, match=f"no API token #{made.id}"):
        store.remove_token(made.id)
    _, secret = store.add_token("vera")
    store.remove("vera")
    store.add("vera", "viewer-pass-2", Role.VIEWER)  # the same name again: a new person
    assert store.token_user(secret) is None and store.tokens() == []
    for wrong in ("", TOKEN_PREFIX, "x" + secret[1:], secret + "=" * 200):
        assert store.token_user(wrong) is None


def test_last_use_is_noted_once_a_minute(store: UserStore, clock: Clock) -> None:
    _, secret = store.add_token("vera")
    clock.now += timedelta(seconds=90)
    store.token_user(secret)
    first = clock.now
    clock.now += timedelta(seconds=20)  # within the same minute (09:01:30 to 09:01:50)
    store.token_user(secret)
    assert store.tokens()[0].last_used == first
    clock.now += timedelta(minutes=5)
    store.token_user(secret)
    assert store.tokens()[0].last_used == clock.now


# -- the command line ------------------------------------------------------------------------


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["web", "token", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_the_token_commands(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, isolated_home: Path
) -> None:
    database = isolated_home / "data" / "pbxgate" / "web.sqlite3"
    with UserStore(database) as users:
        users.add("grafana", "grafana-pass-1", Role.LISTENER)
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    code, out, err = cli(capsys, "add", "grafana", "--label", "dashboards")
    secret = out.strip()
    assert code == 0 and secret.startswith(TOKEN_PREFIX) and out.count("\n") == 1
    assert "token #1 for grafana as viewer: shown only now" in err
    code, out, err = cli(capsys, "add", "grafana", "--role", "admin")
    assert code != 0 and "cannot do more than its user" in err and "Traceback" not in err
    code, out, _ = cli(capsys, "list")
    assert code == 0 and out.startswith("#1   grafana") and "dashboards" in out
    assert "never used" in out and secret not in out
    with UserStore(database) as users:
        assert users.token_user(secret) is not None
    code, out, _ = cli(capsys, "list", "--json")
    row = json.loads(out)
    assert row["user"] == "grafana" and row["role"] == "viewer" and row["last_used"]
    assert secret not in out and "hash" not in out
    assert cli(capsys, "remove", "1")[:2] == (0, "removed token #1 of grafana\n")
    code, _, err = cli(capsys, "remove", "1")
    assert code != 0 and "no API token #1" in err
    code, out, err = cli(capsys, "list")
    assert (code, out) == (0, "") and "no API tokens" in err
    with UserStore(database) as users:
        assert users.token_user(secret) is None
        log = [(e.action, e.detail) for e in users.audit_log(10)]
    assert ("token-add", "#1 for grafana as viewer (dashboards)") in log
    assert ("token-remove", "#1 of grafana") in log
    assert not any(secret in detail for _, detail in log)
