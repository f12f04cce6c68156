"""Steady-state shortcut: a repeated hello that changes nothing but deadlines.

In a converged group every router repeats the same hello every few seconds and each receiver
only pushes deadlines (hold timers, redirect/timeout counts) later. When a hello is the very
same message object as the previous one from that sender (the decode cache returns one object
per distinct packet), and the engine's *epoch* — bumped by every change other than a deadline
moving later — is the one recorded after that previous hello was handled without any such
change, handling it again can only refresh the same deadlines. :class:`Plan` lists them; the
engine applies it instead of the full handler.

The equivalence is tested: every example and scenario produces byte-identical reports with the
shortcut on and off (``tests/glbp/test_engine_fastpath.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from pbxgate.glbp.engine.messages import VF_PRIORITY_OWNER, Message
from pbxgate.glbp.engine.states import VfState, VgState

if TYPE_CHECKING:
    from pbxgate.glbp.engine.forwarders import Forwarder
    from pbxgate.glbp.engine.gateway import GlbpEngine
    from pbxgate.glbp.engine.records import IPAddress, Member


@dataclass(frozen=True, slots=True)
class Plan:
    """What handling ``message`` again would refresh; valid while ``epoch`` is current."""

    message: Message
    src: IPAddress
    epoch: int
    hold: float
    member: Member
    active: bool  # the Active role and its deadline
    standby_role: bool
    standby_deadline: bool
    owners: tuple[Forwarder, ...]  # owner_seen = now
    holders: tuple[Forwarder, ...]  # holder_deadline = now + hold


def make_plan(engine: GlbpEngine, message: Message, src: IPAddress) -> Plan | None:
    """The refreshes the full handler just made for ``message`` (see the module docstring)."""
    hello = message.hello
    member = engine.members.get(message.owner_id)
    if hello is None or member is None:
        return None
    state = engine.state
    them = (hello.priority, int(src))
    better = them > (engine.config.priority, int(engine.address))
    listening = state is VgState.LISTEN
    items = engine.forwarders.items
    owners = []
    holders = []
    for part in message.forwarders:
        fwd = items.get(part.forwarder)
        if fwd is None or part.is_request:
            continue
        if part.priority == VF_PRIORITY_OWNER:
            owners.append(fwd)
        if part.state is VfState.ACTIVE:
            holders.append(fwd)
    return Plan(
        message=message,
        src=src,
        epoch=engine.epoch,
        hold=hello.hold_ms / 1000.0,
        member=member,
        active=hello.state is VgState.ACTIVE and state is not VgState.ACTIVE,
        standby_role=hello.state is VgState.STANDBY,
        standby_deadline=listening
        and (hello.state is VgState.STANDBY or (hello.state is VgState.SPEAK and better)),
        owners=tuple(owners),
        holders=tuple(holders),
    )


def apply_plan(engine: GlbpEngine, plan: Plan, now: float) -> None:
    deadline = now + plan.hold
    calm = engine._calm  # every deadline set below is ``deadline`` or counts from ``now``
    if calm is not None and deadline < calm:
        engine._calm = deadline
    plan.member.deadline = deadline
    if plan.active and engine.active is not None:
        engine.active.deadline = deadline
        engine.active_deadline = deadline
    if plan.standby_role and engine.standby is not None:
        engine.standby.deadline = deadline
    if plan.standby_deadline:
        engine.standby_deadline = deadline
    for fwd in plan.owners:
        fwd.owner_seen = now
    for fwd in plan.holders:
        fwd.holder_deadline = deadline


def remember_bytes(engine: GlbpEngine, data: bytes, message: Message) -> None:
    """After the full handler: key the message's plan (if it made one) by the packet bytes."""
    plan = engine._plans.get(message.owner_id)
    if plan is not None and plan.message is message and plan.epoch == engine.epoch:
        if len(engine._data_plans) > 64:
            engine._data_plans.clear()  # old hellos of peers whose state changed
        engine._data_plans[data] = plan


__all__ = ["Plan", "apply_plan", "make_plan", "remember_bytes"]
