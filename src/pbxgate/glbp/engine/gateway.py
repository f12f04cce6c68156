"""The GLBP engine of one router and one group: no sockets, no clock, no global randomness.

Theory of operation (aioquic style, STYLE habit 1). A driver feeds the engine what happened —
``receive_packet``/``receive_message`` (a packet from ``src``), ``handle_timer`` (when the time
returned by ``get_timer`` has come), ``set_config``, ``set_interface``, ``set_track`` and
``arp_request`` — each with ``now`` in seconds. After each call the driver collects what to send
(``packets_to_send``/``messages_to_send``) and the events (``next_event``). The simulator and
the live daemon are two such drivers. After a received packet ``settled`` is True when it only
moved deadlines later (``fastpath.py``): there is nothing to collect and the previous timer
may fire early, which ``handle_timer`` tolerates.

The virtual gateway (AVG election) is an HSRP-like state machine (``states.py``): priority, then
the higher IP, decides; a Listen router that hears no Active (or no Standby) for the hold time
speaks up; after one hold time of speaking it becomes Standby, or Active if there is none. AVG
preemption is off by default (IOS-CG). Hello and hold times are learned from the AVG (REF §3
[single: LAB]); the configured values are kept for ``show glbp``. Forwarders are in
``forwarders.py``, weighting in ``weighting.py``, the AVG's choice of vMAC in ``balancing.py``.
"""

from __future__ import annotations

import logging
import random
from collections import deque
from collections.abc import Mapping, Sequence
from ipaddress import IPv4Address, IPv6Address

from pbxgate.glbp import wire
from pbxgate.glbp.auth import AuthConfigError, sign, verify
from pbxgate.glbp.config import AuthMode, GlbpGroupConfig, KeyChain
from pbxgate.glbp.engine.balancing import Balancer
from pbxgate.glbp.engine.codec import decode_message, to_packet
from pbxgate.glbp.engine.events import BadAuth, DebugEvent, Event, StateChange
from pbxgate.glbp.engine.fastpath import (
    Plan,
    apply_plan,
    make_plan,
    remember_bytes,
)
from pbxgate.glbp.engine.forwarders import Forwarder, ForwarderTable
from pbxgate.glbp.engine.messages import HelloPart, Message
from pbxgate.glbp.engine.names import (
    MAX_FORWARDERS,
    normalize_mac,
    short_interface,
)
from pbxgate.glbp.engine.records import Counters, Datagram, Member, Outgoing, Role, same
from pbxgate.glbp.engine.requests import (
    on_assignment_or_request,
    schedule_request,
    send_request,
)
from pbxgate.glbp.engine.states import VfState, VgInput, VgState, apply_vg
from pbxgate.glbp.engine.weighting import current_weight, next_ok

log = logging.getLogger(__name__)

IPAddress = IPv4Address | IPv6Address

# Hello jitter: each interval is shortened by up to this fraction so that routers booted
# together do not stay in lock-step (the same idea as IOS timer jitter). 0 with no rng.
HELLO_JITTER = 0.1

# "N state changes" in show glbp counts role changes only: the article's freshly elected AVG
# shows "1 state change" after Listen -> Speak -> Active (seed article, R2).
_COUNTED = (VgState.STANDBY, VgState.ACTIVE)

_ROLE_STATES = (VgState.LISTEN, VgState.SPEAK, VgState.STANDBY, VgState.ACTIVE)


