"""The web console's users, their roles, the audit log and the login limiter.

Users live in pbxgate's own SQLite file (``[web] database``), created ``0600``: it holds
password hashes and, in the audit log, who looked at which calls from where.

    web_users(name PK, password_hash, role, created, changed, generation)
    web_audit(id PK, at, who, action, detail, address)        at: UTC, ISO 8601 text
    web_tokens(id PK, user_name, role, label, token_hash UNIQUE, created, last_used)

Passwords are argon2id hashes (argon2-cffi's defaults, RFC 9106's second recommended
profile). :meth:`UserStore.verify` spends one argon2 verification whether or not the name
exists, against a dummy hash for an unknown name, so that response time does not tell which
names exist; a hash made with weaker parameters than the current ones is redone on the next
good login (``check_needs_rehash``).

API tokens let a script (a CRM, Grafana) read what a user may read, without a password: a
token is ``pbxgate_`` and 32 random bytes (URL-safe base64), shown once when made; only its
SHA-256 is kept (a random 256-bit secret needs no slow hash: nothing can be guessed from it).
A token carries a role of its own, at most its user's, and may do at most the lesser of the two
at the time of use; removing the token, or its user, revokes it at once.

A user's ``generation`` is a random number each browser session of theirs carries from its
login; a logout, a new password or a new role replaces it (:meth:`UserStore.end_sessions`),
which ends every session the user has, wherever it was opened. A user removed and added again
starts with a new one. A database made before the column existed gets it, as 0, when opened.

Roles are ordered, each allowing what the one below it does:

    viewer    calls and reports
    listener  + recordings
    admin     + notifications and users

:class:`LoginLimiter` does no I/O: the caller passes ``now`` (monotonic seconds) and keeps
one limiter for client addresses and one, with a ceiling ten times higher, for user names (see
``app.py``).
"""

from __future__ import annotations

import enum
import hashlib
import importlib
import re
import secrets
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    Column,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    delete,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from pbxgate.errors import ConfigError, InputError, SourceError
from pbxgate.private import private_file

if TYPE_CHECKING:
    from argon2 import PasswordHasher

MIN_PASSWORD = 10
MAX_PASSWORD = 1024  # argon2 takes any length; a form field need not
NAME_RULE = re.compile(r"[A-Za-z0-9._@-]{1,64}")
MAX_LIMITER_KEYS = 10_000
# Keyword arguments for argon2's PasswordHasher when a store is given none: empty = argon2's
# own defaults. Tests set a low time and memory cost here; production never does.
HASHER_OPTIONS: dict[str, int] = {}
_DUMMY_PASSWORD = "pbxgate: no such user"  # noqa: S105 - hashed to spend a verification
# Tells a secret scanner, and a reader, what the string is.
TOKEN_PREFIX = "pbxgate_"  # noqa: S105 - a prefix, not a secret
TOKEN_BYTES = 32
MAX_TOKEN = 128  # a longer Authorization value is not one of ours: no look-up
MAX_LABEL = 64
GENERATION_BITS = 62  # a session generation: random, fits SQLite's signed 64-bit INTEGER


class Role(enum.Enum):
    VIEWER = "viewer"
    LISTENER = "listener"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return _RANKS[self]

    def allows(self, needed: Role) -> bool:
        """Whether this role may do what ``needed`` may (an admin may do what a viewer may)."""
        return self.rank >= needed.rank

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Role):
            return NotImplemented
        return self.rank < other.rank

    def __le__(self, other: object) -> bool:
        if not isinstance(other, Role):
            return NotImplemented
        return self.rank <= other.rank

    @classmethod
    def parse(cls, text: str) -> Role:
        try:
            return cls(text.strip().lower())
        except ValueError:
            known = ", ".join(r.value for r in cls)
            raise InputError(f"unknown role {text!r}", hint=f"use one of: {known}") from None


_RANKS = {Role.VIEWER: 0, Role.LISTENER: 1, Role.ADMIN: 2}
# The least role each part of the console needs.
NEEDS = {
    "calls": Role.VIEWER,
    "reports": Role.VIEWER,
    "recordings": Role.LISTENER,
    "notifications": Role.ADMIN,
    "users": Role.ADMIN,
}


@dataclass(frozen=True)
class User:
    name: str
    role: Role
    created: datetime
    changed: datetime
    # What the user's browser sessions carry from their login (see end_sessions).
    generation: int = 0


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: datetime
    who: str
    action: str
    detail: str
    address: str


@dataclass(frozen=True)
class ApiToken:
    """An API token as listed: never its secret, which is shown once when it is made."""

    id: int
    user: str
    role: Role
    label: str
    created: datetime
    last_used: datetime | None


