"""A privately configured Asterisk: its own tree, started and stopped by the tests.

Asterisk's own testsuite gives each test its own configuration tree and drives calls over AMI;
this module does the same for pbxgate. :func:`asterisk_prefix` builds the vendored source once
(``tests/asterisk/build.sh``, cached outside the clone); :class:`Instance` lays out a runtime tree
from the templates in ``tests/asterisk/conf/`` (``@NAME@`` placeholders), starts Asterisk in the
foreground as a child process and waits with ``core waitfullybooted``; :class:`Ami` is a small
synchronous AMI client for Originate, transfers and events.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Mapping
from pathlib import Path

HERE = Path(__file__).resolve().parent
CONF = HERE / "conf"


class AsteriskError(RuntimeError):
    pass


def asterisk_prefix() -> Path:
    """The installed Asterisk (built now if the cache does not hold it yet)."""
    done = subprocess.run(
        ["bash", str(HERE / "build.sh")], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise AsteriskError(done.stderr.strip() or "tests/asterisk/build.sh failed")
    return Path(done.stdout.strip().splitlines()[-1])


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Instance:
    """One Asterisk with the configuration of ``conf/common`` and ``conf/<role>``."""

    def __init__(self, role: str, prefix: Path, run: Path, subs: Mapping[str, str]) -> None:
        self.role = role
        self.prefix = prefix
        self.run = run
        self.subs = {"RUN": str(run), "PREFIX": str(prefix), **subs}
        self.proc: subprocess.Popen[bytes] | None = None
        self.env = dict(os.environ)

    @property
    def conf(self) -> Path:
        return self.run / "etc" / "asterisk.conf"

    @property
    def log(self) -> Path:
        return self.run / "log" / "full"

    def layout(self) -> None:
        for sub in (
            "etc",
            "lib",
            "agi-bin",
            "spool/monitor",
            "run",
            "log/cdr-csv",
            "log/cdr-custom",
        ):
            (self.run / sub).mkdir(parents=True, exist_ok=True)
        # conf/common/X.head + conf/<role>/X = X; otherwise a role's file replaces a common one.
        files: dict[str, str] = {}
        for src in sorted((CONF / "common").iterdir()):
            files[src.name.removesuffix(".head")] = src.read_text()
        for src in sorted((CONF / self.role).iterdir()):
            head = CONF / "common" / f"{src.name}.head"
            files[src.name] = (head.read_text() + "\n" if head.exists() else "") + src.read_text()
        for name, text in files.items():
            (self.run / "etc" / name).write_text(self._sub(text))
        # Data: the installed tree, plus the one prompt a DTMF attended transfer plays (the
        # build has no sound packages; without the prompt bridge_basic.c gives up the transfer).
        data = self.run / "data"
        data.mkdir(exist_ok=True)
        for item in (self.prefix / "var" / "lib" / "asterisk").iterdir():
            if item.name != "sounds" and not (data / item.name).exists():
                (data / item.name).symlink_to(item)
        sounds = data / "sounds" / "en"
        sounds.mkdir(parents=True, exist_ok=True)
        (sounds / "pbx-transfer.ulaw").write_bytes(b"\xff" * 800)  # 0.1 s of silence
        # res_odbc's DSNs are in this instance's own odbc.ini.
        self.env["ODBCINI"] = str(self.run / "etc" / "odbc.ini")

    def _sub(self, text: str) -> str:
        for key, value in self.subs.items():
            text = text.replace(f"@{key}@", value)
        return text

    def start(self, timeout: float = 60.0) -> None:
        self.layout()
        binary = self.prefix / "sbin" / "asterisk"
        with (self.run / "log" / "console").open("wb") as out:  # the child keeps its own copy
            self.proc = subprocess.Popen(
                [str(binary), "-C", str(self.conf), "-f", "-n"],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=self.env,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AsteriskError(f"{self.role}: asterisk exited with {self.proc.returncode}")
            done = self._rx("core waitfullybooted", check=False, timeout=timeout)
            if done.returncode == 0 and "fully booted" in done.stdout.lower():
                return
            time.sleep(0.1)
        raise AsteriskError(f"{self.role}: not fully booted after {timeout} s")

    def _rx(
        self, command: str, *, check: bool = True, timeout: float = 30.0
    ) -> subprocess.CompletedProcess[str]:
        binary = self.prefix / "sbin" / "asterisk"
        done = subprocess.run(
            [str(binary), "-C", str(self.conf), "-rx", command],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env=self.env,
        )
        if check and done.returncode != 0:
            raise AsteriskError(f"{self.role}: {command!r}: {done.stderr.strip()}")
        return done

    def cli(self, command: str) -> str:
        return self._rx(command).stdout

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self._rx("core stop now", check=False, timeout=30)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def remove(self) -> None:
        shutil.rmtree(self.run, ignore_errors=True)


class Ami:
    """An AMI client: actions from the caller's thread, events collected by a reader thread
    (with the ``Timestamp`` that ``timestampevents = yes`` adds)."""

    def __init__(self, port: int, username: str, secret: str) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock.settimeout(None)
        self.file = self.sock.makefile("rb")
        self.file.readline()  # "Asterisk Call Manager/..."
        self.events: list[dict[str, str]] = []
        self._replies: dict[str, dict[str, str]] = {}
        self._cond = threading.Condition()
        self._seq = 0
        self._reader = threading.Thread(target=self._read, name=f"ami-{port}", daemon=True)
        self._reader.start()
        reply = self.action("Login", Username=username, Secret=secret)
        if reply.get("Response") != "Success":
            raise AsteriskError(f"AMI login refused: {reply.get('Message')}")

    def _read(self) -> None:
        msg: dict[str, str] = {}
        for raw in self.file:
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            if line:
                key, _, value = line.partition(":")
                msg[key.strip()] = value.strip()
                continue
            if not msg:
                continue
            with self._cond:
                if "Event" in msg:
                    self.events.append(msg)
                elif "ActionID" in msg:
                    self._replies[msg["ActionID"]] = msg
                self._cond.notify_all()
            msg = {}
        with self._cond:
            self._cond.notify_all()

    def action(
        self, name: str, variables: Mapping[str, str] | None = None, **fields: str
    ) -> dict[str, str]:
        self._seq += 1
        aid = f"pbxgate-{self._seq}"
        lines = [f"Action: {name}", f"ActionID: {aid}"]
        lines += [f"{k}: {v}" for k, v in fields.items()]
        lines += [f"Variable: {k}={v}" for k, v in (variables or {}).items()]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        with self._cond:
            if not self._cond.wait_for(
                lambda: aid in self._replies or not self._reader.is_alive(), 15
            ):
                raise AsteriskError(f"AMI {name}: no reply in 15 s")
            if aid not in self._replies:
                raise AsteriskError(f"AMI {name}: connection closed")
            return self._replies.pop(aid)

    def events_between(self, lo: float, hi: float) -> list[dict[str, str]]:
        with self._cond:
            return [e for e in self.events if lo <= float(e.get("Timestamp", "0")) <= hi]

    def close(self) -> None:
        with contextlib.suppress(OSError, AsteriskError):
            self.action("Logoff")
        self.sock.close()
