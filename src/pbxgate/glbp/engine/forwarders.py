"""Virtual forwarders of one group as seen by one router.

Theory of operation (REF §3 [confirmed: NX, TAC, CCNA60, JTD]):

- The AVG numbers forwarders 1-4 in request order and tells each requester its number; that
  router *owns* the number and is its **primary** forwarder (VF priority 167). Every other
  member learns the forwarder from hellos and is **secondary** (Listen) for its vMAC.
- A hello lists the forwarders its sender is Active for, plus the one it owns when it is
  only listening for it (so the owner is known to be alive). Each owner hello refreshes the
  forwarder's *redirect* and *timeout* countdowns; with the owner silent the AVG stops handing
  out the vMAC after ``redirect`` seconds and after ``timeout`` seconds every member forgets
  the forwarder, so its number can be given out again.
- A secondary whose holder stays silent for the hold time takes the vMAC over (VF priority 135);
  two claimants resolve by VF priority, then by the higher IP (ANSA). The owner takes it back
  after the forwarder preemption delay (on, 30 s: CREF).
- A router whose weighting fell below the lower threshold gives up every forwarder and takes
  no new one until the weighting is back at the upper threshold (see ``weighting.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address
from typing import Protocol

from pbxgate.glbp.config import GlbpGroupConfig
from pbxgate.glbp.engine.balancing import Candidate
from pbxgate.glbp.engine.events import Event, FwdStateChange
from pbxgate.glbp.engine.messages import (
    VF_PRIORITY_OWNER,
    VF_PRIORITY_SECONDARY,
    ForwarderPart,
)
from pbxgate.glbp.engine.names import MAX_FORWARDERS, virtual_mac
from pbxgate.glbp.engine.states import VfInput, VfState, apply_vf

IPAddress = IPv4Address | IPv6Address


class Host(Protocol):
    """What the forwarder table needs from its engine."""

    interface: str
    group: int
    address: IPAddress
    bia: str
    config: GlbpGroupConfig

    @property
    def weight(self) -> int: ...
    @property
    def weight_ok(self) -> bool: ...
    @property
    def hold(self) -> float: ...
    @property
    def redirect(self) -> int: ...
    @property
    def timeout(self) -> int: ...
    def may_take_over(self, fwd: Forwarder) -> bool: ...


@dataclass
class Forwarder:
    """One virtual forwarder: who owns it, who forwards for it, and its countdowns."""

    number: int
    vmac: str
    owner_mac: str
    owner_ip: IPAddress | None
    state: VfState = VfState.INIT
    changes: int = 0
    last_change: float | None = None
    holder_ip: IPAddress | None = None  # the remote router Active for it
    holder_priority: int = 0
    holder_weight: int = 0
    holder_deadline: float | None = None
    owner_seen: float = 0.0  # last owner hello (redirect/timeout are counted from it)
    preempt_deadline: float | None = None
    selections: int = 0  # "Client selection count" on the AVG
    waited: bool = False  # let a better-placed secondary take over first

    def redirect_deadline(self, redirect: int) -> float:
        return self.owner_seen + redirect

    def timeout_deadline(self, timeout: int) -> float:
        return self.owner_seen + timeout


def _same(a: IPAddress, b: IPAddress) -> bool:
    return a is b or a == b


def _key(priority: int, ip: IPAddress) -> tuple[int, int]:
    return (priority, int(ip))


class ForwarderTable:
    """The forwarders of one group on one router; events go to ``emit``."""

    def __init__(
        self, host: Host, emit: Callable[[Event], None], touch: Callable[[], None]
    ) -> None:
        self.host = host
        self.emit = emit
        self._touch = touch  # any change other than a deadline moving later (fastpath.py)
        self.items: dict[int, Forwarder] = {}
        self.passive: set[IPAddress] = set()  # members that will not take a forwarder over
        # next_deadline() is cached. Hellos only move deadlines later, so a stale cached value
        # is early, and an early handle_timer is harmless; anything that can move a deadline
        # earlier calls invalidate().
        self._next: float | None = None
        self._valid = False

    def __iter__(self) -> Iterator[Forwarder]:
        return iter(sorted(self.items.values(), key=lambda f: f.number))

    def __len__(self) -> int:
        return len(self.items)

    # -- helpers -------------------------------------------------------------------------

    def is_mine(self, fwd: Forwarder) -> bool:
        return fwd.owner_mac == self.host.bia

    def owned(self) -> Forwarder | None:
        for fwd in self.items.values():
            if self.is_mine(fwd):
                return fwd
        return None

    def my_priority(self, fwd: Forwarder) -> int:
        return VF_PRIORITY_OWNER if self.is_mine(fwd) else VF_PRIORITY_SECONDARY

    def invalidate(self) -> None:
        self._dirty()

    def _dirty(self) -> None:
        self._valid = False
        self._touch()

    def _step(self, fwd: Forwarder, event: VfInput, now: float) -> None:
        new = apply_vf(fwd.state, event)
        if new is fwd.state:
            return
        self._dirty()
        old, fwd.state = fwd.state, new
        if VfState.ACTIVE in (old, new):  # IOS counts only changes into or out of Active
            fwd.changes += 1
            fwd.last_change = now
        fwd.preempt_deadline = None
        host = self.host
        self.emit(FwdStateChange(now, host.interface, host.group, fwd.number, old, new))

    # -- inputs --------------------------------------------------------------------------

    def on_hello(
        self,
        sender_ip: IPAddress,
        sender_mac: str,
        parts: tuple[ForwarderPart, ...],
        hold: float,
        now: float,
    ) -> None:
        """Learn from the forwarder parts of a hello sent by ``sender_ip``."""
        advertised: set[int] = set()
        passive = False
        for part in parts:
            if part.is_request or not 1 <= part.forwarder <= MAX_FORWARDERS:
                continue
            if part.state is VfState.ACTIVE:
                advertised.add(part.forwarder)
            else:
                passive = True  # its own forwarder in Listen: weighting low or preempt pending
            self._on_part(sender_ip, sender_mac, part, hold, now)
        if passive != (sender_ip in self.passive):
            self._touch()
            if passive:
                self.passive.add(sender_ip)
            else:
                self.passive.discard(sender_ip)
        # A holder that stopped listing a forwarder gave it up (weighting below lower), or
        # timed it out: one whose owner was never heard here (learnt from a secondary after
        # the owner had gone) is retired with it, not taken over (it came back for ever, each
        # newcomer taking it in turn)
        for fwd in list(self.items.values()):
            holder = fwd.holder_ip
            if (
                holder is not None
                and fwd.number not in advertised
                and (holder is sender_ip or holder == sender_ip)
            ):
                self._dirty()
                if not fwd.owner_mac:
                    self._step(fwd, VfInput.TIMEOUT, now)
                    del self.items[fwd.number]
                    continue
                fwd.holder_ip = None
                fwd.holder_deadline = now

    def _on_part(
        self, ip: IPAddress, mac: str, part: ForwarderPart, hold: float, now: float
    ) -> None:
        fwd = self.items.get(part.forwarder)
        owner = part.priority == VF_PRIORITY_OWNER
        if fwd is None:
            if part.state is not VfState.ACTIVE and not owner:
                return
            # learnt from a secondary (priority 135): its owner is not known here (nor when it
            # was last heard); only an owner's own part names it
            fwd = Forwarder(part.forwarder, part.vmac, mac if owner else "",
                            ip if owner else None, owner_seen=now)  # fmt: skip
            fwd.holder_deadline = now + hold
            self.items[part.forwarder] = fwd
            self._dirty()
            self._step(fwd, VfInput.LEARNT, now)
        if owner:
            if self.is_mine(fwd) and mac != self.host.bia:
                self._resolve_conflict(fwd, ip, mac, now)
                return
            if fwd.owner_mac != mac or fwd.owner_ip is None or not _same(fwd.owner_ip, ip):
                self._touch()
            fwd.owner_mac, fwd.owner_ip, fwd.owner_seen = mac, ip, now
        if part.state is not VfState.ACTIVE:
            return
        holder = fwd.holder_ip
        if (
            holder is None
            or not _same(holder, ip)
            or (fwd.holder_priority, fwd.holder_weight) != (part.priority, part.weight)
            or fwd.waited
        ):
            self._touch()
        fwd.holder_ip, fwd.holder_priority, fwd.holder_weight = ip, part.priority, part.weight
        fwd.holder_deadline = now + hold
        fwd.waited = False
        if fwd.state is VfState.ACTIVE:
            theirs, mine = _key(part.priority, ip), _key(self.my_priority(fwd), self.host.address)
            event = VfInput.HIGHER_PRI_ACTIVE if theirs > mine else VfInput.LOWER_PRI_ACTIVE
            self._step(fwd, event, now)
        self._maybe_schedule_preempt(fwd, now)

    def _resolve_conflict(self, fwd: Forwarder, ip: IPAddress, mac: str, now: float) -> None:
        """Two owners of one number (after a partition): the higher IP keeps it."""
        self._dirty()
        if int(ip) > int(self.host.address):
            self._step(fwd, VfInput.TIMEOUT, now)
            del self.items[fwd.number]

    def assigned(self, number: int, now: float) -> Forwarder:
        """The AVG gave us ``number``: we own it and forward at once unless someone holds it."""
        self._dirty()
        vmac = virtual_mac(self.host.group, number)
        fwd = self.items.get(number)
        if fwd is None or fwd.vmac != vmac:
            fwd = Forwarder(number, vmac, self.host.bia, self.host.address, owner_seen=now)
            self.items[number] = fwd
        fwd.owner_mac, fwd.owner_ip, fwd.owner_seen = self.host.bia, self.host.address, now
        held = fwd.holder_ip is not None and (fwd.holder_deadline or 0) > now
        if fwd.state is VfState.INIT and (held or not self.host.weight_ok):
            self._step(fwd, VfInput.LEARNT, now)
        else:
            self._step(fwd, VfInput.ASSIGNED, now)
        self._maybe_schedule_preempt(fwd, now)
        return fwd

    def allocate(self, mac: str, ip: IPAddress, now: float) -> Forwarder | None:
        """AVG: the forwarder for a requester (its old one, else the lowest free number)."""
        self._dirty()
        for fwd in self.items.values():
            if fwd.owner_mac == mac:
                return fwd
        free = [n for n in range(1, MAX_FORWARDERS + 1) if n not in self.items]
        if not free:
            return None  # a 5th router gets no forwarder and waits (REF §3 [single: seed])
        number = free[0]
        fwd = Forwarder(number, virtual_mac(self.host.group, number), mac, ip, owner_seen=now)
        fwd.holder_deadline = now + self.host.hold
        self.items[number] = fwd
        if mac != self.host.bia:
            self._step(fwd, VfInput.LEARNT, now)
        return fwd

    def weight_changed(self, now: float) -> None:
        """Give every forwarder up below lower; look at taking ours back above upper."""
        for fwd in list(self.items.values()):
            if not self.host.weight_ok and fwd.state is VfState.ACTIVE:
                self._step(fwd, VfInput.WEIGHTING_LOW, now)
            elif self.host.weight_ok:
                self._maybe_schedule_preempt(fwd, now)

    def _maybe_schedule_preempt(self, fwd: Forwarder, now: float) -> None:
        cfg = self.host.config
        if not (self.is_mine(fwd) and fwd.state is VfState.LISTEN and self.host.weight_ok):
            return
        self._dirty()
        if fwd.holder_ip is None or (fwd.holder_deadline or 0) <= now:
            fwd.preempt_deadline = now  # nobody forwards for it: take it now
        elif (
            cfg.forwarder_preempt
            and fwd.holder_priority < VF_PRIORITY_OWNER
            and fwd.preempt_deadline is None
        ):
            fwd.preempt_deadline = now + cfg.forwarder_preempt_delay

    def clear(self, now: float) -> None:
        """Interface down or group disabled: every forwarder goes to Init, then is forgotten."""
        self._dirty()
        for fwd in list(self.items.values()):
            self._step(fwd, VfInput.INTERFACE_DOWN, now)
        self.items.clear()
        self.passive.clear()

    # -- timers --------------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        if not self._valid:
            self._next = self._compute_deadline()
            self._valid = True
        return self._next

    def _compute_deadline(self) -> float | None:
        # The earliest of each forwarder's takeover, preempt and expiry deadlines (in this
        # order, the first of equal values wins), compared inline: it runs after most timers.
        best: float | None = None
        timeout = self.host.timeout
        bia = self.host.bia
        for fwd in self.items.values():
            value = fwd.holder_deadline if fwd.state is VfState.LISTEN else None
            if value is not None and (best is None or value < best):
                best = value
            value = fwd.preempt_deadline
            if value is not None and (best is None or value < best):
                best = value
            if fwd.owner_mac != bia:
                value = fwd.timeout_deadline(timeout)
                if best is None or value < best:
                    best = value
        return best

    def handle_timer(self, now: float) -> None:
        if self._valid and (self._next is None or self._next > now):
            return  # nothing due (the cached deadline is never later than the real one)
        self._valid = False  # recompute the next deadline; changes below touch the epoch
        timeout = self.host.timeout
        for fwd in list(self.items.values()):
            if not self.is_mine(fwd) and fwd.timeout_deadline(timeout) <= now:
                self._step(fwd, VfInput.TIMEOUT, now)
                del self.items[fwd.number]
                continue
            if fwd.preempt_deadline is not None and fwd.preempt_deadline <= now:
                fwd.preempt_deadline = None
                if fwd.state is VfState.LISTEN and self.host.weight_ok:
                    self._step(fwd, VfInput.PREEMPT, now)
                continue
            if fwd.state is VfState.LISTEN and (fwd.holder_deadline or 0) <= now:
                self._holder_expired(fwd, now)

    def _holder_expired(self, fwd: Forwarder, now: float) -> None:
        """Nobody forwards for ``fwd``: the best-placed secondary takes it, the others wait.

        Every secondary ranks the live members the same way (fewest forwarders first, so a
        router without one — the 5th — is preferred, then the higher IP) and only the first
        takes over; if it does not within another hold time, anyone does, and two claimants
        resolve by VF priority and IP.
        """
        self._dirty()
        fwd.holder_ip = None
        fwd.holder_deadline = None
        if not self.host.weight_ok:
            return
        if fwd.waited or self.host.may_take_over(fwd):
            fwd.waited = False
            self._step(fwd, VfInput.ACTIVE_TIMER_EXPIRED, now)
        else:
            fwd.waited = True
            fwd.holder_deadline = now + self.host.hold

    # -- output --------------------------------------------------------------------------

    def hello_parts(self) -> tuple[ForwarderPart, ...]:
        weight = self.host.weight
        parts = []
        for fwd in self:
            mine = self.is_mine(fwd)
            if fwd.state is VfState.ACTIVE or (mine and fwd.state is VfState.LISTEN):
                pri = VF_PRIORITY_OWNER if mine else VF_PRIORITY_SECONDARY
                parts.append(ForwarderPart(fwd.number, fwd.state, pri, weight, fwd.vmac))
        return tuple(parts)

    def candidates(self, now: float) -> list[Candidate]:
        """AVG: forwarders it may hand out (someone forwards, redirect not expired)."""
        redirect, hold = self.host.redirect, self.host.hold
        out = []
        for fwd in self:
            # redirect counts once the owner has gone (its hold time passed, a secondary took
            # over): a redirect shorter than the hello interval must not drop a live owner's
            # vMAC between its hellos
            gone = now - fwd.owner_seen >= hold
            if not self.is_mine(fwd) and gone and fwd.redirect_deadline(redirect) <= now:
                continue  # redirect expired: stop handing out a dead owner's vMAC (NX)
            if fwd.state is VfState.ACTIVE:
                out.append(Candidate(fwd.number, fwd.vmac, self.host.weight))
            elif fwd.holder_ip is not None:
                out.append(Candidate(fwd.number, fwd.vmac, fwd.holder_weight))
        return out


__all__ = ["Forwarder", "ForwarderTable", "Host"]
