"""Run a topology: boot routers, replay the scenario timeline, report what happened.

The run is a pure function of the topology (and its seed): one virtual clock
(:class:`~pbxgate.glbp.sim.network.Network`), one seeded ``random.Random`` per engine, events in
file order at equal times. The report is plain text: IOS log lines with their simulated time,
``show`` output where the timeline asks for it, which forwarder each host uses, and how
traffic divides among forwarders. ``Simulation.pcap`` holds every GLBP and ARP frame with its
simulated timestamp when asked for.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field, replace
from ipaddress import IPv4Address, IPv4Interface

from pbxgate.glbp.config import GlbpGroupConfig, InterfaceConfig, RouterConfig, TrackConfig
from pbxgate.glbp.engine import GlbpEngine
from pbxgate.glbp.engine.names import mac_bytes
from pbxgate.glbp.engine.views import snapshot
from pbxgate.glbp.ios import EXEC, IosState, ShowHandler, run
from pbxgate.glbp.pcap import Record, arp_reply, arp_request, glbp_frame
from pbxgate.glbp.show import TrackStatus, debug_packet, show_glbp, show_track, track_log
from pbxgate.glbp.sim.network import Frame, Network, Node, WireTransport
from pbxgate.glbp.sim.topology import EventDef, HostDef, RouterDef, Topology


@dataclass
class SimRouter:
    """A router of the topology: its current configuration, links and engines."""

    definition: RouterDef
    config: RouterConfig
    ios: IosState
    powered: bool = False
    link_down: set[str] = field(default_factory=set)  # interfaces whose link is down
    nodes: list[Node] = field(default_factory=list)
    track_changes: dict[int, tuple[int, float | None]] = field(default_factory=dict)
    track_up: dict[int, bool] = field(default_factory=dict)
    debug: bool = False

    @property
    def name(self) -> str:
        return self.definition.name

    def segment(self, interface: str) -> str:
        return self.definition.links.get(interface, "lan")


@dataclass
class SimHost:
    definition: HostDef
    vmac: str | None = None
    packets: int = 0


class Simulation:
    """One run of a topology (see the module docstring)."""

    def __init__(
        self, topology: Topology, *, capture: bool = False, fast_path: bool = True
    ) -> None:
        self.topology = topology
        self.fast_path = fast_path
        self.net = Network(transport=WireTransport())
        self.capture = capture
        self.pcap: list[Record] = []
        self.lines: list[str] = []
        self.routers = {
            # booted from its configuration: that is its startup-config too, as in NVRAM
            r.name: SimRouter(r, r.config, IosState(r.config, startup=r.config), debug=r.debug)
            for r in topology.routers
        }
        for router in self.routers.values():
            router.ios.show = self._show_handler(router)
        self.hosts = {h.name: SimHost(h) for h in topology.hosts}
        self.net.on_frame = self._on_frame
        self._logged = 0
        self.lines.append(f"# pbxgate glbp sim {topology.source} (seed {topology.seed})")
        boots = [
            EventDef(r.boot, "power-on", r.name) for r in topology.routers if r.boot is not None
        ]
        # Stable sort: events at equal times keep file order, boots first.
        self._pending = sorted([*boots, *topology.events], key=lambda e: e.at)

    # -- running -------------------------------------------------------------------------

    def run(self) -> str:
        """Replay the whole timeline and return the report."""
        self.run_until(self.topology.duration)
        self._summary()
        return "\n".join(self.lines) + "\n"

    def run_until(self, until: float) -> None:
        """Apply the timeline events due by ``until`` and move the virtual clock there.

        Callable repeatedly with growing times (``pbxgate glbp shell`` does, for ``sim
        wait``); the report lines of the stretch are appended to :attr:`lines`.
        """
        while self._pending and self._pending[0].at <= until:
            event = self._pending.pop(0)
            self._advance(max(event.at, self.net.now))
            self._apply(event)
            self._flush()
        self._advance(max(until, self.net.now))

    def _advance(self, until: float) -> None:
        self.net.run_until(until)
        self._flush()

    def _flush(self) -> None:
        events = self.net.events
        while self._logged < len(events):
            item = events[self._logged]
            self._logged += 1
            self.lines.append(f"{_t(item.time)}  {item.router:<6} {item.event.log_line}")

    def _apply(self, event: EventDef) -> None:
        handler = {
            "power-on": self._power_on,
            "power-off": self._power_off,
            "link-down": self._link,
            "link-up": self._link,
            "arp": self._arp,
            "traffic": self._traffic,
            "show": self._show,
            "command": self._command,
        }[event.action]
        handler(event)

    # -- routers -------------------------------------------------------------------------

    def _router(self, event: EventDef) -> SimRouter:
        assert event.router is not None  # checked by the topology loader
        return self.routers[event.router]

    def _power_on(self, event: EventDef) -> None:
        router = self._router(event)
        if router.powered:
            return
        router.powered = True
        self.lines.append(f"{_t(self.net.now)}  {router.name:<6} power on")
        router.track_up.clear()  # tracks start anew at boot: no TRACK line for their state
        self._update_tracks(router)
        for iface in router.config.interfaces:
            for group in iface.glbp:
                self._start_engine(router, iface, group)

    def _start_engine(
        self, router: SimRouter, iface: InterfaceConfig, group: GlbpGroupConfig
    ) -> None:
        if not isinstance(iface.address, IPv4Interface) or iface.mac_address is None:
            return
        seed = f"{self.topology.seed}/{router.name}/{iface.name}/{group.group}"
        engine = GlbpEngine(
            interface=iface.name,
            address=iface.address.ip,
            bia=iface.mac_address,
            config=group,
            now=self.net.now,
            rng=random.Random(seed),
            interface_up=self._iface_up(router, iface),
            tracks=dict(router.track_up),
            debug=router.debug,
            key_chains=router.config.key_chains,
        )
        engine.fast_path = self.fast_path
        node = Node(router.name, engine, router.segment(iface.name))
        router.nodes.append(node)
        self.net.attach(node)

    def _power_off(self, event: EventDef) -> None:
        router = self._router(event)
        if not router.powered:
            return
        router.powered = False
        self.lines.append(f"{_t(self.net.now)}  {router.name:<6} power off")
        for node in router.nodes:
            self.net.detach(node)
        router.nodes.clear()
        self._update_tracks(router)

    def _link(self, event: EventDef) -> None:
        down = event.action == "link-down"
        touched: dict[str, SimRouter] = {}
        before = {r.name: self._interfaces_up(r, r.config) for r in self.routers.values()}
        for router in self.routers.values():
            for iface in router.config.interfaces:
                hit = (event.router == router.name and event.interface == iface.name) or (
                    event.segment is not None and router.segment(iface.name) == event.segment
                )
                if hit:
                    (router.link_down.add if down else router.link_down.discard)(iface.name)
                    touched[router.name] = router
        word = "down" if down else "up"
        what = event.segment or f"{event.router} {event.interface}"
        self.lines.append(f"{_t(self.net.now)}  {'link':<6} {what} {word}")
        for router in touched.values():
            self._log_interfaces(router, router.config, before[router.name])
            self._refresh(router)

    def _iface_up(self, router: SimRouter, iface: InterfaceConfig) -> bool:
        return router.powered and not iface.shutdown and iface.name not in router.link_down

    def _interfaces_up(
        self, router: SimRouter, config: RouterConfig
    ) -> dict[str, tuple[bool, bool]]:
        """Each interface's (line protocol up, administratively shut)."""
        return {i.name: (self._iface_up(router, i), i.shutdown) for i in config.interfaces}

    def _log_interfaces(
        self, router: SimRouter, config: RouterConfig, before: dict[str, tuple[bool, bool]]
    ) -> None:
        """IOS's link and line-protocol log lines for what changed on the interfaces (Cisco
        IOS: ``shutdown`` logs LINK-5-CHANGED "administratively down", also on a link that
        was down already; ``no shutdown`` LINK-3-UPDOWN with the link's own state; a link
        lost or back LINK-3-UPDOWN; each line-protocol change LINEPROTO-5-UPDOWN)."""
        if not router.powered:
            return
        for iface in config.interfaces:
            up, shut = self._iface_up(router, iface), iface.shutdown
            was_up, was_shut = before.get(iface.name, (up, shut))
            if shut and not was_shut:
                link = f"%LINK-5-CHANGED: Interface {iface.name}, changed state to " + (
                    "administratively down"
                )
            elif was_shut != shut or was_up != up:
                link = f"%LINK-3-UPDOWN: Interface {iface.name}, changed state to " + (
                    "up" if up else "down"
                )
            else:
                continue
            self._log(router, link)
            if was_up != up:
                proto = f"changed state to {'up' if up else 'down'}"
                self._log(
                    router, f"%LINEPROTO-5-UPDOWN: Line protocol on Interface {iface.name}, {proto}"
                )

    def _log(self, router: SimRouter, line: str) -> None:
        self._flush()  # older engine log lines first: the report stays in time order
        self.lines.append(f"{_t(self.net.now)}  {router.name:<6} {line}")

    def _update_tracks(self, router: SimRouter) -> None:
        now = self.net.now
        for track in router.config.tracks:
            up = self._track_up(router, track)
            was = router.track_up.get(track.number)
            if was != up:
                count, _ = router.track_changes.get(track.number, (0, None))
                router.track_changes[track.number] = (count + 1, now)
                router.track_up[track.number] = up
            if was is not None and was != up and router.powered:
                self._log(router, track_log(track, up))

    def _track_up(self, router: SimRouter, track: TrackConfig) -> bool:
        """A line-protocol track follows its interface; a route track is up while an up
        interface's connected subnet holds the route (the simulator has no routing protocol)."""
        if track.route is None:
            iface = router.config.interface(track.interface)
            return iface is not None and self._iface_up(router, iface)
        return any(
            self._iface_up(router, iface) and track.route.subnet_of(iface.address.network)
            for iface in router.config.interfaces
            if iface.address is not None
        )

    def _refresh(self, router: SimRouter) -> None:
        """Push interface, track and configuration state into the router's engines."""
        self._update_tracks(router)
        now = self.net.now
        for node in router.nodes:
            engine = node.engine
            iface = router.config.interface(engine.interface)
            group = iface.group(engine.group) if iface else None
            if group is None:
                group = replace(engine.config, enabled=False)
            engine.set_key_chains(router.config.key_chains)
            engine.set_config(group, now)
            engine.set_interface(iface is not None and self._iface_up(router, iface), now)
            for number, up in router.track_up.items():
                if engine.tracks.get(number) != up:
                    engine.set_track(number, up, now)
            self.net.service(node)
        if router.powered:
            running = {(n.engine.interface, n.engine.group) for n in router.nodes}
            for iface in router.config.interfaces:
                for group in iface.glbp:
                    if (iface.name, group.group) not in running:
                        self._start_engine(router, iface, group)

    # -- IOS commands --------------------------------------------------------------------

    def _show_handler(self, router: SimRouter) -> ShowHandler:
        def handle(words: tuple[str, ...], config: RouterConfig) -> str:
            now = self.net.now
            if len(words) > 1 and words[1] == "track":
                return show_track(self._tracks(router), now, brief="brief" in words)
            views = [snapshot(n.engine) for n in router.nodes]
            return show_glbp(views, now, words[2:])

        return handle

    def _tracks(self, router: SimRouter) -> list[TrackStatus]:
        out = []
        for track in router.config.tracks:
            count, last = router.track_changes.get(track.number, (0, None))
            users = tuple(
                (iface.name, g.group)
                for iface in router.config.interfaces
                for g in iface.glbp
                if g.track_decrement(track.number) is not None
            )
            up = router.track_up.get(track.number, False)
            status = TrackStatus(track.number, track.interface, up, count, last, users, track.route)
            out.append(status)
        return out

    def _show(self, event: EventDef) -> None:
        router = self._router(event)
        command = event.command or "show glbp"
        self.lines.append(f"--- {_t(self.net.now)} {router.name}#{command}")
        if not router.powered:
            self.lines.append("(powered off)")
            return
        result = run(router.ios, EXEC, command)
        self.lines.append(result.output.rstrip("\n"))

    def _command(self, event: EventDef) -> None:
        router = self._router(event)
        mode = EXEC
        self.lines.append(f"--- {_t(self.net.now)} {router.name} configuration")
        for line in event.lines:
            prompt = router.ios.prompt(mode)
            result = run(router.ios, mode, line)
            self.lines.append(f"{prompt}{line}")
            if result.output.strip():
                self.lines.append(result.output.rstrip("\n"))
            mode = result.mode or EXEC
        self.apply_config(router.name)

    def apply_config(self, name: str) -> None:
        """Push router ``name``'s IOS state (configuration, ``debug``) into its engines.

        Call it after running commands on ``routers[name].ios``: the timeline's ``command``
        action does, and so does ``pbxgate glbp shell`` after each typed line.
        """
        router = self.routers[name]
        before = self._interfaces_up(router, router.config)
        router.config = router.ios.config
        self._log_interfaces(router, router.config, before)
        router.debug = bool(router.ios.debugs) or router.definition.debug
        for node in router.nodes:
            node.engine.debug = router.debug
        if router.powered:
            self._refresh(router)
            self._flush()  # log lines of the change at once, as an IOS console prints them

    # -- hosts ---------------------------------------------------------------------------

    def _chosen_hosts(self, event: EventDef) -> list[SimHost]:
        if event.host in (None, "all"):
            return list(self.hosts.values())
        return [self.hosts[event.host]]

    def _gateway(self, host: HostDef) -> IPv4Address | None:
        if host.gateway is not None:
            return host.gateway
        for router in self.routers.values():
            for iface in router.config.interfaces:
                if router.segment(iface.name) != host.segment:
                    continue
                for group in iface.glbp:
                    if isinstance(group.virtual_ip, IPv4Address):
                        return group.virtual_ip
        return None

    def _nodes_for(self, host: HostDef, gateway: IPv4Address) -> list[Node]:
        return [
            n
            for r in self.routers.values()
            for n in r.nodes
            if n.powered and n.segment == host.segment and n.engine.virtual_ip == gateway
        ]

    def _arp(self, event: EventDef) -> None:
        hosts = self._chosen_hosts(event)
        self.lines.append(f"--- {_t(self.net.now)} ARP for the gateway from {len(hosts)} host(s)")
        for host in hosts:
            self._resolve(host)
            self.lines.append(f"    {self._host_line(host)}")

    def _resolve(self, host: SimHost) -> None:
        spec, now = host.definition, self.net.now
        gateway = self._gateway(spec)
        host.vmac = None
        if gateway is None:
            return
        if self.capture:
            self.pcap.append(Record(now, arp_request(mac_bytes(spec.mac), spec.ip, gateway)))
        for node in self._nodes_for(spec, gateway):
            vmac = node.engine.arp_request(spec.mac, now)
            if vmac is None:
                continue
            host.vmac = vmac  # with two AVGs (a partition) the last answer wins, as in ARP caches
            if self.capture:
                frame = arp_reply(mac_bytes(vmac), gateway, mac_bytes(spec.mac), spec.ip)
                self.pcap.append(Record(now, frame))

    def _forwarder_of(self, host: SimHost) -> tuple[str, int] | None:
        gateway = self._gateway(host.definition)
        if host.vmac is None or gateway is None:
            return None
        for node in self._nodes_for(host.definition, gateway):
            if node.engine.forwards(host.vmac):
                return node.name, int(host.vmac[-2:], 16)
        return None

    def _host_line(self, host: SimHost) -> str:
        spec = host.definition
        where = self._forwarder_of(host)
        target = f"Fwd {where[1]} on {where[0]}" if where else "no forwarder"
        return f"{spec.name:<8} {spec.mac} -> {host.vmac or 'no answer':<15} {target}"

    def _traffic(self, event: EventDef) -> None:
        hosts = self._chosen_hosts(event)
        shares: Counter[str] = Counter()
        users: dict[str, set[str]] = {}
        for host in hosts:
            if host.vmac is None:
                self._resolve(host)
            where = self._forwarder_of(host)
            key = f"{where[0]:<7} Fwd {where[1]}  {host.vmac}" if where else "(lost)"
            shares[key] += event.packets
            users.setdefault(key, set()).add(host.definition.name)
            host.packets += event.packets
        total = sum(shares.values()) or 1
        self.lines.append(
            f"--- {_t(self.net.now)} traffic: {event.packets} packet(s) from each of "
            f"{len(hosts)} host(s)"
        )
        for key in sorted(shares):
            share = 100.0 * shares[key] / total
            self.lines.append(
                f"    {key:<34} hosts {len(users[key]):>4}  packets {shares[key]:>7}  {share:5.1f}%"
            )

    # -- output --------------------------------------------------------------------------

    def _on_frame(self, frame: Frame) -> None:
        if self.capture and frame.data is not None:
            self.pcap.append(Record(frame.time, self._ethernet(frame)))
        self._debug_frame(frame)

    def _ethernet(self, frame: Frame) -> bytes:
        assert frame.data is not None
        src_mac = mac_bytes(frame.src_mac)
        if frame.destination is None:
            return glbp_frame(src_mac, frame.src, frame.data)
        dst_mac = bytes(6)
        for router in self.routers.values():
            for node in router.nodes:
                if node.engine.address == frame.destination:
                    dst_mac = mac_bytes(node.engine.bia)
        return glbp_frame(src_mac, frame.src, frame.data, dst_ip=frame.destination, dst_mac=dst_mac)

    def _debug_frame(self, frame: Frame) -> None:
        for router in self.routers.values():
            if not router.debug:
                continue
            for node in router.nodes:
                engine = node.engine
                if engine.group != frame.message.group or not node.powered:
                    continue
                if engine.address == frame.src:
                    line = debug_packet(engine.interface, "out", frame.src, frame.message)
                elif node.segment != frame.segment or not engine.interface_up:
                    continue  # not on that LAN, or its interface is down: nothing came in
                elif frame.destination in (None, engine.address):
                    line = debug_packet(engine.interface, "in", frame.src, frame.message)
                else:
                    continue
                # Log lines logged so far are older than this frame: print them first, so a
                # stretch of the clock reads in time order (debug lines come mid-stretch).
                self._flush()
                self.lines.append(f"{_t(frame.time)}  {router.name:<6} {line}")

    def _summary(self) -> None:
        now = self.net.now
        self.lines.append(f"=== {_t(now)} end of run")
        for router in self.routers.values():
            if not router.nodes:
                self.lines.append(f"{router.name}: powered off")
                continue
            views = [snapshot(n.engine) for n in router.nodes]
            self.lines.append(f"{router.name}#show glbp brief")
            self.lines.append(show_glbp(views, now, ["brief"]))
            counters = [n.engine.counters for n in router.nodes]
            self.lines.append(
                f"  packets sent {sum(c.sent for c in counters)}, received "
                f"{sum(c.received for c in counters)}, bad authentication "
                f"{sum(c.bad_auth for c in counters)}, "
                f"malformed {sum(c.malformed for c in counters)}"
            )
        if self.hosts:
            self.lines.append("Hosts (gateway MAC in the ARP cache, who forwards for it now):")
            for host in self.hosts.values():
                self.lines.append(f"    {self._host_line(host)}")


def format_time(value: float) -> str:
    """Simulated time as IOS-like ``hh:mm:ss.mmm``."""
    millis = round(value * 1000)
    secs, ms = divmod(millis, 1000)
    hours, rest = divmod(secs, 3600)
    minutes, s = divmod(rest, 60)
    return f"{hours:02d}:{minutes:02d}:{s:02d}.{ms:03d}"


_t = format_time


@dataclass(frozen=True)
class SimResult:
    report: str
    frames: tuple[Record, ...]


def run_simulation(
    topology: Topology, *, capture: bool = False, fast_path: bool = True
) -> SimResult:
    """Run ``topology`` to its end: the text report and (with ``capture``) every frame.

    ``fast_path=False`` handles every hello in full (see ``engine/fastpath.py``); the report
    is the same either way.
    """
    simulation = Simulation(topology, capture=capture, fast_path=fast_path)
    report = simulation.run()
    return SimResult(report, tuple(simulation.pcap))


__all__ = [
    "SimHost",
    "SimResult",
    "SimRouter",
    "Simulation",
    "format_time",
    "run_simulation",
]
