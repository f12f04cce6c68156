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
    # A login lasts this long from the moment it was made, however busy the user is since;
    # then the user signs in again.
    session_hours: int = 12
    # The session cookie's Secure flag (sent over HTTPS only): "auto" sets it unless the
    # console listens on localhost with no trusted_proxies (a browser on this machine, plain
    # HTTP); a named proxy means a TLS proxy in front. true or false decide.
    secure_cookies: str = "auto"
    # A header a reverse proxy sets to the signed-in user's name (single sign-on), e.g.
    # "X-Remote-User"; empty = off. Only believed from trusted_proxies.
    proxy_user_header: str = ""
    # Addresses of reverse proxies whose X-Forwarded-For and proxy_user_header are believed;
    # empty = none (a proxy in front, even on 127.0.0.1, must be named here).
    trusted_proxies: list[str] = field(default_factory=list)
    # This many failed logins from one address within login_window_seconds block that address
    # until the window since the first of them has passed; ten times as many for one name, from
    # all addresses together, block that name.
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

    def __post_init__(self) -> None:
        word = str(self.secure_cookies).strip().lower()
        word = {"yes": "true", "on": "true", "1": "true"}.get(word, word)
        word = {"no": "false", "off": "false", "0": "false"}.get(word, word)
        if word not in ("auto", "true", "false"):
            raise ValueError(f"secure_cookies must be auto, true or false, not {word!r}")
        self.secure_cookies = word
        if self.session_hours < 1:
            raise ValueError("session_hours must be 1 or more")

    def secure_cookie(self, listen: str) -> bool:
        """Whether the session cookie is ``Secure`` when the console listens on ``listen``."""
        if self.secure_cookies != "auto":
            return self.secure_cookies == "true"
        host = listen.rpartition(":")[0].strip("[]")
        local = host in ("127.0.0.1", "localhost", "::1")
        return not local or bool(self.trusted_proxies)

    @property
    def database_path(self) -> Path:
        return self.database or data_dir() / "web.sqlite3"


__all__ = ["WebSettings"]
