"""A shared outbox's server that accepts the connection and never answers (a wrong port, a
host behind a dead proxy) is waited for ``[notify.database] timeout``, then fails in one line:
it used to hold ``pbxgate serve``'s start, or a commit and every call waiting for it, for as
long as TCP kept trying."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from pbxgate.config import Settings
from pbxgate.errors import DeliveryError
from pbxgate.notify.outbox import Outbox
from pbxgate.notify.settings import NotifySettings


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
    "url",
    [
        "postgresql+psycopg://pbxgate@127.0.0.1:{port}/pbxgate",
        "mysql+pymysql://pbxgate@127.0.0.1:{port}/pbxgate",
    ],
    ids=["postgresql", "mariadb"],
)
def test_a_server_that_never_answers_fails_in_one_line(url: str) -> None:
    with silent_server() as port:
        started = time.monotonic()
        with pytest.raises(DeliveryError) as caught:
            Outbox.connect(url.format(port=port), password="s3cret-pw", timeout=0.5)
        took = time.monotonic() - started
    message = str(caught.value)
    scheme = url.partition(":")[0]
    assert message.startswith(f"cannot open the outbox {scheme}://pbxgate:***@127.0.0.1:{port}/")
    assert "\n" not in message
    assert "s3cret-pw" not in message
    # two attempts (the tables' creation is tried again once) of libpq's 2 s minimum, or of
    # PyMySQL's wait for the server's greeting (six times the timeout)
    assert took < 20


def test_the_timeout_is_a_setting_and_must_be_positive() -> None:
    settings = Settings({"notify": {"database": {"url": "postgresql+psycopg://x@db/x"}}})
    assert settings.get(NotifySettings).database.timeout == 10.0
    with pytest.raises(Exception, match="timeout must be positive"):
        Settings({"notify": {"database": {"timeout": 0}}}).get(NotifySettings)
