"""The simulator's topology file (TOML): routers with IOS configurations, hosts, a timeline.

Example (``examples/glbp/article.toml``)::

    seed = 1
    duration = 600

    [[router]]
    name = "R2"
    config = "R2.cfg"                      # IOS text, relative to this file (or inline)
    links = { "Ethernet0/0" = "lan", "Ethernet0/1" = "isp1" }
    boot = 0                               # power-on time, seconds (default 0)
    debug = false                          # log "debug glbp" lines for this router

    [[host]]
    name = "PC"                            # with count > 1: PC1, PC2, ...
    mac = "0050.7966.6801"                 # incremented per host
    ip = "192.168.0.11"                    # incremented per host
    count = 4
    segment = "lan"
    gateway = "192.168.0.254"              # default: the first virtual IP of the segment

    [[event]]
    at = 120
    action = "power-off"                   # power-on | power-off | link-down | link-up |
    router = "R2"                          # arp | traffic | show | command
    # link-down/up: router + interface, or segment = "isp1" (every interface on it)
    # arp / traffic: host = "PC1" or "all"; traffic takes packets = N (per host)
    # show: router + command ("show glbp brief"); command: router + lines = [...]

Interfaces not listed in ``links`` are on segment ``lan``. A ``track N interface X
line-protocol`` object follows interface X: down when the interface is shut down, its link is
down or the router is off.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, replace
from ipaddress import IPv4Address, ip_address
from pathlib import Path
from typing import Any

from pbxgate.errors import InputError
from pbxgate.glbp.config import RouterConfig
from pbxgate.glbp.engine.names import mac_from_int, normalize_mac
from pbxgate.glbp.ios import IosConfigError, parse_config

ACTIONS = (
    "power-on",
    "power-off",
    "link-down",
    "link-up",
    "arp",
    "traffic",
    "show",
    "command",
)


@dataclass(frozen=True)
class RouterDef:
    name: str
    config: RouterConfig
    links: dict[str, str]
    boot: float | None
    debug: bool


@dataclass(frozen=True)
class HostDef:
    name: str
    mac: str
    ip: IPv4Address
    segment: str
    gateway: IPv4Address | None


@dataclass(frozen=True)
class EventDef:
    at: float
    action: str
    router: str | None = None
    interface: str | None = None
    segment: str | None = None
    host: str | None = None
    packets: int = 1
    command: str | None = None
    lines: tuple[str, ...] = ()


@dataclass(frozen=True)
class Topology:
    seed: int
    duration: float
    routers: tuple[RouterDef, ...]
    hosts: tuple[HostDef, ...]
    events: tuple[EventDef, ...]
    source: str = "topology"


def load_topology(path: Path) -> Topology:
    """Read and check a topology file; any problem is one :class:`InputError` line."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not valid TOML: {exc}") from exc
    return parse_topology(data, base=path.parent, source=str(path))


def parse_topology(data: dict[str, Any], *, base: Path, source: str = "topology") -> Topology:
    routers = tuple(_router(r, base, source, i) for i, r in enumerate(_tables(data, "router")))
    if not routers:
        raise InputError(f"{source}: no [[router]] tables", hint="add at least one router")
    names = [r.name for r in routers]
    if len(set(names)) != len(names):
        raise InputError(f"{source}: router names must be unique")
    hosts = tuple(h for item in _tables(data, "host") for h in _hosts(item, source))
    events = tuple(
        _event(e, source, set(names), {h.name for h in hosts}) for e in _tables(data, "event")
    )
    return Topology(
        seed=_int(data.get("seed", 0), "seed", source),
        duration=_num(data.get("duration", 300), "duration", source),
        routers=routers,
        hosts=hosts,
        events=tuple(sorted(events, key=lambda e: e.at)),
        source=source,
    )


def _tables(data: dict[str, Any], key: str) -> list[dict[str, Any]]:
    items = data.get(key, [])
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise InputError(f"topology: '{key}' must be an array of tables ([[{key}]])")
    return items