class GlbpEngine:
    """One router's view of one GLBP group (see the module docstring)."""

    def __init__(
        self,
        *,
        interface: str,
        address: IPAddress,
        bia: str,
        config: GlbpGroupConfig,
        now: float,
        rng: random.Random | None = None,
        interface_up: bool = True,
        tracks: Mapping[int, bool] | None = None,
        debug: bool = False,
        key_chains: Sequence[KeyChain] = (),
    ) -> None:
        self.interface = interface
        self.group = config.group
        self.address = address
        self.bia = normalize_mac(bia)
        self._encoded: tuple[Message, GlbpGroupConfig, bytes] | None = None
        self._last_hello: Message | None = None
        self._last_out = Outgoing(None)  # type: ignore[arg-type]  # set with _last_hello
        self._hello_epoch = -1
        self.config = config
        self.rng = rng
        self.debug = debug
        self.key_chains = tuple(key_chains)
        self._unsigned = ""  # why the last message could not be signed, said once
        self.counters = Counters()
        self.state = VgState.DISABLED
        self.state_changes = 0
        self.last_change: float | None = None
        self.active: Role | None = None
        self.standby: Role | None = None
        self.members: dict[str, Member] = {}
        self.learned_hello: float | None = None
        self.learned_hold: float | None = None
        self.learned_redirect: int | None = None
        self.learned_timeout: int | None = None
        self.learned_vip: IPAddress | None = None
        self.interface_up = interface_up
        self.tracks: dict[int, bool] = dict(tracks or {})
        self._weight = current_weight(config, self.tracks)
        self._weight_ok = next_ok(config, self._weight, True)
        self.epoch = 0  # bumped by every change except deadlines moving later (fastpath.py)
        self.fast_path = True
        self.settled = False  # the last input only moved deadlines later
        self._plans: dict[str, Plan] = {}
        # A lower bound of every deadline handle_timer checks except next_hello, or None when
        # unknown: while ``now`` is below it a timer call can only be for the hello.
        self._calm: float | None = None
        self._data_plans: dict[bytes, Plan] = {}
        self.forwarders = ForwarderTable(self, self._emit, self._touch)
        self.balancer = Balancer(config.load_balancing)
        self.next_hello: float | None = None
        self.active_deadline: float | None = None
        self.standby_deadline: float | None = None
        self.speak_deadline: float | None = None
        self.preempt_deadline: float | None = None
        self.request_at: float | None = None
        self._listen_since = now
        self._last_active: IPAddress | None = None
        self._events: deque[Event] = deque()
        self._out: list[Outgoing] = []
        self._update_enabled(now)

    # -- derived values ------------------------------------------------------------------

    @property
    def virtual_ip(self) -> IPAddress | None:
        return self.config.virtual_ip or self.learned_vip

    @property
    def hello(self) -> float:
        return self.learned_hello if self.learned_hello is not None else self.config.hello

    @property
    def hold(self) -> float:
        return self.learned_hold if self.learned_hold is not None else self.config.hold

    @property
    def redirect(self) -> int:
        return self.config.redirect if self.learned_redirect is None else self.learned_redirect

    @property
    def timeout(self) -> int:
        return self.config.timeout if self.learned_timeout is None else self.learned_timeout

    @property
    def weight(self) -> int:
        return self._weight

    @property
    def weight_ok(self) -> bool:
        return self._weight_ok

    @property
    def is_avg(self) -> bool:
        return self.state is VgState.ACTIVE

    def _me(self) -> tuple[int, int]:
        return (self.config.priority, int(self.address))

    # -- driver API ----------------------------------------------------------------------

    def get_timer(self) -> float | None:
        """The earliest time ``handle_timer`` must be called, or None."""
        # The first of the earliest values wins, in this order. The driver asks after every
        # input, so the comparisons are written out rather than looped over a tuple.
        state = self.state
        best = self.next_hello
        if state is VgState.LISTEN:
            value = self.active_deadline
            if value is not None and (best is None or value < best):
                best = value
            value = self.standby_deadline
        elif state is VgState.STANDBY:
            value = self.active_deadline
        elif state is VgState.SPEAK:
            value = self.speak_deadline
        else:
            value = None
        if value is not None and (best is None or value < best):
            best = value
        value = self.preempt_deadline
        if value is not None and (best is None or value < best):
            best = value
        value = self.request_at
        if value is not None and (best is None or value < best):
            best = value
        value = self.forwarders.next_deadline()
        if value is not None and (best is None or value < best):
            best = value
        return best

    def next_event(self) -> Event | None:
        return self._events.popleft() if self._events else None

    def messages_to_send(self) -> list[Outgoing]:
        out, self._out = self._out, []
        self.counters.sent += len(out)
        return out

    def receive_packet(self, data: bytes, src: IPAddress, now: float) -> None:
        """A UDP 3222 payload from ``src``: decoded, authenticated, then handled.

        A malformed packet is counted and dropped; one that fails authentication is counted,
        logged as ``%GLBP-4-BADAUTH`` and dropped. Neither raises.
        """
        plan = self._data_plans.get(data)
        if plan is not None and plan.epoch == self.epoch and (plan.src is src or plan.src == src):
            # These very bytes were decoded, verified and handled with nothing changed since:
            # only the deadlines they refresh move (fastpath.py).
            self.counters.received += 1
            apply_plan(self, plan, now)
            self.settled = True
            return
        try:
            message, signed = decode_message(data)
        except (wire.DecodeError, ValueError):
            self.report_malformed()
            return
        if message.group != self.group:
            self.counters.wrong_group += 1
            return
        if message.owner_id == self.bia:
            return
        auth = self.config.authentication
        # Without authentication configured a packet without an Auth TLV is accepted as is;
        # everything else goes through auth.verify.
        plain = auth.mode is AuthMode.NONE and not signed
        if not plain and not verify(data, auth, source=src, key_chains=self.key_chains):
            self.report_bad_auth(src, now)
            return
        self.receive_message(message, src, now)
        remember_bytes(self, data, message)

    def packets_to_send(self, now: float) -> list[Datagram]:
        """What to send now, as signed UDP payloads (none for what cannot be signed)."""
        out = [(self.encode(o), o.destination) for o in self.messages_to_send()]
        return [Datagram(data, destination) for data, destination in out if data is not None]

    def encode(self, out: Outgoing) -> bytes | None:
        """``out`` as a signed UDP payload (the configured authentication); None while it
        cannot be signed (a key chain with no key-string yet: IOS takes the commands in either
        order), said once: nothing is sent unsigned in its place."""
        cached = self._encoded
        if cached is not None and cached[0] is out.message and cached[1] is self.config:
            return cached[2]  # the same hello as last time: same bytes (MD5 has no nonce here)
        try:
            data = sign(
                to_packet(out.message),
                self.config.authentication,
                source=self.address,
                key_chains=self.key_chains,
            )
        except AuthConfigError as exc:
            if self._unsigned != str(exc):
                self._unsigned = str(exc)
                log.warning("GLBP group %d on %s sends nothing: %s", self.group,
                            self.interface, exc)  # fmt: skip
            return None
        self._unsigned = ""
        self._encoded = (out.message, self.config, data)
        return data

    def set_key_chains(self, key_chains: Sequence[KeyChain]) -> None:
        """The key chains as configured now (a key added, a key-string rotated)."""
        chains = tuple(key_chains)
        if chains != self.key_chains:
            self.key_chains = chains
            self._encoded = None

    def receive_message(self, message: Message, src: IPAddress, now: float) -> None:
        """A decoded (and authenticated) packet from ``src``."""
        if self.state in (VgState.DISABLED, VgState.INIT) and not self._can_learn(message):
            return
        if message.group != self.group:
            self.counters.wrong_group += 1
            return
        if message.owner_id == self.bia:
            return  # our own multicast looped back
        self.counters.received += 1
        hello = message.hello
        if hello is None:
            self.settled = False
            self._touch()  # also forgets the calm bound
            self._on_assignment_or_request(message, src, now)
            return
        plan = self._plans.get(message.owner_id)
        if (
            plan is not None
            and plan.message is message
            and plan.epoch == self.epoch
            and same(plan.src, src)
        ):
            apply_plan(self, plan, now)
            self.settled = True
            return
        self.settled = False
        self._calm = None
        before = self.epoch
        self._on_hello(message, hello, src, now)
        if self.fast_path and self.epoch == before and not self._out and not self._events:
            made = make_plan(self, message, src)
            if made is not None:
                self._plans[message.owner_id] = made

    def _touch(self) -> None:
        self.epoch += 1
        self._calm = None

    def report_bad_auth(self, src: IPAddress, now: float) -> None:
        """A packet failed authentication: count it, log ``%GLBP-4-BADAUTH``, drop it."""
        self.counters.bad_auth += 1
        self._emit(BadAuth(now, str(src), self.group))

    def report_malformed(self) -> None:
        self.counters.malformed += 1

    def handle_timer(self, now: float) -> None:
        """Run everything that is due at ``now``."""
        if self.state not in _ROLE_STATES:
            return
        calm = self._calm
        if calm is not None and now < calm:
            # Nothing but the hello can be due: the checks below would all find nothing.
            if self.state is VgState.ACTIVE:
                self.standby_deadline = None
            if self.next_hello is not None and self.next_hello <= now:
                self._send_hello(now)
            return
        self._expire_roles(now)
        self._vg_timers(now)
        if self.preempt_deadline is not None and self.preempt_deadline <= now:
            self.preempt_deadline = None
            self._touch()
            if self._preempt_allowed():
                self._step(VgInput.PREEMPT, now, self._active_text())
                if self.state is VgState.SPEAK:  # speak first (one hello), then take over
                    self.next_hello = now
                    self.preempt_deadline = now
        self.forwarders.handle_timer(now)
        if self.request_at is not None and self.request_at <= now:
            self._send_request(now)
        if self.next_hello is not None and self.next_hello <= now:
            self._send_hello(now)
        if self.fast_path and self.state in _ROLE_STATES:
            self._calm = self._calm_bound()

    def _calm_bound(self) -> float:
        """The earliest deadline handle_timer checks, next_hello aside (inf: none).

        It stays a lower bound while only replayed hellos arrive (``apply_plan`` lowers it to
        each deadline it sets); every other change forgets it (``_touch``, ``receive_message``).
        """
        values: list[float | None] = [member.deadline for member in self.members.values()]
        if self.active is not None:
            values.append(self.active.deadline)
        if self.standby is not None:
            values.append(self.standby.deadline)
        values += (
            self.active_deadline,
            self.standby_deadline,
            self.speak_deadline,
            self.preempt_deadline,
            self.request_at,
            self.forwarders.next_deadline(),
        )
        return min([value for value in values if value is not None], default=float("inf"))

    def set_config(self, config: GlbpGroupConfig, now: float) -> None:
        """A new configuration for this group (the result of an IOS command)."""
        self._touch()
        old = self.config
        self.config = config
        self.forwarders.invalidate()
        if config.load_balancing is not old.load_balancing:
            self.balancer = Balancer(config.load_balancing)
        self._recompute_weight(now)
        if self.state is VgState.ACTIVE and (old.hello, old.hold) != (config.hello, config.hold):
            self.next_hello = now
        if config.preempt and self.state in (VgState.LISTEN, VgState.SPEAK, VgState.STANDBY):
            self._check_preempt(now)
        self._update_enabled(now)

    def set_interface(self, up: bool, now: float) -> None:
        """The interface's line protocol went up or down."""
        self._touch()
        if up == self.interface_up:
            return
        self.interface_up = up
        if not up and self.state is not VgState.DISABLED:
            self._step(VgInput.INTERFACE_DOWN, now)
        self._update_enabled(now)

    def set_track(self, number: int, up: bool, now: float) -> None:
        """A tracked object changed state; the weighting follows it."""
        self._touch()
        self.tracks[number] = up
        self._recompute_weight(now)

    def arp_request(self, host_mac: str, now: float) -> str | None:
        """AVG only: the vMAC to answer an ARP for the virtual IP with, else None."""
        if self.state is not VgState.ACTIVE:
            return None
        own = self.forwarders.owned()
        candidates = self.forwarders.candidates(now)
        choice = self.balancer.choose(host_mac, candidates, own.number if own else None)
        if choice is None:
            return None
        self.forwarders.items[choice.number].selections += 1
        return choice.vmac

    def may_take_over(self, fwd: Forwarder) -> bool:
        """Whether we are the live member that should take ``fwd`` over (forwarders.py)."""
        held: dict[int, int] = {}
        mine = 0
        for item in self.forwarders.items.values():
            if item.state is VfState.ACTIVE:
                mine += 1
            elif item.holder_ip is not None and item is not fwd:
                held[int(item.holder_ip)] = held.get(int(item.holder_ip), 0) + 1
        me = (-mine, int(self.address))
        passive = self.forwarders.passive
        return all(
            (-held.get(int(m.ip), 0), int(m.ip)) <= me
            for m in self.members.values()
            if m.ip not in passive
        )

    def forwards(self, vmac: str) -> bool:
        """Whether this router forwards traffic sent to ``vmac`` now."""
        for fwd in self.forwarders.items.values():
            if fwd.vmac == vmac:
                return fwd.state is VfState.ACTIVE
        return False

    # -- state machine -------------------------------------------------------------------

    def _step(self, event: VgInput, now: float, detail: str = "") -> None:
        old = self.state
        new = apply_vg(old, event)
        if self.debug:
            text = f"GLBP: {short_interface(self.interface)} {self.group} {old.label}: {event.text}"
            self._emit(DebugEvent(now, f"{text} ({detail})" if detail else text))
        if new is old:
            return
        self._touch()
        self.state = new
        if new in _COUNTED or old in _COUNTED:
            self.state_changes += 1
            self.last_change = now
        self._emit(StateChange(now, self.interface, self.group, old, new))
        self._enter(new, now)

    def _enter(self, state: VgState, now: float) -> None:
        self.speak_deadline = None
        if state not in (VgState.LISTEN, VgState.SPEAK, VgState.STANDBY):
            # between the states it may preempt from, the delay runs on (it restarted at
            # Listen -> Speak -> Standby: a 30 s delay took 41 s)
            self.preempt_deadline = None
        if state is VgState.LISTEN:
            self._listen_since = now
            self.active_deadline = self.active.deadline if self.active else now + self.hold
            self.standby_deadline = self.standby.deadline if self.standby else now + self.hold
            if self.next_hello is None:
                self.next_hello = now
            self._schedule_request(now)
        elif state is VgState.SPEAK:
            self.speak_deadline = now + self.hold
            self.standby_deadline = None
            self.next_hello = now
        elif state is VgState.STANDBY:
            self.standby = None
            self.standby_deadline = None
            self.next_hello = now  # announce the new role at once (as HSRP does)
            self.active_deadline = self.active.deadline if self.active else now
        elif state is VgState.ACTIVE:
            self._become_active(now)
        else:
            self._reset(now)

    def _become_active(self, now: float) -> None:
        self._touch()
        self.forwarders.invalidate()
        self.active = None
        self.active_deadline = self.standby_deadline = None
        self.learned_hello = self.learned_hold = None
        self.learned_redirect = self.learned_timeout = None
        self.request_at = None
        if self.forwarders.owned() is None and self._weight_ok:
            fwd = self.forwarders.allocate(self.bia, self.address, now)
            if fwd is not None:
                self.forwarders.assigned(fwd.number, now)
        self.next_hello = now

    def _reset(self, now: float) -> None:
        self._touch()
        self._plans.clear()
        self._data_plans.clear()
        self.active = self.standby = None
        self.members.clear()
        self.next_hello = self.active_deadline = self.standby_deadline = None
        self.request_at = None
        self.learned_hello = self.learned_hold = None
        self.learned_redirect = self.learned_timeout = None
        self.forwarders.clear(now)

    def _update_enabled(self, now: float) -> None:
        """Disabled <-> Init <-> Listen from the configuration and the interface."""
        enabled = self.config.enabled and self.virtual_ip is not None
        if not self.config.enabled and self.state is not VgState.DISABLED:
            self._step(VgInput.DISABLE, now)
            return
        if enabled and self.state is VgState.DISABLED:
            self._step(VgInput.ENABLE, now)
        if self.state is VgState.INIT and self.interface_up:
            self._step(VgInput.INTERFACE_UP, now)

    def _can_learn(self, message: Message) -> bool:
        """A router enabled without a VIP listens for one in Disabled (HSRP-like)."""
        return (
            self.state is VgState.DISABLED
            and self.config.enabled
            and self.interface_up
            and message.hello is not None
            and message.hello.state is VgState.ACTIVE
        )

    # -- timers --------------------------------------------------------------------------

    def _expire_roles(self, now: float) -> None:
        if self.active is not None and self.active.deadline <= now:
            self._last_active = self.active.ip
            self.active = None
            self._touch()
        if self.standby is not None and self.standby.deadline <= now:
            self.standby = None
            self._touch()
        for mac, member in list(self.members.items()):
            if member.deadline <= now:
                del self.members[mac]
                self._touch()

    def _vg_timers(self, now: float) -> None:
        state = self.state
        if state is VgState.LISTEN:
            if self.active_deadline is not None and self.active_deadline <= now:
                self._step(VgInput.ACTIVE_TIMER_EXPIRED, now)
            elif self.standby_deadline is not None and self.standby_deadline <= now:
                self._step(VgInput.STANDBY_TIMER_EXPIRED, now)
        elif state is VgState.SPEAK:
            if self.speak_deadline is not None and self.speak_deadline <= now:
                if self.active is None:
                    self._step(VgInput.ACTIVE_TIMER_EXPIRED, now)
                else:
                    self._step(VgInput.SPEAK_TIMER_EXPIRED, now)
        elif (
            state is VgState.STANDBY
            and self.active_deadline is not None
            and self.active_deadline <= now
        ):
            self._step(VgInput.ACTIVE_TIMER_EXPIRED, now, self._active_text())
        if self.state is VgState.ACTIVE:
            self.standby_deadline = None

    def _active_text(self) -> str:
        """The Active router for a debug line: JTD's "g/Active timer expired (10.10.10.3)"."""
        if self.active is not None:
            return str(self.active.ip)
        return str(self._last_active) if self._last_active is not None else ""

    # -- receiving -----------------------------------------------------------------------

    def _on_hello(self, message: Message, hello: HelloPart, src: IPAddress, now: float) -> None:
        hold = hello.hold_ms / 1000.0
        if self.state is VgState.DISABLED:
            self.learned_vip = hello.virtual_ip
            self._update_enabled(now)
            if self.state not in _ROLE_STATES:
                return
        member = self.members.get(message.owner_id)
        if member is not None and (member.ip is src or member.ip == src):
            member.deadline = now + hold
        else:
            self.members[message.owner_id] = Member(message.owner_id, src, now + hold)
            self._touch()
        them = (hello.priority, int(src))
        if hello.state is VgState.ACTIVE:
            self._on_active_hello(hello, src, them, hold, now)
        else:
            if self.active is not None and same(self.active.ip, src):
                self.active = None  # the AVG resigned: act as if its timer ran out
                self.active_deadline = now
                self._touch()
            self._on_candidate_hello(hello, src, them, hold, now)
        self.forwarders.on_hello(src, message.owner_id, message.forwarders, hold, now)
        if (
            self.is_avg
            and self._weight_ok
            and self.forwarders.owned() is None
            and len(self.forwarders) < MAX_FORWARDERS
        ):
            self._become_active_forwarder(now)

    def _on_active_hello(
        self, hello: HelloPart, src: IPAddress, them: tuple[int, int], hold: float, now: float
    ) -> None:
        if self.standby is not None and same(self.standby.ip, src):
            self.standby = None
            self._touch()
        if self.state is VgState.ACTIVE:
            if them > self._me():
                self._step(VgInput.HIGHER_PRI_ACTIVE, now, f"{hello.priority}/{src}")
            else:
                return
        role = self.active
        first = role is None or not same(role.ip, src)
        if role is not None and not first and role.priority == hello.priority:
            role.deadline = now + hold
        else:
            self.active = Role(src, hello.priority, now + hold)
            self._touch()
        self.active_deadline = now + hold
        self._learn_timers(hello)
        if self.config.virtual_ip is None and hello.virtual_ip not in (None, self.learned_vip):
            self.learned_vip = hello.virtual_ip
            self._touch()
        if first:
            self._schedule_request(now)
        self._check_preempt(now)

    def _on_candidate_hello(
        self, hello: HelloPart, src: IPAddress, them: tuple[int, int], hold: float, now: float
    ) -> None:
        if hello.state is VgState.STANDBY:
            role = self.standby
            if role is not None and same(role.ip, src) and role.priority == hello.priority:
                role.deadline = now + hold
            else:
                self.standby = Role(src, hello.priority, now + hold)
                self._touch()
            if self.state is VgState.LISTEN:
                self.standby_deadline = now + hold
        elif self.standby is not None and same(self.standby.ip, src):
            self.standby = None
            self._touch()
        if hello.state not in (VgState.SPEAK, VgState.STANDBY):
            return
        if them > self._me():
            if self.state is VgState.LISTEN:
                self.standby_deadline = now + hold  # a better router is taking the role
            elif self.state in (VgState.SPEAK, VgState.STANDBY):
                self._step(VgInput.HIGHER_PRI_SPEAK, now, f"{hello.priority}/{src}")
        elif hello.state is VgState.STANDBY and self.state is VgState.LISTEN:
            self._step(VgInput.LOWER_PRI_STANDBY, now, f"{hello.priority}/{src}")

    def _learn_timers(self, hello: HelloPart) -> None:
        """Non-AVG routers use the AVG's timers; configured ones stay for ``show glbp``."""
        learned = (hello.hello_ms / 1000.0, hello.hold_ms / 1000.0, hello.redirect, hello.timeout)
        current = (
            self.learned_hello,
            self.learned_hold,
            self.learned_redirect,
            self.learned_timeout,
        )
        if learned == current:
            return
        self._touch()
        self.learned_hello = hello.hello_ms / 1000.0
        self.learned_hold = hello.hold_ms / 1000.0
        if (self.learned_redirect, self.learned_timeout) != (hello.redirect, hello.timeout):
            self.forwarders.invalidate()
        self.learned_redirect = hello.redirect
        self.learned_timeout = hello.timeout

    def _check_preempt(self, now: float) -> None:
        if not self._preempt_allowed():
            if self.preempt_deadline is not None:
                self.preempt_deadline = None
                self._touch()
            return
        if self.preempt_deadline is None:
            self.preempt_deadline = now + self.config.preempt_delay
            self._touch()

    def _preempt_allowed(self) -> bool:
        return (
            self.config.preempt
            and self.state in (VgState.LISTEN, VgState.SPEAK, VgState.STANDBY)
            and self.active is not None
            and (self.active.priority, int(self.active.ip)) < self._me()
        )

    # -- forwarder requests (requests.py) ------------------------------------------------

    def _schedule_request(self, now: float) -> None:
        schedule_request(self, now)

    def _send_request(self, now: float) -> None:
        send_request(self, now)

    def _on_assignment_or_request(self, message: Message, src: IPAddress, now: float) -> None:
        on_assignment_or_request(self, message, src, now)

    # -- sending -------------------------------------------------------------------------

    def _send_hello(self, now: float) -> None:
        cfg = self.config
        avg = self.state is VgState.ACTIVE  # the AVG sends its configured timers
        hello_s = cfg.hello if avg or self.learned_hello is None else self.learned_hello
        rng = self.rng
        jitter = rng.random() * HELLO_JITTER if rng is not None else 0.0
        self.next_hello = now + hello_s * (1.0 - jitter)
        if self._last_hello is not None and self._hello_epoch == self.epoch:
            self._out.append(self._last_out)  # nothing changed since: the same hello
            return
        hold_s = cfg.hold if avg else self.hold
        last = self._last_hello
        part = HelloPart(
            self.state,
            cfg.priority,
            round(hello_s * 1000),
            round(hold_s * 1000),
            self.redirect,
            self.timeout,
            self.virtual_ip,
        )
        message = Message(self.group, self.bia, part, self.forwarders.hello_parts())
        if message == last:
            message = last  # one object per distinct hello (see fastpath.py)
        self._last_hello = message
        self._hello_epoch = self.epoch
        self._last_out = Outgoing(message)
        self._out.append(self._last_out)

    def _recompute_weight(self, now: float) -> None:
        self._touch()
        weight = current_weight(self.config, self.tracks)
        ok = next_ok(self.config, weight, self._weight_ok)
        changed = (weight, ok) != (self._weight, self._weight_ok)
        self._weight, self._weight_ok = weight, ok
        if changed and self.state in _ROLE_STATES:
            self.forwarders.weight_changed(now)
            if ok and self.forwarders.owned() is None:
                if self.is_avg:
                    self._become_active_forwarder(now)
                else:
                    self._schedule_request(now)
            self.next_hello = now

    def _become_active_forwarder(self, now: float) -> None:
        fwd = self.forwarders.allocate(self.bia, self.address, now)
        if fwd is not None:
            self.forwarders.assigned(fwd.number, now)

    def _emit(self, event: Event) -> None:
        self._events.append(event)


__all__ = ["Counters", "Datagram", "GlbpEngine", "Member", "Outgoing", "Role"]
