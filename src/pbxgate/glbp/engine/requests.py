"""Forwarder requests: a router without a forwarder asks the AVG, the AVG assigns a number.

No packet format for this exchange is published (REF §6 "Open: request/assignment
exchange"). We follow ANSA: a Request/Response TLV with forwarder 0 and a zero vMAC, sent
unicast to the AVG; the AVG answers with a Request/Response TLV carrying the number and vMAC,
without a Hello TLV, unicast to the requester (74-byte frames, REF §2 "Compositions").
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pbxgate.glbp.engine.messages import ZERO_MAC, ForwarderPart, Message
from pbxgate.glbp.engine.names import MAX_FORWARDERS
from pbxgate.glbp.engine.records import IPAddress, Outgoing

if TYPE_CHECKING:
    from pbxgate.glbp.engine.gateway import GlbpEngine


def schedule_request(engine: GlbpEngine, now: float) -> None:
    """Ask the AVG for a forwarder once we have listened for one hold time."""
    engine._touch()
    if engine.forwarders.owned() is not None or engine.is_avg:
        engine.request_at = None
        return
    engine.request_at = max(now, engine._listen_since + engine.config.hold)


def send_request(engine: GlbpEngine, now: float) -> None:
    engine.request_at = None
    if engine.forwarders.owned() is not None or engine.active is None or not engine._weight_ok:
        return
    part = ForwarderPart(0, None, 0, engine._weight, ZERO_MAC)
    message = Message(engine.group, engine.bia, None, (part,))
    engine._out.append(Outgoing(message, engine.active.ip))
    # Retried until assigned. The AVG may remember us as the owner of a number even when
    # four are known, so we always ask; a 5th router then asks only every few hold times.
    full = len(engine.forwarders) >= MAX_FORWARDERS
    engine.request_at = now + (3 * engine.hold if full else engine.hello)


def on_assignment_or_request(
    engine: GlbpEngine, message: Message, src: IPAddress, now: float
) -> None:
    for part in message.forwarders:
        if part.is_request and engine.is_avg:
            fwd = engine.forwarders.allocate(message.owner_id, src, now)
            if fwd is not None:
                reply = ForwarderPart(fwd.number, fwd.state, 0, engine._weight, fwd.vmac)
                out = Message(engine.group, engine.bia, None, (reply,))
                engine._out.append(Outgoing(out, src))
        elif is_my_assignment(engine, part, src):
            engine.forwarders.assigned(part.forwarder, now)
            engine.request_at = None
            engine.next_hello = now


def is_my_assignment(engine: GlbpEngine, part: ForwarderPart, src: IPAddress) -> bool:
    return (
        not part.is_request
        and engine.active is not None
        and src == engine.active.ip
        and engine.forwarders.owned() is None
        and engine._weight_ok
    )


__all__ = ["on_assignment_or_request", "schedule_request", "send_request"]
