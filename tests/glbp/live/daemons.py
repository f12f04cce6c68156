"""``pbxgate glbp run`` in a lab's router namespaces: start, stop, ask, read logs."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from dataclasses import dataclass, field, replace
from ipaddress import IPv4Interface
from pathlib import Path
from typing import Any

from pbxgate.glbp.config import InterfaceConfig
from pbxgate.glbp.daemon import Client
from pbxgate.glbp.engine import VfState
from pbxgate.glbp.ios import parse_config
from pbxgate.glbp.ios.names import HOST_INTERFACES
from pbxgate.glbp.sim.runner import Simulation
from pbxgate.glbp.sim.topology import EventDef, RouterDef, Topology
from tests.glbp.live.netns import Lab, wait_for

PBXGATE = str(Path(sys.executable).with_name("pbxgate"))
VIP = "192.168.0.254"

# Fast timers keep each failover short in CI; docs/benchmarks.md measures the default ones.
FAST = " glbp 1 timers msec 200 msec 700\n"


def config(
    name: str,
    priority: int = 100,
    *,
    extra: str = "",
    timers: str = FAST,
    track: bool = True,
) -> str:
    """One router's IOS configuration: group 1 on eth0, weighting tracking the uplink eth1."""
    lines = [f"hostname {name}"]
    if track:
        lines.append("track 1 interface eth1 line-protocol")
    lines += ["interface eth0", f" glbp 1 ip {VIP}", f" glbp 1 priority {priority}"]
    text = "\n".join(lines) + "\n" + timers
    if track:
        text += " glbp 1 weighting 100 lower 80 upper 95\n glbp 1 weighting track 1 decrement 30\n"
    return text + extra


@dataclass
class Daemon:
    """One router's daemon: its files in the lab's workdir and the running process."""

    lab: Lab
    router: str
    text: str
    proc: subprocess.Popen[Any] | None = None
    runs: list[Path] = field(default_factory=list)

    @property
    def config_path(self) -> Path:
        return self.lab.workdir / f"{self.router}.cfg"

    @property
    def control(self) -> Path:
        return self.lab.workdir / f"{self.router}.sock"

    @property
    def ledger(self) -> Path:
        return self.lab.workdir / f"{self.router}.ledger"

    def start(self) -> Daemon:
        if not self.config_path.exists():
            self.config_path.write_text(self.text, encoding="utf-8")
        self.proc = self.lab.popen(
            self.router,
            PBXGATE,
            "glbp",
            "run",
            str(self.config_path),
            "--control",
            str(self.control),
            "--ledger",
            str(self.ledger),
            "--debug-log",
        )
        self.runs.append(self.lab.logs[self.proc.pid])
        return self

    def stop(self, sig: int = signal.SIGTERM) -> int:
        assert self.proc is not None
        code = self.lab.stop(self.proc, sig)
        self.proc = None
        return code

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def log(self) -> str:
        """This run's log (the last start)."""
        return self.runs[-1].read_text(errors="replace") if self.runs else ""

    def console(self, *lines: str) -> list[str]:
        """Run console lines on the daemon; their outputs."""
        with Client(self.control) as client:
            return [client.execute(line)[0] for line in lines]

    def brief(self) -> list[list[str]]:
        """``show glbp brief`` rows, split into cells (header dropped)."""
        out = self.console("show glbp brief")[0]
        return [row.split() for row in out.splitlines()[1:] if row.strip()]

    def role(self) -> str:
        """The group's VG state (Active, Standby, Listen, ...), or "" while unreachable."""
        try:
            rows = self.brief()
        except Exception:  # not up yet
            return ""
        return next((row[4] for row in rows if row[2] == "-"), "")

    def vmacs(self) -> dict[str, str]:
        """The daemon's virtual-MAC interfaces: name -> MAC."""
        links = json.loads(self.lab.run(self.router, "ip", "-j", "link", "show").stdout)
        return {
            link["ifname"]: link["address"] for link in links if link["ifname"].startswith("glbp")
        }


def tshark(pcap: Path, *args: str) -> list[str]:
    """The lines tshark prints reading ``pcap`` with ``args``."""
    argv = ["tshark", "-r", str(pcap), *args]
    done = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=60)
    return done.stdout.splitlines()


def assert_no_expert_errors(pcap: Path) -> None:
    """Wireshark's expert info finds nothing malformed and no error in ``pcap``."""
    expert = "\n".join(tshark(pcap, "-q", "-z", "expert,warn"))
    assert "Malformed" not in expert and "Error" not in expert, expert


def start_all(lab: Lab, texts: dict[str, str]) -> dict[str, Daemon]:
    return {name: Daemon(lab, name, text).start() for name, text in texts.items()}


Roles = dict[str, tuple[str, int]]  # router -> (VG state, forwarders it is Active for)


def live_roles(daemons: dict[str, Daemon]) -> Roles:
    return {name: (d.role(), len(d.vmacs())) for name, d in daemons.items()}


def _address(lab: Lab, router: str, ifname: str) -> IPv4Interface:
    shown = lab.run(router, "ip", "-o", "-4", "addr", "show", ifname).stdout.split()
    return IPv4Interface(shown[3])


def same_roles(daemons: dict[str, Daemon], expected: Roles, skip: tuple[str, ...] = ()) -> Roles:
    """Wait until the live routers (but ``skip``) are in ``expected`` roles; the last seen."""

    def seen() -> Roles:
        return {n: r for n, r in live_roles(daemons).items() if n not in skip}

    wanted = {n: r for n, r in expected.items() if n not in skip}
    try:
        return wait_for(lambda: (now := seen()) == wanted and now, 5, what="the simulated roles")
    except AssertionError:
        assert seen() == wanted  # the difference, shown by pytest
        raise


def simulated_roles(lab: Lab, texts: dict[str, str], *, dead: tuple[str, ...] = ()) -> Roles:
    """The same routers, configurations, addresses and MACs in the simulator: the roles each
    ends in after the groups settle (``dead`` routers powered off once they have)."""
    routers = []
    for name, text in texts.items():
        token = HOST_INTERFACES.set(frozenset({"eth0", "eth1"}))
        try:
            parsed = parse_config(text)
        finally:
            HOST_INTERFACES.reset(token)
        lan = replace(
            parsed.interfaces[0],
            address=_address(lab, name, "eth0"),
            mac_address=lab.mac(name, "eth0"),
        )
        uplink = InterfaceConfig("eth1", address=_address(lab, name, "eth1"))
        config = replace(parsed, interfaces=(lan, uplink))
        routers.append(RouterDef(name, config, {"eth1": f"up-{name}"}, 0.0, False))
    events = tuple(EventDef(20.0, "power-off", router=name) for name in dead)
    topology = Topology(seed=1, duration=40.0, routers=tuple(routers), hosts=(), events=events)
    simulation = Simulation(topology)
    simulation.run_until(topology.duration)
    out: Roles = {}
    for name, router in simulation.routers.items():
        engines = [node.engine for node in router.nodes]
        state = engines[0].state.label if engines else ""
        active = sum(
            1 for e in engines for f in e.forwarders.items.values() if f.state is VfState.ACTIVE
        )
        out[name] = (state, active)
    return out


__all__ = [
    "FAST",
    "PBXGATE",
    "VIP",
    "Daemon",
    "assert_no_expert_errors",
    "config",
    "live_roles",
    "same_roles",
    "simulated_roles",
    "start_all",
    "tshark",
]
