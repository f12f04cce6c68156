"""The GLBP simulator: a virtual LAN of engines, a topology file and a scenario timeline."""

from pbxgate.glbp.sim.console import SimConsole, settle_time, single_router
from pbxgate.glbp.sim.network import (
    Frame,
    LoggedEvent,
    Network,
    Node,
    Transport,
    WireTransport,
)
from pbxgate.glbp.sim.runner import SimResult, Simulation, run_simulation
from pbxgate.glbp.sim.topology import Topology, load_topology, parse_topology

__all__ = [
    "Frame",
    "LoggedEvent",
    "Network",
    "Node",
    "SimConsole",
    "SimResult",
    "Simulation",
    "Topology",
    "Transport",
    "WireTransport",
    "load_topology",
    "parse_topology",
    "run_simulation",
    "settle_time",
    "single_router",
]
