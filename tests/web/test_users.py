"""pbxgate.web.users: users, roles, password checks, the audit log and the login limiter."""

from __future__ import annotations

import sqlite3
import stat
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from pbxgate.errors import InputError
from pbxgate.web import users as users_module
from pbxgate.web.users import NEEDS, LoginLimiter, Role, User, UserStore

FAST = {"time_cost": 1, "memory_cost": 8, "parallelism": 1}  # argon2's smallest: tests only
GOOD = "correct horse battery"


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(tmp_path: Path, clock: Clock) -> Iterator[UserStore]:
    s = UserStore(tmp_path / "web" / "web.sqlite3", hasher=PasswordHasher(**FAST), clock=clock)
    yield s
    s.close()


def test_add_and_verify(store: UserStore, clock: Clock) -> None:
    added = store.add("anna", GOOD, Role.LISTENER)
    assert added == User("anna", Role.LISTENER, clock.now, clock.now, added.generation)
    assert store.verify("anna", GOOD) == added
    assert store.users() == [added]
    assert store.get("anna") == added
    assert store.get("boris") is None


def test_wrong_password_and_unknown_user(store: UserStore) -> None:
    store.add("anna", GOOD, Role.VIEWER)
    assert store.verify("anna", GOOD + "!") is None
    assert store.verify("boris", GOOD) is None
    assert store.verify("not a name!", GOOD) is None
    assert store.verify("", "") is None


class CountingHasher(PasswordHasher):
    def __init__(self) -> None:
        super().__init__(**FAST)
        self.verified: list[str] = []

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:
        self.verified.append(str(hash))
        return super().verify(hash, password)


def test_unknown_user_spends_a_verification(tmp_path: Path) -> None:
    """An unknown name costs an argon2 verification too, so timing does not tell names."""
    hasher = CountingHasher()
    with UserStore(tmp_path / "web.sqlite3", hasher=hasher) as store:
        store.add("anna", GOOD, Role.VIEWER)
        assert store.verify("boris", GOOD) is None
        assert store.verify("bad name!", GOOD) is None
        assert store.verify("anna", GOOD) is not None
    dummy, again, real = hasher.verified
    assert dummy == again and dummy.startswith("$argon2id$") and real != dummy


def test_users_never_carry_the_hash(store: UserStore) -> None:
    store.add("anna", GOOD, Role.VIEWER)
    (user,) = store.users()
    assert "argon2" not in repr(user)
    assert not hasattr(user, "password_hash")


