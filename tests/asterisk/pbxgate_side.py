"""pbxgate beside the office's PBX: ``pbxgate serve`` (FastAGI and the delivery worker), the
``pbxgate-agi`` script Asterisk runs, and a webhook receiver that counts what was delivered.

The PBX's dialplan (``conf/pbx/extensions.conf``, ``pbxgate-notify``) runs FastAGI for the
ring group and queue DIDs and the process AGI for the direct ones, between two ``Verbose``
markers whose millisecond stamps in Asterisk's log give the time the call was held.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.asterisk.instance import AsteriskError, free_port


class Receiver:
    """A webhook endpoint on 127.0.0.1 that keeps every JSON body POSTed to it."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        lock = threading.Lock()
        bodies = self.bodies

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                size = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(size))
                with lock:
                    bodies.append(body)
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/calls"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


WEB_USER, WEB_PASSWORD = "reception", "reception-pass-1"


class PbxgateSide:
    """The configuration file, ``pbxgate serve`` and the receiver, for one office run."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.receiver = Receiver()
        self.port = free_port()
        self.config = root / "pbxgate.toml"
        self.config.write_text(
            "\n".join([
                "[notify]",
                f'outbox = "{root / "outbox.sqlite3"}"',
                "backoff_initial = 0.2",
                "[notify.webhook]",
                "enabled = true",
                f'recipients = ["{self.receiver.url}"]',
                "[agi]",
                f"listen_port = {self.port}",
            ]) + "\n",
            encoding="utf-8",
        )  # fmt: skip
        self.proc: subprocess.Popen[bytes] | None = None

    def follow_ami(self, port: int, secret: str) -> None:
        """Also queue events from the PBX's manager ([ami] enabled): for every call the AGI
        sees too, the outbox must keep one event of each kind. The live calls are streamed
        on :attr:`live_socket`."""
        with self.config.open("a", encoding="utf-8") as fh:
            fh.write(f'[ami]\nenabled = true\nport = {port}\nusername = "pbxgate"\n'
                     f'secret = "{secret}"\nlive_socket = "{self.live_socket}"\n')  # fmt: skip

    def enable_web(self) -> str:
        """Serve the web console too ([web] enabled: inside this serve, its Live page fed in
        process), with one viewer; its address."""
        from pbxgate.web.users import Role, UserStore

        database = self.root / "web.sqlite3"
        users = UserStore(database)
        users.add(WEB_USER, WEB_PASSWORD, Role.VIEWER)
        users.close()
        listen = f"127.0.0.1:{free_port()}"
        with self.config.open("a", encoding="utf-8") as fh:
            fh.write(f'[web]\nenabled = true\nlisten = "{listen}"\ndatabase = "{database}"\n')
        return f"http://{listen}"

    @property
    def live_socket(self) -> Path:
        return self.root / "live.sock"

    @property
    def agi_script(self) -> Path:
        return Path(sys.executable).parent / "pbxgate-agi"

    @property
    def env(self) -> dict[str, str]:
        return {"PBXGATE_CONFIG": str(self.config)}

    def start(self) -> None:
        with (self.root / "serve.log").open("wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "pbxgate.cli.main", "serve"],
                env={**os.environ, **self.env},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            if self.proc.poll() is not None:
                raise AsteriskError(
                    f"pbxgate serve exited: {(self.root / 'serve.log').read_text()}"
                )
            time.sleep(0.05)
        raise AsteriskError("pbxgate serve is not listening after 30 s")

    def wait_delivered(self, quiet: float = 3.0, timeout: float = 60.0) -> None:
        """Until nothing new has arrived for ``quiet`` seconds."""
        deadline = time.monotonic() + timeout
        seen, since = -1, time.monotonic()
        while time.monotonic() < deadline:
            if len(self.receiver.bodies) != seen:
                seen, since = len(self.receiver.bodies), time.monotonic()
            elif time.monotonic() - since >= quiet:
                return
            time.sleep(0.1)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.receiver.close()


@dataclass(frozen=True)
class Hold:
    """How long one AGI step held a call, from Asterisk's own log."""

    callid: str
    kind: str  # "fastagi" or "script"
    status: str  # AGISTATUS
    event: str  # PBXGATE_EVENT
    ms: float
    at: datetime | None = None  # when the step began (Asterisk's clock)


_MARK = re.compile(
    r"^\[(?P<ts>[\d\- :.]+)\] VERBOSE\[\d+\]\[(?P<callid>C-[0-9a-f]+)\] app_verbose\.c: "
    r"pbxgate-hold-(?P<edge>begin|end) (?P<rest>.*)$"
)


def holds(log: Path) -> Iterator[Hold]:
    """The begin/end marker pairs of the office's AGI steps in Asterisk's ``full`` log."""
    begun: dict[str, tuple[datetime, str]] = {}
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
        m = _MARK.match(line)
        if m is None:
            continue
        at = datetime.strptime(m["ts"], "%Y-%m-%d %H:%M:%S.%f")
        if m["edge"] == "begin":
            begun[m["callid"]] = (at, m["rest"].strip())
            continue
        start = begun.pop(m["callid"], None)
        if start is None:
            continue
        status, _, event = m["rest"].strip().partition(" ")
        ms = (at - start[0]).total_seconds() * 1000
        yield Hold(m["callid"], start[1], status, event, round(ms, 1), start[0])


__all__ = ["WEB_PASSWORD", "WEB_USER", "Hold", "PbxgateSide", "Receiver", "holds"]
