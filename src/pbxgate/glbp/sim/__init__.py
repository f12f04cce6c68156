"""The GLBP simulator: a virtual LAN of engines, a topology file and a scenario timeline."""

from pbxgate.glbp.sim.network import (
    Frame,
    LoggedEvent,
    Network,
    Node,
    Transport,
    WireTransport,
)

__all__ = ["Frame", "LoggedEvent", "Network", "Node", "Transport", "WireTransport"]
