"""The ``[queue]`` settings section: where queue_log is read, and the call centre's targets."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pbxgate.cdr.settings import LOCAL_SOURCE
from pbxgate.config import section


@section("queue")
@dataclass
class QueueSettings:
    # Where `pbxgate queue stats|calls|agents` read when no FILE is given: "local" (the lines
    # `pbxgate queue import` put in pbxgate's store), a [cdr.sources.NAME] (the same database,
    # its queue_log table) or a SQLAlchemy URL, for Asterisk's realtime queue_log table.
    source: str = LOCAL_SOURCE
    # The realtime table's name (extconfig.conf: queue_log => odbc,asterisk,<table>).
    table: str = "queue_log"
    # logger.conf queue_log_realtime_use_gmt = yes: the table's times are UTC, not local.
    realtime_use_gmt: bool = False
    # What `pbxgate queue import` reads when given no file.
    log: Path = Path("/var/log/asterisk/queue_log")
    # Seconds within which an answer counts for the service level, and per queue where the
    # queue's target differs: [queue.service_levels] support = 30
    service_level: int = 20
    service_levels: dict[str, int] = field(default_factory=dict)
    # Callers who gave up within this many seconds are left out of the service level.
    short_abandon: int = 5
    # The member's name for what queue_log calls it elsewhere: Asterisk logs ADDMEMBER and
    # REMOVEMEMBER under the interface unless queues.conf has log_membername_as_agent = yes,
    # and AGENTLOGIN/LOGOFF under the agent's number, while every call's line carries the
    # name. [queue.members] "PJSIP/101" = "Anna Smirnova"
    members: dict[str, str] = field(default_factory=dict)

    def threshold(self, queue: str) -> int:
        return self.service_levels.get(queue, self.service_level)
