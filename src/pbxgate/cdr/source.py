"""CDR sources: open one, learn its layout, stream its legs. Read-only, time-limited.

A source is pbxgate's embedded SQLite store (``local``), a named ``[cdr.sources.NAME]``, a
SQLAlchemy URL, or a path to an SQLite file such as cdr_sqlite3_custom's ``master.db``. pbxgate
never writes to a source other than its own store: sessions are opened read-only where the
database supports it (PostgreSQL ``default_transaction_read_only``, MySQL ``TRANSACTION READ
ONLY``, SQLite ``mode=ro``), so a read-only MySQL user is enough.

Every statement has a time limit (``[cdr] query_timeout``): MariaDB ``max_statement_time``,
MySQL ``MAX_EXECUTION_TIME``, PostgreSQL ``statement_timeout``, SQLite a progress handler.
Driver exceptions are translated here, once, into :class:`SourceError` messages that name host,
port, user and the server's reason, and never the password.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import logging
import re
import time
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.pool import NullPool
from sqlalchemy.sql.compiler import Compiled

from pbxgate.cdr.schema import Layout, detect_layout
from pbxgate.cdr.settings import LOCAL_SOURCE, CdrSettings, SourceSettings
from pbxgate.cdr.window import Zones, zone
from pbxgate.config import Secret
from pbxgate.errors import ConfigError, QueryTimeout, SourceError
from pbxgate.optional import EXTRAS

log = logging.getLogger(__name__)

_TIMEOUT_MARKERS = (
    "max_statement_time",
    "maximum statement execution time",
    "statement timeout",
    "canceling statement",
    "interrupted",
)


_TABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}(\.[A-Za-z_][A-Za-z0-9_]{0,63})?")


@dataclass
class SourceSpec:
    """Where to read from, resolved from a name, a URL or a path."""

    name: str
    url: URL
    password: Secret | None
    table: str
    timezone: str
    usegmtime: bool = False
    writable: bool = False

    def __post_init__(self) -> None:
        # The name goes into SQL text in a few places (SQLite typeof probe, doctor's CREATE
        # INDEX advice): only plain identifiers, optionally schema-qualified, are taken.
        if not _TABLE_NAME.fullmatch(self.table):
            raise ConfigError(
                f"CDR table name {self.table[:60]!r} is not a plain name",
                hint="letters, digits and _, optionally schema.table",
            )

    @property
    def label(self) -> str:
        return self.url.render_as_string(hide_password=True)


def resolve_source(settings: CdrSettings, name: str | None = None) -> SourceSpec:
    """Turn ``--source`` (or the default) into a :class:`SourceSpec`."""
    chosen = name or settings.default_source
    if chosen == LOCAL_SOURCE:
        path = settings.store_path()
        if not path.is_file():
            raise SourceError(
                f"the local CDR store {path} does not exist yet",
                hint="fill it with `pbxgate cdr import Master.csv` or `pbxgate cdr generate`",
            )
        return SourceSpec(
            LOCAL_SOURCE, make_url(f"sqlite:///{path}"), None, "cdr", settings.timezone, False, True
        )
    if chosen in settings.sources:
        src: SourceSettings = settings.sources[chosen]
        return _spec_from(chosen, src.url, src.password, src, settings)
    if "://" in chosen:
        if has_password(chosen):
            raise ConfigError(
                "a password in --source would show in `ps` and shell history",
                hint="name a [cdr.sources.NAME] with password_file or password_env instead",
            )
        return _spec_from(chosen, chosen, None, None, settings)
    if Path(chosen).expanduser().is_file():
        url = f"sqlite:///{Path(chosen).expanduser().resolve()}"
        return _spec_from(chosen, url, None, None, settings)
    if "/" in chosen or chosen.endswith((".db", ".sqlite", ".sqlite3")):  # a path, not a name
        there = Path(chosen).expanduser().exists()
        raise SourceError(
            f"{chosen} is not a file" if there else f"the SQLite file {chosen} does not exist",
            hint="--source takes a [cdr.sources] name, a URL or the path of an SQLite file",
        )
    known = ", ".join([LOCAL_SOURCE, *sorted(settings.sources)])
    raise ConfigError(
        f"unknown CDR source {chosen!r} (configured: {known})",
        hint=f"define [cdr.sources.{chosen}] with its url in the settings file",
    )


def has_password(url: str) -> bool:
    try:
        return make_url(url).password is not None
    except ArgumentError:
        return False


def _spec_from(
    name: str,
    url: str,
    password: Secret | None,
    src: SourceSettings | None,
    settings: CdrSettings,
) -> SourceSpec:
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise SourceError(f"source {name!r} has an invalid URL: {exc}") from exc
    if parsed.password and password is None:
        password = Secret(str(parsed.password))
    parsed = _with_driver(parsed._replace(password=None))  # set(password=None) keeps it
    tz = (src.timezone if src else "") or settings.timezone
    return SourceSpec(
        name, parsed, password, src.table if src else "cdr", tz, bool(src and src.usegmtime)
    )


def _with_driver(url: URL) -> URL:
    """``mysql://`` and ``mariadb://`` without a driver: mysqlclient when it is installed (its
    C row parser reads a month of a large table about three times faster), else PyMySQL,
    which installs anywhere. An explicit ``mysql+pymysql://`` is kept as written."""
    if url.drivername not in ("mysql", "mariadb"):
        return url
    driver = "mysqldb" if importlib.util.find_spec("MySQLdb") else "pymysql"
    return url.set(drivername=f"{url.drivername}+{driver}")


