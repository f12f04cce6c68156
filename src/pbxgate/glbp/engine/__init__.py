"""The GLBP engine: one sans-I/O state machine per router and group (see ``gateway.py``)."""

from pbxgate.glbp.engine.balancing import Balancer, Candidate, host_dependent
from pbxgate.glbp.engine.errors import GlbpEngineError, GlbpStateError
from pbxgate.glbp.engine.events import BadAuth, DebugEvent, Event, FwdStateChange, StateChange
from pbxgate.glbp.engine.forwarders import Forwarder, ForwarderTable
from pbxgate.glbp.engine.gateway import Counters, Datagram, GlbpEngine, Member, Outgoing, Role
from pbxgate.glbp.engine.messages import (
    VF_PRIORITY_OWNER,
    VF_PRIORITY_SECONDARY,
    ForwarderPart,
    HelloPart,
    Message,
)
from pbxgate.glbp.engine.names import normalize_mac, short_interface, virtual_mac
from pbxgate.glbp.engine.states import VfInput, VfState, VgInput, VgState, apply_vf, apply_vg

__all__ = [
    "VF_PRIORITY_OWNER",
    "VF_PRIORITY_SECONDARY",
    "BadAuth",
    "Balancer",
    "Candidate",
    "Counters",
    "Datagram",
    "DebugEvent",
    "Event",
    "Forwarder",
    "ForwarderPart",
    "ForwarderTable",
    "FwdStateChange",
    "GlbpEngine",
    "GlbpEngineError",
    "GlbpStateError",
    "HelloPart",
    "Member",
    "Message",
    "Outgoing",
    "Role",
    "StateChange",
    "VfInput",
    "VfState",
    "VgInput",
    "VgState",
    "apply_vf",
    "apply_vg",
    "host_dependent",
    "normalize_mac",
    "short_interface",
    "virtual_mac",
]
