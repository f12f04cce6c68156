"""An IOS console on one simulated router: the driver behind ``pbxgate glbp shell``.

The simulation runs on its virtual clock up to a chosen time; from then on the router's own
:class:`~pbxgate.glbp.ios.IosState` (the one the timeline's ``show`` and ``command`` actions
use) answers typed commands. ``show glbp``/``show track`` render the live engines at the
virtual ``now``; a line that changes the configuration (or ``debug``) is pushed into the
engines by :meth:`Simulation.apply_config`, exactly as a timeline ``command`` action is. Two
exec commands drive the clock: ``sim wait SECONDS`` (the rest of the timeline keeps playing,
and the report lines of the stretch are printed) and ``sim time``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from pbxgate.errors import InputError
from pbxgate.glbp.config import DEFAULT_HOLD, RouterConfig
from pbxgate.glbp.ios import IosState, Mode
from pbxgate.glbp.ios.shell import ExecExtension
from pbxgate.glbp.sim.runner import Simulation, format_time
from pbxgate.glbp.sim.topology import RouterDef, Topology, with_macs

# A Listen router speaks after one hold time without hearing an Active, becomes Active or
# Standby after one more, the Standby is elected within the next, and forwarders are handed
# out by the AVG's next hellos: four hold times after the last boot the group has settled
# (the article's LAN, default timers, settles at 30 s).
SETTLE_HOLDS = 4

SIM_HELP = {
    "sim": "Simulated network: virtual clock (pbxgate glbp shell)",
    "wait": "Advance the virtual clock, replaying the topology's timeline",
    "seconds": "Seconds of simulated time",
    "time": "Show the virtual clock",
}


def settle_time(topology: Topology) -> float:
    """When the topology's groups have settled, capped by the end of its timeline."""
    boots = [r.boot for r in topology.routers if r.boot is not None]
    holds = [
        group.hold
        for router in topology.routers
        for iface in router.config.interfaces
        for group in iface.glbp
    ]
    settled = max(boots, default=0.0) + SETTLE_HOLDS * max(holds, default=DEFAULT_HOLD)
    return min(settled, topology.duration)


def single_router(config: RouterConfig, *, source: str) -> Topology:
    """A one-router lab for a bare IOS configuration file (interfaces on segment ``lan``)."""
    router = RouterDef(config.hostname, with_macs(config, 0), {}, 0.0, False)
    lab = Topology(seed=0, duration=float("inf"), routers=(router,), hosts=(), events=())
    return replace(lab, duration=settle_time(lab), source=source)


class SimConsole:
    """One router's console over a :class:`Simulation`; pass :meth:`execute` to the shell."""

    def __init__(self, topology: Topology, router: str, at: float | None = None) -> None:
        names = [r.name for r in topology.routers]
        if router not in names:
            raise InputError(
                f"{topology.source}: no router named {router!r}",
                hint=f"choose one of {', '.join(names)}",
            )
        if at is not None and at < 0:
            raise InputError(f"--at {at:g}: the virtual clock starts at 0")
        self.simulation = Simulation(topology)
        self.router = router
        self.simulation.run_until(settle_time(topology) if at is None else at)
        self._shown = len(self.simulation.lines)
        self._extension = ExecExtension()
        self._extension.add("sim wait {seconds:0-86400}", self._wait, SIM_HELP)
        self._extension.add("sim time", self._time, SIM_HELP)

    @property
    def state(self) -> IosState:
        return self.simulation.routers[self.router].ios

    @property
    def now(self) -> float:
        return self.simulation.net.now

    def execute(self, state: IosState, mode: Mode, line: str) -> tuple[Mode | None, str]:
        """Run one typed line; push a configuration or debug change into the engines."""
        before = (state.config, frozenset(state.debugs))
        mode_after, output = self._extension(state, mode, line)
        if (state.config, frozenset(state.debugs)) != before:
            self.simulation.apply_config(self.router)
            output += self._news()
        return mode_after, output

    def _wait(self, values: Mapping[str, Any]) -> str:
        self.simulation.run_until(self.now + int(values["seconds"]))
        return self._time(values)

    def _time(self, values: Mapping[str, Any]) -> str:
        return self._news() + f"Virtual clock {format_time(self.now)}\n"

    def _news(self) -> str:
        """Report lines not shown yet: the LAN's log lines and the timeline's output."""
        lines = self.simulation.lines[self._shown :]
        self._shown = len(self.simulation.lines)
        return "".join(f"{line}\n" for line in lines)


__all__ = ["SETTLE_HOLDS", "SimConsole", "settle_time", "single_router"]
