"""The ``[cdr]`` settings section: sources, time zone, what counts as an internal number."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pbxgate.cdr.numbers_defaults import INBOUND_CONTEXTS, WITHHELD
from pbxgate.config import Secret, data_dir, section
from pbxgate.errors import ConfigError

LOCAL_SOURCE = "local"


def check_zone(name: str) -> None:
    """``name`` is empty (this host's zone) or a zone this host knows, else ValueError."""
    from pbxgate.cdr.window import zone  # noqa: PLC0415  (zoneinfo only when a name is set)

    if name:
        try:
            zone(name)
        except ConfigError as exc:
            raise ValueError(f"timezone: {exc}") from None


@dataclass
class SourceSettings:
    """One CDR source. The URL carries no password: give ``password``/``_file``/``_env``.

    Examples of ``url``:
      ``mysql+pymysql://cdr_ro@pbx.example:3306/asteriskcdrdb`` (FreePBX),
      ``postgresql+psycopg://asterisk@db/asterisk``,
      ``sqlite:////var/log/asterisk/master.db`` (cdr_sqlite3_custom).
    """

    url: str
    password: Secret | None = None
    table: str = "cdr"
    # Time zone of the stored calldate values; empty = the [cdr] timezone (the PBX's local time).
    timezone: str = ""
    # cdr.conf usegmtime=yes: calldate values are UTC.
    usegmtime: bool = False


@section("cdr")
@dataclass
class CdrSettings:
    default_source: str = LOCAL_SOURCE
    # The PBX's time zone: windows (--today, --from) are read in it. Empty = this host's zone.
    timezone: str = ""
    # The article's rule: internal numbers have at most 3 digits.
    internal_max_digits: int = 3
    # A regular expression for internal numbers; when set it replaces internal_max_digits.
    internal_pattern: str = ""
    # Callers with no number to call back show as these (compared without case).
    withheld_numbers: list[str] = field(default_factory=lambda: list(WITHHELD))
    # Where calls from outside run (shell patterns): decides a withheld caller's direction.
    inbound_contexts: list[str] = field(default_factory=lambda: list(INBOUND_CONTEXTS))
    # Regular expressions for trunk channels, e.g. "^PJSIP/(rt|mts)-"; phones' channels named
    # like an extension (PJSIP/101-...) are told apart without them.
    trunk_channels: list[str] = field(default_factory=list)
    # cdr import stops after this many rejected records in a row (the file is not a CDR
    # file); 0 = never.
    import_max_consecutive_rejects: int = 1000
    monitor_dir: Path = Path("/var/spool/asterisk/monitor")
    query_timeout: float = 30.0
    # pbxgate's embedded store; empty = <XDG data home>/pbxgate/cdr.sqlite3
    store: Path | None = None
    sources: dict[str, SourceSettings] = field(default_factory=dict)

    def check_zones(self) -> None:
        """Every zone named here is one this host knows (`config set`, `config show`); not
        checked when the section is read, so that a call's notification never waits for it
        (the commands that read times in a zone say so themselves)."""
        for name in (self.timezone, *(s.timezone for s in self.sources.values())):
            check_zone(name)

    def store_path(self) -> Path:
        return self.store or data_dir() / "cdr.sqlite3"
