"""The ``[web]`` settings section: where the console listens, its users' database, logins."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pbxgate.config import data_dir, section


@section("web")
@dataclass
class WebSettings:
    # pbxgate serve serves the console too (on listen), its Live page fed in process; else
    # run `pbxgate web` on its own.
    enabled: bool = False
    # host:port the console listens on; put a TLS reverse proxy in front of anything else.
    listen: str = "127.0.0.1:8080"
    # pbxgate's own web database (users, audit log); empty = <XDG data home>/pbxgate/web.sqlite3
    database: Path | None = None
    # A login lasts this long, then the user signs in again.
    session_hours: int = 12
    # A header a reverse proxy sets to the signed-in user's name (single sign-on), e.g.
    # "X-Remote-User"; empty = off. Only believed from trusted_proxies.
    proxy_user_header: str = ""
    # Addresses whose X-Forwarded-For and proxy_user_header are believed.
    trusted_proxies: list[str] = field(default_factory=lambda: ["127.0.0.1"])
    # This many failed logins within login_window_seconds block the name and the address
    # until the window since the first of them has passed.
    login_attempts: int = 5
    login_window_seconds: int = 300
    # Where the Reports page's "Mail it now" sends a report when no schedule is chosen; empty =
    # only to a [report.schedules.*] schedule's recipients.
    report_to: list[str] = field(default_factory=list)
    # A GLBP simulator topology (TOML, as `pbxgate glbp sim` reads it) that the GLBP page plays
    # on a clock of its own, starting over at its end; empty = none.
    glbp_topology: Path | None = None
    # Simulated seconds per real second of that play (10: a 600 s timeline in a minute).
    glbp_speed: float = 1.0
    # The control socket of a running `pbxgate glbp run` daemon the GLBP page asks for
    # `show glbp`; empty = none. It is owner-only: the console must run as the daemon's user.
    glbp_control: Path | None = None

    @property
    def database_path(self) -> Path:
        return self.database or data_dir() / "web.sqlite3"


__all__ = ["WebSettings"]
