"""Build small GLBP LANs in a few lines (tests, the benchmark and the examples use it)."""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from ipaddress import IPv4Address, ip_address

from pbxgate.glbp.config import GlbpGroupConfig
from pbxgate.glbp.engine import GlbpEngine
from pbxgate.glbp.sim.network import Network, Node


@dataclass(frozen=True)
class RouterSpec:
    """One router of a one-group LAN: name, address, burned-in MAC and group settings."""

    name: str
    address: str
    mac: str
    config: GlbpGroupConfig
    interface: str = "Ethernet0/0"


def group_config(group: int = 1, vip: str = "192.168.0.254", **changes: object) -> GlbpGroupConfig:
    """An enabled group with ``vip``; ``changes`` override any field (priority=110, ...)."""
    base = GlbpGroupConfig(group=group, enabled=True, virtual_ip=IPv4Address(vip))
    return replace(base, **changes)  # type: ignore[arg-type]


def make_engine(spec: RouterSpec, now: float, seed: int, debug: bool = False) -> GlbpEngine:
    return GlbpEngine(
        interface=spec.interface,
        address=ip_address(spec.address),
        bia=spec.mac,
        config=spec.config,
        now=now,
        rng=random.Random(f"{seed}/{spec.name}/{spec.config.group}"),
        debug=debug,
    )


def power_on(net: Network, spec: RouterSpec, seed: int = 0, segment: str = "lan") -> Node:
    """Boot ``spec`` on ``net`` at the current virtual time."""
    return net.attach(Node(spec.name, make_engine(spec, net.now, seed), segment))


def routers(count: int, group: int = 1, **changes: object) -> list[RouterSpec]:
    """``count`` routers R1..Rn on 192.168.0.1.. with MACs aabb.cc00.n000 and equal settings."""
    config = group_config(group, "192.168.0.254", **changes)
    return [
        RouterSpec(f"R{n}", f"192.168.0.{n}", f"aabb.cc00.{n:x}000", config)
        for n in range(1, count + 1)
    ]


__all__ = ["RouterSpec", "group_config", "make_engine", "power_on", "routers"]
