"""Errors of the GLBP engine.

    PbxgateError
    └── GlbpEngineError           the engine was driven wrongly (a bug in the caller or engine)
        └── GlbpStateError        an input that is illegal in the current state

Bad packets from the network are never raised: they are counted and dropped (STYLE habit 4).
"""

from __future__ import annotations

from pbxgate.errors import PbxgateError


class GlbpEngineError(PbxgateError):
    """The engine was driven in a way its tables do not allow."""


class GlbpStateError(GlbpEngineError):
    """``(state, input)`` is not in the table; the message names both."""

    def __init__(self, machine: str, state: str, event: str) -> None:
        super().__init__(f"{machine}: input {event} is illegal in state {state}")
        self.machine = machine
        self.state = state
        self.event = event


__all__ = ["GlbpEngineError", "GlbpStateError"]