metadata = MetaData()
users_table = Table(
    "web_users",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("password_hash", Text, nullable=False),
    Column("role", String(16), nullable=False),
    Column("created", String(32), nullable=False),
    Column("changed", String(32), nullable=False),
    Column("generation", Integer, nullable=False, default=0, server_default="0"),
)
# Columns added to web_users after its first release: added, with these definitions, to a
# database made before them.
ADDED_USER_COLUMNS = {"generation": "INTEGER NOT NULL DEFAULT 0"}
audit_table = Table(
    "web_audit",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", String(32), nullable=False, index=True),
    Column("who", String(64), nullable=False),
    Column("action", String(64), nullable=False),
    Column("detail", Text, nullable=False, default=""),
    Column("address", String(64), nullable=False, default=""),
)


tokens_table = Table(
    "web_tokens",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_name", String(64), nullable=False, index=True),
    Column("role", String(16), nullable=False),
    Column("label", String(MAX_LABEL), nullable=False, default=""),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("created", String(32), nullable=False),
    Column("last_used", String(32), nullable=True),
)


def check_name(name: str) -> str:
    if not NAME_RULE.fullmatch(name):
        raise InputError(
            f"user name {name!r} is not allowed",
            hint="use 1-64 letters, digits and . _ - @",
        )
    return name


def check_label(label: str) -> str:
    """A token's label: what it is for (``grafana``, ``crm``), printable, 64 characters."""
    label = label.strip()
    if len(label) > MAX_LABEL or not label.isprintable():
        raise InputError(f"the label must be printable and at most {MAX_LABEL} characters")
    return label


