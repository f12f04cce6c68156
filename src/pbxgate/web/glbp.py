"""The GLBP page: the groups of a simulated topology and/or of a running daemon, as the
``show glbp brief`` text the CLI prints and as a picture (``glbp_svg.py``), kept up to date.

Where it reads from is ``[web]``: ``glbp_topology`` (a ``pbxgate glbp sim`` topology, played
in-process on the console's clock: simulated time is the seconds since the console started
times ``glbp_speed``, starting over at the topology's ``duration``) and ``glbp_control`` (the
socket ``pbxgate glbp show`` talks to). The simulation is the simulator's own
(:class:`~pbxgate.glbp.sim.Simulation`, stepped with ``run_until``), so the page at simulated
time T shows what ``pbxgate glbp sim --duration T`` prints at its end. A daemon is asked
``show glbp brief`` and ``show glbp`` on each look; its picture is read from those texts.
The page polls ``/api/glbp`` (``static/glbp.js``; without JavaScript it reloads itself).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from pbxgate.config import Settings
from pbxgate.errors import PbxgateError
from pbxgate.web.glbp_svg import draw
from pbxgate.web.render import add_text, render
from pbxgate.web.security import requires
from pbxgate.web.settings import WebSettings
from pbxgate.web.users import Role

if TYPE_CHECKING:
    from pbxgate.glbp.sim import Simulation, Topology

REFRESH_SECONDS = 2  # the page's poll; without JavaScript it reloads every NOSCRIPT_SECONDS
NOSCRIPT_SECONDS = 5
LOG_LINES = 12  # the simulation's latest log lines shown under the picture
DAEMON_TIMEOUT = 3.0
_LOG_LINE = re.compile(r"^\d\d:\d\d:\d\d\.\d{3}  ")


# -- a topology played on the console's clock ---------------------------------------------


class SimPlayer:
    """One :class:`Simulation` of ``topology`` at simulated time ``(clock - start) * speed``,
    modulo its duration: each look steps it forward; a new round starts a new run."""

    def __init__(self, topology: Topology, speed: float, start: float) -> None:
        self.topology = topology
        self.speed = speed
        self.start = start
        self._lock = threading.Lock()  # looks come from the thread pool
        self._simulation: Simulation | None = None
        self._round = -1

    def moment(self, clock: float) -> tuple[int, float]:
        """(round, simulated seconds into it) at the console's ``clock``."""
        elapsed = max(0.0, (clock - self.start) * self.speed)
        duration = self.topology.duration
        if duration <= 0:
            return 0, 0.0
        rounds, into = divmod(elapsed, duration)
        return int(rounds), into

    def state(self, clock: float) -> dict[str, Any]:
        from pbxgate.glbp.sim import Simulation  # noqa: PLC0415

        rounds, into = self.moment(clock)
        with self._lock:
            sim = self._simulation
            if sim is None or rounds != self._round or into < sim.net.now:
                sim = self._simulation = Simulation(self.topology)
                self._round = rounds
            sim.run_until(into)
            return simulation_state(sim) | {"round": rounds + 1, "speed": self.speed}


def simulation_state(sim: Simulation) -> dict[str, Any]:
    """What the page shows of ``sim`` now: each router's ``show glbp brief`` (as ``pbxgate
    glbp sim`` prints it at the end of a run), the groups, the hosts, the latest log lines."""
    from pbxgate.glbp.engine.views import snapshot  # noqa: PLC0415
    from pbxgate.glbp.show import show_glbp  # noqa: PLC0415
    from pbxgate.glbp.sim.runner import format_time  # noqa: PLC0415

    now = sim.net.now
    routers = []
    for router in sim.routers.values():
        views = [snapshot(node.engine) for node in router.nodes]
        brief = show_glbp(views, now, ["brief"]) if router.nodes else "powered off"
        routers.append({"name": router.name, "powered": router.powered, "brief": brief})
    log = [line for line in sim.lines if _LOG_LINE.match(line)][-LOG_LINES:]
    return {
        "kind": "simulation",
        "where": sim.topology.source,
        "time": now,
        "clock": format_time(now),
        "duration": sim.topology.duration,
        "routers": routers,
        "groups": simulation_groups(sim),
        "log": log,
        "error": None,
    }


