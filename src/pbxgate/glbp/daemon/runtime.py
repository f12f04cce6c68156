"""The live driver: the simulator's GLBP engine on real interfaces (``pbxgate glbp run``).

Theory of operation. The engine (``pbxgate.glbp.engine``) does no I/O; this module is the
second driver over it, beside the simulator. One asyncio loop owns everything:

* per LAN interface with GLBP groups, a UDP 3222 socket and an ARP packet socket
  (``sockets.py``); a received datagram goes to the engine of its group, an ARP request for a
  virtual IP goes to that group's engine and, on the AVG, is answered with the vMAC its load
  balancing chooses (``arp.py``);
* one timer, set after every input to the earliest ``get_timer()`` of all engines;
* netlink link events (``host.py``): the LAN interface's line protocol and every ``track``
  object's interface feed ``set_interface``/``set_track``, as the simulator's link events do;
* after each input, what the engine wants sent is sent, its events are logged with their IOS
  names, and the set of forwarders this router is Active for is compared with the macvlans
  present: vMACs come and go with the forwarders (one reconciling task, so changes never race).

Each vMAC's macvlan carries the virtual IP as a /32 (``host.py`` says why), and the LAN
interface gets ``arp_ignore=1`` (the kernel must not answer ARP for the virtual IP with its own
MAC: only the AVG's choice may) and ``arp_announce=2`` (its own ARP requests never carry the
virtual IP as sender, which would repoint hosts' caches). Every change is in the ledger first
and undone at stop, and at the next start after a crash.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field, replace
from ipaddress import IPv4Address, IPv4Interface, IPv6Address
from typing import Any

from pbxgate.glbp import wire
from pbxgate.glbp.config import GlbpGroupConfig, InterfaceConfig, RouterConfig, TrackConfig
from pbxgate.glbp.daemon import arp, nd
from pbxgate.glbp.daemon.errors import DaemonError, HostError
from pbxgate.glbp.daemon.host import (
    Host,
    Link,
    Route,
    ipv4_of,
    macvlan_name,
    read_sysctl,
    route_reachable,
)
from pbxgate.glbp.daemon.ledger import Ledger
from pbxgate.glbp.daemon.sockets import (
    GLBP_GROUP,
    GLBP_GROUP6,
    GLBP_PORT,
    arp_socket,
    glbp6_socket,
    glbp_socket,
    join_group,
    nd_socket,
)
from pbxgate.glbp.engine import BadAuth, Datagram, DebugEvent, GlbpEngine, VfState
from pbxgate.glbp.engine.codec import decode_message
from pbxgate.glbp.engine.names import mac_bytes
from pbxgate.glbp.engine.views import snapshot
from pbxgate.glbp.ios import IosState
from pbxgate.glbp.show import TrackStatus, debug_packet, show_glbp, show_track, track_log

log = logging.getLogger("pbxgate.glbp")

ROUTE_SETTLE = 0.05  # seconds: a burst of route changes is read once, this long after it
BADAUTH_EVERY = 30.0  # seconds: %GLBP-4-BADAUTH at most this often per source, with a count


@dataclass
class Lan:
    """One LAN interface with GLBP groups: its link, addresses, sockets and engines.

    IPv4 groups speak from ``address`` over ``udp`` and answer ARP on ``arp``; IPv6 groups
    speak from the link-local ``link_local`` over ``udp6`` and answer ND on ``nd``.
    """

    config: InterfaceConfig
    link: Link
    address: IPv4Interface | None = None
    link_local: IPv6Address | None = None
    udp: socket.socket | None = None
    arp: socket.socket | None = None
    udp6: socket.socket | None = None
    nd: socket.socket | None = None
    engines: dict[int, GlbpEngine] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.link.name

    def sockets(self) -> list[socket.socket]:
        return [s for s in (self.udp, self.arp, self.udp6, self.nd) if s is not None]


def is_ipv6(group: GlbpGroupConfig) -> bool:
    return isinstance(group.virtual_ip, IPv6Address)


Request = arp.ArpPacket | nd.NdPacket  # a host's question for an address, and our answer


@dataclass
class Vmac:
    """A forwarder this router is Active for: its macvlan, and the packet socket on it that
    answers hosts' unicast ARP (or ND) checks of the virtual IP sent to the vMAC itself."""

    lan: Lan
    engine: GlbpEngine
    number: int
    vmac: str
    sock: socket.socket | None = None


