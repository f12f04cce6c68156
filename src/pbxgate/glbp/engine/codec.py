"""Between the engine's :class:`Message` and the wire codec's :class:`Packet`.

The engine reasons about messages; ``pbxgate.glbp.wire`` owns the byte layout and
``pbxgate.glbp.auth`` signs and verifies. This module is the only place that knows both.
"""

from __future__ import annotations

from functools import lru_cache

from pbxgate.glbp import wire
from pbxgate.glbp.engine.messages import ForwarderPart, HelloPart, Message
from pbxgate.glbp.engine.names import mac_bytes, mac_from_bytes
from pbxgate.glbp.engine.states import VfState, VgState

_ZERO = bytes(6)


def to_packet(message: Message) -> wire.Packet:
    tlvs: list[wire.Tlv] = []
    if message.hello is not None:
        h = message.hello
        tlvs.append(
            wire.Hello(
                wire.VgState(h.state.value),
                h.priority,
                h.hello_ms,
                h.hold_ms,
                h.redirect,
                h.timeout,
                h.virtual_ip,
            )
        )
    for part in message.forwarders:
        state = wire.VfState.NONE if part.state is None else wire.VfState(part.state.value)
        vmac = _ZERO if part.is_request else mac_bytes(part.vmac)
        tlvs.append(wire.ReqResp(part.forwarder, state, part.priority, part.weight, vmac))
    return wire.Packet(message.group, mac_bytes(message.owner_id), tuple(tlvs))


def from_packet(packet: wire.Packet) -> Message:
    """The engine's view of a decoded packet (Auth and unknown TLVs are not its business)."""
    hello = None
    if (h := packet.hello) is not None:
        hello = HelloPart(
            VgState(int(h.vg_state)),
            h.priority,
            h.hello_ms,
            h.hold_ms,
            h.redirect,
            h.timeout,
            h.virtual_ip,
        )
    parts = []
    for item in packet.forwarders:
        code = int(item.vf_state)
        state = VfState(code) if code else None
        forwarder = 0 if item.is_request else item.forwarder
        parts.append(
            ForwarderPart(
                forwarder, state, item.priority, item.weight, mac_from_bytes(item.virtual_mac)
            )
        )
    return Message(packet.group, mac_from_bytes(packet.owner_id), hello, tuple(parts))


@lru_cache(maxsize=65536)
def decode_message(data: bytes) -> tuple[Message, bool]:
    """``data`` as a message, and whether it carries an Auth TLV; raises ``wire.DecodeError``
    or ValueError. Routers repeat the same hello every few seconds, so results are cached.
    """
    packet = wire.decode(data)
    return from_packet(packet), packet.auth is not None


__all__ = ["decode_message", "from_packet", "to_packet"]
