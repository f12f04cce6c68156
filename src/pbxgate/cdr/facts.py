"""Call facts straight from result rows: the fast path under ``pbxgate cdr stats``.

A month of a busy PBX is a few hundred thousand legs. Building a :class:`~pbxgate.cdr.model.Leg`
and a :class:`~pbxgate.cdr.model.Call` for each costs more than reading them, so the KPIs are
computed over :class:`CallFacts` instead: one small named tuple per call, made from the rows of
its legs. A call of several legs goes through the same rules as ``Call``
(:func:`pbxgate.cdr.callrules.derive`); a call of one leg, most of them, takes a short path
written after ``callrules._single``. The contract tests check that both paths give the same
KPIs on every backend, on generated traffic and on what a real Asterisk wrote.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from operator import itemgetter
from typing import Any, NamedTuple

from sqlalchemy import String, bindparam, cast, column, func, literal_column

from pbxgate.cdr.callrules import (
    derive,
    link_by_channels,
    outcome_alone,
    parse_channel,
    person_of,
    queue_of,
    via_of,
)
from pbxgate.cdr.model import ANSWERED, MAX_NUMBER, NO_ANSWER, Leg, whole_number
from pbxgate.cdr.numbers import InternalRule
from pbxgate.cdr.query import ZERO_DATES, _as_datetime, _bound, leg_params, leg_select
from pbxgate.cdr.source import Source
from pbxgate.cdr.window import Window


class CallFacts(NamedTuple):
    """What the KPIs need of one call; attribute names match :class:`~pbxgate.cdr.model.Call`."""

    key: str
    start: datetime
    end: datetime
    direction: str
    answered: bool
    talk_seconds: int
    outcome: str
    did: str
    answered_by: str
    dst: str
    src: str
    answered_via: str = ""


# Positions in the rows fetch_facts reads.
T, SRC, DST, DUR, BILL, DISP, DID, LINK, UID, SEQ, END, CHAN, DCHAN, DCTX, ANS, APP, ADATA = range(
    17
)


def _columns(source: Source) -> list[str | None]:
    layout = source.layout
    wanted = [layout.time_column, "src", "dst", "duration", "billsec", "disposition", "did",
              "linkedid", "uniqueid", "sequence", "end", "channel", "dstchannel", "dcontext",
              "answer", "lastapp", "lastdata"]  # fmt: skip
    return [c if c == layout.time_column or layout.has(c) else None for c in wanted]


def grouped_rows(
    source: Source, lo: datetime, hi: datetime, longer_than: timedelta | None = None
) -> dict[str, list[tuple[Any, ...]]]:
    """The normalized rows of the legs that start from ``lo`` to ``hi`` (with ``longer_than``,
    only those that lasted longer), grouped into calls: by linkedid, else uniqueid, else (legs
    with neither, a Master.csv without loguniqueid) joined by their channel names."""
    cols = _columns(source)
    names = [c for c in cols if c is not None]
    long = longer_than is not None
    stmt = source.cached(("facts", tuple(names), long), lambda: _select(source, names, long))
    params = leg_params(_bound(source, lo), _bound(source, hi), None)
    if longer_than is not None:
        params["min_duration"] = int(longer_than.total_seconds())
    normalize = _normalizer(cols, source)
    groups: dict[str, list[tuple[Any, ...]]] = {}
    unlinked = False
    for raw in source.stream(stmt, params):
        row = normalize(raw)
        # The key of Leg.call_key: a Master.csv without loguniqueid leaves both ids empty,
        # and the legs of one call then share their start and the caller's channel.
        key = row[LINK] or row[UID] or f"{row[T].isoformat()}/{row[CHAN]}"
        unlinked = unlinked or not row[LINK]
        legs = groups.get(key)
        if legs is None:
            groups[key] = [row]
        else:
            legs.append(row)
    if unlinked:
        groups = link_by_channels(groups, _chan, _dchan, _span, _linked)
    return groups


def fetch_facts(
    source: Source,
    window: Window,
    rule: InternalRule,
    *,
    margin: timedelta,
    longer_than: timedelta | None = None,
) -> list[CallFacts]:
    """Facts of the calls whose first leg starts in ``window`` widened by ``margin``; with
    ``longer_than``, of the legs that lasted longer only (calls still going at a later time)."""
    groups = grouped_rows(source, window.start - margin, window.end + margin, longer_than)
    facts = [_facts(key, legs, rule) for key, legs in groups.items()]
    facts.sort(key=_start)
    return facts


def _chan(row: tuple[Any, ...]) -> str:
    return row[CHAN]  # type: ignore[no-any-return]


def _dchan(row: tuple[Any, ...]) -> str:
    return row[DCHAN]  # type: ignore[no-any-return]


def _span(row: tuple[Any, ...]) -> tuple[datetime, datetime]:
    return (row[T], _finish(row))


def _linked(row: tuple[Any, ...]) -> bool:
    return bool(row[LINK])


def _select(source: Source, names: list[str], long: bool = False) -> Any:
    """The legs' SELECT; from MySQL the times come as text: the drivers' Python DATETIME
    converters cost more than the rest of the row, and ``datetime.fromisoformat`` is C."""
    stmt = leg_select(source.layout, None, names)
    if long:
        stmt = stmt.where(column("duration") > bindparam("min_duration"))
    cast_times = _times_as_text(source) and source.dialect != "sqlite"
    texts = {source.layout.time_column, "end", "answer"} if cast_times else set()
    cols: list[Any] = []
    for c in stmt.selected_columns:
        if c.name in texts:
            cols.append(cast(c, String).label(c.name))
        else:
            cols.append(c)
    if _packed(source):  # one text column a row: PyMySQL's per-column parsing is the cost
        parts = [func.coalesce(c, "") for c in cols]
        return stmt.with_only_columns(func.concat_ws(literal_column("CHAR(31)"), *parts))
    return stmt.with_only_columns(*cols)


def _packed(source: Source) -> bool:
    """PyMySQL decodes and converts each column in Python: MySQL's CONCAT_WS hands it one
    string a row, which ``str.split`` takes apart in C (a month of legs: 1.6 s -> 0.9 s)."""
    return source.dialect == "mysql" and source.engine.dialect.driver == "pymysql"


def _times_as_text(source: Source) -> bool:
    # PyMySQL and mysqlclient both turn DATETIME into datetime in Python; as text the C
    # fromisoformat does it. SQLite keeps times as text anyway.
    return source.dialect in ("sqlite", "mysql")


def _start(facts: CallFacts) -> datetime:
    return facts.start


def _normalizer(cols: list[str | None], source: Source) -> Any:
    """Rows in the fixed order above, with absent columns empty and times as datetimes."""
    present = [i for i, c in enumerate(cols) if c is not None]
    width = len(present)
    # An absent column reads as what an empty one holds: "" for text, 0 for numbers, None for
    # the end and answer times (then start + duration, end - billsec), so that only real NULLs
    # take the careful path.
    pad = (None, "", 0)
    absent = {END: width, ANS: width, DUR: width + 2, BILL: width + 2, SEQ: width + 2}
    pick = itemgetter(
        *(present.index(i) if i in present else absent.get(i, width + 1) for i in range(len(cols)))
    )
    zones = source.zones
    # zone-aware times (timestamp with time zone) go the careful way, converted
    plain = not _times_as_text(source) and zones.same and not source.layout.aware_times
    texts = _times_as_text(source) and zones.same  # SQLite keeps times as text
    parse = datetime.fromisoformat

    def moment(text: str) -> datetime | None:
        """An end or answer time's text; None when empty or a MySQL zero date (an old NOT
        NULL schema's unanswered call)."""
        return None if not text or text.startswith(ZERO_DATES) else parse(text)

    if _packed(source):

        def unpack(raw: Any) -> tuple[Any, ...]:
            row = pick((*raw[0].split("\x1f"), *pad))  # COALESCE made NULLs ""
            out = (parse(row[T]), row[SRC], row[DST], whole_number(row[DUR]),
                   whole_number(row[BILL]), row[DISP], row[DID], row[LINK], row[UID],
                   whole_number(row[SEQ]),
                   moment(row[END]), row[CHAN], row[DCHAN], row[DCTX],
                   moment(row[ANS]), row[APP], row[ADATA])  # fmt: skip
            return out if zones.same else _careful(out, zones)

        return unpack

    def normalize(raw: Any) -> tuple[Any, ...]:
        row: tuple[Any, ...] = pick((*raw, *pad))
        if None in row[:END] or None in row[CHAN:ANS] or None in row[APP:]:
            return _careful(row, zones)
        if not _sane(row[DUR], row[BILL]):
            return _careful(row, zones)
        if plain:
            return row
        if texts and type(row[T]) is str:
            return (parse(row[T]), *row[SRC:END], moment(row[END]),
                    *row[CHAN:ANS], moment(row[ANS]), *row[APP:])  # fmt: skip
        return _careful(row, zones)

    return normalize


