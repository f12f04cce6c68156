"""One CDR row (a leg) and one call (the legs that share a linkedid).

Since Asterisk 12 one call usually yields several CDR rows: one per dial attempt, per queue
member, per transfer segment, all sharing ``linkedid`` (reference cdr.md §5.3). Counting rows
inflates calls and missed calls, so every KPI in pbxgate is computed over :class:`Call`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Generic, TypeVar

if TYPE_CHECKING:
    from pbxgate.cdr.callrules import Derived
    from pbxgate.cdr.numbers import InternalRule

ANSWERED = "ANSWERED"
NO_ANSWER = "NO ANSWER"
BUSY = "BUSY"
FAILED = "FAILED"
CONGESTION = "CONGESTION"
CANCEL = "CANCEL"

# How a call that nobody answered ends up, most telling first: if any phone rang unanswered the
# caller met "no answer"; only when every attempt was busy was the call "busy" (cdr.md §5.1).
_OUTCOME_RANK = {ANSWERED: 0, NO_ANSWER: 1, CANCEL: 2, BUSY: 3, CONGESTION: 4, FAILED: 5}

# ITU-T E.425 network effectiveness: the network did its job when the user answered, was busy
# or did not answer (cdr.md §6).
NER_OUTCOMES = frozenset({ANSWERED, BUSY, NO_ANSWER, CANCEL})

# The largest duration, billsec or sequence pbxgate takes: a signed 32-bit INT, what FreePBX's
# columns hold (68 years of seconds). Import rejects larger values; a query reads a stored one
# (from an older import, or another writer) as 0 instead of failing on it.
MAX_NUMBER = 2**31 - 1


def whole_number(value: object) -> int:
    """A stored duration, billsec or sequence as an int, whole seconds (``63.42`` and
    ``"63.42"``, as cdr_adaptive_odbc writes a float column and PyMySQL hands it over as text
    in a packed read, are 63); 0 for what no CDR holds (empty, negative, not a number,
    infinite, over :data:`MAX_NUMBER`)."""
    if type(value) is int:
        return value if 0 <= value <= MAX_NUMBER else 0
    try:
        number = int(value or 0)  # type: ignore[call-overload]
    except ValueError:
        try:  # "63.42", "63.000": a float or decimal column's text
            number = int(float(value))  # type: ignore[arg-type]
        except (TypeError, ValueError, OverflowError):
            return 0
    except (TypeError, OverflowError):
        return 0
    return number if 0 <= number <= MAX_NUMBER else 0


INBOUND = "inbound"
OUTBOUND = "outbound"
INTERNAL = "internal"
EXTERNAL = "external"  # external to external (forwarded or trunk-to-trunk)


@dataclass(slots=True)
class Leg:
    """A CDR row; times are naive datetimes in the display time zone."""

    start: datetime
    src: str = ""
    dst: str = ""
    duration: int = 0
    billsec: int = 0
    disposition: str = ""
    clid: str = ""
    dcontext: str = ""
    channel: str = ""
    dstchannel: str = ""
    lastapp: str = ""
    lastdata: str = ""
    amaflags: str = ""
    accountcode: str = ""
    uniqueid: str = ""
    userfield: str = ""
    did: str = ""
    recordingfile: str = ""
    cnum: str = ""
    cnam: str = ""
    linkedid: str = ""
    peeraccount: str = ""
    sequence: int = 0
    answer: datetime | None = None
    end: datetime | None = None

    @property
    def finish(self) -> datetime:
        return self.end or self.start + timedelta(seconds=self.duration)

    @property
    def answered_at(self) -> datetime | None:
        if self.answer is not None:
            return self.answer
        if self.disposition != ANSWERED:
            return None
        return self.finish - timedelta(seconds=self.billsec)

    @property
    def call_key(self) -> str:
        return self.linkedid or self.uniqueid or f"{self.start.isoformat()}/{self.channel}"


def outcome_of(dispositions: list[str]) -> str:
    """The call's outcome from its legs' dispositions; unknown values rank last, kept as is."""
    if not dispositions:
        return NO_ANSWER
    return min(dispositions, key=lambda d: (_OUTCOME_RANK.get(d, 9), d))


_T = TypeVar("_T")


class cached_property(Generic[_T]):  # reads like the functools one it replaces
    """Computed on first use, then a plain attribute: functools.cached_property takes a lock
    on every first access in Python 3.11, which a month of calls feels."""

    def __init__(self, fn: Callable[[Any], _T]) -> None:
        self.fn = fn
        self.name = fn.__name__

    def __get__(self, obj: Any, cls: Any = None) -> _T:
        if obj is None:
            return self  # type: ignore[return-value]
        value: _T = self.fn(obj)
        obj.__dict__[self.name] = value
        return value


class Call:
    """The legs of one call, in start order, with the call-level facts derived from them
    (:mod:`pbxgate.cdr.callrules` holds the rules).

    The facts are computed on first use and kept: a month of calls asks each of them several
    times (KPIs, breakdowns, filters)."""

    __slots__ = ("__dict__", "direction", "key", "legs", "rule")

    def __init__(
        self,
        key: str,
        legs: list[Leg] | None = None,
        direction: str = INBOUND,
        rule: InternalRule | None = None,
    ) -> None:
        self.key = key
        self.legs: list[Leg] = legs if legs is not None else []
        self.direction = direction
        self.rule = rule

    def __repr__(self) -> str:
        return f"Call({self.key!r}, {len(self.legs)} legs, {self.direction})"

    @cached_property
    def derived(self) -> Derived:
        # callrules and numbers import this module: imported on first use
        from pbxgate.cdr.callrules import derive  # noqa: PLC0415
        from pbxgate.cdr.numbers import InternalRule  # noqa: PLC0415

        return derive(self.legs, self.rule or InternalRule())

    @property
    def first(self) -> Leg:
        """The caller's first leg (not a leg of a phone or Local channel the call rang)."""
        return self.derived.origin

    @cached_property
    def start(self) -> datetime:
        return min(leg.start for leg in self.legs)

    @property
    def end(self) -> datetime:
        return self.derived.end

    @property
    def src(self) -> str:
        return self.first.src

    @property
    def caller_name(self) -> str:
        return self.first.cnam

    @property
    def dst(self) -> str:
        return self.first.dst

    @cached_property
    def did(self) -> str:
        return next((leg.did for leg in self.legs if leg.did), "")

    @property
    def outcome(self) -> str:
        return self.derived.outcome

    @property
    def answered(self) -> bool:
        return self.derived.answered

    @property
    def answered_by(self) -> str:
        """The person (extension) who picked up first; for an outbound call the number."""
        return self.derived.answered_by

    @property
    def answered_via(self) -> str:
        """The ring group or queue the answered call came through."""
        return self.derived.answered_via

    @property
    def talked(self) -> tuple[str, ...]:
        """Everyone the caller talked to, in order (more than one after a transfer)."""
        return self.derived.talked

    @property
    def answered_at(self) -> datetime | None:
        return self.derived.answered_at

    @property
    def ring_seconds(self) -> int:
        """Seconds from the call's start until a person answered, or until it ended."""
        return self.derived.ring_seconds

    @property
    def talk_seconds(self) -> int:
        """Seconds from the answer to the end of the call (hold and transfers included)."""
        return self.derived.talk_seconds

    @property
    def duration(self) -> int:
        return max(0, int((self.end - self.start).total_seconds()))

    @property
    def recordings(self) -> list[str]:
        return list(dict.fromkeys(leg.recordingfile for leg in self.legs if leg.recordingfile))


__all__ = [
    "ANSWERED",
    "BUSY",
    "CANCEL",
    "CONGESTION",
    "EXTERNAL",
    "FAILED",
    "INBOUND",
    "INTERNAL",
    "MAX_NUMBER",
    "NER_OUTCOMES",
    "NO_ANSWER",
    "OUTBOUND",
    "Call",
    "Leg",
    "outcome_of",
    "whole_number",
]