def _router(item: dict[str, Any], base: Path, source: str, index: int) -> RouterDef:
    name = _str(item.get("name"), "router name", source)
    text = item.get("config")
    if not isinstance(text, str):
        raise InputError(f'{source}: router {name} needs config = "FILE" or inline IOS text')
    where = f"{source} router {name}"
    if "\n" not in text:
        path = base / text
        where = str(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise InputError(f"{source}: router {name}: cannot read {path}") from exc
    try:
        config = parse_config(text, source=where, skipped=[])
    except IosConfigError as exc:
        raise InputError(str(exc)) from exc
    config = with_macs(config, index)
    links = item.get("links", {})
    if not isinstance(links, dict):
        raise InputError(f"{source}: router {name}: links must be a table")
    boot = item.get("boot", 0)
    return RouterDef(
        name,
        config,
        {str(k): str(v) for k, v in links.items()},
        None if boot is False else _num(boot, "boot", source),
        bool(item.get("debug", False)),
    )


def with_macs(config: RouterConfig, index: int) -> RouterConfig:
    """Give every interface without ``mac-address`` a stable burned-in address."""
    items = []
    for number, iface in enumerate(config.interfaces):
        mac = iface.mac_address
        if mac is None:
            mac = mac_from_int(0xAABBCC000000 + ((index + 1) << 12) + number * 0x100)
        items.append(replace(iface, mac_address=normalize_mac(mac)))
    return replace(config, interfaces=tuple(items))


def _hosts(item: dict[str, Any], source: str) -> list[HostDef]:
    name = _str(item.get("name"), "host name", source)
    count = _int(item.get("count", 1), "host count", source)
    try:
        mac = int(normalize_mac(_str(item.get("mac"), "host mac", source)).replace(".", ""), 16)
        ip = ip_address(_str(item.get("ip"), "host ip", source))
        gateway = ip_address(item["gateway"]) if "gateway" in item else None
    except ValueError as exc:
        raise InputError(f"{source}: host {name}: {exc}") from exc
    if not isinstance(ip, IPv4Address) or not (gateway is None or isinstance(gateway, IPv4Address)):
        raise InputError(f"{source}: host {name}: hosts are IPv4 (ARP)")
    segment = str(item.get("segment", "lan"))
    return [
        HostDef(
            name if count == 1 else f"{name}{n + 1}",
            mac_from_int(mac + n),
            ip + n,
            segment,
            gateway,
        )
        for n in range(count)
    ]


def _event(item: dict[str, Any], source: str, routers: set[str], hosts: set[str]) -> EventDef:
    at = _num(item.get("at"), "event time 'at'", source)
    action = str(item.get("action", ""))
    if action not in ACTIONS:
        raise InputError(
            f"{source}: event at {at}: unknown action {action!r}", hint=", ".join(ACTIONS)
        )
    router = item.get("router")
    if router is not None and router not in routers:
        raise InputError(f"{source}: event at {at}: no router named {router!r}")
    host = item.get("host")
    if host is not None and host != "all" and host not in hosts:
        raise InputError(f"{source}: event at {at}: no host named {host!r}")
    needs_router = action in ("power-on", "power-off", "show", "command")
    if needs_router and router is None:
        raise InputError(f'{source}: event at {at}: {action} needs router = "NAME"')
    lines = item.get("lines", [])
    return EventDef(
        at,
        action,
        router,
        item.get("interface"),
        item.get("segment"),
        host,
        _int(item.get("packets", 1), "packets", source),
        item.get("command"),
        tuple(str(x) for x in lines),
    )


def _str(value: object, what: str, source: str) -> str:
    if not isinstance(value, str) or not value:
        raise InputError(f"{source}: {what} must be a non-empty string")
    return value


def _num(value: object, what: str, source: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise InputError(f"{source}: {what} must be a number of seconds >= 0")
    return float(value)


def _int(value: object, what: str, source: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InputError(f"{source}: {what} must be a whole number >= 0")
    return value


__all__ = [
    "ACTIONS",
    "EventDef",
    "HostDef",
    "RouterDef",
    "Topology",
    "load_topology",
    "parse_topology",
    "with_macs",
]