def simulation_groups(sim: Simulation) -> list[dict[str, Any]]:
    """The groups of the topology (by LAN segment and group number) in ``glbp_svg`` form."""
    from pbxgate.glbp.engine.states import VfState  # noqa: PLC0415
    from pbxgate.glbp.engine.views import snapshot  # noqa: PLC0415

    groups: dict[tuple[str, int], dict[str, Any]] = {}
    for router in sim.routers.values():
        live = {(n.engine.interface, n.engine.group): n for n in router.nodes}
        for iface in router.config.interfaces:
            for cfg in iface.glbp:
                segment = router.segment(iface.name)
                group = groups.setdefault(
                    (segment, cfg.group),
                    {
                        "group": cfg.group,
                        "segment": segment,
                        "vip": None,
                        "routers": [],
                        "hosts": [],
                    },
                )
                ip = str(iface.address.ip) if iface.address is not None else None
                node = live.get((iface.name, cfg.group))
                entry: dict[str, Any] = {
                    "name": router.name,
                    "ip": ip,
                    "priority": cfg.priority,
                    "weight": None,
                    "forwarders": [],
                    "state": "Init" if router.powered else "off",
                }
                if node is not None:
                    view = snapshot(node.engine)
                    entry |= {
                        "state": view.state.label,
                        "priority": view.priority,
                        "weight": view.weight,
                        "weight_low": not view.weight_ok,
                        "forwarders": [
                            {"number": f.number, "vmac": f.vmac}
                            for f in view.forwarders
                            if f.state is VfState.ACTIVE
                        ],
                    }
                    group["vip"] = group["vip"] or _text(view.virtual_ip)
                group["vip"] = group["vip"] or _text(cfg.virtual_ip)
                group["routers"].append(entry)
    for host in sim.hosts.values():
        _place_host(sim, groups, host)
    return list(groups.values())


def _place_host(sim: Simulation, groups: dict[tuple[str, int], dict[str, Any]], host: Any) -> None:
    """Add ``host`` to its group with the vMAC its ARP cache holds and who forwards for it
    (the simulator's own rule: the powered engine of that gateway that forwards the vMAC)."""
    spec = host.definition
    gateway = _text(spec.gateway) or next(
        (g["vip"] for (segment, _), g in groups.items() if segment == spec.segment and g["vip"]),
        None,
    )
    group = next(
        (g for (s, _), g in groups.items() if s == spec.segment and g["vip"] == gateway), None
    )
    if group is None:
        return
    router, number = None, None
    if host.vmac is not None:
        for candidate in sim.routers.values():
            for node in candidate.nodes:
                engine = node.engine
                if (
                    node.powered
                    and node.segment == spec.segment
                    and _text(engine.virtual_ip) == gateway
                    and engine.forwards(host.vmac)
                ):
                    router, number = node.name, int(host.vmac[-2:], 16)
    group["hosts"].append(
        {
            "name": spec.name,
            "ip": str(spec.ip),
            "mac": spec.mac,
            "vmac": host.vmac,
            "router": router,
            "forwarder": number,
        }
    )


def _text(value: object) -> str | None:
    return None if value is None else str(value)


# -- a running daemon, through its control socket ------------------------------------------

_BLOCK = re.compile(r"^(\S+) - Group (\d+)$")
_MEMBER = re.compile(r"^    ([0-9a-f]{4}\.[0-9a-f]{4}\.[0-9a-f]{4}) \((\S+)\)( local)?")
_WEIGHT = re.compile(r"^  Weighting (\d+)(, low)?")
_ROLE = re.compile(r"^  (?:Active|Standby) is (\S+), priority (\d+)")
_HOLDER = re.compile(r"^    Active is (\S+) \((?:primary|secondary)\), weighting (\d+)")


def parse_brief(text: str) -> list[dict[str, Any]]:
    """The rows of ``show glbp brief``: a group row, then its forwarder rows."""
    groups: list[dict[str, Any]] = []
    for line in text.splitlines():
        cells = line.split()
        if len(cells) != 8 or cells[0] == "Interface":
            continue
        iface, grp, fwd, pri, state, address, active, standby = cells
        if fwd == "-":
            groups.append(
                {
                    "interface": iface,
                    "group": int(grp),
                    "state": state,
                    "priority": int(pri) if pri.isdigit() else None,
                    "vip": None if address == "unknown" else address,
                    "active": active,
                    "standby": standby,
                    "forwarders": [],
                }
            )
        elif groups and fwd.isdigit():
            groups[-1]["forwarders"].append(
                {"number": int(fwd), "state": state, "vmac": address, "holder": active}
            )
    return groups