class Source:
    """An open CDR source: a SQLAlchemy engine, the table's layout and its time zones."""

    def __init__(self, spec: SourceSpec, settings: CdrSettings) -> None:
        self.spec = spec
        self.query_timeout = settings.query_timeout
        display = zone(settings.timezone)
        stored = zone("UTC") if spec.usegmtime else zone(spec.timezone)
        self._zones = Zones(source=stored, display=display)
        self.engine = _create_engine(spec, self.query_timeout)
        self._layout: Layout | None = None
        self._compiled: dict[Hashable, Compiled] = {}
        self._memo: dict[Hashable, Any] = {}

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @property
    def zones(self) -> Zones:
        """Where the table's times are kept and where they are shown; known once the layout
        is (a table of Unix seconds keeps UTC, whatever the settings say)."""
        _ = self.layout
        return self._zones

    @property
    def layout(self) -> Layout:
        if self._layout is None:
            self._layout = self._detect()
        return self._layout

    def _detect(self) -> Layout:
        with self.errors("read the table layout"):
            insp = inspect(self.engine)
            if not insp.has_table(self.spec.table):
                raise SourceError(
                    f"{self.where()} has no table {self.spec.table!r}",
                    hint="set the source's table; for the local store run `pbxgate cdr generate`",
                )
            cols = {
                # a zone-aware timestamp says so (str() of SQLAlchemy's type drops it)
                c["name"]: str(c["type"]) + (" WITH TIME ZONE" if _aware(c["type"]) else "")
                for c in insp.get_columns(self.spec.table)
            }
        layout = detect_layout(self.spec.table, cols)
        if not layout.epoch_times and self.dialect == "sqlite":  # SQLite's types are loose
            layout = dataclasses.replace(layout, epoch_times=self._holds_seconds(layout))
        if layout.epoch_times:  # Unix seconds count from UTC, whatever the settings say
            self._zones = Zones(source=zone("UTC"), display=self._zones.display)
        if layout.group_column == "uniqueid":
            log.warning(
                "%s has no linkedid column: legs are grouped into calls by uniqueid", self.where()
            )
        return layout

    def _holds_seconds(self, layout: Layout) -> bool:
        """Whether the start times are stored as whole numbers (a look at one row)."""
        col = layout.time_column
        with self.errors("read the table layout"), self.engine.connect() as conn:
            kind = conn.exec_driver_sql(
                f'SELECT typeof("{col}") FROM "{layout.table}" WHERE "{col}" IS NOT NULL LIMIT 1'
            ).scalar()
        return kind == "integer"

    def indexes(self) -> list[tuple[str, tuple[str, ...]]]:
        with self.errors("read the indexes"):
            insp = inspect(self.engine)
            found = [
                (str(ix["name"]), tuple(str(c) for c in ix["column_names"] if c))
                for ix in insp.get_indexes(self.spec.table)
            ]
            pk = insp.get_pk_constraint(self.spec.table).get("constrained_columns") or []
            uniques = [
                (str(u["name"]), tuple(u["column_names"]))
                for u in insp.get_unique_constraints(self.spec.table)
            ]
        return found + uniques + ([("PRIMARY", tuple(pk))] if pk else [])

    def where(self) -> str:
        url = self.spec.url
        if url.get_backend_name() == "sqlite":
            return f"SQLite file {url.database}"
        port = f":{url.port}" if url.port else ""
        return f"{_backend_label(url)} at {url.host or 'localhost'}{port} as {url.username or '?'}"

    def stream(self, statement: Any, params: dict[str, Any] | None = None) -> Iterator[Any]:
        """Execute ``statement`` and yield its rows, translating errors.

        SQLAlchemy compiles the statement for the dialect; the rows are then read straight from
        the driver's cursor, in batches. The statement has no typed columns, so SQLAlchemy's
        result layer would add nothing but time (the article's query would take twice as long
        as the same SQL run by hand)."""
        compiled = statement if isinstance(statement, Compiled) else self.compile(statement)
        values: dict[str, Any] = dict(compiled.construct_params(params or {}) or {})
        order = getattr(compiled, "positiontup", None)
        args: Any = tuple(values[k] for k in order) if order is not None else values
        with self.errors("run the query"):
            raw = self.engine.raw_connection()
            try:
                cursor = raw.cursor()
                cursor.execute(str(compiled), args)
                while rows := cursor.fetchmany(5000):
                    yield from rows
                cursor.close()
            finally:
                raw.close()

    def compile(self, statement: Any) -> Compiled:
        return statement.compile(dialect=self.engine.dialect)  # type: ignore[no-any-return]

    def cached(self, key: Hashable, build: Callable[[], Any]) -> Compiled:
        """The statement ``build()`` makes, compiled once per ``key`` for this source."""
        if key not in self._compiled:
            self._compiled[key] = self.compile(build())
        return self._compiled[key]

    def remember(self, key: Hashable, build: Callable[[], Any]) -> Any:
        """What ``build()`` returns, made once per ``key`` for this source (row converters)."""
        if key not in self._memo:
            self._memo[key] = build()
        return self._memo[key]

    def errors(self, what: str) -> _Translate:
        return _Translate(self, what)

    def close(self) -> None:
        self.engine.dispose()


