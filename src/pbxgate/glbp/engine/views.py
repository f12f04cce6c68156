"""Read-only snapshots of an engine, for ``show glbp`` and the simulator's reports.

A snapshot holds absolute times (deadlines); the renderer turns them into countdowns for a
given ``now``, so rendering is a pure function of a snapshot and ``now``.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address

from pbxgate.glbp.config import AuthMode, LoadBalancing
from pbxgate.glbp.engine.forwarders import Forwarder
from pbxgate.glbp.engine.gateway import GlbpEngine
from pbxgate.glbp.engine.messages import VF_PRIORITY_OWNER
from pbxgate.glbp.engine.states import VfState, VgState

IPAddress = IPv4Address | IPv6Address


@dataclass(frozen=True)
class RoleView:
    """The Active or Standby gateway as one router sees it; ``ip`` None means this router."""

    ip: IPAddress | None
    priority: int
    deadline: float | None


@dataclass(frozen=True)
class ForwarderView:
    number: int
    vmac: str
    owner_mac: str
    owned: bool  # this router is the owner (primary)
    state: VfState
    changes: int
    last_change: float | None
    holder: IPAddress | None  # remote router forwarding for it; None: local or nobody
    holder_primary: bool
    holder_weight: int
    holder_deadline: float | None
    redirect_deadline: float | None  # None when this router owns it
    timeout_deadline: float | None
    redirect: int
    timeout: int
    preempt: bool
    preempt_delay: int
    selections: int


@dataclass(frozen=True)
class TrackView:
    number: int
    up: bool
    decrement: int


@dataclass(frozen=True)
class MemberView:
    mac: str
    ip: IPAddress
    local: bool


@dataclass(frozen=True)
class GroupView:
    """Everything ``show glbp`` prints for one group on one router."""

    interface: str
    group: int
    state: VgState
    changes: int
    last_change: float | None
    virtual_ip: IPAddress | None
    hello: float
    hold: float
    hello_cfg: float
    hold_cfg: float
    hello_msec: bool
    hold_msec: bool
    learned: bool
    next_hello: float | None
    redirect: int
    timeout: int
    auth: AuthMode
    key_chain: str | None
    preempt: bool
    preempt_delay: int
    active: RoleView | None
    standby: RoleView | None
    priority: int
    priority_configured: bool
    weight: int
    weighting: int
    weighting_default: bool
    weight_ok: bool
    lower: int
    upper: int
    tracks: tuple[TrackView, ...]
    load_balancing: LoadBalancing
    members: tuple[MemberView, ...]
    forwarders: tuple[ForwarderView, ...]
    name: str | None


def snapshot(engine: GlbpEngine) -> GroupView:
    """A frozen view of ``engine`` now."""
    cfg = engine.config
    learned = engine.learned_hello is not None and not engine.is_avg
    return GroupView(
        interface=engine.interface,
        group=engine.group,
        state=engine.state,
        changes=engine.state_changes,
        last_change=engine.last_change,
        virtual_ip=engine.virtual_ip,
        hello=engine.hello if learned else cfg.hello,
        hold=engine.hold if learned else cfg.hold,
        hello_cfg=cfg.hello,
        hold_cfg=cfg.hold,
        hello_msec=cfg.hello_msec,
        hold_msec=cfg.hold_msec,
        learned=learned,
        next_hello=engine.next_hello,
        redirect=engine.redirect,
        timeout=engine.timeout,
        auth=cfg.authentication.mode,
        key_chain=cfg.authentication.key_chain,
        preempt=cfg.preempt,
        preempt_delay=cfg.preempt_delay,
        active=_active(engine),
        standby=_standby(engine),
        priority=cfg.priority,
        priority_configured=cfg.priority_configured,
        weight=engine.weight,
        weighting=cfg.weighting,
        weighting_default=cfg.weighting == 100,
        weight_ok=engine.weight_ok,
        lower=cfg.weighting_lower,
        upper=cfg.upper_threshold,
        tracks=tuple(
            TrackView(t.track, engine.tracks.get(t.track, True), t.decrement)
            for t in cfg.weighting_tracks
        ),
        load_balancing=cfg.load_balancing,
        members=_members(engine),
        forwarders=tuple(_forwarder(engine, f) for f in engine.forwarders),
        name=cfg.name,
    )


def _active(engine: GlbpEngine) -> RoleView | None:
    if engine.is_avg:
        return RoleView(None, engine.config.priority, None)
    role = engine.active
    return None if role is None else RoleView(role.ip, role.priority, role.deadline)


def _standby(engine: GlbpEngine) -> RoleView | None:
    if engine.state is VgState.STANDBY:
        return RoleView(None, engine.config.priority, None)
    role = engine.standby
    return None if role is None else RoleView(role.ip, role.priority, role.deadline)


def _members(engine: GlbpEngine) -> tuple[MemberView, ...]:
    if engine.state in (VgState.DISABLED, VgState.INIT):
        return ()
    items = [MemberView(engine.bia, engine.address, True)]
    items += [MemberView(m.mac, m.ip, False) for m in engine.members.values()]
    return tuple(sorted(items, key=lambda m: m.mac))


def _forwarder(engine: GlbpEngine, fwd: Forwarder) -> ForwarderView:
    owned = engine.forwarders.is_mine(fwd)
    remote = fwd.state is not VfState.ACTIVE and fwd.holder_ip is not None
    cfg = engine.config
    return ForwarderView(
        number=fwd.number,
        vmac=fwd.vmac,
        owner_mac=fwd.owner_mac,
        owned=owned,
        state=fwd.state,
        changes=fwd.changes,
        last_change=fwd.last_change,
        holder=fwd.holder_ip if remote else None,
        holder_primary=fwd.holder_priority >= VF_PRIORITY_OWNER,
        holder_weight=fwd.holder_weight if remote else engine.weight,
        holder_deadline=fwd.holder_deadline if remote else None,
        redirect_deadline=None if owned else fwd.redirect_deadline(engine.redirect),
        timeout_deadline=None if owned else fwd.timeout_deadline(engine.timeout),
        redirect=engine.redirect,
        timeout=engine.timeout,
        preempt=cfg.forwarder_preempt,
        preempt_delay=cfg.forwarder_preempt_delay,
        selections=fwd.selections,
    )


__all__ = ["ForwarderView", "GroupView", "MemberView", "RoleView", "TrackView", "snapshot"]
