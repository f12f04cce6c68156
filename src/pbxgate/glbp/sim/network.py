"""A virtual LAN that drives GLBP engines on a virtual clock.

Theory of operation: one heap of ``(time, seq, action)``. An engine's timer is an entry that
is invalidated (by a version number) whenever the engine is touched; a sent message is an
entry delivered to the other engines of the same segment (multicast) or to the one owning the
destination address (unicast). Everything happens in heap order, so a run with the same inputs
and seed replays exactly. The network is one of two drivers of the engine (the other is the
live daemon); it is shared by the simulator, the tests and the benchmark.

Messages travel either as engine messages (fast; used by the benchmark) or, when a
``Transport`` is given, as bytes through the wire codec and authentication, which is what the
simulator and ``--pcap`` use.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address
from typing import Protocol

from pbxgate.glbp.engine import Event, GlbpEngine, Message, Outgoing

IPAddress = IPv4Address | IPv6Address
_Sent = tuple[Outgoing, bytes | None]  # a message on its way and its bytes (None: no codec)


class Transport(Protocol):
    """Turns an outgoing message into bytes and feeds received bytes to an engine."""

    def encode(self, sender: GlbpEngine, out: Outgoing) -> bytes | None: ...

    def deliver(self, receiver: GlbpEngine, data: bytes, src: IPAddress, now: float) -> None: ...


class WireTransport:
    """Every message goes through the wire codec and authentication, like on a real LAN."""

    def encode(self, sender: GlbpEngine, out: Outgoing) -> bytes | None:
        return sender.encode(out)

    def deliver(self, receiver: GlbpEngine, data: bytes, src: IPAddress, now: float) -> None:
        receiver.receive_packet(data, src, now)


@dataclass(slots=True)
class Node:
    """One engine (router ``name``, one group) attached to ``segment``."""

    name: str
    engine: GlbpEngine
    segment: str = "lan"
    powered: bool = True
    version: int = 0
    scheduled: float | None = None


@dataclass(frozen=True, slots=True)
class LoggedEvent:
    time: float
    router: str
    event: Event


@dataclass(frozen=True, slots=True)
class Frame:
    """A GLBP packet on the wire, for pcap output and counting."""

    time: float
    sender: str
    src: IPAddress
    src_mac: str
    destination: IPAddress | None
    message: Message
    data: bytes | None
    segment: str = "lan"


@dataclass
class Network:
    """The virtual clock, the event heap and the attached engines."""

    now: float = 0.0
    transport: Transport | None = None
    nodes: list[Node] = field(default_factory=list)
    events: list[LoggedEvent] = field(default_factory=list)
    on_frame: Callable[[Frame], None] | None = None
    keep_events: bool = True
    delivered: int = 0
    _segments: dict[str, list[Node]] = field(default_factory=dict)
    _heap: list[tuple[float, int, int, Node, _Sent | None]] = field(default_factory=list)
    _seq: itertools.count[int] = field(default_factory=itertools.count)

    def attach(self, node: Node) -> Node:
        self.nodes.append(node)
        self._segments.setdefault(node.segment, []).append(node)
        self.service(node)
        return node

    def detach(self, node: Node) -> None:
        """Power off: the engine vanishes without a word (its peers notice by hold time)."""
        node.powered = False
        node.version += 1
        self._segments[node.segment].remove(node)

    def node(self, name: str, group: int | None = None) -> Node:
        for item in self.nodes:
            if item.name == name and item.powered and group in (None, item.engine.group):
                return item
        raise KeyError(name)

    def service(self, node: Node) -> None:
        """Collect what ``node`` wants to send and log; re-arm its timer."""
        if not node.powered:
            return
        engine = node.engine
        # the events first: a state change is logged before the hello that announces it
        self._collect(node)
        for out in engine.messages_to_send():
            self._send(node, out)
        self._collect(node)
        when = engine.get_timer()
        # One live heap entry per node: push only when the timer moved earlier. An entry left
        # behind by a timer that moved later fires early, which handle_timer tolerates.
        if when is not None and (node.scheduled is None or when < node.scheduled):
            when = max(when, self.now)
            node.version += 1
            node.scheduled = when
            heapq.heappush(self._heap, (when, next(self._seq), node.version, node, None))

    def _collect(self, node: Node) -> None:
        engine = node.engine
        while (event := engine.next_event()) is not None:
            if self.keep_events:
                self.events.append(LoggedEvent(event.time, node.name, event))

    def _send(self, node: Node, out: Outgoing) -> None:
        engine = node.engine
        transport = self.transport
        if type(transport) is WireTransport:
            data: bytes | None = engine.encode(out)  # WireTransport.encode, one hop fewer
            if data is None:
                return  # cannot be signed yet (a key chain without a key): nothing leaves
        else:
            data = transport.encode(engine, out) if transport is not None else None
        if self.on_frame is not None:
            self.on_frame(
                Frame(
                    self.now,
                    node.name,
                    engine.address,
                    engine.bia,
                    out.destination,
                    out.message,
                    data,
                    node.segment,
                )
            )
        # The heap carries a plain tuple: a Frame is built only for an on_frame listener.
        heapq.heappush(self._heap, (self.now, next(self._seq), 0, node, (out, data)))

    def _deliver(self, sender: Node, out: Outgoing, data: bytes | None) -> None:
        now = self.now
        src = sender.engine.address
        destination = out.destination
        group = out.message.group
        transport = self.transport if data is not None else None
        # WireTransport.deliver is receive_packet: call it without the extra hop.
        direct = type(transport) is WireTransport
        delivered = 0
        if not sender.engine.interface_up:
            return  # its interface went down while the frame waited: it never left
        for node in self._segments.get(sender.segment, ()):
            if node is sender or not node.powered or not node.engine.interface_up:
                continue  # a shut or unplugged interface hears nothing
            engine = node.engine
            if destination is not None and engine.address != destination:
                continue
            if engine.group != group:
                continue
            delivered += 1
            if direct:
                engine.receive_packet(data, src, now)  # type: ignore[arg-type]
            elif transport is not None:
                transport.deliver(engine, data, src, now)  # type: ignore[arg-type]
            else:
                engine.receive_message(out.message, src, now)
            if not engine.settled:  # only deadlines moved later: nothing to collect
                self.service(node)
        self.delivered += delivered

    def run_until(self, until: float) -> None:
        """Process everything due up to and including ``until``; the clock ends at ``until``."""
        heap = self._heap
        while heap and heap[0][0] <= until:
            when, _seq, version, node, sent = heapq.heappop(heap)
            self.now = when
            if sent is not None:
                if node.powered:
                    self._deliver(node, *sent)
                continue
            if node.powered and version == node.version:
                node.scheduled = None
                node.engine.handle_timer(when)
                self.service(node)
        self.now = until

    def run_for(self, seconds: float) -> None:
        self.run_until(self.now + seconds)


__all__ = ["Frame", "LoggedEvent", "Network", "Node", "Transport", "WireTransport"]