class _Translate:
    """Context manager turning driver exceptions into one-line :class:`SourceError`."""

    def __init__(self, source: Source, what: str) -> None:
        self.source = source
        self.what = what

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, exc: BaseException | None, tb: Any) -> None:
        dbapi_error = getattr(self.source.engine.dialect.loaded_dbapi, "Error", SQLAlchemyError)
        if exc is None or not isinstance(exc, SQLAlchemyError | NoSuchModuleError | dbapi_error):
            return
        reason = _reason(exc, self.source.spec.password)
        where = self.source.where()
        if any(marker in reason.lower() for marker in _TIMEOUT_MARKERS):
            raise QueryTimeout(
                f"query on {where} ran past {self.source.query_timeout:g} s and was stopped",
                hint="narrow the window, raise [cdr] query_timeout, or run `pbxgate cdr doctor`",
            ) from exc
        raise SourceError(f"cannot {self.what} on {where}: {reason}") from exc


def _reason(exc: BaseException, password: Secret | None) -> str:
    orig = getattr(exc, "orig", None) or exc
    args: tuple[Any, ...] = tuple(getattr(orig, "args", ()))
    if len(args) >= 2 and isinstance(args[0], int):  # PyMySQL: (errno, message)
        text = f"({args[0]}) {args[1]}"
    else:
        text = str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__
    if password and password.reveal():
        text = text.replace(password.reveal(), "********")
    return text