def _careful(row: tuple[Any, ...], zones: Any) -> tuple[Any, ...]:
    out = list(row)
    for i in (T, END, ANS):
        moment = _as_datetime(out[i], zones.source)
        out[i] = moment if moment is None or zones.same else zones.to_display(moment)
    for i in (SRC, DST, DISP, DID, LINK, UID, CHAN, DCHAN, DCTX, APP, ADATA):
        out[i] = "" if out[i] is None else str(out[i])
    for i in (DUR, BILL, SEQ):
        out[i] = whole_number(out[i])
    return tuple(out)


def _sane(duration: Any, billsec: Any) -> bool:
    """Both ints a CDR can hold (a REAL ``inf`` an old import stored is not)."""
    return type(duration) is int and type(billsec) is int and 0 <= billsec <= duration <= MAX_NUMBER


def _finish(leg: tuple[Any, ...]) -> datetime:
    end: datetime | None = leg[END]
    return end if end is not None else leg[T] + timedelta(seconds=leg[DUR])


def _leg(row: tuple[Any, ...]) -> Leg:
    return Leg(start=row[T], src=row[SRC], dst=row[DST], duration=row[DUR], billsec=row[BILL],
               disposition=row[DISP], dcontext=row[DCTX], channel=row[CHAN],
               dstchannel=row[DCHAN], uniqueid=row[UID], did=row[DID], linkedid=row[LINK],
               sequence=row[SEQ], answer=row[ANS], end=row[END], lastapp=row[APP],
               lastdata=row[ADATA])  # fmt: skip


