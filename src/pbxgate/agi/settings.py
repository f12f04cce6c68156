"""The ``[agi]`` settings section: where FastAGI listens and how much it accepts.

Example::

    [agi]
    listen_host = "127.0.0.1"     # FastAGI has no authentication: loopback or a firewall
    listen_port = 4573            # res_agi.c default FastAGI port
    idle_timeout = 10.0           # seconds a peer may stay silent (or send half a header)
    max_sessions = 10000          # open sessions per FastAGI process
    processes = 1                 # pbxgate serve: FastAGI processes (0: in the service's own)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from pbxgate.agi.protocol import (
    DEFAULT_FALLBACK_ENCODING,
    DEFAULT_MAX_HEADER_BYTES,
    DEFAULT_MAX_LINE_BYTES,
    MAX_COMMAND_BYTES,
    AgiSession,
)
from pbxgate.config import section

# FastAGI processes beyond the cores only take turns on them.
MAX_PROCESSES = 64


@section("agi")
@dataclass
class AgiSettings:
    listen_host: str = "127.0.0.1"
    # res_agi.c: "agi://host[:port]", default port 4573.
    listen_port: int = 4573
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES
    max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES
    # AGI_BUF_LEN: 2048 in Asterisk 20-22, 8192 from 23.0.0 (commit 5f433e2442).
    max_command_bytes: int = MAX_COMMAND_BYTES
    # Values that are not UTF-8 are read in this encoding ("" = UTF-8 with U+FFFD).
    fallback_encoding: str = DEFAULT_FALLBACK_ENCODING
    # A peer silent this long (or still inside the environment block) is dropped.
    idle_timeout: float = 10.0
    # Connections beyond this are closed at once (Asterisk then sets AGISTATUS=SUCCESS
    # without an event; the refusal is logged).
    max_sessions: int = 10000
    # FastAGI: seconds the call may wait for the outbox commit (a stuck disk, a locked file);
    # past it the session ends with PBXGATE_EVENT=failed while the commit continues.
    commit_timeout: float = 2.0
    # Seconds `pbxgate serve` waits for open sessions on SIGTERM before cutting them.
    drain_timeout: float = 5.0
    # Channel variable the AGI sets to queued/skipped/failed ("" = set nothing).
    result_variable: str = "PBXGATE_EVENT"
    # `pbxgate serve` runs on uvloop when it is installed (about a third less CPU per session);
    # false keeps the standard asyncio loop.
    uvloop: bool = True
    # `pbxgate serve`: FastAGI in this many processes of its own, which share nothing with the
    # web console, the reports and the manager's follower, and accept on one socket (up to one
    # a core for a PBX with hundreds of calls a second); 0 serves it in the service's process.
    processes: int = 1

    def __post_init__(self) -> None:
        if not self.listen_host.strip():
            # asyncio would listen on every interface; FastAGI has no authentication
            raise ValueError(
                "listen_host is empty (that would listen on every interface); "
                'give an address, e.g. "127.0.0.1", or "0.0.0.0" to mean every one'
            )
        if not 0 < self.listen_port < 65536:
            raise ValueError(f"listen_port {self.listen_port} is not a TCP port")
        for name in ("max_line_bytes", "max_header_bytes", "max_command_bytes", "max_sessions"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")
        if not 0 <= self.processes <= MAX_PROCESSES:
            raise ValueError(f"processes must be 0 to {MAX_PROCESSES}, not {self.processes}")
        for name in ("idle_timeout", "commit_timeout"):
            if not 0 < getattr(self, name) < math.inf:  # NaN too: it would end no wait
                raise ValueError(f"{name} must be a positive number of seconds")
        if not 0 <= self.drain_timeout < math.inf:
            raise ValueError("drain_timeout must be a number of seconds, 0 or more")
        if self.fallback_encoding:
            import codecs  # noqa: PLC0415 - only to validate the name

            try:
                codecs.lookup(self.fallback_encoding)
            except LookupError:
                raise ValueError(f"unknown fallback_encoding {self.fallback_encoding!r}") from None

    def new_session(self) -> AgiSession:
        """A protocol session with this section's caps."""
        return AgiSession(
            max_line_bytes=self.max_line_bytes,
            max_header_bytes=self.max_header_bytes,
            max_command_bytes=self.max_command_bytes,
            fallback_encoding=self.fallback_encoding,
        )


__all__ = ["AgiSettings"]