def token_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def check_password(name: str, password: str) -> None:
    """Refuse a password that is too short, too long or the user's own name."""
    if len(password) < MIN_PASSWORD:
        raise InputError(f"the password is too short: use at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise InputError(f"the password is too long: use at most {MAX_PASSWORD} characters")
    if password.strip().casefold() == name.casefold():
        raise InputError("the password must not be the user name")


def password_hasher(**options: int) -> PasswordHasher:
    """argon2's PasswordHasher with ``options`` (default: :data:`HASHER_OPTIONS`)."""
    try:
        argon2 = importlib.import_module("argon2")
    except ImportError:
        raise ConfigError(
            "the web console needs argon2-cffi, which is not installed",
            hint="pip install 'pbxgate[web]'",
        ) from None
    hasher: PasswordHasher = argon2.PasswordHasher(**(options or HASHER_OPTIONS))
    return hasher


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds")


class UserStore:
    """The web console's users and audit log in one SQLite file (created if missing)."""

    def __init__(
        self,
        path: Path,
        *,
        hasher: PasswordHasher | None = None,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self.path = path
        self._hasher = hasher or password_hasher()
        self._clock = clock
        self._dummy: str | None = None
        try:
            private_file(path, companions=True)  # password hashes, who did what from where
        except OSError as exc:
            raise SourceError(f"cannot create the web database {path}: {exc.strerror}") from exc
        self.engine: Engine = create_engine(f"sqlite:///{path}")
        with self._translated("open"):
            metadata.create_all(self.engine)
            self._add_columns()

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> UserStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # users

    def add(self, name: str, password: str, role: Role) -> User:
        check_name(name)
        check_password(name, password)
        stamp = _iso(self._clock())
        row = {"name": name, "password_hash": self._hasher.hash(password),
               "role": role.value, "created": stamp, "changed": stamp,
               "generation": _generation()}  # fmt: skip
        try:
            with self._translated("add a user"), self.engine.begin() as conn:
                conn.execute(insert(users_table).values(**row))
        except IntegrityError:
            raise user_exists(name) from None
        return _user(row)

    def set_password(self, name: str, password: str) -> None:
        """A new password; every session of the user ends."""
        check_password(name, password)
        self._change(name, password_hash=self._hasher.hash(password), generation=_generation())

    def set_role(self, name: str, role: Role) -> None:
        """A new role; every session of the user ends."""
        self._change(name, role=role.value, generation=_generation())

    def end_sessions(self, name: str) -> None:
        """End every browser session of user ``name`` (a logout ends them all): the user's
        generation is replaced, and a session made before no longer matches it."""
        query = (
            update(users_table).where(users_table.c.name == name).values(generation=_generation())
        )
        with self._translated("end a user's sessions"), self.engine.begin() as conn:
            done = conn.execute(query)
        if not done.rowcount:
            raise no_such_user(name)

    def remove(self, name: str) -> None:
        with self._translated("remove a user"), self.engine.begin() as conn:
            done = conn.execute(delete(users_table).where(users_table.c.name == name))
            conn.execute(delete(tokens_table).where(tokens_table.c.user_name == name))
        if not done.rowcount:
            raise no_such_user(name)

    def get(self, name: str) -> User | None:
        """The user named ``name``, or None."""
        with self._translated("read users"), self.engine.connect() as conn:
            row = conn.execute(select(users_table).where(users_table.c.name == name)).first()
        return _user(row._mapping) if row else None

    def users(self) -> list[User]:
        with self._translated("read users"), self.engine.connect() as conn:
            rows = conn.execute(select(users_table).order_by(users_table.c.name)).all()
        return [_user(r._mapping) for r in rows]

    def verify(self, name: str, password: str) -> User | None:
        """The user when ``password`` is theirs, else None (unknown name included)."""
        argon2_errors = importlib.import_module("argon2.exceptions")
        dummy = self._dummy_hash()  # made once, before the look-up, whoever asks first
        row = None
        if NAME_RULE.fullmatch(name):
            with self._translated("read users"), self.engine.connect() as conn:
                query = select(users_table).where(users_table.c.name == name)
                row = conn.execute(query).first()
        stored = row.password_hash if row else dummy
        try:
            self._hasher.verify(stored, password)
        except (argon2_errors.VerificationError, argon2_errors.InvalidHashError):
            return None
        if row is None:  # pragma: no cover - the dummy password is never a user's
            return None
        if self._hasher.check_needs_rehash(stored):
            self._rehash(name, stored, password)
        return _user(row._mapping)

    # API tokens

    def add_token(
        self, name: str, role: Role = Role.VIEWER, label: str = ""
    ) -> tuple[ApiToken, str]:
        """A new token for user ``name`` that may do at most ``role``; the secret is returned
        here once and kept only as its SHA-256."""
        user = self.get(name)
        if user is None:
            raise no_such_user(name)
        if not user.role.allows(role):
            raise InputError(
                f"{name} is a {user.role.value}: a token cannot do more than its user",
                hint=f"use --role {user.role.value} or lower",
            )
        label = check_label(label)
        secret = TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)
        row = {"user_name": name, "role": role.value, "label": label,
               "token_hash": token_hash(secret), "created": _iso(self._clock())}  # fmt: skip
        with self._translated("add an API token"), self.engine.begin() as conn:
            made = conn.execute(insert(tokens_table).values(**row))
        key = made.inserted_primary_key
        assert key is not None
        return _token({**row, "id": key[0], "last_used": None}), secret

    def tokens(self, name: str | None = None) -> list[ApiToken]:
        """The API tokens (of user ``name``, or everyone's), oldest first, without secrets."""
        query = select(tokens_table).order_by(tokens_table.c.id)
        if name is not None:
            query = query.where(tokens_table.c.user_name == name)
        with self._translated("read API tokens"), self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [_token(r._mapping) for r in rows]

    def remove_token(self, token_id: int) -> ApiToken:
        """Revoke token ``token_id`` (at once: every request looks it up); the token removed."""
        query = select(tokens_table).where(tokens_table.c.id == token_id)
        with self._translated("remove an API token"), self.engine.begin() as conn:
            row = conn.execute(query).first()
            if row is not None:
                conn.execute(delete(tokens_table).where(tokens_table.c.id == token_id))
        if row is None:
            raise InputError(f"no API token #{token_id}", hint="pbxgate web token list shows them")
        return _token(row._mapping)

    def token_user(self, secret: str) -> User | None:
        """The user ``secret`` stands for, with the lesser of the user's and the token's role;
        None for an unknown or revoked token. Notes when the token was last used (a write at
        most once a minute per token)."""
        if not secret.startswith(TOKEN_PREFIX) or len(secret) > MAX_TOKEN:
            return None
        query = select(tokens_table).where(tokens_table.c.token_hash == token_hash(secret))
        with self._translated("read API tokens"), self.engine.connect() as conn:
            row = conn.execute(query).first()
        user = self.get(row.user_name) if row else None
        if row is None or user is None:
            return None
        stamp = _iso(self._clock())
        if (row.last_used or "")[:16] != stamp[:16]:
            change = update(tokens_table).where(tokens_table.c.id == row.id)
            with self._translated("note an API token's use"), self.engine.begin() as conn:
                conn.execute(change.values(last_used=stamp))
        return replace(user, role=min(user.role, Role(row.role)))

    # audit log

    def audit(self, who: str, action: str, detail: str = "", address: str = "") -> None:
        row = {"at": _iso(self._clock()), "who": who, "action": action,
               "detail": detail, "address": address}  # fmt: skip
        with self._translated("write the audit log"), self.engine.begin() as conn:
            conn.execute(insert(audit_table).values(**row))

    def audit_log(self, limit: int = 100) -> list[AuditEntry]:
        """The latest ``limit`` entries, newest first."""
        query = select(audit_table).order_by(audit_table.c.id.desc()).limit(limit)
        with self._translated("read the audit log"), self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [
            AuditEntry(r.id, datetime.fromisoformat(r.at), r.who, r.action, r.detail, r.address)
            for r in rows
        ]

    # helpers

    def _change(self, name: str, **values: str | int) -> None:
        values["changed"] = _iso(self._clock())
        query = update(users_table).where(users_table.c.name == name).values(**values)
        with self._translated("change a user"), self.engine.begin() as conn:
            done = conn.execute(query)
        if not done.rowcount:
            raise no_such_user(name)

    def _rehash(self, name: str, old: str, password: str) -> None:
        # Only if nobody changed the password meanwhile; `changed` stays: the password did not.
        query = (
            update(users_table)
            .where(users_table.c.name == name, users_table.c.password_hash == old)
            .values(password_hash=self._hasher.hash(password))
        )
        with self._translated("update a password hash"), self.engine.begin() as conn:
            conn.execute(query)

    def _add_columns(self) -> None:
        """Add to an older web_users the columns it lacks (another process may be quicker)."""
        with self.engine.begin() as conn:
            have = {str(r[1]) for r in conn.exec_driver_sql("PRAGMA table_info(web_users)")}
        for column, definition in ADDED_USER_COLUMNS.items():
            if column in have:
                continue
            try:
                with self.engine.begin() as conn:
                    conn.exec_driver_sql(f"ALTER TABLE web_users ADD COLUMN {column} {definition}")
            except SQLAlchemyError as exc:
                if "duplicate column" not in str(exc):
                    raise

    def _dummy_hash(self) -> str:
        if self._dummy is None:
            self._dummy = self._hasher.hash(_DUMMY_PASSWORD)
        return self._dummy

    def _translated(self, doing: str) -> AbstractContextManager[None]:
        return _translated(self.path, doing)


@contextmanager
def _translated(path: Path, doing: str) -> Iterator[None]:
    """SQLAlchemy's errors as one line naming the file (IntegrityError is left to callers)."""
    try:
        yield
    except IntegrityError:
        raise
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        raise SourceError(
            f"cannot {doing} in the web database {path}: {reason}", hint="check [web] database"
        ) from exc


def _user(row: Any) -> User:
    return User(row["name"], Role(row["role"]), datetime.fromisoformat(row["created"]),
                datetime.fromisoformat(row["changed"]), row["generation"])  # fmt: skip


def _generation() -> int:
    return secrets.randbits(GENERATION_BITS)


def _token(row: Any) -> ApiToken:
    used = row["last_used"]
    return ApiToken(row["id"], row["user_name"], Role(row["role"]), row["label"],
                    datetime.fromisoformat(row["created"]),
                    datetime.fromisoformat(used) if used else None)  # fmt: skip


def no_such_user(name: str) -> InputError:
    return InputError(f"no user {name!r}", hint="pbxgate web user list shows them")


def user_exists(name: str) -> InputError:
    return InputError(
        f"user {name!r} exists", hint=f"pbxgate web user passwd {name} sets a new password"
    )


class LoginLimiter:
    """Failed logins per key (a user name, a client address); no I/O, ``now`` is passed.

    ``attempts`` failures within ``window`` seconds block a key until ``window`` seconds
    after the first of them; a failure after that starts a new count. At most ``max_keys``
    keys are kept: the one that failed least recently goes first.
    """

    def __init__(
        self, attempts: int = 5, window: float = 300.0, max_keys: int = MAX_LIMITER_KEYS
    ) -> None:
        if attempts < 1 or window <= 0 or max_keys < 1:
            raise ValueError("attempts, window and max_keys must be positive")
        self.attempts = attempts
        self.window = window
        self.max_keys = max_keys
        self._failures: OrderedDict[str, tuple[float, int]] = OrderedDict()  # first, count

    def blocked(self, key: str, now: float) -> float:
        """Seconds until ``key`` may try again; 0 when it may now."""
        entry = self._failures.get(key)
        if entry is None:
            return 0.0
        first, count = entry
        left = first + self.window - now
        if left <= 0:
            del self._failures[key]
            return 0.0
        return left if count >= self.attempts else 0.0

    def failed(self, key: str, now: float) -> None:
        first, count = self._failures.pop(key, (now, 0))
        if now - first >= self.window:
            first, count = now, 0
        self._failures[key] = (first, count + 1)  # last: the most recent failure
        while len(self._failures) > self.max_keys:
            self._failures.popitem(last=False)

    def succeeded(self, key: str) -> None:
        self._failures.pop(key, None)

    def __len__(self) -> int:
        return len(self._failures)


__all__ = [
    "HASHER_OPTIONS",
    "NEEDS",
    "TOKEN_PREFIX",
    "ApiToken",
    "AuditEntry",
    "LoginLimiter",
    "Role",
    "User",
    "UserStore",
    "check_label",
    "check_name",
    "check_password",
    "no_such_user",
    "password_hasher",
    "token_hash",
    "user_exists",
]
