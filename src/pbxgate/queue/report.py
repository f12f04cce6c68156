"""A window's queued calls and agents: what ``pbxgate queue`` and the call report both read.

A call belongs to the window it **entered** the queue in; its later lines (the talk, its end) are
read up to :data:`CALL_TAIL` past the window's end. An agent's window is read from
:data:`AGENT_LOOKBACK` before it (who was logged in or paused when it began) and clipped to it
and to ``now``. Windows are Unix seconds, ``None`` for no bound (a whole file).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping
from pathlib import Path

from pbxgate.cdr.settings import LOCAL_SOURCE, CdrSettings
from pbxgate.queue.agents import AgentStats, agents
from pbxgate.queue.log import QueuedCall, QueueLogLine, journeys
from pbxgate.queue.settings import QueueSettings
from pbxgate.queue.source import QueueSource, open_queue_source
from pbxgate.queue.store import TABLE

# A call that entered the queue in the window is followed this long past its end (its talk,
# its COMPLETE line); an agent's day is read from this long before it (who was logged in).
CALL_TAIL = AGENT_LOOKBACK = 86400


def entered_in(call: QueuedCall, start: int | None, end: int | None) -> bool:
    return (start is None or call.entered_at >= start) and (end is None or call.entered_at < end)


def window_calls(source: QueueSource, start: int | None, end: int | None) -> list[QueuedCall]:
    """The calls that entered a queue in ``[start, end)``, each with what happened to it."""
    tail = None if end is None else end + CALL_TAIL
    return [c for c in journeys(source.lines(start, tail)) if entered_in(c, start, end)]


def agent_lines(source: QueueSource, start: int | None, end: int | None) -> list[QueueLogLine]:
    """The lines :func:`window_agents` needs: from a day before the window to its end."""
    return list(source.lines(None if start is None else start - AGENT_LOOKBACK, end))


def window_agents(
    lines: Iterable[QueueLogLine],
    start: int | None,
    end: int | None,
    *,
    now: int,
    queues: tuple[str, ...] = (),
    aliases: Mapping[str, str] | None = None,
) -> list[AgentStats]:
    """Per agent over ``[start, end)`` (clipped to ``now``) from :func:`agent_lines`; with
    ``queues``, only those queues' lines (and their agents' PAUSEALL/UNPAUSEALL, which name
    no queue)."""
    until = end if end is None else min(end, now)
    lines = list(lines)
    if queues:
        members = {ln.agent for ln in lines if ln.queue in queues}
        lines = [ln for ln in lines if ln.queue in queues
                 or (ln.queue == "NONE" and ln.agent in members)]  # fmt: skip
    return agents(lines, since=start, until=until, aliases=aliases)


def open_report_source(cdr: CdrSettings, queue: QueueSettings) -> QueueSource | None:
    """``[queue] source`` for a report; None when it is pbxgate's store and that holds no
    queue_log line (or does not exist): an office without queues. Any other source that
    cannot be read raises, as ``pbxgate queue stats`` would."""
    if queue.source == LOCAL_SOURCE and not _store_has_lines(cdr.store_path()):
        return None
    return open_queue_source(cdr, queue)


def _store_has_lines(path: Path) -> bool:
    """Asked read-only, so that a CDR store without a queue_log table stays without one; a
    store that cannot be read here is left to :class:`~pbxgate.queue.source.StoreSource` to
    say why."""
    if not path.is_file():
        return False
    try:
        con = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            found = con.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (TABLE,)
            ).fetchone()
            return found is not None and bool(
                con.execute(f"SELECT 1 FROM {TABLE} LIMIT 1").fetchone()
            )
        finally:
            con.close()
    except sqlite3.Error:
        return True


__all__ = [
    "AGENT_LOOKBACK",
    "CALL_TAIL",
    "agent_lines",
    "entered_in",
    "open_report_source",
    "window_agents",
    "window_calls",
]