def _facts(key: str, legs: list[tuple[Any, ...]], rule: InternalRule) -> CallFacts:
    if len(legs) > 1:
        d = derive([_leg(row) for row in legs], rule)
        o = d.origin
        return CallFacts(
            key=key,
            start=min(row[T] for row in legs),
            end=d.end,
            direction=rule.direction(o.src, o.dst, o.channel, o.dcontext),
            answered=d.answered,
            talk_seconds=d.talk_seconds,
            outcome=d.outcome,
            did=next((row[DID] for row in legs if row[DID]), ""),
            answered_by=d.answered_by,
            dst=o.dst,
            src=o.src,
            answered_via=d.answered_via,
        )
    # One leg: callrules._single, on the row as it is.
    row = legs[0]
    target = row[DCHAN]
    disposition = outcome_alone(row[DISP], target, row[APP])
    answered = disposition == ANSWERED
    person = via = ""
    if answered and target:
        chan = parse_channel(target)
        assert chan is not None
        person = person_of(chan, row[DST], rule)
        via = queue_of(_leg(row)) or via_of(row[DST], person, {chan.name}, rule)
    return CallFacts(
        key=key,
        start=row[T],
        end=_finish(row),
        direction=rule.direction(row[SRC], row[DST], row[CHAN], row[DCTX]),
        answered=answered,
        talk_seconds=row[BILL] if answered else 0,
        outcome=disposition or NO_ANSWER,
        did=row[DID],
        answered_by=person,
        dst=row[DST],
        src=row[SRC],
        answered_via=via,
    )


def in_window(facts: Iterable[CallFacts], window: Window) -> list[CallFacts]:
    lo, hi = window.start, window.end
    return [f for f in facts if lo <= f.start < hi]


__all__ = ["CallFacts", "fetch_facts", "grouped_rows", "in_window"]
