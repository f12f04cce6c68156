"""What the Calls page asks for: :class:`CallQuery`, the CLI's :class:`Filters` and the
console's own (outcome, extension, queue), and the leg filters written twice, as a Python test
on a leg and as SQL, side by side in one class, so that the database and pbxgate pick the same
calls (:mod:`pbxgate.cdr.calllist` pages them).

The extension and queue tests are on the columns as Asterisk writes them: a phone rung is a
leg's ``dstchannel`` (``PJSIP/104-0000002a``, or ``Local/104@from-queue-...;1`` for a queue
member); a queue or ring group is the number a leg was dialled to (``dst``: FreePBX writes the
group's number on each phone's leg) or the queue a ``Queue()`` leg names in ``lastdata``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import ColumnElement, and_, bindparam, column, or_

from pbxgate.cdr.model import ANSWERED, INBOUND, Call, Leg
from pbxgate.cdr.numbers import InternalRule
from pbxgate.cdr.query import Filters, NumberFilter, check_columns
from pbxgate.cdr.source import Source
from pbxgate.errors import InputError

# answered: someone (or the PBX) answered; unanswered: nobody did; missed: an inbound call
# nobody answered (the KPI of docs/cdr.md).
OUTCOMES = ("answered", "unanswered", "missed")
EXTENSION = re.compile(r"[0-9]{1,20}")
QUEUE = EXTENSION  # FreePBX numbers its queues and ring groups


class CallLike(Protocol):
    @property
    def direction(self) -> str: ...
    @property
    def outcome(self) -> str: ...
    @property
    def talk_seconds(self) -> int: ...


# -- leg filters: Python and SQL side by side ----------------------------------------------


class LegTest(Protocol):
    """One leg filter: a call passes when one of its legs matches."""

    @property
    def columns(self) -> tuple[str, ...]: ...
    @property
    def shape(self) -> tuple[str, ...]: ...
    def matches(self, leg: Leg) -> bool: ...
    def clause(self, name: str, has: frozenset[str]) -> ColumnElement[bool]: ...
    def params(self, name: str) -> dict[str, Any]: ...


@dataclass(frozen=True)
class NumberTest:
    """``src``/``dst``/``did``/``cnum`` against a pattern (:class:`NumberFilter`)."""

    number: NumberFilter

    @property
    def columns(self) -> tuple[str, ...]:
        return (self.number.column,)

    @property
    def shape(self) -> tuple[str, ...]:
        return ("number", self.number.column, self.number.mode)

    def matches(self, leg: Leg) -> bool:
        return self.number.matches(getattr(leg, self.number.column))

    def clause(self, name: str, has: frozenset[str]) -> ColumnElement[bool]:
        return self.number.clause(column(self.number.column), name)

    def params(self, name: str) -> dict[str, Any]:
        return {name: self.number.sql_value()}


@dataclass(frozen=True)
class AccountTest:
    code: str
    columns: tuple[str, ...] = ("accountcode",)
    shape: tuple[str, ...] = ("accountcode",)

    def matches(self, leg: Leg) -> bool:
        return leg.accountcode == self.code

    def clause(self, name: str, has: frozenset[str]) -> ColumnElement[bool]:
        return column("accountcode") == bindparam(name)

    def params(self, name: str) -> dict[str, Any]:
        return {name: self.code}


@dataclass(frozen=True)
class ExtensionTest:
    """The leg rang the extension: its ``dstchannel`` is the phone's (``PJSIP/104-0000002a``,
    ``SIP/104``) or a Local channel to it (a queue's or a follow-me's ``Local/104@...``). A
    call that rang a phone and one that it answered both have such a leg."""

    extension: str
    columns: tuple[str, ...] = ("dstchannel",)
    shape: tuple[str, ...] = ("extension",)

    def matches(self, leg: Leg) -> bool:
        target, ext = leg.dstchannel, self.extension
        return f"/{ext}-" in target or f"/{ext}@" in target or target.endswith(f"/{ext}")

    def clause(self, name: str, has: frozenset[str]) -> ColumnElement[bool]:
        target: Any = column("dstchannel")
        return or_(*(target.like(bindparam(f"{name}{i}")) for i in range(3)))

    def params(self, name: str) -> dict[str, Any]:
        ext = self.extension  # digits only: nothing to escape for LIKE
        return {f"{name}0": f"%/{ext}-%", f"{name}1": f"%/{ext}@%", f"{name}2": f"%/{ext}"}


@dataclass(frozen=True)
class QueueTest:
    """The leg was dialled to the queue or ring group (its ``dst``: FreePBX writes the group's
    number on each phone's leg), or is a ``Queue()`` leg of it (``lastdata`` ``400,t,,,300``:
    a transfer rewrites ``dst``)."""

    queue: str
    columns: tuple[str, ...] = ("dst",)
    shape: tuple[str, ...] = ("queue",)

    def matches(self, leg: Leg) -> bool:
        want, data = self.queue, leg.lastdata
        if leg.dst == want:
            return True
        return leg.lastapp == "Queue" and (data == want or data.startswith(f"{want},"))

    def clause(self, name: str, has: frozenset[str]) -> ColumnElement[bool]:
        by_dst = column("dst") == bindparam(name)
        if not {"lastapp", "lastdata"} <= has:
            return by_dst
        data: Any = column("lastdata")
        queued = and_(
            column("lastapp") == "Queue",
            or_(data == bindparam(name), data.like(bindparam(f"{name}p"))),
        )
        return or_(by_dst, queued)

    def params(self, name: str) -> dict[str, Any]:
        return {name: self.queue, f"{name}p": f"{self.queue},%"}  # digits: nothing to escape


# -- what a caller asks for ----------------------------------------------------------------


@dataclass(frozen=True)
class CallQuery:
    """The Calls page's filters: :class:`Filters` (the CLI's) and the console's own."""

    filters: Filters = field(default_factory=Filters)
    outcome: str | None = None
    extension: str | None = None
    queue: str | None = None

    def __post_init__(self) -> None:
        if self.outcome is not None and self.outcome not in OUTCOMES:
            raise InputError(
                f"unknown outcome {self.outcome!r}: use {', '.join(OUTCOMES)}",
                hint="an Asterisk status such as ANSWERED or BUSY goes in disposition",
            )
        if self.extension is not None and not EXTENSION.fullmatch(self.extension):
            raise InputError(f"extension {self.extension!r} is not an extension's number")
        if self.queue is not None and not QUEUE.fullmatch(self.queue):
            raise InputError(f"queue {self.queue!r} is not a queue's or ring group's number")

    @property
    def rule(self) -> InternalRule:
        return self.filters.rule

    @property
    def call_level(self) -> bool:
        """Whether a filter needs what the call's legs add up to (direction, outcome...)."""
        f = self.filters
        return bool(f.direction or f.dispositions or f.min_billsec is not None or self.outcome)

    def leg_tests(self) -> list[LegTest]:
        tests: list[LegTest] = [NumberTest(nf) for nf in self.filters.numbers]
        if self.filters.accountcode is not None:
            tests.append(AccountTest(self.filters.accountcode))
        if self.extension is not None:
            tests.append(ExtensionTest(self.extension))
        if self.queue is not None:
            tests.append(QueueTest(self.queue))
        return tests

    def columns(self) -> frozenset[str]:
        """The leg columns the leg filters read."""
        return frozenset(c for test in self.leg_tests() for c in test.columns)

    def accepts_facts(self, call: CallLike) -> bool:
        """The call-level filters, on a Call, CallFacts or Brief."""
        if not self.filters.accepts_facts(call):
            return False
        if self.outcome is None:
            return True
        answered = call.outcome == ANSWERED
        if self.outcome == "answered":
            return answered
        return not answered and (self.outcome == "unanswered" or call.direction == INBOUND)

    def accepts_call(self, call: Call) -> bool:
        return self.accepts_facts(call) and all(
            any(test.matches(leg) for leg in call.legs) for test in self.leg_tests()
        )


def check(source: Source, query: CallQuery) -> None:
    """Refuse a filter on a column the table does not have (it would match nothing)."""
    check_columns(source.layout, query.filters)
    for col in sorted(query.columns()):
        if not source.layout.has(col):
            raise InputError(f"this CDR table has no {col} column to filter on")


__all__ = [
    "EXTENSION",
    "OUTCOMES",
    "QUEUE",
    "AccountTest",
    "CallQuery",
    "ExtensionTest",
    "LegTest",
    "NumberTest",
    "QueueTest",
    "check",
]
