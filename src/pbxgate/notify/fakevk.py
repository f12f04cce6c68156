"""A small local stand-in for VK's ``messages.send``, for the walk-through, tests and benchmarks.

It behaves like VK where pbxgate depends on it: form-encoded POST, token in the Authorization
header or ``access_token``, ``v`` at least 5.81 (else error 8), ``random_id`` required (else
error 100) and deduplicated per sender the way VK does (a repeat returns the first message id
and shows nothing new), and error 6 when more than ``rate`` requests arrive within any one
second. ``messages.edit`` (``peer_id``, ``message_id``, ``message``) changes a shown message
within ``edit_window`` seconds of sending it (else error 909), and answers error 100 for a
message it does not know or that its recipient deleted (``delete``). ``GET /messages`` lists
what a VK user would see; ``GET /stats`` counts requests. Listens on 127.0.0.1 only.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs


@dataclass
class Shown:
    message_id: int
    peer_id: int
    random_id: int
    message: str
    received_at: float
    edits: int = 0


@dataclass
class FakeVkState:
    rate: float = 20.0
    delay: float = 0.0
    fail: dict[int, int] = field(default_factory=dict)  # peer_id -> VK error code to return
    shown: list[Shown] = field(default_factory=list)
    requests: int = 0
    rate_errors: int = 0
    duplicates: int = 0
    edit_window: float = 24 * 3600.0
    deleted: set[int] = field(default_factory=set)  # message ids their recipient deleted
    # Called after VK has acted on a request and before the reply is sent (tests cut it here).
    before_reply: Callable[[dict[str, str], dict[str, Any]], None] | None = None
    _seen: dict[tuple[str, int], int] = field(default_factory=dict)
    _arrivals: deque[float] = field(default_factory=deque)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def _over_rate(self, now: float) -> bool:
        """Count a request; True when it is one too many within a second (error 6)."""
        self.requests += 1
        while self._arrivals and self._arrivals[0] <= now - 1.0:
            self._arrivals.popleft()
        self._arrivals.append(now)
        if len(self._arrivals) > self.rate:
            self.rate_errors += 1
            return True
        return False

    def delete(self, message_id: int) -> None:
        """The recipient deletes a message (the caller holds ``lock``)."""
        self.deleted.add(message_id)

    def answer_edit(self, token: str, form: dict[str, str], now: float) -> dict[str, Any]:
        """VK's answer to one messages.edit (the caller holds ``lock``)."""
        if self._over_rate(now):
            return _error(6, "Too many requests per second", form)
        if not token:
            return _error(5, "User authorization failed: no access_token passed.", form)
        try:
            peer, mid = int(form.get("peer_id", "")), int(form.get("message_id", ""))
        except ValueError:
            return _error(100, "One of the parameters specified was missing or invalid", form)
        if not 1 <= mid <= len(self.shown) or mid in self.deleted:
            return _error(100, "One of the parameters specified was missing or invalid", form)
        shown = self.shown[mid - 1]
        if shown.peer_id != peer:
            return _error(100, "One of the parameters specified was missing or invalid", form)
        if now - shown.received_at > self.edit_window:
            return _error(909, "Can't edit this message, because it's too old", form)
        shown.message = form.get("message", "")
        shown.edits += 1
        return {"response": 1}

    def answer(self, token: str, form: dict[str, str], now: float) -> dict[str, Any]:
        """VK's answer to one messages.send (the caller holds ``lock``)."""
        if self._over_rate(now):
            return _error(6, "Too many requests per second", form)
        if not token:
            return _error(5, "User authorization failed: no access_token passed.", form)
        if _version(form.get("v", "")) < (5, 81):
            return _error(8, "Invalid request: versions below 5.81 are deprecated", form)
        if "random_id" not in form:
            return _error(
                100,
                "One of the parameters specified was missing or invalid: "
                "random_id is a required parameter",
                form,
            )
        try:
            peer, rid = int(form.get("peer_id", "")), int(form["random_id"])
        except ValueError:
            return _error(100, "One of the parameters specified was missing or invalid", form)
        if peer in self.fail:
            return _error(self.fail[peer], f"simulated error {self.fail[peer]}", form)
        key = (token, rid)
        if rid and key in self._seen:
            self.duplicates += 1
            return {"response": self._seen[key]}
        mid = len(self.shown) + 1
        self.shown.append(Shown(mid, peer, rid, form.get("message", ""), now))
        if rid:
            self._seen[key] = mid
        return {"response": mid}


def _version(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(p) for p in text.split("."))
    except ValueError:
        return (0,)


def _error(code: int, msg: str, form: dict[str, str]) -> dict[str, Any]:
    params = [{"key": k, "value": v} for k, v in form.items() if k != "access_token"]
    return {"error": {"error_code": code, "error_msg": msg, "request_params": params}}


class _Handler(BaseHTTPRequestHandler):
    server: FakeVkServer

    def log_message(self, format: str, *args: Any) -> None:
        return None

    def _reply(self, body: object, status: int = 200) -> None:
        data = json.dumps(body, ensure_ascii=False).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        state = self.server.state
        with state.lock:
            if self.path.startswith("/messages"):
                self._reply([asdict(s) for s in state.shown])
            elif self.path.startswith("/stats"):
                self._reply(self.server.stats())
            else:
                self._reply({"error": "not found"}, 404)

    def do_POST(self) -> None:
        editing = self.path.startswith("/method/messages.edit")
        if not (editing or self.path.startswith("/method/messages.send")):
            self._reply(_error(3, "Unknown method passed", {}))
            return
        length = int(self.headers.get("Content-Length", "0") or 0)
        raw = self.rfile.read(length).decode("utf-8", "replace")
        form = {k: v[-1] for k, v in parse_qs(raw, keep_blank_values=True).items()}
        auth = self.headers.get("Authorization", "")
        token = auth[7:] if auth.startswith("Bearer ") else form.pop("access_token", "")
        state = self.server.state
        if state.delay:
            time.sleep(state.delay)  # a slow VK, on this request's own thread
        with state.lock:
            if editing:
                body = state.answer_edit(token, form, time.monotonic())
            else:
                body = state.answer(token, form, time.monotonic())
        if state.before_reply is not None:
            state.before_reply(form, body)
        if self.server.echo is not None and "response" in body:
            self.server.echo(f"peer {form.get('peer_id')}: {form.get('message', '')}")
        self._reply(body)


class FakeVkServer(ThreadingHTTPServer):
    daemon_threads = True
    # socketserver's default listen backlog of 5 drops connections under a burst, and the
    # client's SYN retry then bunches requests together: not what VK does.
    request_queue_size = 128

    def __init__(
        self,
        port: int = 0,
        state: FakeVkState | None = None,
        echo: Callable[[str], None] | None = None,
    ) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.state = state or FakeVkState()
        self.echo = echo
        self._thread: threading.Thread | None = None

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that vanished mid-reply (a killed worker) is expected; say nothing."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def stats(self) -> dict[str, int]:
        s = self.state
        return {
            "requests": s.requests,
            "shown": len(s.shown),
            "duplicates": s.duplicates,
            "edits": sum(m.edits for m in s.shown),
            "rate_errors": s.rate_errors,
        }

    def start(self) -> FakeVkServer:
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        if self._thread is not None:
            self._thread.join()


__all__ = ["FakeVkServer", "FakeVkState", "Shown"]
