"""What the IOS command executor works on: the router state, the mode, and a command context."""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pbxgate.glbp.config import RouterConfig

# ``show glbp ...``, ``show track`` and ``debug ...`` are answered by the caller (the engine
# owner renders them): it gets the full words (``("show", "glbp", "Ethernet0/0", "brief")``)
# and the configuration, and returns the text to print.
ShowHandler = Callable[[tuple[str, ...], RouterConfig], str]


class ModeKind(enum.Enum):
    """IOS modes and their prompt suffixes."""

    USER_EXEC = ">"
    PRIV_EXEC = "#"
    CONFIG = "(config)#"
    CONFIG_IF = "(config-if)#"
    CONFIG_KEYCHAIN = "(config-keychain)#"
    CONFIG_KEYCHAIN_KEY = "(config-keychain-key)#"


@dataclass(frozen=True)
class Mode:
    kind: ModeKind = ModeKind.USER_EXEC
    interface: str | None = None  # config-if: the full interface name
    key_chain: str | None = None  # config-keychain(-key)
    key_id: int | None = None  # config-keychain-key

    @property
    def is_config(self) -> bool:
        return self.kind not in (ModeKind.USER_EXEC, ModeKind.PRIV_EXEC)


EXEC = Mode(ModeKind.PRIV_EXEC)
CONFIG = Mode(ModeKind.CONFIG)


@dataclass
class IosState:
    """The router as the executor sees it: its configuration and the caller's show handler.

    ``startup`` is the configuration saved by ``write memory`` / ``copy running-config
    startup-config`` (None until the first save: ``startup-config is not present``).
    """

    config: RouterConfig = field(default_factory=RouterConfig)
    show: ShowHandler | None = None
    debugs: set[str] = field(default_factory=set)
    startup: RouterConfig | None = None

    def prompt(self, mode: Mode | None) -> str:
        return "" if mode is None else f"{self.config.hostname}{mode.kind.value}"


@dataclass
class Context:
    """Handed to every command handler; handlers change ``state.config`` and ``mode``."""

    state: IosState
    mode: Mode | None
    values: Mapping[str, Any]
    words: tuple[str, ...]
    output: list[str] = field(default_factory=list)
    error: str | None = None

    def fail(self, message: str) -> None:
        """A command that parsed but cannot be applied: IOS prints a ``%`` line."""
        self.error = message
        self.output.append(message)


__all__ = ["CONFIG", "EXEC", "Context", "IosState", "Mode", "ModeKind", "ShowHandler"]
