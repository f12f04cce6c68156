"""Events an engine reports: each carries its IOS log line.

Formats (REF §3, JTD real output):
``%GLBP-6-STATECHANGE: FastEthernet0/0 Grp 1 state Standby -> Active``,
``%GLBP-6-FWDSTATECHANGE: Ethernet0/0 Grp 1 Fwd 1 state Listen -> Active`` and
``%GLBP-4-BADAUTH: Bad authentication received from 10.30.30.4, group 30`` (LAB).
``debug glbp`` lines (``GLBP: Fa0/0 1 Standby: g/Active timer expired (10.10.10.3)``) are
:class:`DebugEvent`.
"""

from __future__ import annotations

from dataclasses import dataclass

from pbxgate.glbp.engine.states import VfState, VgState


@dataclass(frozen=True, slots=True)
class StateChange:
    time: float
    interface: str
    group: int
    old: VgState
    new: VgState

    @property
    def log_line(self) -> str:
        return (
            f"%GLBP-6-STATECHANGE: {self.interface} Grp {self.group} "
            f"state {self.old.label} -> {self.new.label}"
        )


@dataclass(frozen=True, slots=True)
class FwdStateChange:
    time: float
    interface: str
    group: int
    forwarder: int
    old: VfState
    new: VfState

    @property
    def log_line(self) -> str:
        return (
            f"%GLBP-6-FWDSTATECHANGE: {self.interface} Grp {self.group} Fwd {self.forwarder} "
            f"state {self.old.label} -> {self.new.label}"
        )


@dataclass(frozen=True, slots=True)
class BadAuth:
    time: float
    source: str
    group: int

    @property
    def log_line(self) -> str:
        return (
            f"%GLBP-4-BADAUTH: Bad authentication received from {self.source}, group {self.group}"
        )


@dataclass(frozen=True, slots=True)
class DebugEvent:
    """A ``debug glbp`` line without its timestamp."""

    time: float
    text: str

    @property
    def log_line(self) -> str:
        return self.text


Event = StateChange | FwdStateChange | BadAuth | DebugEvent

__all__ = ["BadAuth", "DebugEvent", "Event", "FwdStateChange", "StateChange"]