def parse_detail(text: str) -> dict[tuple[str, int], dict[str, Any]]:
    """From ``show glbp``, per (short interface, group): members, this router's weighting,
    the priorities of the Active and Standby, the weightings of remote forwarders."""
    from pbxgate.glbp.engine.names import short_interface  # noqa: PLC0415

    out: dict[tuple[str, int], dict[str, Any]] = {}
    current: dict[str, Any] | None = None
    for line in text.splitlines():
        if block := _BLOCK.match(line):
            key = (short_interface(block[1]), int(block[2]))
            current = out.setdefault(
                key, {"members": [], "weight": None, "priority": {}, "weights": {}}
            )
        elif current is None:
            continue
        elif member := _MEMBER.match(line):
            current["members"].append((member[2], bool(member[3])))
        elif weight := _WEIGHT.match(line):
            current["weight"], current["weight_low"] = int(weight[1]), bool(weight[2])
        elif role := _ROLE.match(line):
            current["priority"][role[1]] = int(role[2])
        elif holder := _HOLDER.match(line):
            current["weights"][holder[1]] = int(holder[2])
    return out


def daemon_groups(hostname: str, brief: str, detail: str) -> list[dict[str, Any]]:
    """The daemon's groups in ``glbp_svg`` form. It knows its own priority and weighting;
    of the others, what its hellos told it: members, the Active and Standby and their
    priorities, who forwards each vMAC (a member that is neither Active nor Standby is
    listening)."""
    details = parse_detail(detail)
    return [
        _daemon_group(hostname, row, details.get((row["interface"], row["group"]), {}))
        for row in parse_brief(brief)
    ]


def _daemon_group(hostname: str, row: dict[str, Any], info: dict[str, Any]) -> dict[str, Any]:
    members = info.get("members", [])
    local: dict[str, Any] = {
        "name": hostname,
        "ip": next((ip for ip, is_local in members if is_local), None),
        "state": row["state"],
        "priority": row["priority"],
        "weight": info.get("weight"),
        "weight_low": info.get("weight_low", False),
        "forwarders": [],
    }
    peers: dict[str, dict[str, Any]] = {}

    def peer(ip: str) -> dict[str, Any]:
        return peers.setdefault(
            ip,
            {
                "name": ip,
                "ip": ip,
                "state": "Listen",
                "priority": info.get("priority", {}).get(ip),
                "weight": info.get("weights", {}).get(ip),
                "forwarders": [],
            },
        )

    for ip, is_local in members:
        if not is_local:
            peer(ip)
    for word, state in (("active", "Active"), ("standby", "Standby")):
        if row[word] not in ("local", "unknown", "-"):
            peer(row[word])["state"] = state
    for fwd in row["forwarders"]:
        holder = fwd["holder"]  # "local" when this router is the AVF, else its address
        if holder not in ("-", "unknown"):
            owner = local if holder == "local" else peer(holder)
            owner["forwarders"].append({"number": fwd["number"], "vmac": fwd["vmac"]})
    return {
        "group": row["group"],
        "segment": row["interface"],
        "vip": row["vip"],
        "routers": [local, *sorted(peers.values(), key=_by_address)],
        "hosts": [],
    }


def _by_address(router: dict[str, Any]) -> tuple[int, ...]:
    return tuple(int(part) for part in str(router["ip"]).split(".") if part.isdigit())


def daemon_state(path: Path) -> dict[str, Any]:
    """Ask the daemon on ``path``; a daemon that is not there is one line in ``error``."""
    from pbxgate.glbp.daemon import Client  # noqa: PLC0415

    state: dict[str, Any] = {
        "kind": "daemon",
        "where": str(path),
        "routers": [],
        "groups": [],
        "log": [],
        "error": None,
    }
    try:
        with Client(path, timeout=DAEMON_TIMEOUT) as client:
            brief, prompt = client.execute("show glbp brief")
            detail, _ = client.execute("show glbp")
    except PbxgateError as exc:
        return state | {"error": str(exc)}
    except (ValueError, KeyError, TypeError):  # not JSON lines with "output": not a daemon
        return state | {"error": f"{path} does not speak the GLBP control protocol"}
    hostname = prompt.rstrip("#>") or "router"
    brief = brief.rstrip("\n")
    return state | {
        "routers": [{"name": hostname, "powered": True, "brief": brief}],
        "groups": daemon_groups(hostname, brief, detail),
    }


