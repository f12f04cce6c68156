"""Per agent: calls taken, rings not answered, talk time, paused time by reason, logged-in time,
occupancy, from queue_log.

An agent is a queue member by the name queue_log gives it (queues.conf ``member =>
interface,penalty,name``; the interface when it has no name). Logged in: from ADDMEMBER or
AGENTLOGIN to REMOVEMEMBER or AGENTLOGOFF, per queue, merged across queues (an agent in two
queues is logged in once). Paused: PAUSE (or PAUSEALL) to UNPAUSE (or UNPAUSEALL), by the
reason PAUSE gave; logging off the last queue ends a pause. A member configured in queues.conf
is logged in without any event: its time counts from the first line that names it to the last
(the log shows it at work then, and no more), in the window; a member with login or logoff lines
is never taken for one. Whatever else is still open at the end counts until the file's last line
(or the window's end). **Occupancy**: talk time over logged-in time minus paused time.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from pbxgate.queue.log import NO_CALL, QueueLogLine, journeys

LOGIN = frozenset({"ADDMEMBER", "AGENTLOGIN"})
LOGOFF = frozenset({"REMOVEMEMBER", "AGENTLOGOFF"})
PAUSES = frozenset({"PAUSE", "PAUSEALL"})
UNPAUSES = frozenset({"UNPAUSE", "UNPAUSEALL"})


@dataclass
class AgentStats:
    agent: str
    taken: int = 0  # calls answered (CONNECT)
    rang_unanswered: int = 0  # RINGNOANSWER
    talk: int = 0  # seconds, of the calls whose end is in the log
    logged_in: int = 0  # seconds
    paused: dict[str, int] = field(default_factory=dict)  # reason -> seconds

    @property
    def paused_total(self) -> int:
        return sum(self.paused.values())

    @property
    def occupancy(self) -> float | None:
        available = self.logged_in - self.paused_total
        return self.talk / available if available > 0 else None

    def as_row(self) -> dict[str, object]:
        occupancy = self.occupancy
        return {
            "agent": self.agent,
            "taken": self.taken,
            "rang_unanswered": self.rang_unanswered,
            "talk": self.talk,
            "logged_in": self.logged_in,
            "paused": dict(self.paused),
            "paused_total": self.paused_total,
            "occupancy": None if occupancy is None else round(occupancy, 4),
        }


class _Sessions:
    """Who is logged in and paused since when, as the lines go by."""

    def __init__(self, since: int | None = None, until: int | None = None) -> None:
        self.since = since if since is not None else -(1 << 62)
        self.until = until if until is not None else 1 << 62
        self.found: dict[str, AgentStats] = {}
        self.logins: dict[str, dict[str, int]] = {}  # agent -> queue -> since
        self.online_since: dict[str, int] = {}  # agent -> since (logged in to any queue)
        self.pauses: dict[str, tuple[int, str]] = {}  # agent -> (since, reason)
        self.static: set[str] = set()  # members with no login line: seen, not logged in
        self.dynamic: set[str] = set()  # members with login or logoff lines
        self.last_seen: dict[str, int] = {}

    def span(self, start: int, end: int) -> int:
        """Seconds of ``[start, end)`` inside the window."""
        return max(0, min(end, self.until) - max(start, self.since))

    def stats(self, name: str) -> AgentStats:
        return self.found.setdefault(name, AgentStats(name))

    def login(self, name: str, queue: str, at: int) -> None:
        queues = self.logins.setdefault(name, {})
        if not queues:
            self.online_since[name] = at
        queues.setdefault(queue, at)

    def logoff(self, name: str, queue: str, at: int) -> None:
        queues = self.logins.get(name, {})
        queues.pop(queue, None)
        if not queues:  # logged off the last queue: no longer paused either
            self.unpause(name, at)
            if name in self.online_since:
                self.stats(name).logged_in += self.span(self.online_since.pop(name), at)

    def pause(self, name: str, at: int, reason: str) -> None:
        self.pauses.setdefault(name, (at, reason or "(no reason)"))

    def unpause(self, name: str, at: int) -> None:
        if name in self.pauses:
            since, reason = self.pauses.pop(name)
            paused = self.stats(name).paused
            seconds = self.span(since, at)
            if seconds:
                paused[reason] = paused.get(reason, 0) + seconds

    def line(self, line: QueueLogLine) -> None:
        name = line.agent
        self.stats(name)
        self.last_seen[name] = line.time
        if line.event in LOGIN | LOGOFF:
            self.dynamic.add(name)
            if name in self.static:  # seen at work before its first login line: that ends here
                self.static.discard(name)
                self.logins.pop(name, None)
                since = self.online_since.pop(name, None)
                if since is not None:
                    self.stats(name).logged_in += self.span(since, line.time)
        if line.event in LOGIN:
            self.login(name, line.queue, line.time)
            if line.get("paused") == "PAUSED":  # added paused (QueueAdd Paused: true)
                self.pause(name, line.time, "")
        elif line.event in LOGOFF:
            self.logoff(name, line.queue, line.time)
        elif line.event in PAUSES:
            self.pause(name, line.time, line.get("reason"))
        elif line.event in UNPAUSES:
            self.unpause(name, line.time)
        elif line.event == "RINGNOANSWER" and self.since <= line.time < self.until:
            self.stats(name).rang_unanswered += 1
        calls = line.callid not in NO_CALL and line.event not in LOGIN | LOGOFF
        inside = self.since <= line.time < self.until
        if calls and inside and name not in self.online_since and name not in self.dynamic:
            # a static member (queues.conf): logged in as far as the log shows it at work
            self.login(name, line.queue, line.time)
            self.static.add(name)

    def close(self, end: int) -> None:
        for name in list(self.pauses):
            self.unpause(name, end)
        for name, since in list(self.online_since.items()):
            until = min(end, self.last_seen[name]) if name in self.static else end
            self.stats(name).logged_in += self.span(since, until)
        self.online_since.clear()


def agents(
    lines: Iterable[QueueLogLine],
    *,
    since: int | None = None,
    until: int | None = None,
    aliases: Mapping[str, str] | None = None,
) -> list[AgentStats]:
    """One row per agent named in the log, by name. With ``since``/``until`` (Unix seconds)
    only that window counts: logged-in and paused time clipped to it, calls that entered the
    queue in it; the lines should then start early enough to show who was logged in when the
    window began (``pbxgate queue agents`` reads a day before it). ``aliases`` renames agents:
    Asterisk logs ADDMEMBER/REMOVEMEMBER under the member's interface unless queues.conf has
    ``log_membername_as_agent = yes``, and AGENTLOGIN/LOGOFF under the agent's number, while
    the calls' lines carry the member's name (``[queue.members]`` maps one to the other)."""
    lines = [_renamed(ln, aliases) for ln in lines] if aliases else list(lines)
    if not lines:
        return []
    sessions = _Sessions(since, until)
    for line in lines:
        if line.agent not in ("", "NONE"):
            sessions.line(line)
    end = lines[-1].time if until is None else until
    sessions.close(end)
    for call in journeys(lines):
        if not sessions.since <= call.entered_at < sessions.until:
            continue
        if call.outcome == "answered" and call.agent:
            row = sessions.stats(call.agent)
            row.taken += 1
            row.talk += call.talk if call.completed else 0
    return [row for k, row in sorted(sessions.found.items()) if _seen(row, since, until)]


def _renamed(line: QueueLogLine, aliases: Mapping[str, str]) -> QueueLogLine:
    name = aliases.get(line.agent)
    return line if name is None else dataclasses.replace(line, agent=name)


def _seen(row: AgentStats, since: int | None, until: int | None) -> bool:
    """Whether an agent belongs in a window's table (all of them without a window)."""
    if since is None and until is None:
        return True
    return bool(row.logged_in or row.taken or row.rang_unanswered or row.paused)


__all__ = ["AgentStats", "agents"]