def _backend_label(url: URL) -> str:
    name = url.get_backend_name()
    return {"mysql": "MySQL/MariaDB", "mariadb": "MariaDB", "postgresql": "PostgreSQL"}.get(
        name, name
    )


def _create_engine(spec: SourceSpec, timeout: float) -> Engine:
    url = spec.url
    if spec.password is not None:
        url = url.set(password=spec.password.reveal())
    backend = url.get_backend_name()
    connect_args: dict[str, Any] = {}
    if backend == "sqlite":
        path = url.database or ""
        if not spec.writable and path and path != ":memory:":
            if not Path(path).is_file():
                raise SourceError(f"SQLite file {path} does not exist")
            url = url.set(database=f"file:{path}?mode=ro", query={"uri": "true"})
    elif backend == "postgresql":
        connect_args["connect_timeout"] = max(1, int(min(timeout, 10)))
        options = f"-c statement_timeout={int(timeout * 1000)}"
        if not spec.writable:
            options += " -c default_transaction_read_only=on"
        connect_args["options"] = options
    elif backend in ("mysql", "mariadb"):
        connect_args["connect_timeout"] = max(1, int(min(timeout, 10)))
    try:
        # SQLite: a connection per use; servers: one kept open (a report runs several queries).
        # Read-only sources run each SELECT in autocommit: no BEGIN/ROLLBACK round trips, and no
        # long-lived InnoDB read view that would hide calls written since the first query.
        pool: dict[str, Any] = (
            {"poolclass": NullPool}
            if backend == "sqlite"
            else {"pool_size": 1, "max_overflow": 2}
            | (
                {}
                if spec.writable
                else {"isolation_level": "AUTOCOMMIT", "skip_autocommit_rollback": True}
            )
        )
        engine = create_engine(url, connect_args=connect_args, **pool)
    except ImportError as exc:  # the URL's driver is an optional package
        missing = (exc.name or "").split(".")[0]
        extra = EXTRAS.get(missing, "all")
        raise SourceError(
            f"cannot use {spec.label}: its driver {missing or exc} is not installed",
            hint=f"pip install 'pbxgate[{extra}]'",
        ) from exc
    except (ArgumentError, NoSuchModuleError) as exc:
        raise SourceError(f"cannot use {spec.label}: {exc}") from exc
    event.listen(engine, "connect", _session_setup(backend, timeout, spec.writable))
    return engine


def _session_setup(backend: str, timeout: float, writable: bool) -> Any:
    def on_connect(dbapi_conn: Any, _record: Any) -> None:
        if backend == "sqlite":
            _sqlite_deadline(dbapi_conn, timeout)
            return
        if backend not in ("mysql", "mariadb"):
            return
        cur = dbapi_conn.cursor()
        try:
            cur.execute("SELECT VERSION()")
            version = str(cur.fetchone()[0])
            if "mariadb" in version.lower():
                cur.execute(f"SET SESSION max_statement_time = {float(timeout):.3f}")
            else:
                cur.execute(f"SET SESSION MAX_EXECUTION_TIME = {int(timeout * 1000)}")
            if not writable:
                cur.execute("SET SESSION TRANSACTION READ ONLY")
        finally:
            cur.close()

    return on_connect


def _sqlite_deadline(dbapi_conn: Any, timeout: float) -> None:
    """Interrupt any statement that runs longer than ``timeout`` (checked every 10k VM steps)."""
    state = {"since": time.monotonic()}

    def check() -> int:
        return 1 if time.monotonic() - state["since"] > timeout else 0

    dbapi_conn.set_progress_handler(check, 10_000)

    def reset(*_args: Any) -> None:
        state["since"] = time.monotonic()

    dbapi_conn.set_trace_callback(reset)


def open_source(settings: CdrSettings, name: str | None = None) -> Source:
    return Source(resolve_source(settings, name), settings)


__all__ = ["Source", "SourceSpec", "has_password", "open_source", "resolve_source"]


def _aware(column_type: object) -> bool:
    """A column of zone-aware times (PostgreSQL's ``timestamp with time zone``)."""
    return getattr(column_type, "timezone", False) is True
