"""Write legs as Asterisk's cdr_csv writes Master.csv (loguniqueid and loguserfield on).

cdr_csv.c quotes every string with inner ``"`` doubled, quotes dates, leaves an unset date (the
answer time of an unanswered call) empty and unquoted, and writes duration and billsec as bare
integers (reference cdr.md §4).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

from pbxgate.cdr.model import Leg
from pbxgate.private import open_private


def _q(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


def _d(value: datetime | None) -> str:
    return "" if value is None else _q(value.strftime("%Y-%m-%d %H:%M:%S"))


def master_csv_line(leg: Leg) -> str:
    strings = (leg.accountcode, leg.src, leg.dst, leg.dcontext, leg.clid, leg.channel,
               leg.dstchannel, leg.lastapp, leg.lastdata)  # fmt: skip
    parts = [_q(s) for s in strings]
    parts += [_d(leg.start), _d(leg.answered_at), _d(leg.finish)]
    parts += [str(leg.duration), str(leg.billsec), _q(leg.disposition), _q(leg.amaflags)]
    parts += [_q(leg.uniqueid), _q(leg.userfield)]
    return ",".join(parts)


def write_master_csv(legs: Iterable[Leg], path: Path) -> int:
    count = 0
    with os.fdopen(open_private(path), "w", encoding="utf-8", newline="") as fh:
        for leg in legs:
            fh.write(master_csv_line(leg) + "\n")
            count += 1
    return count


__all__ = ["master_csv_line", "write_master_csv"]
