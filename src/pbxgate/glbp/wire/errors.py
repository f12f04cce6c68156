"""The one error the GLBP codec raises on receipt: :class:`DecodeError`."""

from __future__ import annotations

from pbxgate.errors import InputError


class DecodeError(InputError):
    """A received GLBP packet is malformed; ``reason`` says where. Count it and drop it."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"malformed GLBP packet: {reason}")
        self.reason = reason


__all__ = ["DecodeError"]
