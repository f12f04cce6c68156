"""Realistic CDR sets for demos, tests and benchmarks.

An office PBX as Asterisk records it (reference cdr.md §5.3): traffic in business hours with
morning and afternoon peaks and a lunch dip, little at weekends; inbound calls on a few DIDs to
3-digit extensions, to a ring group (one leg per phone rung: one ANSWERED, the rest NO ANSWER)
and to a queue (members tried in turn); blind transfers (two legs for the caller);
busy/no-answer/failed outcomes; outbound and internal calls; callers with Cyrillic names;
recordings named as FreePBX names them; missed callers who ring again or are called back.
The same seed always gives the same calls.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from pbxgate.cdr.model import ANSWERED, BUSY, FAILED, NO_ANSWER, Leg

NAMES = (
    "Олег Иванов",
    "Мария Петрова",
    "ООО Ромашка",
    "Сергей Кузнецов",
    "Анна Смирнова",
    "ИП Соколов",
    "Дмитрий Попов",
    "Елена Волкова",
    "Oleg Ivanov",
    "",
)
# Relative call volume by hour of a working day: peaks 10-12 and 14-16, a dip at 13.
HOURLY = {8: 2, 9: 6, 10: 10, 11: 10, 12: 7, 13: 4, 14: 8, 15: 9, 16: 8, 17: 5, 18: 2, 19: 1}


@dataclass
class Plan:
    """The office being simulated."""

    dids: tuple[str, ...] = ("74951234567", "74957654321", "88005553535")
    extensions: tuple[str, ...] = tuple(str(n) for n in range(101, 121))
    ring_group: tuple[str, ...] = ("101", "102", "103")
    queue: tuple[str, ...] = ("110", "111", "112", "113", "114")
    calls_per_day: int = 150
    weekend_share: float = 0.08
    callers: int = 400
    trunk: str = "PJSIP/trunk"
    numbers: list[str] = field(default_factory=list)


class Generator:
    """Yields legs, call by call, in start order per day."""

    def __init__(self, plan: Plan | None = None, seed: int = 1) -> None:
        self.plan = plan or Plan()
        self.rng = random.Random(seed)
        self._chan = 0
        self._uid = 0
        if not self.plan.numbers:
            self.plan.numbers = [self._external() for _ in range(self.plan.callers)]
        self._names = {n: self.rng.choice(NAMES) for n in self.plan.numbers}

    # -- identifiers -----------------------------------------------------------------------
    def _external(self) -> str:
        prefix = self.rng.choice(("8495", "8499", "8916", "8926", "8903", "7812"))
        return prefix + "".join(self.rng.choice("0123456789") for _ in range(7))

    def _channel(self, tech: str) -> str:
        self._chan += 1
        return f"{tech}-{self._chan:08x}"

    def _uniqueid(self, at: datetime) -> str:
        self._uid += 1
        return f"{int(at.timestamp())}.{self._uid}"

    # -- traffic ---------------------------------------------------------------------------
    def days(self, first: date, last: date, until: datetime | None = None) -> Iterator[Leg]:
        day = first
        while day <= last:
            yield from self.day(day, until)
            day += timedelta(days=1)

    def day(self, day: date, until: datetime | None = None) -> Iterator[Leg]:
        """One day's legs; calls that would start after ``until`` (say, now) are left out."""
        weekend = day.weekday() >= 5
        mean = self.plan.calls_per_day * (self.plan.weekend_share if weekend else 1.0)
        count = max(0, round(self.rng.gauss(mean, mean**0.5)))
        weights = list(HOURLY.values())
        starts = sorted(
            datetime(day.year, day.month, day.day, self.rng.choices(list(HOURLY), weights)[0])
            + timedelta(seconds=self.rng.randrange(3600))
            for _ in range(count)
        )
        legs: list[Leg] = []
        for at in starts:
            if until is not None and at > until:
                break
            legs.extend(self.call(at))
        legs.sort(key=lambda leg: leg.start)
        yield from legs

    def call(self, at: datetime) -> list[Leg]:
        kind = self.rng.choices(
            ("direct", "group", "queue", "transfer", "outbound", "internal"),
            (30, 15, 15, 5, 25, 10),
        )[0]
        if kind == "outbound":
            return self._outbound(at)
        if kind == "internal":
            return self._internal(at)
        caller = self.rng.choice(self.plan.numbers)
        did = self.rng.choice(self.plan.dids)
        make = {"direct": self._direct, "group": self._group, "queue": self._queue}
        legs = make.get(kind, self._transfer)(at, caller, did)
        if legs and all(leg.disposition != ANSWERED for leg in legs) and self.rng.random() < 0.6:
            legs += self._follow_up(legs[-1].finish, caller, did)
        return legs

    def _leg(
        self,
        at: datetime,
        src: str,
        dst: str,
        *,
        outcome: str,
        ring: int,
        talk: int = 0,
        uid: str | None = None,
        linkedid: str | None = None,
        seq: int = 0,
        did: str = "",
        app: str = "Dial",
        context: str = "from-internal",
        chan: str | None = None,
        rec_kind: str = "",
    ) -> Leg:
        uid = uid or self._uniqueid(at)
        name = self._names.get(src, "")
        talk = talk if outcome == ANSWERED else 0
        stamp = at.strftime("%Y%m%d-%H%M%S")
        return Leg(
            start=at,
            clid=f'"{name or src}" <{src}>',
            src=src,
            dst=dst,
            dcontext=context,
            channel=chan or self._channel(self.plan.trunk if len(src) > 3 else f"PJSIP/{src}"),
            dstchannel=self._channel(f"PJSIP/{dst}" if len(dst) <= 3 else self.plan.trunk),
            lastapp=app,
            lastdata=f"PJSIP/{dst},30,tT" if app == "Dial" else dst,
            duration=ring + talk,
            billsec=talk,
            disposition=outcome,
            amaflags="DOCUMENTATION",
            uniqueid=uid,
            did=did,
            recordingfile=f"{rec_kind}-{dst}-{src}-{stamp}-{uid}.wav" if rec_kind and talk else "",
            cnum=src,
            cnam=name,
            linkedid=linkedid or uid,
            sequence=seq,
        )

    def _talk(self) -> int:
        return max(5, int(self.rng.lognormvariate(4.3, 0.9)))

    def _outcome(self, p_answer: float = 0.8) -> str:
        r = self.rng.random()
        if r < p_answer:
            return ANSWERED
        return self.rng.choices((NO_ANSWER, BUSY, FAILED), (70, 20, 10))[0]

    def _direct(self, at: datetime, caller: str, did: str) -> list[Leg]:
        ext = self.rng.choice(self.plan.extensions)
        outcome = self._outcome()
        ring = self.rng.randint(3, 25) if outcome != FAILED else 0
        return [
            self._leg(at, caller, ext, outcome=outcome, ring=ring, talk=self._talk(), did=did,
                      context="from-trunk", rec_kind="external")
        ]  # fmt: skip

    def _group(self, at: datetime, caller: str, did: str) -> list[Leg]:
        """Ring-all: one leg per phone, same uniqueid; at most one answers (cdr.md §5.3)."""
        uid = self._uniqueid(at)
        chan = self._channel(self.plan.trunk)
        answered = self.rng.random() < 0.75
        winner = self.rng.choice(self.plan.ring_group) if answered else None
        ring = self.rng.randint(4, 20) if answered else 30
        talk = self._talk()
        return [
            self._leg(at, caller, ext, outcome=ANSWERED if ext == winner else NO_ANSWER,
                      ring=ring, talk=talk, uid=uid, seq=i, did=did, context="ext-group",
                      chan=chan, rec_kind="rg")
            for i, ext in enumerate(self.plan.ring_group)
        ]  # fmt: skip

    def _queue(self, at: datetime, caller: str, did: str) -> list[Leg]:
        """Round-robin queue: members tried in turn, 15 s each, until one answers."""
        uid = self._uniqueid(at)
        chan = self._channel(self.plan.trunk)
        members = self.rng.sample(self.plan.queue, k=self.rng.randint(1, 4))
        answer_at = self.rng.randrange(len(members) + 1)  # == len: nobody answered
        legs, when = [], at
        for i, ext in enumerate(members):
            outcome = ANSWERED if i == answer_at else self.rng.choice((NO_ANSWER, NO_ANSWER, BUSY))
            ring = (
                self.rng.randint(3, 12) if outcome == ANSWERED else (15 if outcome != BUSY else 0)
            )
            legs.append(
                self._leg(when, caller, ext, outcome=outcome, ring=ring, talk=self._talk(),
                          uid=uid, seq=i, did=did, app="Queue", context="ext-queues",
                          chan=chan, rec_kind="q")
            )  # fmt: skip
            if outcome == ANSWERED:
                break
            when += timedelta(seconds=ring + 1)
        return legs

    def _transfer(self, at: datetime, caller: str, did: str) -> list[Leg]:
        """Blind transfer A->B->C: two legs for the caller, dst B then C (cdr.md §5.3)."""
        first, second = self.rng.sample(self.plan.extensions, 2)
        uid = self._uniqueid(at)
        chan = self._channel(self.plan.trunk)
        talk1 = self.rng.randint(10, 60)
        leg1 = self._leg(at, caller, first, outcome=ANSWERED, ring=self.rng.randint(3, 10),
                         talk=talk1, uid=uid, seq=0, did=did, context="from-trunk",
                         chan=chan, rec_kind="external")  # fmt: skip
        outcome = self._outcome(0.85)
        leg2 = self._leg(leg1.finish, caller, second, outcome=outcome,
                         ring=self.rng.randint(3, 15), talk=self._talk(), uid=uid, linkedid=uid,
                         seq=1, did=did, context="from-internal-xfer", chan=chan,
                         rec_kind="external")  # fmt: skip
        return [leg1, leg2]

    def _outbound(
        self, at: datetime, number: str | None = None, ext: str | None = None
    ) -> list[Leg]:
        ext = ext or self.rng.choice(self.plan.extensions)
        number = number or self.rng.choice([*self.plan.numbers, self._external()])
        outcome = self._outcome(0.65)
        ring = self.rng.randint(5, 30) if outcome != FAILED else 1
        return [
            self._leg(at, ext, number, outcome=outcome, ring=ring, talk=self._talk(),
                      context="from-internal", rec_kind="out")
        ]  # fmt: skip

    def _internal(self, at: datetime) -> list[Leg]:
        a, b = self.rng.sample(self.plan.extensions, 2)
        outcome = self._outcome(0.85)
        return [self._leg(at, a, b, outcome=outcome, ring=self.rng.randint(2, 12),
                          talk=self.rng.randint(5, 300), rec_kind="internal")]  # fmt: skip

    def _follow_up(self, after: datetime, caller: str, did: str) -> list[Leg]:
        """After a missed call: the office calls back, or the caller tries again."""
        delay = timedelta(seconds=int(self.rng.expovariate(1 / 900)) + 30)
        if self.rng.random() < 0.5:
            return self._outbound(after + delay, number=caller)
        return self._direct(after + delay, caller, did)


def generate(
    first: date,
    last: date,
    *,
    seed: int = 1,
    calls_per_day: int = 150,
    until: datetime | None = None,
) -> Iterator[Leg]:
    """Legs for every day from ``first`` to ``last`` inclusive, none starting after ``until``."""
    yield from Generator(Plan(calls_per_day=calls_per_day), seed).days(first, last, until)


__all__ = ["Generator", "Plan", "generate"]
