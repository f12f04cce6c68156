"""A generated queue_log: a call centre simulated event by event, written as Asterisk 22 does.

For demos, tests and benchmarks of :mod:`pbxgate.queue`. The same seed always gives the same
lines.

Theory of operation. Each day is simulated on its own (nobody works across midnight): a heap
of timed events (a caller gives up, a ring round ends, an agent finishes a call, logs in or off,
pauses) plus the day's arrivals, drawn up front and merged in. The centre:

* **agents** (Russian and Latin names) work a shift on weekdays (a few at weekends), log in
  per queue (ADDMEMBER from a panel over AMI, from a phone's feature code, or with AgentLogin
  and AGENTLOGIN), take a lunch, two breaks and sometimes an admin pause (PAUSE per queue, now
  and then PAUSEALL), and log off after their last call. Some work two queues.
* **callers** arrive by the hour (:data:`pbxgate.cdr.generate.HOURLY`: morning and afternoon
  peaks, a lunch dip), pass FreePBX's ``QueueLog(...,DID,...)`` and enter a queue. Each has a
  patience drawn at random (some hang up within 5 s); the queue's maximum wait gives
  EXITWITHTIMEOUT, a few press a key (EXITWITHKEY), and a queue nobody is logged in to sends
  callers away (EXITEMPTY, ``leavewhenempty``). Peaks load the agents, so waits grow and more
  callers give up.
* **ringing** follows app_queue.c: ``ringall`` rings every available member at once,
  ``rrmemory`` one at a time after the last who answered; a member rings ``timeout`` seconds,
  then RINGNOANSWER for each, ``retry`` seconds' pause, again. When one answers the others are
  hung up without a line (hangupcalls() logs nothing); when the caller leaves while members
  ring, RINGCANCELED for each (wait_for_answer()). Available means logged in, not paused, not
  on a call nor in its ``wrapuptime``, not ringing for someone else (``ringinuse=no``).
* **talk** ends in COMPLETECALLER or COMPLETEAGENT, or a BLINDTRANSFER or ATTENDEDTRANSFER.

Lines are made as the events happen (a call's end when it is answered: its length is known)
and sorted by time, stably, per day.
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from itertools import count
from operator import itemgetter

from pbxgate.cdr.generate import HOURLY


@dataclass(frozen=True)
class QueueSetup:
    """queues.conf of one queue (FreePBX's names in comments)."""

    strategy: str  # "ringall" or "rrmemory"
    maxwait: int  # seconds before EXITWITHTIMEOUT ("Max Wait Time")
    did: str  # the number callers dial for it
    timeout: int = 15  # how long a member rings ("Agent Timeout")
    retry: int = 5  # pause between ring rounds
    wrapup: int = 10  # after a call, before the member is rung again ("Wrap-Up-Time")


# Queues take these in turn: the first queue rings all, the second round-robin, ...
SETUPS = (
    QueueSetup("ringall", maxwait=300, did="74951234567", wrapup=10),
    QueueSetup("rrmemory", maxwait=180, did="74957654321", wrapup=5),
)
TOLL_FREE = "88005553535"  # also routed to every queue
CALLS_PER_AGENT = 40  # offered calls per weekday and agent, when calls_per_day is not given
WEEKEND_SHARE = 0.08  # of a weekday's calls, all to the first queue
SHIFT_STARTS = (8, 9, 10, 11, 9)  # local hour, taken in turn by the agents of each queue
TRANSFER_TO = ("200", "201", "205", "300", "400", "500")
_FEMALE_RU = ("Анна", "Мария", "Елена", "Ольга", "Наталья", "Татьяна", "Ирина", "Светлана",
              "Екатерина", "Юлия")  # fmt: skip
_MALE_RU = ("Дмитрий", "Сергей", "Алексей", "Игорь", "Павел", "Михаил", "Андрей", "Николай",
            "Владимир", "Артём")  # fmt: skip
_SURNAMES_RU = ("Смирнов", "Иванов", "Кузнецов", "Попов", "Васильев", "Петров", "Соколов",
                "Михайлов", "Новиков", "Фёдоров", "Морозов", "Волков", "Лебедев",
                "Козлов")  # fmt: skip
_FEMALE_EN = ("Anna", "Maria", "Elena", "Olga", "Natalia", "Irina", "Svetlana", "Ekaterina")
_MALE_EN = ("Boris", "Dmitry", "Sergey", "Alexey", "Igor", "Pavel", "Mikhail", "Nikolay")
_SURNAMES_EN = ("Smirnov", "Ivanov", "Kuznetsov", "Popov", "Vasiliev", "Petrov", "Sokolov",
                "Mikhailov", "Novikov", "Morozov", "Volkov", "Lebedev", "Kozlov")  # fmt: skip
_PREFIXES = ("8495", "8499", "8916", "8926", "8903", "8985", "7812")

# Event kinds, the index of their handler.
_EXIT, _RING_END, _RETRY, _FREE, _LOGIN, _PAUSE, _UNPAUSE, _LOGOUT = range(8)
# A caller's state.
_READY, _RINGING, _RETRYING, _GONE = range(4)
# How a caller means to leave, and the event that says so.
_ABANDON, _TIMEOUT, _KEY, _EMPTY = "ABANDON", "EXITWITHTIMEOUT", "EXITWITHKEY", "EXITEMPTY"
_time = itemgetter(0)


class _Agent:
    __slots__ = ("agent_id", "busy", "chan", "ext", "login_at", "login_uid", "miss", "name",
                 "online", "pause_all", "paused", "pending", "pickup", "queues", "ringing",
                 "shift", "talk_median", "via")  # fmt: skip

    def __init__(self, name: str, ext: str, via: str, shift: int, rng: random.Random) -> None:
        self.name, self.ext, self.via, self.shift = name, ext, via, shift
        self.agent_id = f"1{ext}"  # its agents.conf section: AGENTLOGIN names the agent so
        self.queues: list[_Queue] = []
        self.miss = rng.uniform(0.02, 0.1)  # away from the desk: the phone rings out
        self.pickup = rng.uniform(3.0, 8.0)  # seconds to answer, at most
        self.talk_median = rng.uniform(220.0, 320.0)
        self.online = self.paused = self.pause_all = self.busy = self.ringing = False
        self.pending: tuple[int, object] | None = None  # waits for the call to end
        self.login_at, self.login_uid, self.chan = 0, "", ""

    @property
    def available(self) -> bool:
        return self.online and not (self.paused or self.busy or self.ringing)


class _Queue:
    __slots__ = ("avail", "members", "name", "online", "ringall", "rrpos", "setup", "waiting")

    def __init__(self, name: str, setup: QueueSetup) -> None:
        self.name, self.setup = name, setup
        self.ringall = setup.strategy == "ringall"
        self.members: list[_Agent] = []
        self.avail: dict[_Agent, None] = {}  # an ordered set
        self.waiting: list[_Caller] = []  # in queue order, ringing or not
        self.online = 0  # members logged in
        self.rrpos = 0


class _Caller:
    __slots__ = ("did", "enter", "exit_at", "exit_kind", "ivr", "key", "number", "opos", "peer",
                 "queue", "ring_start", "rung", "state", "uid", "winner")  # fmt: skip

    def __init__(self, queue: _Queue, enter: int, number: str, did: str) -> None:
        self.queue, self.enter, self.number, self.did = queue, enter, number, did
        self.ivr = 0  # seconds from the channel's creation to ENTERQUEUE (greeting)
        self.uid, self.opos, self.state, self.key = "", 0, _READY, ""
        self.exit_at, self.exit_kind = enter, _ABANDON
        self.ring_start, self.peer = 0, ""
        self.rung: list[_Agent] = []
        self.winner: _Agent | None = None


def _agent_names(agents: int, rng: random.Random) -> list[str]:
    names = ["Анна Смирнова", "Boris Petrov"][:agents]
    seen = set(names)
    while len(names) < agents:
        if rng.random() < 0.65:
            female = rng.random() < 0.6
            first = rng.choice(_FEMALE_RU if female else _MALE_RU)
            last = rng.choice(_SURNAMES_RU) + ("а" if female else "")
        else:
            female = rng.random() < 0.5
            first = rng.choice(_FEMALE_EN if female else _MALE_EN)
            last = rng.choice(_SURNAMES_EN) + ("a" if female else "")
        name = f"{first} {last}"
        if name in seen:
            name = f"{name} {len(names) + 1}"  # more agents than names
        seen.add(name)
        names.append(name)
    return names


class CallCentre:
    """The simulated centre: :meth:`day` gives one day's queue_log lines."""

    def __init__(
        self,
        agents: int = 10,
        queues: tuple[str, ...] = ("support", "sales"),
        calls_per_day: int | None = None,
        seed: int = 1,
    ) -> None:
        if agents < 1 or not queues:
            raise ValueError("a call centre needs at least one agent and one queue")
        self.rng = rng = random.Random(seed)
        self.calls_per_day = CALLS_PER_AGENT * agents if calls_per_day is None else calls_per_day
        self.queues = [_Queue(n, SETUPS[i % len(SETUPS)]) for i, n in enumerate(queues)]
        self.agents: list[_Agent] = []
        for i, name in enumerate(_agent_names(agents, rng)):
            home = i % len(queues)
            via = ("panel", "phone", "panel", "agent", "phone")[i % 5]
            shift = SHIFT_STARTS[(i // len(queues)) % len(SHIFT_STARTS)]
            agent = _Agent(name, str(101 + i), via, shift, rng)
            agent.queues.append(self.queues[home])
            if len(queues) > 1 and i % 3 == 2:  # some work a second queue
                agent.queues.append(self.queues[(home + 1) % len(queues)])
            for queue in agent.queues:
                queue.members.append(agent)
            self.agents.append(agent)
        # the share of calls each queue gets: as many as it has agents at home
        self.weights = [sum(a.queues[0] is q for a in self.agents) for q in self.queues]
        self.callers = [self._number() for _ in range(max(50, self.calls_per_day * 3))]
        self.uid = 1  # Asterisk's uniqueid counter, across all channels
        self.chan = 0
        self.heap: list[tuple[int, int, int, object]] = []
        self.seq = count()
        self.out: list[tuple[int, str]] = []
        self.handlers: tuple[Callable[[object, int], None], ...] = (
            self._exit, self._ring_end, self._retry, self._free,
            self._login, self._pause, self._unpause, self._logout,
        )  # fmt: skip

    # -- identifiers -----------------------------------------------------------------------
    def _number(self) -> str:
        return f"{self.rng.choice(_PREFIXES)}{self.rng.randrange(10_000_000):07d}"

    def _uniqueid(self, created: int) -> str:
        """``<epoch>.<n>`` (main/channel.c); other channels of the PBX take numbers between."""
        self.uid += 1 + int(self.rng.random() * 3)
        return f"{created}.{self.uid}"

    def _channel(self, ext: str) -> str:
        self.chan += 1
        return f"PJSIP/{ext}-{self.chan:08x}"

    def _bridge(self) -> str:
        """A bridge's uniqueid: a version 4 UUID (ast_uuid_generate_str)."""
        h = f"{self.rng.getrandbits(128):032x}"
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"

    # -- a day -----------------------------------------------------------------------------
    def day(self, day: date, base: int, *, first: bool = False) -> list[str]:
        """The day's lines; ``base`` is the Unix time of its local midnight."""
        self.heap.clear()
        out: list[tuple[int, str]] = []
        self.out = out
        if first or self.rng.random() < 0.02:  # Asterisk (re)started in the night
            out.append((base + 4 * 3600 + self.rng.randrange(3600), "NONE|NONE|NONE|QUEUESTART|"))
        weekend = day.weekday() >= 5
        for agent in self._roster(day, weekend):
            self._plan_shift(agent, base, weekend)
        arrivals = self._arrivals(base, weekend)
        self._run(arrivals)
        out.sort(key=_time)
        return [f"{t}|{text}" for t, text in out]

    def _roster(self, day: date, weekend: bool) -> list[_Agent]:
        if not weekend:
            return [a for a in self.agents if self.rng.random() >= 0.05]  # 5% off or ill
        first = [a for a in self.agents if a.queues[0] is self.queues[0]]
        size = max(1, len(first) // 5)
        start = day.toordinal() * size % len(first)
        return (first + first)[start : start + size]

    def _plan_shift(self, agent: _Agent, base: int, weekend: bool) -> None:
        rng, push = self.rng, self._push
        hour, hours = (9, 8) if weekend else (agent.shift, 9)
        start = base + hour * 3600 + int(rng.gauss(60, 300))  # a few come late
        end = start + hours * 3600 + rng.randrange(900)
        push(start, _LOGIN, agent)
        push(end, _LOGOUT, agent)
        lunch = start + int(hours / 2 * 3600) + rng.randrange(-1800, 1800)
        push(lunch, _PAUSE, self._pause_plan(agent, "lunch", int(rng.gauss(2700, 420))))
        for at in (start + 2 * 3600, end - 2 * 3600)[: 1 if weekend else 2]:
            when = at + rng.randrange(-1200, 1200)
            push(when, _PAUSE, self._pause_plan(agent, "break", rng.randrange(480, 960)))
        if rng.random() < 0.35:
            when = rng.randrange(start + 3600, end - 3600)
            push(when, _PAUSE, self._pause_plan(agent, "admin", rng.randrange(600, 1800)))

    def _pause_plan(
        self, agent: _Agent, reason: str, seconds: int
    ) -> tuple[_Agent, str, int, bool]:
        return (agent, reason, max(120, seconds), self.rng.random() < 0.12)  # PAUSEALL now and then

    def _arrivals(self, base: int, weekend: bool) -> list[_Caller]:
        rng = self.rng
        mean = self.calls_per_day * (WEEKEND_SHARE if weekend else 1.0)
        total = max(0, round(rng.gauss(mean, math.sqrt(mean))))
        hours = rng.choices(list(HOURLY), list(HOURLY.values()), k=total)
        weights = [1] + [0] * (len(self.queues) - 1) if weekend else self.weights
        queues = rng.choices(self.queues, weights, k=total)
        callers = self.callers
        arrivals = []
        for hour, queue in zip(hours, queues, strict=True):
            enter = base + hour * 3600 + rng.randrange(3600)
            if rng.random() < 0.3:  # a new caller, who may call again
                number = callers[rng.randrange(len(callers))] = self._number()
            else:
                number = callers[rng.randrange(len(callers))]
            did = TOLL_FREE if rng.random() < 0.2 else queue.setup.did
            caller = _Caller(queue, enter, number, did)
            self._patience(caller)
            arrivals.append(caller)
        arrivals.sort(key=lambda c: c.enter)
        return arrivals

    def _patience(self, caller: _Caller) -> None:
        """How long the caller would wait, and how it would end: drawn before it enters."""
        rng = self.rng
        caller.ivr = int(rng.random() * 2)
        short = rng.random() < 0.06  # hears the greeting and hangs up: a short abandon
        wait = rng.randint(1, 5) if short else 5 + int(rng.lognormvariate(4.7, 0.9))  # ~2 min
        kind, maxwait = _ABANDON, caller.queue.setup.maxwait
        if wait >= maxwait:
            wait, kind = maxwait, _TIMEOUT
        if rng.random() < 0.03:  # presses a key for voicemail or a call back
            pressed = rng.randint(15, 120)
            if pressed < wait:
                wait, kind, caller.key = pressed, _KEY, rng.choice("10")
        caller.exit_at, caller.exit_kind = caller.enter + wait, kind

    def _push(self, at: int, kind: int, what: object) -> None:
        heapq.heappush(self.heap, (at, next(self.seq), kind, what))

    def _run(self, arrivals: list[_Caller]) -> None:
        heap, pop, handlers, enter = self.heap, heapq.heappop, self.handlers, self._enter
        i, n = 0, len(arrivals)
        while i < n or heap:
            if i < n and (not heap or arrivals[i].enter < heap[0][0]):
                enter(arrivals[i])
                i += 1
            else:
                at, _, kind, what = pop(heap)
                handlers[kind](what, at)

    # -- callers ---------------------------------------------------------------------------
    def _enter(self, caller: _Caller) -> None:
        t, queue = caller.enter, caller.queue
        caller.uid = uid = self._uniqueid(t - caller.ivr)
        queue.waiting.append(caller)
        caller.opos = len(queue.waiting)
        head = f"{uid}|{queue.name}|NONE"
        self.out.append((t, f"{head}|DID|{caller.did}"))  # FreePBX's QueueLog() before Queue()
        self.out.append((t, f"{head}|ENTERQUEUE||{caller.number}|{caller.opos}"))
        if not queue.online:  # leavewhenempty: told so, sent away
            caller.exit_at, caller.exit_kind = t + self.rng.randint(1, 3), _EMPTY
        self._push(caller.exit_at, _EXIT, caller)
        self._dispatch(queue, t)

    def _dispatch(self, queue: _Queue, t: int) -> None:
        """Ring available members for the callers ready to be rung, in queue order."""
        avail = queue.avail
        if not avail:
            return
        for caller in queue.waiting:
            if caller.state == _READY and caller.exit_at > t:  # not one leaving this second
                self._ring(caller, list(avail) if queue.ringall else [self._next(queue)], t)
                if not avail:
                    return

    def _next(self, queue: _Queue) -> _Agent:
        """rrmemory: the first available member after the one rung last."""
        members, size = queue.members, len(queue.members)
        for step in range(size):
            index = (queue.rrpos + step) % size
            if members[index] in queue.avail:
                queue.rrpos = index + 1
                return members[index]
        raise AssertionError("_next() called without an available member")

    def _ring(self, caller: _Caller, agents: list[_Agent], t: int) -> None:
        rng, setup = self.rng, caller.queue.setup
        caller.state, caller.ring_start, caller.rung = _RINGING, t, agents
        best, winner, peer = setup.timeout, None, 0
        for agent in agents:
            agent.ringing = True
            for queue in agent.queues:
                queue.avail.pop(agent, None)
            self.uid += 1  # the member's channel
            r = rng.random()
            if r >= agent.miss:
                after = 1 + int(r * agent.pickup)
                if after < best:
                    best, winner, peer = after, agent, self.uid
        caller.winner = winner
        caller.peer = f"{t}.{peer}"
        if t + best < caller.exit_at:
            self._push(t + best, _RING_END, caller)
        # else the caller leaves first: _exit() ends the ringing

    def _ring_end(self, what: object, t: int) -> None:
        caller = what
        assert isinstance(caller, _Caller)
        if caller.state != _RINGING:
            return
        winner, queue = caller.winner, caller.queue
        if winner is None:
            ms = queue.setup.timeout * 1000
            self.out.extend(
                (t, f"{caller.uid}|{queue.name}|{a.name}|RINGNOANSWER|{ms}") for a in caller.rung
            )
            caller.state = _RETRYING
            if t + queue.setup.retry < caller.exit_at:
                self._push(t + queue.setup.retry, _RETRY, caller)
        else:
            self._connect(caller, winner, t)
        self._release(caller.rung, winner, t)

    def _retry(self, what: object, t: int) -> None:
        caller = what
        assert isinstance(caller, _Caller)
        if caller.state == _RETRYING:
            caller.state = _READY
            self._dispatch(caller.queue, t)

    def _connect(self, caller: _Caller, agent: _Agent, t: int) -> None:
        rng, queue = self.rng, caller.queue
        queue.waiting.remove(caller)
        caller.state = _GONE
        agent.busy, agent.ringing = True, False
        hold, ring = t - caller.enter, t - caller.ring_start
        head = f"{caller.uid}|{queue.name}|{agent.name}"
        self.out.append((t, f"{head}|CONNECT|{hold}|{caller.peer}|{ring}"))
        talk = min(3600, 8 + int(agent.talk_median * rng.lognormvariate(0.0, 0.7)))
        end, r = t + talk, rng.random()
        if r < 0.05:
            event = f"BLINDTRANSFER|{rng.choice(TRANSFER_TO)}|from-internal"
        elif r < 0.08:
            event = f"ATTENDEDTRANSFER|BRIDGE|{self._bridge()}"
        else:
            event = "COMPLETECALLER" if r < 0.62 else "COMPLETEAGENT"
        self.out.append((end, f"{head}|{event}|{hold}|{talk}|{caller.opos}"))
        self._push(end + queue.setup.wrapup, _FREE, agent)

    def _exit(self, what: object, t: int) -> None:
        caller = what
        assert isinstance(caller, _Caller)
        if caller.state == _GONE:
            return
        queue, kind = caller.queue, caller.exit_kind
        if caller.state == _RINGING:  # the members still ringing
            elapsed = (t - caller.ring_start) * 1000
            for agent in caller.rung:
                if kind == _TIMEOUT:  # the queue's timeout cut the ring short
                    line = f"RINGNOANSWER|{elapsed}"
                else:  # the caller hung up or pressed a key
                    line = f"RINGCANCELED|{elapsed + self.rng.randrange(1000)}"
                self.out.append((t, f"{caller.uid}|{queue.name}|{agent.name}|{line}"))
            self._leave(caller, t)
            self._release(caller.rung, None, t)
        else:
            self._leave(caller, t)

    def _leave(self, caller: _Caller, t: int) -> None:
        queue, kind = caller.queue, caller.exit_kind
        position = queue.waiting.index(caller) + 1
        queue.waiting.remove(caller)
        caller.state = _GONE
        key = f"{caller.key}|" if kind == _KEY else ""
        fields = f"{key}{position}|{caller.opos}|{t - caller.enter}"
        self.out.append((t, f"{caller.uid}|{queue.name}|NONE|{kind}|{fields}"))

    # -- agents ----------------------------------------------------------------------------
    def _release(self, agents: list[_Agent], winner: _Agent | None, t: int) -> None:
        """Members no longer ringing: each does what it put off, or is rung again."""
        queues: dict[_Queue, None] = {}
        for agent in agents:
            if agent is not winner:
                agent.ringing = False
                self._settle(agent, t, queues)
        self._dispatch_all(queues, t)

    def _free(self, what: object, t: int) -> None:
        agent = what
        assert isinstance(agent, _Agent)
        agent.busy = False
        queues: dict[_Queue, None] = {}
        self._settle(agent, t, queues)
        self._dispatch_all(queues, t)

    def _settle(self, agent: _Agent, t: int, queues: dict[_Queue, None]) -> None:
        if agent.pending is not None:
            kind, what = agent.pending
            agent.pending = None
            self.handlers[kind](what, t)  # a pause or the log-off, after the call
            return
        self._mark(agent, queues)

    def _mark(self, agent: _Agent, queues: dict[_Queue, None]) -> None:
        """Put the agent in or out of its queues' available members."""
        available = agent.available
        for queue in agent.queues:
            if available:
                queue.avail[agent] = None
                queues[queue] = None
            else:
                queue.avail.pop(agent, None)

    def _dispatch_all(self, queues: dict[_Queue, None], t: int) -> None:
        # the queue whose first caller has waited longest rings first
        for queue in sorted(queues, key=lambda q: q.waiting[0].enter if q.waiting else t):
            self._dispatch(queue, t)

    def _changed(self, agent: _Agent, t: int) -> None:
        queues: dict[_Queue, None] = {}
        self._mark(agent, queues)
        self._dispatch_all(queues, t)

    def _login(self, what: object, t: int) -> None:
        agent = what
        assert isinstance(agent, _Agent)
        agent.online, agent.login_at = True, t
        agent.paused = self.rng.random() < 0.05  # logs in paused, unpauses when ready
        flag = "PAUSED" if agent.paused else ""
        if agent.via == "panel":
            callid = "MANAGER"
        else:  # AddQueueMember() in the dialplan: a feature code, or before AgentLogin()
            callid = agent.login_uid = self._uniqueid(t)
        for queue in agent.queues:
            queue.online += 1
            self.out.append((t, f"{callid}|{queue.name}|{agent.name}|ADDMEMBER|{flag}"))
        if agent.via == "agent":
            agent.chan = self._channel(agent.ext)
            self.out.append((t, f"{callid}|NONE|{agent.agent_id}|AGENTLOGIN|{agent.chan}"))
        if agent.paused:
            agent.pause_all = False
            self._push(t + self.rng.randrange(60, 300), _UNPAUSE, agent)
        self._changed(agent, t)

    def _logout(self, what: object, t: int) -> None:
        agent = what
        assert isinstance(agent, _Agent)
        if agent.busy or agent.ringing:
            agent.pending = (_LOGOUT, agent)
            return
        agent.online = agent.paused = False
        if agent.via == "agent":  # hangs up AgentLogin(); the h extension removes the member
            callid, logged = agent.login_uid, t - agent.login_at
            self.out.append(
                (t, f"{callid}|NONE|{agent.agent_id}|AGENTLOGOFF|{agent.chan}|{logged}")
            )
        else:
            callid = "MANAGER" if agent.via == "panel" else self._uniqueid(t)
        for queue in agent.queues:
            queue.online -= 1
            self.out.append((t, f"{callid}|{queue.name}|{agent.name}|REMOVEMEMBER|"))
        self._changed(agent, t)
        for queue in agent.queues:
            if not queue.online:  # leavewhenempty: nobody left to answer
                for caller in list(queue.waiting):
                    caller.exit_kind = _EMPTY
                    self._leave(caller, t)

    def _pause(self, what: object, t: int) -> None:
        assert isinstance(what, tuple)
        agent, reason, seconds, every = what
        if not agent.online or agent.paused:
            return
        if agent.busy or agent.ringing:
            if agent.pending is None:
                agent.pending = (_PAUSE, what)
            return
        agent.paused, agent.pause_all = True, every
        if every:  # PauseQueueMember without a queue: PAUSEALL, then each queue (app_queue.c)
            self.out.append((t, f"NONE|NONE|{agent.name}|PAUSEALL|{reason}"))
        for queue in agent.queues:
            self.out.append((t, f"NONE|{queue.name}|{agent.name}|PAUSE|{reason}"))
        self._push(t + seconds, _UNPAUSE, agent)
        self._changed(agent, t)

    def _unpause(self, what: object, t: int) -> None:
        agent = what
        assert isinstance(agent, _Agent)
        if not (agent.online and agent.paused):
            return
        agent.paused = False
        if agent.pause_all:
            self.out.append((t, f"NONE|NONE|{agent.name}|UNPAUSEALL|"))
        for queue in agent.queues:
            self.out.append((t, f"NONE|{queue.name}|{agent.name}|UNPAUSE|"))
        self._changed(agent, t)


def _midnight(day: date, tz: tzinfo | None) -> int:
    """Unix time of the day's local midnight as business hours see it: noon's UTC offset, so a
    DST change at night does not shift the day's hours."""
    noon = datetime(day.year, day.month, day.day, 12, tzinfo=tz)
    return int(noon.timestamp()) - 12 * 3600


def generate_queue_log(
    first: date,
    last: date,
    *,
    agents: int = 10,
    queues: tuple[str, ...] = ("support", "sales"),
    calls_per_day: int | None = None,
    seed: int = 1,
    tz: tzinfo | None = None,
    until: datetime | None = None,
) -> Iterator[str]:
    """queue_log lines (no newline) for every day from ``first`` to ``last`` inclusive, in time
    order, as Asterisk 22 writes them.

    ``calls_per_day``: calls offered on a weekday, over all queues (default: 40 per agent;
    weekends get 8 %, all to the first queue). ``tz``: the zone of the centre's working hours
    (None: this host's). ``until`` (naive: in ``tz``): leave out lines after it, as a live
    queue_log stands at that moment. The same arguments give the same lines.
    """
    centre = CallCentre(agents, queues, calls_per_day, seed)
    limit = None
    if until is not None:
        limit = (until if until.tzinfo else until.replace(tzinfo=tz)).timestamp()
    day = first
    while day <= last:
        lines = centre.day(day, _midnight(day, tz), first=day == first)
        if limit is not None and lines and int(lines[-1].split("|", 1)[0]) > limit:
            yield from (line for line in lines if int(line.split("|", 1)[0]) <= limit)
            return
        yield from lines
        day += timedelta(days=1)


__all__ = ["SETUPS", "CallCentre", "QueueSetup", "generate_queue_log"]