@dataclass
class TrackState:
    up: bool
    changes: int = 0
    last_change: float | None = None


def colon_mac(mac: str) -> str:
    return _colon(mac_bytes(mac))


def _colon(raw: bytes) -> str:
    return ":".join(f"{b:02x}" for b in raw)


class Daemon:
    """The GLBP engines of one router on this host's interfaces (see the module docstring)."""

    def __init__(
        self,
        config: RouterConfig,
        *,
        ledger: Ledger,
        save: Callable[[RouterConfig], None] | None = None,
        reload: Callable[[], RouterConfig] | None = None,
    ) -> None:
        self.ios = IosState(config, startup=config)
        self.ios.show = self._show
        self.ledger = ledger
        self._save = save
        self._reload = reload
        self.lans: dict[str, Lan] = {}
        self.links: dict[str, Link] = {}
        self.tracks: dict[int, TrackState] = {}
        self.routes: list[Route] = []
        self.vmacs: dict[str, Vmac] = {}  # macvlan name -> the forwarder it serves
        self.host: Host | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._reconcile = asyncio.Event()
        self._stop = asyncio.Event()
        self.started = False
        self.failed: str | None = None
        self._reload_pending = False
        self._routes_due: asyncio.TimerHandle | None = None
        self._bad_auth: dict[str, tuple[float, int]] = {}  # source -> (last logged, unlogged)
        self._vmac_error: str | None = None  # the last reconcile failure, logged once
        self._background: set[asyncio.Task[None]] = set()
        # Configuration changes (console, SIGHUP, start) one at a time.
        self.config_lock = asyncio.Lock()

    # -- lifetime --------------------------------------------------------------------------

    @property
    def config(self) -> RouterConfig:
        return self.ios.config

    def now(self) -> float:
        return (self._loop or asyncio.get_running_loop()).time()

    async def run(self, host: Host, ready: Callable[[], None] | None = None) -> None:
        """Run until :meth:`stop` (SIGTERM/SIGINT); everything made is removed on the way out.

        Raises :class:`DaemonError` after the clean-up when a part of it failed for good (the
        LAN interface vanished, the netlink monitor died): systemd then restarts it.
        """
        self.host = host
        self._loop = asyncio.get_running_loop()
        self._install_signals()  # a SIGHUP or SIGTERM during start-up is queued, not fatal
        if not self.ledger.empty():
            log.warning("undoing what a daemon that did not stop cleanly left on the host")
            await host.undo()
        self.links = await host.links()
        self.routes = await host.routes()
        tasks = [
            asyncio.create_task(self._watch_links(), name="netlink events"),
            asyncio.create_task(self._vmac_task(), name="virtual MACs"),
        ]
        for task in tasks:
            task.add_done_callback(self._task_ended)
        try:
            self._warn_forwarding()
            self._update_tracks(initial=True)
            async with self.config_lock:
                await self._start_lans()
            self.started = True
            if self._reload_pending:
                self.reload()
            if ready is not None:
                ready()
            await self._stop.wait()
        finally:
            self.started = False
            await self._shutdown(tasks)
        if self.failed is not None:
            raise DaemonError(self.failed, hint="the virtual MACs were removed; restart it")

    def stop(self, failure: str | None = None) -> None:
        if failure is not None and self.failed is None:
            self.failed = failure
            log.error("stopping: %s", failure)
        self._stop.set()

    def _task_ended(self, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return
        error = task.exception()
        self.stop(f"the {task.get_name()} task ended: {error or 'without an error'}")

    def _install_signals(self) -> None:
        assert self._loop is not None
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                self._loop.add_signal_handler(sig, self.stop)
        with contextlib.suppress(NotImplementedError, RuntimeError):
            self._loop.add_signal_handler(signal.SIGHUP, self._on_sighup)

    def _on_sighup(self) -> None:
        if self.started:
            self.reload()
        else:
            self._reload_pending = True  # read again once the start-up is done

    async def _shutdown(self, tasks: list[asyncio.Task[None]]) -> None:
        if self._timer is not None:
            self._timer.cancel()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for lan in self.lans.values():
            assert self._loop is not None
            for sock in lan.sockets():
                self._loop.remove_reader(sock.fileno())
                sock.close()
        for entry in self.vmacs.values():
            self._close_vmac(entry)
        self.vmacs.clear()
        assert self.host is not None
        await self.host.undo()
        log.info("stopped; virtual MACs removed, sysctls restored")

    def _warn_forwarding(self) -> None:
        groups = [g for i in self.config.interfaces for g in i.glbp]
        checks = [("net/ipv4/ip_forward", any(not is_ipv6(g) for g in groups))]
        checks.append(("net/ipv6/conf/all/forwarding", any(is_ipv6(g) for g in groups)))
        for path, needed in checks:
            try:
                forwarding = read_sysctl(path) if needed else "1"
            except HostError:
                continue
            if forwarding != "1":
                log.warning(
                    "%s is 0: forwarders will accept hosts' frames but not route them (set it "
                    "in /etc/sysctl.d/)",
                    path.replace("/", "."),
                )

    # -- interfaces and engines ------------------------------------------------------------

    async def _start_lans(self) -> None:
        for iface in self.config.interfaces:
            if iface.glbp and iface.name not in self.lans:
                await self._start_lan(iface)

    async def _start_lan(self, iface: InterfaceConfig) -> None:
        link = self.links.get(iface.name)
        if link is None:
            raise DaemonError(
                f"interface {iface.name} of the configuration is not on this host",
                hint="name Linux interfaces as 'ip link' shows them; a name that is not on "
                "the host is read as an IOS one (eth9 -> Ethernet9)",
            )
        lan = Lan(iface, link)
        if any(not is_ipv6(g) for g in iface.glbp):
            await self._open_ipv4(lan)
        if any(is_ipv6(g) for g in iface.glbp):
            await self._open_ipv6(lan)
        self.lans[iface.name] = lan
        for group in iface.glbp:
            await self._start_engine(lan, group)

    async def _open_ipv4(self, lan: Lan) -> None:
        assert self.host is not None
        iface, link = lan.config, lan.link
        vip = next(
            (g.virtual_ip for g in iface.glbp if isinstance(g.virtual_ip, IPv4Address)), None
        )
        address = ipv4_of(await self.host.ipv4_addresses(link.index), vip)
        if address is None:
            raise DaemonError(f"{iface.name} has no IPv4 address; GLBP needs one to speak from")
        if iface.address is not None and iface.address != address:
            raise DaemonError(
                f"{iface.name} has {address.with_prefixlen}, the configuration says "
                f"{iface.address.with_prefixlen}",
                hint="pbxgate does not configure interface addresses",
            )
        self.host.set_sysctl(f"net/ipv4/conf/{iface.name}/arp_ignore", "1")
        self.host.set_sysctl(f"net/ipv4/conf/{iface.name}/arp_announce", "2")
        lan.address = address
        lan.udp = glbp_socket(link.name, link.index, address.ip)
        lan.arp = arp_socket(link.name, link.index)
        self._read(lan.udp, self._on_udp, lan)
        self._read(lan.arp, self._on_arp, lan)

    async def _open_ipv6(self, lan: Lan) -> None:
        assert self.host is not None
        lan.link_local = await self.host.ipv6_link_local(lan.link.index)
        if lan.link_local is None:
            raise DaemonError(
                f"{lan.name} has no IPv6 link-local address; IPv6 GLBP speaks from it",
                hint=f"is IPv6 disabled on {lan.name}?",
            )
        lan.udp6 = glbp6_socket(lan.name, lan.link.index)
        lan.nd = nd_socket(lan.name, lan.link.index)
        self._read(lan.udp6, self._on_udp6, lan)
        self._read(lan.nd, self._on_nd, lan)

    def _read(self, sock: socket.socket, callback: Callable[[Lan], None], lan: Lan) -> None:
        assert self._loop is not None
        self._loop.add_reader(sock.fileno(), callback, lan)

    async def _start_engine(self, lan: Lan, group: GlbpGroupConfig) -> None:
        mac = lan.config.mac_address or lan.link.mac
        speaker = lan.link_local if is_ipv6(group) else lan.address
        if speaker is None:  # a group of a new family added by the console or SIGHUP
            await (self._open_ipv6(lan) if is_ipv6(group) else self._open_ipv4(lan))
            return await self._start_engine(lan, group) if lan.sockets() else None
        engine = GlbpEngine(
            interface=lan.name,
            address=speaker if isinstance(speaker, IPv6Address) else speaker.ip,
            bia=mac,
            config=group,
            now=self.now(),
            interface_up=self._lan_up(lan),
            tracks={n: t.up for n, t in self.tracks.items()},
            debug=bool(self.ios.debugs),
            key_chains=self.config.key_chains,
        )
        lan.engines[group.group] = engine
        if isinstance(group.virtual_ip, IPv6Address) and lan.udp6 is not None:
            join_group(lan.udp6, nd.solicited_node(group.virtual_ip), lan.link.index)
        self._service(lan, engine)

    def _lan_up(self, lan: Lan) -> bool:
        link = self.links.get(lan.name, lan.link)
        return link.line_protocol and not lan.config.shutdown

    # -- input -----------------------------------------------------------------------------

    def _on_udp(self, lan: Lan) -> None:
        assert lan.udp is not None
        self._receive(lan, lan.udp, ipv6=False)

    def _on_udp6(self, lan: Lan) -> None:
        assert lan.udp6 is not None
        self._receive(lan, lan.udp6, ipv6=True)

    def _receive(self, lan: Lan, sock: socket.socket, *, ipv6: bool) -> None:
        for _ in range(64):  # a burst is read at once; the loop gets its turn after it
            try:
                data, peer = sock.recvfrom(2048)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:
                log.warning("GLBP socket on %s: %s", lan.name, exc)
                break
            if peer[1] != GLBP_PORT or len(data) < 4:
                continue
            engine = lan.engines.get(int.from_bytes(data[2:4], "big"))
            if engine is None or isinstance(engine.address, IPv6Address) != ipv6:
                continue
            src = IPv6Address(peer[0].split("%")[0]) if ipv6 else IPv4Address(peer[0])
            if self.ios.debugs:
                self._debug_packet(engine, "in", src, data)
            engine.receive_packet(data, src, self.now())
            if not engine.settled:
                self._service(lan, engine)
        self._schedule()

    def _frames(self, lan: Lan, sock: socket.socket) -> Iterator[bytes]:
        """The frames waiting on a packet socket that came from the LAN (a burst at most)."""
        for _ in range(64):
            try:
                frame, address = sock.recvfrom(2048)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                log.warning("packet socket on %s: %s", lan.name, exc)
                return
            if address[2] != socket.PACKET_OUTGOING:
                yield frame

    def _on_arp(self, lan: Lan) -> None:
        self._answer_as_avg(lan, lan.arp, ipv6=False)

    def _on_nd(self, lan: Lan) -> None:
        self._answer_as_avg(lan, lan.nd, ipv6=True)

    def _answer_as_avg(self, lan: Lan, sock: socket.socket | None, *, ipv6: bool) -> None:
        """Requests sent to everyone (a broadcast ARP, a multicast solicitation) for a virtual
        IP get the vMAC the AVG's balancing chooses. A unicast one is a host re-checking its
        vMAC: that forwarder answers it (:meth:`_on_vmac_frame`)."""
        assert sock is not None
        for request, target, host in self._requests(lan, sock, ipv6=ipv6):
            engine = self._avg_for(lan, target)
            if engine is None or not request.eth_dst[0] & 1:
                continue
            vmac = engine.arp_request(_colon(host), self.now())
            if vmac is not None:
                self._answer(lan, sock, request, host, mac_bytes(vmac), mac_bytes(lan.link.mac))

    def _requests(
        self, lan: Lan, sock: socket.socket, *, ipv6: bool
    ) -> Iterator[tuple[Request, IPv4Address | IPv6Address, bytes]]:
        """Hosts' requests waiting on an ARP or ND packet socket: each with the address it
        asks for and the host's MAC. Frames that are not such requests are dropped."""
        for frame in self._frames(lan, sock):
            try:
                request: Request = nd.decode(frame) if ipv6 else arp.decode(frame)
            except ValueError:  # arp.ArpError, nd.NdError
                continue
            if isinstance(request, nd.NdPacket):
                if nd.asks_for(request, request.target):
                    yield request, request.target, request.lladdr or request.eth_src
            elif arp.asks_for(request, request.tpa):
                yield request, request.tpa, request.sha

    def _answer(
        self,
        lan: Lan,
        sock: socket.socket,
        request: Request,
        host: bytes,
        vmac: bytes,
        source: bytes,
    ) -> None:
        """Tell ``host`` that what ``request`` asks for is at ``vmac``, sent from ``source``."""
        if isinstance(request, nd.NdPacket):
            packet: Request = nd.advertisement(replace(request, eth_src=host), vmac, source)
        else:
            packet = arp.reply(request, vmac, source)
        self._send_frame(lan, sock, packet.encode())

    def _avg_for(self, lan: Lan, address: IPv4Address | IPv6Address) -> GlbpEngine | None:
        """The engine whose virtual IP ``address`` is (it answers only while it is AVG)."""
        for engine in lan.engines.values():
            if engine.virtual_ip == address:
                return engine
        return None

    def _send_frame(self, lan: Lan, sock: socket.socket | None, frame: bytes) -> None:
        if sock is None:
            return
        try:
            sock.send(frame)
        except OSError as exc:
            log.warning("cannot send a frame on %s: %s", lan.name, exc)

    def _on_timer(self) -> None:
        self._timer = None
        now = self.now()
        for lan in self.lans.values():
            for engine in lan.engines.values():
                due = engine.get_timer()
                if due is not None and due <= now:
                    engine.handle_timer(now)
                    self._service(lan, engine)
        self._schedule()

    def _schedule(self) -> None:
        due = [
            t
            for lan in self.lans.values()
            for e in lan.engines.values()
            if (t := e.get_timer()) is not None
        ]
        if self._timer is not None:
            if due and self._timer.when() <= min(due):
                return
            self._timer.cancel()
            self._timer = None
        if due:
            assert self._loop is not None
            self._timer = self._loop.call_at(min(due), self._on_timer)

    # -- output ----------------------------------------------------------------------------

    def _service(self, lan: Lan, engine: GlbpEngine) -> None:
        """Send what ``engine`` wants sent, log its events, reconcile vMACs, reset the timer."""
        for datagram in engine.packets_to_send(self.now()):
            if self.ios.debugs:
                self._debug_packet(engine, "out", engine.address, datagram.data)
            self._send_datagram(lan, engine, datagram)
        while (event := engine.next_event()) is not None:
            if isinstance(event, DebugEvent):
                if self.ios.debugs:
                    log.info("GLBP: %s", event.log_line.removeprefix("GLBP: "))
            elif isinstance(event, BadAuth):
                self._log_bad_auth(event)
            else:
                log.info("%s", event.log_line)
        self._reconcile.set()
        self._schedule()

    def _log_bad_auth(self, event: BadAuth) -> None:
        """``%GLBP-4-BADAUTH`` once per source and BADAUTH_EVERY seconds (any host on the LAN
        can send bad packets as fast as it likes; the journal must not fill with them)."""
        last, unlogged = self._bad_auth.get(event.source, (float("-inf"), 0))
        if event.time - last < BADAUTH_EVERY:
            self._bad_auth[event.source] = (last, unlogged + 1)
            return
        more = f" ({unlogged} more since the last report)" if unlogged else ""
        log.warning("%s%s", event.log_line, more)
        self._bad_auth[event.source] = (event.time, 0)

    def _debug_packet(
        self, engine: GlbpEngine, direction: str, peer: IPv4Address | IPv6Address, data: bytes
    ) -> None:
        """``debug glbp``: each packet in and out, as the simulator and IOS print it."""
        try:
            message, _ = decode_message(data)
        except (wire.DecodeError, ValueError) as exc:
            log.info("GLBP: %s %s %s malformed: %s", engine.interface, direction, peer, exc)
            return
        if message.owner_id != engine.bia or direction == "out":
            log.info("%s", debug_packet(engine.interface, direction, peer, message))

    def _send_datagram(self, lan: Lan, engine: GlbpEngine, datagram: Datagram) -> None:
        peer: tuple[str, int] | tuple[str, int, int, int]
        if isinstance(engine.address, IPv6Address):
            sock = lan.udp6
            peer = (str(datagram.destination or GLBP_GROUP6), GLBP_PORT, 0, lan.link.index)
        else:
            sock = lan.udp
            peer = (str(datagram.destination or GLBP_GROUP), GLBP_PORT)
        if sock is None:
            return
        try:
            sock.sendto(datagram.data, peer)
        except OSError as exc:
            log.debug("cannot send GLBP to %s on %s: %s", peer[0], lan.name, exc)

    def wanted_vmacs(self) -> dict[str, Vmac]:
        return {
            macvlan_name(lan.link.index, engine.group, fwd.number): Vmac(
                lan, engine, fwd.number, fwd.vmac
            )
            for lan in self.lans.values()
            for engine in lan.engines.values()
            for fwd in engine.forwarders.items.values()
            if fwd.state is VfState.ACTIVE
        }

    async def _vmac_task(self) -> None:
        while True:
            await self._reconcile.wait()
            self._reconcile.clear()
            try:
                await self._apply_vmacs()
            except Exception as exc:  # the task must outlive any failure: retried in 1 s
                text = str(exc) if isinstance(exc, HostError) else repr(exc)
                if self._vmac_error != text:  # the same failure is logged once
                    log.error("virtual MACs: %s (retrying every second)", text)
                    self._vmac_error = text
                await asyncio.sleep(1)
                self._reconcile.set()
            else:
                if self._vmac_error is not None:
                    self._vmac_error = None
                    log.info("virtual MACs: all in place again")

    async def _apply_vmacs(self) -> None:
        assert self.host is not None
        wanted = self.wanted_vmacs()
        for name in [
            n for n, v in self.vmacs.items() if wanted.get(n, v).vmac != v.vmac or n not in wanted
        ]:
            self._close_vmac(self.vmacs.pop(name))
            await self.host.delete_link(name)
            log.debug("removed %s", name)
        for name, entry in wanted.items():
            if name in self.vmacs:
                continue
            vip = entry.engine.virtual_ip
            await self.host.add_macvlan(name, entry.lan.link.index, colon_mac(entry.vmac), vip)
            self.vmacs[name] = entry
            self._open_vmac(name, entry, vip)
            self._announce(entry, vip)
            log.debug("virtual MAC %s on %s as %s", entry.vmac, entry.lan.name, name)

    def _announce(self, entry: Vmac, vip: IPv4Address | IPv6Address | None) -> None:
        """Switches learn the vMAC's port now, hosts' caches stay as they are (arp.py)."""
        lan, raw = entry.lan, mac_bytes(entry.vmac)
        if isinstance(vip, IPv6Address):
            self._send_frame(lan, lan.nd, nd.probe(raw, vip).encode())
        elif lan.address is not None:
            self._send_frame(lan, lan.arp, arp.probe(raw, lan.address.ip).encode())

    def _open_vmac(self, name: str, entry: Vmac, vip: IPv4Address | IPv6Address | None) -> None:
        try:
            index = socket.if_nametoindex(name)
            opener = nd_socket if isinstance(vip, IPv6Address) else arp_socket
            entry.sock = opener(name, index)
        except (OSError, HostError) as exc:
            log.warning("%s: unicast checks of the virtual IP will go unanswered: %s", name, exc)
            return
        assert self._loop is not None
        self._loop.add_reader(entry.sock.fileno(), self._on_vmac_frame, entry)

    def _close_vmac(self, entry: Vmac) -> None:
        if entry.sock is not None:
            assert self._loop is not None
            self._loop.remove_reader(entry.sock.fileno())
            entry.sock.close()
            entry.sock = None

    def _on_vmac_frame(self, entry: Vmac) -> None:
        """A host re-checking its gateway (Linux NUD: a unicast ARP request or solicitation to
        the vMAC it has) is answered by the forwarder with that vMAC, so the host keeps it;
        left unanswered it would ask the AVG again and could be given another forwarder.
        Broadcasts reach the macvlan too: those are the AVG's to answer, not ours."""
        if entry.sock is None:
            return
        raw, vip = mac_bytes(entry.vmac), entry.engine.virtual_ip
        ipv6 = isinstance(vip, IPv6Address)
        for request, target, host in self._requests(entry.lan, entry.sock, ipv6=ipv6):
            if request.eth_dst == raw and target == vip:
                self._answer(entry.lan, entry.sock, request, host, raw, raw)

    # -- links and tracks ------------------------------------------------------------------

    async def _watch_links(self) -> None:
        """Link and route changes from netlink: line protocol of the LAN interfaces, and
        every track object. A LAN interface that is deleted or replaced (a new ifindex) stops
        the daemon: its sockets and macvlans belong to the old one (systemd restarts it)."""
        assert self.host is not None
        async for event in self.host.events():
            link = event.link
            if link is None:
                self._routes_changed()
                continue
            lan = self.lans.get(link.name)
            if lan is not None and (event.deleted or link.index != lan.link.index):
                what = "deleted" if event.deleted else "replaced"
                self.stop(f"LAN interface {link.name} was {what}")
                return
            renamed = [n for n, v in self.lans.items() if v.link.index == link.index]
            if renamed and renamed[0] != link.name:
                self.stop(f"LAN interface {renamed[0]} was renamed {link.name}")
                return
            if event.deleted:
                self.links.pop(link.name, None)
                self._push_tracks()
                continue
            old = self.links.get(link.name)
            self.links[link.name] = link
            if old is not None and old.line_protocol == link.line_protocol:
                continue
            if link.name in self.lans or self.config.interface(link.name) is not None:
                word = "up" if link.line_protocol else "down"
                log.info(
                    "%%LINEPROTO-5-UPDOWN: Line protocol on Interface %s, changed state to %s",
                    link.name,
                    word,
                )
            self._push_tracks()

    def _routes_changed(self) -> None:
        """Routes are read again 50 ms after a change, once for a burst (a routing daemon
        installing a full table sends thousands), and only when a track needs them."""
        if self._routes_due is not None or not any(t.route for t in self.config.tracks):
            return
        assert self._loop is not None
        self._routes_due = self._loop.call_later(ROUTE_SETTLE, self._read_routes)

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` in the background, kept referenced until it is done."""
        task = asyncio.get_running_loop().create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _read_routes(self) -> None:
        self._routes_due = None

        async def read() -> None:
            assert self.host is not None
            try:
                self.routes = await self.host.routes()
            except HostError as exc:
                log.warning("%s", exc)
                return
            self._push_tracks()

        self._spawn(read())

    def _push_tracks(self) -> None:
        """Interface and track states into every engine (as the simulator's _refresh)."""
        self._update_tracks()
        now = self.now()
        for lan in self.lans.values():
            for engine in lan.engines.values():
                engine.set_interface(self._lan_up(lan), now)
                for number, track in self.tracks.items():
                    if engine.tracks.get(number) != track.up:
                        engine.set_track(number, track.up, now)
                self._service(lan, engine)

    def _track_up(self, track: TrackConfig) -> bool:
        if track.route is not None:
            by_index = {link.index: link for link in self.links.values()}
            return route_reachable(self.routes, track.route, by_index)
        link = self.links.get(track.interface)
        return link is not None and link.line_protocol

    def _update_tracks(self, *, initial: bool = False) -> None:
        for track in self.config.tracks:
            up = self._track_up(track)
            state = self.tracks.get(track.number)
            if state is None:
                self.tracks[track.number] = TrackState(up, 1, self.now())
                continue
            if state.up == up:
                continue
            state.up, state.changes, state.last_change = up, state.changes + 1, self.now()
            if not initial:
                log.info("%s", track_log(track, up))

    # -- configuration ---------------------------------------------------------------------

    def reload(self) -> None:
        """SIGHUP: read the configuration file again and apply what changed."""
        if self._reload is None:
            return
        try:
            config = self._reload()
        except Exception as exc:  # a bad file keeps the running configuration
            log.error("reload refused, running configuration kept: %s", exc)
            return
        old = self.ios.config
        self.ios.config = config
        self.ios.startup = config
        log.info("%%SYS-5-CONFIG_I: Configured from %s", "file on SIGHUP")
        self._spawn(self._apply_reloaded(old))

    async def _apply_reloaded(self, old: RouterConfig) -> None:
        try:
            await self.apply_config()
        except DaemonError as exc:
            log.error("reload refused, running configuration kept: %s", exc)
            self.ios.config = self.ios.startup = old
            await self.apply_config()

    async def apply_config(self) -> None:
        """Push the IOS state's configuration into the engines; unchanged groups go on as
        they were (their forwarders are not dropped). One change at a time."""
        async with self.config_lock:
            await self._apply_config()

    async def _apply_config(self) -> None:
        now = self.now()
        self._update_tracks()
        for lan in self.lans.values():
            iface = self.config.interface(lan.name)
            lan.config = iface or replace(lan.config, glbp=())
            for number, engine in lan.engines.items():
                group = iface.group(number) if iface else None
                wanted = group or replace(engine.config, enabled=False)
                engine.set_key_chains(self.config.key_chains)
                if wanted != engine.config:
                    engine.set_config(wanted, now)
                engine.debug = bool(self.ios.debugs)
                engine.set_interface(self._lan_up(lan), now)
                self._service(lan, engine)
            for group in lan.config.glbp:
                if group.group not in lan.engines:
                    await self._start_engine(lan, group)
        await self._start_lans()
        self._schedule()

    def saved(self) -> None:
        """``write memory`` ran: store the startup configuration in the file."""
        if self._save is not None and self.ios.startup is not None:
            self._save(self.ios.startup)

    # -- show ------------------------------------------------------------------------------

    def _show(self, words: tuple[str, ...], config: RouterConfig) -> str:
        now = self.now()
        if len(words) > 1 and words[1] == "track":
            return show_track(self.track_status(), now, brief="brief" in words)
        views = [snapshot(e) for lan in self.lans.values() for e in lan.engines.values()]
        return show_glbp(views, now, words[2:])

    def track_status(self) -> list[TrackStatus]:
        out = []
        for track in self.config.tracks:
            state = self.tracks.get(track.number, TrackState(False))
            users = tuple(
                (iface.name, g.group)
                for iface in self.config.interfaces
                for g in iface.glbp
                if g.track_decrement(track.number) is not None
            )
            out.append(
                TrackStatus(
                    track.number,
                    track.interface,
                    state.up,
                    state.changes,
                    state.last_change,
                    users,
                    track.route,
                )
            )
        return out


__all__ = ["Daemon", "Lan", "colon_mac"]
