"""IOS configuration layer for GLBP: parse IOS text, render it back, execute typed commands.

``parse_config(text) -> RouterConfig`` reads a configuration file; ``render_config`` and
``show_running_config`` print one; ``execute(state, mode, line) -> (mode, output)`` is the pure
command executor shared by ``pbxgate glbp shell`` and the simulator.
"""

from __future__ import annotations

from pbxgate.glbp.ios.executor import IosConfigError, Result, execute, parse_config, run
from pbxgate.glbp.ios.names import expand_interface, short_interface
from pbxgate.glbp.ios.render import group_lines, render_config, show_running_config
from pbxgate.glbp.ios.state import CONFIG, EXEC, IosState, Mode, ModeKind, ShowHandler

__all__ = [
    "CONFIG",
    "EXEC",
    "IosConfigError",
    "IosState",
    "Mode",
    "ModeKind",
    "Result",
    "ShowHandler",
    "execute",
    "expand_interface",
    "group_lines",
    "parse_config",
    "render_config",
    "run",
    "short_interface",
    "show_running_config",
]