def test_existing_name_refused(store: UserStore) -> None:
    store.add("anna", GOOD, Role.VIEWER)
    with pytest.raises(InputError, match="user 'anna' exists"):
        store.add("anna", GOOD, Role.ADMIN)
    assert store.get("anna") is not None and store.get("anna").role is Role.VIEWER  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("name", "password", "message"),
    [
        ("anna", "short", "too short"),
        ("anna", "x" * 1025, "too long"),
        ("administrator", "Administrator", "must not be the user name"),
    ],
)
def test_weak_passwords_refused(store: UserStore, name: str, password: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        store.add(name, password, Role.VIEWER)
    store.add(name, GOOD, Role.VIEWER)
    with pytest.raises(InputError, match=message):
        store.set_password(name, password)


@pytest.mark.parametrize("name", ["anna", "a", "anna.smirnova", "a_b-c", "anna@example.org",
                                  "A1", "x" * 64])  # fmt: skip
def test_good_names(store: UserStore, name: str) -> None:
    store.add(name, GOOD, Role.VIEWER)
    assert store.verify(name, GOOD) is not None


@pytest.mark.parametrize("name", ["", "x" * 65, "anna smirnova", "anna\n", "анна", "a/b",
                                  "a:b", "<script>"])  # fmt: skip
def test_bad_names(store: UserStore, name: str) -> None:
    with pytest.raises(InputError, match="is not allowed"):
        store.add(name, GOOD, Role.VIEWER)


def test_set_password_role_remove(store: UserStore, clock: Clock) -> None:
    store.add("anna", GOOD, Role.VIEWER)
    clock.now += timedelta(hours=1)
    store.set_password("anna", "another long one")
    assert store.verify("anna", GOOD) is None
    user = store.verify("anna", "another long one")
    assert user is not None and user.changed == clock.now and user.created < clock.now
    store.set_role("anna", Role.ADMIN)
    assert store.get("anna").role is Role.ADMIN  # type: ignore[union-attr]
    store.remove("anna")
    assert store.users() == []
    assert store.verify("anna", "another long one") is None


def test_sessions_end_with_a_new_password_a_new_role_and_on_demand(store: UserStore) -> None:
    first = store.add("anna", GOOD, Role.VIEWER).generation
    seen = {first}
    for change in (
        lambda: store.set_password("anna", "another long one"),
        lambda: store.set_role("anna", Role.ADMIN),
        lambda: store.end_sessions("anna"),
    ):
        change()
        now = store.get("anna").generation  # type: ignore[union-attr]
        assert now not in seen  # every session made before carries an old one
        seen.add(now)
    before = store.get("anna").generation  # type: ignore[union-attr]
    assert store.verify("anna", "another long one").generation == before  # type: ignore[union-attr]
    with pytest.raises(InputError, match="no user 'boris'"):
        store.end_sessions("boris")


def test_a_user_added_again_does_not_inherit_sessions(store: UserStore) -> None:
    old = store.add("anna", GOOD, Role.ADMIN).generation
    store.remove("anna")
    assert store.add("anna", GOOD, Role.VIEWER).generation != old


def test_a_rehash_ends_no_session(tmp_path: Path) -> None:
    path = tmp_path / "web.sqlite3"
    with UserStore(path, hasher=PasswordHasher(**FAST)) as old:
        generation = old.add("anna", GOOD, Role.VIEWER).generation
    with UserStore(path, hasher=PasswordHasher(time_cost=2, memory_cost=16, parallelism=1)) as new:
        assert new.verify("anna", GOOD).generation == generation  # type: ignore[union-attr]
        assert new.get("anna").generation == generation  # type: ignore[union-attr]


def test_a_database_from_before_generations_gets_the_column(tmp_path: Path) -> None:
    path = tmp_path / "web.sqlite3"
    with sqlite3.connect(path) as conn:  # web_users as the first release made it
        conn.execute(
            "CREATE TABLE web_users (name VARCHAR(64) NOT NULL PRIMARY KEY, password_hash TEXT"
            " NOT NULL, role VARCHAR(16) NOT NULL, created VARCHAR(32) NOT NULL,"
            " changed VARCHAR(32) NOT NULL)"
        )
        stamp = "2026-01-01T00:00:00+00:00"
        hashed = PasswordHasher(**FAST).hash(GOOD)
        conn.execute("INSERT INTO web_users VALUES ('anna', ?, 'admin', ?, ?)",
                     (hashed, stamp, stamp))  # fmt: skip
    conn.close()
    with UserStore(path, hasher=PasswordHasher(**FAST)) as store:
        assert store.get("anna").generation == 0  # type: ignore[union-attr]
        assert store.verify("anna", GOOD) is not None
        store.end_sessions("anna")
        assert store.get("anna").generation != 0  # type: ignore[union-attr]
        store.add("boris", GOOD, Role.VIEWER)
    with UserStore(path, hasher=PasswordHasher(**FAST)) as again:  # opened twice: no error
        assert [u.name for u in again.users()] == ["anna", "boris"]


@pytest.mark.parametrize("action", ["set_password", "set_role", "remove", "end_sessions"])
def test_unknown_user_refused(store: UserStore, action: str) -> None:
    args = {"set_password": (GOOD,), "set_role": (Role.ADMIN,), "remove": (),
            "end_sessions": ()}[action]  # fmt: skip
    with pytest.raises(InputError, match="no user 'boris'") as info:
        getattr(store, action)("boris", *args)
    assert "pbxgate web user list" in str(info.value)


def test_rehash_when_parameters_grew(tmp_path: Path) -> None:
    path = tmp_path / "web.sqlite3"
    with UserStore(path, hasher=PasswordHasher(**FAST)) as old:
        old.add("anna", GOOD, Role.VIEWER)
        before = _hash(old, "anna")
    stronger = PasswordHasher(time_cost=2, memory_cost=16, parallelism=1)
    with UserStore(path, hasher=stronger) as new:
        user = new.verify("anna", GOOD)
        after = _hash(new, "anna")
        assert user is not None and user.changed == user.created  # not a password change
        assert after != before and "m=16,t=2" in after
        assert not stronger.check_needs_rehash(after)
        assert new.verify("anna", GOOD) is not None
        assert _hash(new, "anna") == after  # once only


def test_no_rehash_on_a_wrong_password(tmp_path: Path) -> None:
    path = tmp_path / "web.sqlite3"
    with UserStore(path, hasher=PasswordHasher(**FAST)) as old:
        old.add("anna", GOOD, Role.VIEWER)
        before = _hash(old, "anna")
    with UserStore(path, hasher=PasswordHasher(time_cost=2, memory_cost=16, parallelism=1)) as new:
        assert new.verify("anna", "not the password") is None
        assert _hash(new, "anna") == before


def _hash(store: UserStore, name: str) -> str:
    with store.engine.connect() as conn:
        row = conn.execute(
            users_module.select(users_module.users_table.c.password_hash).where(
                users_module.users_table.c.name == name
            )
        ).one()
    return str(row[0])


def test_default_hasher_takes_module_options(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(users_module, "HASHER_OPTIONS", FAST)
    with UserStore(tmp_path / "web.sqlite3") as s:
        s.add("anna", GOOD, Role.VIEWER)
        assert "m=8,t=1,p=1" in _hash(s, "anna")


def test_production_defaults_are_argon2s() -> None:
    assert users_module.HASHER_OPTIONS == {}
    hasher = users_module.password_hasher()
    assert hasher.time_cost == PasswordHasher().time_cost
    assert hasher.memory_cost == PasswordHasher().memory_cost


def test_file_is_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "new" / "web.sqlite3"
    with UserStore(path, hasher=PasswordHasher(**FAST)) as s:
        s.add("anna", GOOD, Role.VIEWER)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_wider_file_is_narrowed(tmp_path: Path) -> None:
    path = tmp_path / "web.sqlite3"
    path.touch()
    path.chmod(0o644)
    UserStore(path, hasher=PasswordHasher(**FAST)).close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_audit_log(store: UserStore, clock: Clock) -> None:
    store.audit("anna", "login", address="192.0.2.10")
    clock.now += timedelta(minutes=5)
    store.audit("anna", "recording", "1733389278.42", "192.0.2.10")
    store.audit("boris", "login-failed")
    log = store.audit_log()
    assert [(e.who, e.action, e.detail, e.address) for e in log] == [
        ("boris", "login-failed", "", ""),
        ("anna", "recording", "1733389278.42", "192.0.2.10"),
        ("anna", "login", "", "192.0.2.10"),
    ]
    assert log[0].at == clock.now and log[0].at.tzinfo is not None
    assert log[0].id > log[1].id > log[2].id
    assert [e.action for e in store.audit_log(limit=1)] == ["login-failed"]


def test_audit_time_is_stored_as_utc_text(store: UserStore) -> None:
    store.audit("anna", "login")
    with store.engine.connect() as conn:
        (at,) = conn.execute(users_module.select(users_module.audit_table.c.at)).one()
    assert at == "2026-12-05T09:00:00+00:00"


def test_roles_are_ordered() -> None:
    assert Role.VIEWER < Role.LISTENER < Role.ADMIN
    assert Role.ADMIN > Role.VIEWER and Role.ADMIN >= Role.ADMIN
    assert Role.ADMIN.allows(Role.LISTENER) and Role.LISTENER.allows(Role.LISTENER)
    assert not Role.VIEWER.allows(Role.LISTENER)
    assert not Role.LISTENER.allows(Role.ADMIN)
    assert [area for area, role in NEEDS.items() if Role.VIEWER.allows(role)] == [
        "calls",
        "reports",
    ]
    assert Role.LISTENER.allows(NEEDS["recordings"])
    assert not Role.LISTENER.allows(NEEDS["users"])
    assert Role.parse(" Admin ") is Role.ADMIN
    with pytest.raises(InputError, match=r"unknown role 'root'.*viewer, listener, admin"):
        Role.parse("root")


def test_limiter_blocks_after_attempts_and_expires() -> None:
    limiter = LoginLimiter(attempts=3, window=300)
    now = 1000.0
    for _ in range(2):
        limiter.failed("user:anna", now)
        assert limiter.blocked("user:anna", now) == 0
        now += 10
    limiter.failed("user:anna", now)  # the third within the window, 20 s after the first
    assert limiter.blocked("user:anna", now) == 280
    assert limiter.blocked("ip:192.0.2.10", now) == 0  # keys are counted apart
    now += 279
    assert limiter.blocked("user:anna", now) == 1
    now += 1  # the window since the first failure has passed
    assert limiter.blocked("user:anna", now) == 0
    limiter.failed("user:anna", now)  # a new count starts
    assert limiter.blocked("user:anna", now) == 0


def test_limiter_failures_outside_the_window_do_not_add_up() -> None:
    limiter = LoginLimiter(attempts=3, window=60)
    for now in (0.0, 50.0, 100.0, 150.0, 200.0):  # never three within a minute
        limiter.failed("k", now)
        assert limiter.blocked("k", now) == 0


def test_limiter_success_clears() -> None:
    limiter = LoginLimiter(attempts=2, window=60)
    limiter.failed("k", 0)
    limiter.succeeded("k")
    limiter.failed("k", 1)
    assert limiter.blocked("k", 1) == 0
    limiter.succeeded("never seen")


def test_limiter_memory_is_bounded() -> None:
    limiter = LoginLimiter(attempts=1, window=60, max_keys=100)
    limiter.failed("attacker", 0)
    for i in range(500):
        limiter.failed(f"guess{i}", 1)
        if i % 50 == 0:
            limiter.failed("attacker", 1)  # the one still failing stays
    assert len(limiter) == 100
    assert limiter.blocked("attacker", 2) == 58
    assert limiter.blocked("guess0", 2) == 0  # the least recent went first
    assert limiter.blocked("guess499", 2) == 59


def test_limiter_default_bound() -> None:
    limiter = LoginLimiter()
    for i in range(10_005):
        limiter.failed(str(i), 0)
    assert len(limiter) == 10_000


def test_limiter_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="positive"):
        LoginLimiter(attempts=0)
