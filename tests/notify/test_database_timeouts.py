"""A shared outbox's server (PostgreSQL, MariaDB) that accepts the connection and never
answers (a wrong port, a host behind a dead proxy) is waited for ``[notify.database]
timeout``, then fails in one line: it used to hold ``pbxgate serve``'s start, or a commit and
every call waiting for it, for as long as TCP kept trying."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from pbxgate.config import Settings
from pbxgate.errors import ConfigError, DeliveryError
from pbxgate.notify.outbox import Outbox, _timeouts
from pbxgate.notify.settings import NotifySettings
from tests.conftest import require_dsn


@contextlib.contextmanager
def silent_server() -> Iterator[int]:
    """A port that accepts connections and never sends or reads a byte."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    held: list[socket.socket] = []
    done = threading.Event()

    def accept() -> None:
        while not done.is_set():
            with contextlib.suppress(OSError):
                held.append(listener.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        done.set()
        listener.close()
        for conn in held:
            conn.close()


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("postgresql+psycopg://pbxgate@127.0.0.1:{port}/pbxgate", "connection timeout expired"),
        # PyMySQL's connect timeout bounds only the TCP connect; the server's greeting is read
        # under its read timeout, which the outbox sets too
        (
            "mysql+pymysql://pbxgate@127.0.0.1:{port}/pbxgate?charset=utf8mb4",
            "(2013, 'Lost connection to MySQL server during query (timed out)')",
        ),
    ],
)
def test_a_server_that_never_answers_fails_in_one_line(url: str, why: str) -> None:
    with silent_server() as port:
        started = time.monotonic()
        with pytest.raises(DeliveryError) as caught:
            Outbox.connect(url.format(port=port), password="s3cret-pw", timeout=0.5)
        took = time.monotonic() - started
    shown = url.format(port=port).replace("pbxgate@", "pbxgate:***@")
    assert str(caught.value) == f"cannot open the outbox {shown}: {why}"
    # two attempts (the tables' creation is tried again once) of psycopg's 2 s minimum
    assert took < 15


def test_each_driver_gets_its_timeouts_in_its_own_types() -> None:
    """mysqlclient reads its timeouts as C integers (a float is a TypeError at start); PyMySQL
    takes floats, and a read and a write timeout for the server's greeting."""
    assert _timeouts("mysql", "pymysql", 0.5) == dict.fromkeys(
        ("connect_timeout", "read_timeout", "write_timeout"), 0.5
    )
    assert _timeouts("mysql", "mysqldb", 0.5) == {"connect_timeout": 1}
    assert _timeouts("mariadb", "mariadbconnector", 2.5) == {"connect_timeout": 3}
    assert _timeouts("mysql", "asyncmy", 10) == {}
    pg = _timeouts("postgresql", "psycopg", 10)
    assert (pg["connect_timeout"], pg["tcp_user_timeout"]) == (10, 10000)


def test_a_statement_may_run_longer_than_the_timeout_on_mariadb() -> None:
    """The read timeout bounds PyMySQL's start only: a statement that rightly runs long (a
    console's status of a large outbox, a lock wait) is not cut short."""
    box = Outbox.connect(require_dsn("PBXGATE_TEST_MARIADB_DSN"), timeout=0.5)
    try:
        started = time.monotonic()
        assert box._query("SELECT SLEEP(1.2)") == [(0,)]
        assert time.monotonic() - started >= 1.2
    finally:
        box.close()


def test_the_timeout_is_a_setting_within_bounds() -> None:
    settings = Settings({"notify": {"database": {"url": "postgresql+psycopg://x@db/x"}}})
    assert settings.get(NotifySettings).database.timeout == 10.0
    for bad in (0, -1, float("inf"), float("nan"), 3601):
        with pytest.raises(ConfigError) as caught:
            Settings({"notify": {"database": {"timeout": bad}}}).get(NotifySettings)
        assert str(caught.value) == (
            "invalid [notify.database] settings: "
            "timeout must be more than 0 and at most 3600 seconds"
        )
