"""The ``[notify]`` settings section: outbox, retry policy, templates, channels and routes.

Example (``~/.config/pbxgate/config.toml``)::

    [notify]
    phonebook = "/etc/pbxgate/phonebook.csv"

    [notify.vk]
    enabled = true
    token_file = "/etc/pbxgate/vk.token"     # or token_env = "VK_TOKEN"; never on a command line
    recipients = ["123456", "chat:2"]        # user ids; chat:N is peer 2000000000 + N

    # optional, named routes: without any, every channel gets every call
    [notify.routes.office]
    channels = ["vk"]
    did = "7495.*"
    hours = "09:00-18:00"
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pbxgate.config import Secret, data_dir, section
from pbxgate.private import parse_mode

# VK: https://dev.vk.com/ru/api/api-requests (current version 5.199; api.vk.ru since 2025).
VK_API_VERSION = "5.199"
VK_API_BASE = "https://api.vk.ru"
# VK bots doc: community token up to 20 requests/s; user token 3 requests/s (reference/vk.md §7).
VK_RATE_COMMUNITY = 20.0
VK_RATE_USER = 3.0


@dataclass
class VkSettings:
    enabled: bool = False
    token: Secret | None = None
    # "community" (recommended: token never expires, 20 requests/s) or "user" (3 requests/s).
    token_type: str = "community"  # noqa: S105 - a kind, not a secret
    recipients: list[str] = field(default_factory=list)
    api_version: str = VK_API_VERSION
    api_base: str = VK_API_BASE
    # Requests per second; 0 = the limit of the token type (20 community, 3 user).
    rate_limit: float = 0.0

    def effective_rate(self) -> float:
        if self.rate_limit > 0:
            return self.rate_limit
        user = self.token_type == "user"  # noqa: S105 - a kind, not a secret
        return VK_RATE_USER if user else VK_RATE_COMMUNITY


@dataclass
class TelegramSettings:
    enabled: bool = False
    token: Secret | None = None
    recipients: list[str] = field(default_factory=list)  # chat ids
    api_base: str = "https://api.telegram.org"
    # Telegram Bot API FAQ: about 30 messages/s overall, 1/s per chat, 20/min in a group.
    rate_limit: float = 25.0

    def __post_init__(self) -> None:
        if not self.rate_limit > 0:  # NaN too
            raise ValueError("rate_limit must be more than 0")


@dataclass
class EmailSettings:
    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = 25
    # "none", "starttls" or "ssl" (implicit TLS, usually port 465).
    security: str = "none"
    username: str = ""
    password: Secret | None = None
    sender: str = "pbxgate@localhost"
    recipients: list[str] = field(default_factory=list)
    timeout: float = 20.0


@dataclass
class WebhookSettings:
    enabled: bool = False
    recipients: list[str] = field(default_factory=list)  # URLs
    # Sent as "Authorization: Bearer <token>" when set.
    token: Secret | None = None


DATABASE_TIMEOUT = 10.0  # seconds: [notify.database] timeout, and Outbox.connect's default


@dataclass
class DatabaseSettings:
    """A shared outbox on PostgreSQL or MariaDB/MySQL, for several ``pbxgate serve`` nodes
    (docs/notify.md, "Several nodes"). Empty ``url`` = the SQLite file of ``[notify] outbox``.
    The URL carries no password: give ``password``/``_file``/``_env``."""

    url: str = ""  # postgresql+psycopg://pbxgate@db/pbxgate, mysql+pymysql://pbxgate@db/pbxgate
    password: Secret | None = None
    # This node's name among those sharing the outbox; empty = the host name. A node that
    # restarts takes back the deliveries it left in flight at once; another node's wait for
    # their lease (lease_seconds) to run out.
    node: str = ""
    # Seconds a server that does not answer is waited for: connecting (then a one-line
    # error); on PostgreSQL also data it does not acknowledge and a host that has gone.
    timeout: float = DATABASE_TIMEOUT

    def __post_init__(self) -> None:
        if not 0 < self.timeout <= 3600:  # NaN and infinity too
            raise ValueError("timeout must be more than 0 and at most 3600 seconds")


@dataclass
class RouteSettings:
    """A routing rule: matching calls go to ``channels`` (all their recipients unless listed)."""

    channels: list[str] = field(default_factory=list)
    recipients: list[str] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)  # incoming, answered, ended, missed; empty = all
    did: str = ""  # regular expression matched in full against the DID; empty = any
    caller: str = ""  # regular expression matched in full against the caller number
    pbx: str = ""  # regular expression matched in full against the event's PBX name
    hours: str = ""  # "HH:MM-HH:MM" in the [cdr] timezone; may wrap midnight; empty = always
    weekdays: list[str] = field(default_factory=list)  # mon..sun; empty = every day


@section("notify")
@dataclass
class NotifySettings:
    # The durable outbox; empty = <XDG data home>/pbxgate/outbox.sqlite3
    outbox: Path | None = None
    # Its mode: "0600" (the owner alone), or "0660" when Asterisk's user and the service user
    # share it through a group (docs/notify.md, "One outbox, two users").
    outbox_mode: str = "0600"
    # CSV "number,name" used when the call carries no CALLERID(name).
    phonebook: Path | None = None
    # Jinja2 templates (sandboxed); inline text or a file; empty = the built-in Russian text.
    incoming_template: str = ""
    incoming_template_file: Path | None = None
    missed_template: str = ""
    missed_template_file: Path | None = None
    answered_template: str = ""
    answered_template_file: Path | None = None
    ended_template: str = ""
    ended_template_file: Path | None = None
    called_back_template: str = ""
    called_back_template_file: Path | None = None
    # A missed call's message says when it was called back (or the caller got through) within
    # this many hours (AMI; the rule of pbxgate cdr missed)
    callback_hours: float = 24.0
    # One message per call, edited as the call goes on (VK, Telegram; a webhook gets a POST per
    # change; e-mail only the final state): "auto" = when [ami] is enabled (only the manager
    # tells when a call is answered and ends), "on" or "off" (one message per event).
    follow: str = "auto"
    # An edit waits this long for the next change of its call, so that a call answered within
    # a second of ringing costs one edit, not two (the first message never waits).
    edit_delay: float = 1.0
    max_attempts: int = 10
    backoff_initial: float = 5.0
    backoff_max: float = 900.0
    # How long a claimed delivery stays in flight before another worker may take it.
    lease_seconds: float = 120.0
    # How often the worker looks for new events written by other processes (pbxgate-agi).
    poll_interval: float = 0.5
    concurrency: int = 8
    http_timeout: float = 10.0
    vk: VkSettings = field(default_factory=VkSettings)
    telegram: TelegramSettings = field(default_factory=TelegramSettings)
    email: EmailSettings = field(default_factory=EmailSettings)
    webhook: WebhookSettings = field(default_factory=WebhookSettings)
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    # Named routing rules ([notify.routes.<name>]), applied in file order.
    routes: dict[str, RouteSettings] = field(default_factory=dict)

    def outbox_path(self) -> Path:
        return self.outbox or data_dir() / "outbox.sqlite3"

    def outbox_place(self) -> str:
        """Where the outbox is, for messages and as a key: the database URL or the file."""
        return self.database.url or str(self.outbox_path())

    @property
    def outbox_file_mode(self) -> int:
        return parse_mode(self.outbox_mode)

    def __post_init__(self) -> None:
        parse_mode(self.outbox_mode)  # a ValueError here is a one-line settings error
        word = str(self.follow).strip().lower()
        self.follow = {"true": "on", "yes": "on", "1": "on"}.get(word, word)
        self.follow = {"false": "off", "no": "off", "0": "off"}.get(self.follow, self.follow)
        if self.follow not in ("auto", "on", "off"):
            raise ValueError(f"follow must be auto, on or off, not {word!r}")
        if self.edit_delay < 0:
            raise ValueError("edit_delay must not be negative")

    def follows(self, ami_enabled: bool) -> bool:
        """Whether a call's message follows it (``follow``, with "auto" meaning AMI is on)."""
        return self.follow == "on" or (self.follow == "auto" and ami_enabled)


__all__ = [
    "DatabaseSettings",
    "EmailSettings",
    "NotifySettings",
    "RouteSettings",
    "TelegramSettings",
    "VkSettings",
    "WebhookSettings",
]