# -- the page ------------------------------------------------------------------------------


@dataclass
class GlbpSources:
    """What ``[web]`` points the page at (see the module docstring)."""

    player: SimPlayer | None = None
    topology: Path | None = None
    topology_error: str | None = None
    control: Path | None = None
    clock: Callable[[], float] = field(default=lambda: 0.0)

    @classmethod
    def from_settings(cls, web: WebSettings, clock: Callable[[], float]) -> GlbpSources:
        sources = cls(topology=web.glbp_topology, control=web.glbp_control, clock=clock)
        if web.glbp_topology is not None:
            if web.glbp_speed <= 0:
                sources.topology_error = "[web] glbp_speed must be above 0"
                return sources
            from pbxgate.glbp.sim import load_topology  # noqa: PLC0415

            try:
                topology = load_topology(web.glbp_topology)
            except PbxgateError as exc:
                sources.topology_error = str(exc)
            else:
                sources.player = SimPlayer(topology, web.glbp_speed, clock())
        return sources

    @property
    def configured(self) -> bool:
        return self.topology is not None or self.control is not None

    def state(self) -> dict[str, Any]:
        """The page's data: one entry per configured source, each with its picture."""
        items = []
        if self.topology is not None:
            if self.player is not None:
                items.append(self.player.state(self.clock()))
            else:
                items.append(
                    {
                        "kind": "simulation",
                        "where": str(self.topology),
                        "routers": [],
                        "groups": [],
                        "log": [],
                        "error": self.topology_error,
                    }
                )
        if self.control is not None:
            items.append(daemon_state(self.control))
        for number, item in enumerate(items):
            title = f"GLBP {item['kind']} {item['where']}"
            item["svg"] = draw(item["groups"], title, f"glbp-svg-{number}")
        return {
            "configured": self.configured,
            "refresh_seconds": REFRESH_SECONDS,
            "sources": items,
        }


def setup(app: Starlette, settings: Settings) -> None:
    app.state.glbp = GlbpSources.from_settings(settings.get(WebSettings), app.state.clock)


async def _state(request: Request) -> dict[str, Any]:
    sources: GlbpSources = request.app.state.glbp
    return await run_in_threadpool(sources.state)


@requires(Role.VIEWER)
async def glbp_page(request: Request) -> Response:
    return render(request, "glbp.html", state=await _state(request), noscript=NOSCRIPT_SECONDS)


@requires(Role.VIEWER)
async def glbp_api(request: Request) -> Response:
    return JSONResponse(await _state(request))


ROUTES: list[BaseRoute] = [
    Route("/glbp", glbp_page, methods=["GET"]),
    Route("/api/glbp", glbp_api, methods=["GET"]),
]
NAV: list[tuple[str, str, Role]] = [("/glbp", "glbp", Role.VIEWER)]

add_text(
    {
        "ru": {
            "glbp": "GLBP", "glbp_simulation": "Симуляция", "glbp_daemon": "Демон",
            "glbp_time": "Время симуляции", "glbp_round": "проход", "glbp_speed": "скорость",
            "glbp_log": "Последние события", "glbp_brief": "show glbp brief",
            "glbp_unconfigured": "Источник GLBP не настроен. Укажите в разделе [web] "
                "настроек топологию симулятора и/или сокет управления работающего демона:",
            "glbp_picture": "Схема",
        },
        "en": {
            "glbp": "GLBP", "glbp_simulation": "Simulation", "glbp_daemon": "Daemon",
            "glbp_time": "Simulated time", "glbp_round": "round", "glbp_speed": "speed",
            "glbp_log": "Latest events", "glbp_brief": "show glbp brief",
            "glbp_unconfigured": "No GLBP source is configured. Name a simulator topology "
                "and/or a running daemon's control socket in the [web] section of the settings:",
            "glbp_picture": "Picture",
        },
    }
)  # fmt: skip

__all__ = [
    "NAV",
    "ROUTES",
    "GlbpSources",
    "SimPlayer",
    "daemon_groups",
    "daemon_state",
    "parse_brief",
    "parse_detail",
    "setup",
    "simulation_groups",
    "simulation_state",
]
