"""The ``[report]`` settings section: language, SMTP server, scheduled reports.

Example (``config.toml``)::

    [report]
    language = "ru"                     # or "en"

    [report.smtp]
    host = "smtp.example.org"
    port = 587
    security = "starttls"               # ssl | starttls | none
    user = "pbx@example.org"
    password_env = "PBXGATE_SMTP_PASSWORD"   # or password_file = "/etc/pbxgate/smtp.pass"
    sender = "PBX <pbx@example.org>"

    [report.schedules.daily]
    cron = "0 7 * * *"                  # minute hour day month weekday
    timezone = "Europe/Moscow"
    to = ["boss@example.org"]
    period = "yesterday"                # today | yesterday | week | month
    format = "html"                     # html | text | xlsx | csv | json (the last three attached)
    queues = false                      # no Queues section in this one (default: [report] queues)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pbxgate.cdr.settings import check_zone
from pbxgate.config import Secret, data_dir, section

LANGUAGES = ("ru", "en")
PERIODS = ("today", "yesterday", "week", "month")
MAIL_FORMATS = ("html", "text", "xlsx", "csv", "json")
SECURITY = ("none", "starttls", "ssl")


@dataclass
class SmtpSettings:
    host: str = "127.0.0.1"
    port: int = 25
    # ssl: TLS from the first byte (port 465); starttls: upgrade after EHLO (587); none: plain.
    security: str = "none"
    user: str = ""
    password: Secret | None = None
    sender: str = "pbxgate@localhost"
    timeout: float = 30.0
    # Check the server's certificate; switch off only for a local server with a self-signed one.
    verify: bool = True

    def __post_init__(self) -> None:
        if self.security not in SECURITY:
            raise ValueError(f"security must be one of {', '.join(SECURITY)}")

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass
class ScheduleSettings:
    """One report sent by ``pbxgate serve`` when ``cron`` fires in ``timezone``."""

    cron: str
    to: list[str] = field(default_factory=list)
    period: str = "yesterday"
    format: str = "html"
    # Empty: the [cdr] timezone.
    timezone: str = ""
    # Empty: the [cdr] default source.
    source: str = ""
    # Empty: [report] language.
    language: str = ""
    # The Queues section (queue_log, [queue] source); unset: [report] queues.
    queues: bool | None = None

    def __post_init__(self) -> None:
        if self.period not in PERIODS:
            raise ValueError(f"period must be one of {', '.join(PERIODS)}")
        if self.format not in MAIL_FORMATS:
            raise ValueError(f"format must be one of {', '.join(MAIL_FORMATS)}")
        if not self.to:
            raise ValueError("to must name at least one recipient")
        check_zone(self.timezone)


@section("report")
@dataclass
class ReportSettings:
    language: str = "ru"
    # Rows in the top-callers and top-DID tables.
    top: int = 10
    # Rows of the missed-call and recording lists shown in text, HTML and mail (files get all).
    max_rows: int = 100
    # Hours after the period in which a call-back of a missed call is looked for.
    callback_hours: int = 24
    # Prefix that turns a recording's path under [cdr] monitor_dir into a link (web server).
    recordings_url: str = ""
    # A Queues section when [queue] source has queue_log lines for the period (docs/report.md).
    queues: bool = True
    smtp: SmtpSettings = field(default_factory=SmtpSettings)
    schedules: dict[str, ScheduleSettings] = field(default_factory=dict)
    # Where sent scheduled reports are recorded; empty = <XDG data home>/pbxgate/reports.sqlite3
    state: Path | None = None
    # A scheduled report that could not be sent is tried again after this many seconds,
    # doubling up to an hour, for at most give_up_hours after it was due.
    retry_seconds: float = 300.0
    give_up_hours: float = 24.0
    # On start, reports due this many hours ago and not yet sent are still sent.
    catch_up_hours: float = 12.0

    def __post_init__(self) -> None:
        if self.language not in LANGUAGES:
            raise ValueError(f"language must be one of {', '.join(LANGUAGES)}")

    def state_path(self) -> Path:
        return self.state or data_dir() / "reports.sqlite3"


__all__ = [
    "LANGUAGES",
    "MAIL_FORMATS",
    "PERIODS",
    "ReportSettings",
    "ScheduleSettings",
    "SmtpSettings",
]
