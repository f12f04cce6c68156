"""The Linux host under the daemon: links, addresses, macvlans and sysctls (pyroute2, /proc).

Everything the daemon changes on the host goes through :class:`Host`, and every change is
written to the :class:`~pbxgate.glbp.daemon.ledger.Ledger` *before* it is made, so that a
daemon killed at any point leaves a record from which the next start undoes it.

A vMAC is a macvlan on the LAN interface (keepalived ``vrrp_vmac.c`` and FRR's vrrpd do the
same): the kernel then accepts frames sent to the vMAC and routes them like any other. It is
created down and given its sysctls before it comes up: no IPv6 (it sends no router
solicitation or DAD from the vMAC), ``arp_ignore=8`` (it never answers ARP itself: only the
AVG's choice may), loose ``rp_filter``. It carries the virtual IP as a /32: Linux's reverse-path
check fails every packet that arrives on an interface without an address (``no_addr`` in
``fib_validate_source``), loose or strict, and the router answers a ping to its gateway address.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface, IPv4Network, IPv6Address
from pathlib import Path
from typing import Any

from pbxgate.glbp.daemon.errors import HostError
from pbxgate.glbp.daemon.ledger import Ledger

log = logging.getLogger(__name__)

IFF_UP = 0x1
IFF_LOWER_UP = 0x10000
SYSCTL_ROOT = Path("/proc/sys")
MACVLAN_PREFIX = "glbp"
_MACVLAN_SYSCTLS = (
    ("net/ipv4/conf/{name}/forwarding", "1"),  # new links copy conf/default, which may be 0
    ("net/ipv4/conf/{name}/arp_ignore", "8"),
    ("net/ipv4/conf/{name}/rp_filter", "2"),
)
# An IPv4 group's vMAC has no IPv6 at all; an IPv6 group's has IPv6 but no address of its own
# (addr_gen_mode 1: no link-local from the vMAC, so no DAD or solicitation is sent from it).
_IPV4_ONLY = (("net/ipv6/conf/{name}/disable_ipv6", "1"),)
_IPV6_BARE = (
    ("net/ipv6/conf/{name}/forwarding", "1"),
    ("net/ipv6/conf/{name}/addr_gen_mode", "1"),
    ("net/ipv6/conf/{name}/accept_dad", "0"),
    ("net/ipv6/conf/{name}/accept_ra", "0"),
)


MAIN_TABLE = 254
RTN_UNICAST = 1
_UNUSABLE = 0x1 | 0x10  # RTNH_F_DEAD, RTNH_F_LINKDOWN


@dataclass(frozen=True, slots=True)
class LinkEvent:
    """A link that changed (``deleted`` when it is gone), or ``link`` None: routes changed."""

    link: Link | None
    deleted: bool = False


@dataclass(frozen=True, slots=True)
class Route:
    """One route: its prefix, output interface and whether the kernel marks it unusable."""

    network: IPv4Network
    oif: int | None
    unusable: bool


def _nexthop_flags(message: Any) -> int:
    """The unusable flags of a route's next hops: those of all of them, so that a multipath
    route is unusable only when every hop is (a single hop's flags are the route's)."""
    hops = message.get("multipath") or []
    if not hops:
        return 0
    if any(not int(hop["flags"]) & _UNUSABLE for hop in hops):
        return 0
    return _UNUSABLE


def route_reachable(routes: list[Route], wanted: IPv4Network, links: dict[int, Link]) -> bool:
    """IOS ``track ip route ... reachability``: a route for the prefix (itself or one that
    covers it; the default route only for 0.0.0.0/0 itself) whose interface is up."""
    for route in routes:
        if route.unusable or (route.network.prefixlen == 0 and wanted.prefixlen > 0):
            continue
        if not wanted.subnet_of(route.network):
            continue
        link = links.get(route.oif) if route.oif is not None else None
        if link is None or link.line_protocol:
            return True
    return False


@dataclass(frozen=True, slots=True)
class Link:
    """One network interface as the kernel reports it."""

    index: int
    name: str
    mac: str  # aa:bb:cc:dd:ee:ff
    admin_up: bool
    lower_up: bool
    kind: str | None = None
    parent: int | None = None

    @property
    def line_protocol(self) -> bool:
        """IOS's "line protocol is up": administratively up and carrier present."""
        return self.admin_up and self.lower_up


def macvlan_name(index: int, group: int, forwarder: int) -> str:
    """``glbp<ifindex>v<group>f<n>``: at most 15 characters, unique per LAN link and vMAC."""
    return f"{MACVLAN_PREFIX}{index}v{group}f{forwarder}"


def _link(message: Any) -> Link:
    flags = int(message["flags"])
    return Link(
        index=int(message["index"]),
        name=str(message.get("ifname")),
        mac=str(message.get("address") or "00:00:00:00:00:00"),
        admin_up=bool(flags & IFF_UP),
        lower_up=bool(flags & IFF_LOWER_UP),
        kind=message.get(("linkinfo", "kind")),
        parent=message.get("link"),
    )


class Host:
    """Netlink and sysctl access; use as ``async with Host(ledger) as host``."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self._ipr: Any = None
        self._monitor: Any = None
        # One request at a time on the socket: a second dump while one runs fails with EBUSY.
        self._lock = asyncio.Lock()

    async def __aenter__(self) -> Host:
        from pyroute2 import AsyncIPRoute  # noqa: PLC0415  (Linux only; loaded by the daemon)

        self._ipr = AsyncIPRoute()
        await self._ipr.setup_endpoint()
        # Subscribed before anything is read, so no change between a dump and the first
        # event is missed.
        self._monitor = AsyncIPRoute()
        await self._monitor.bind()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._ipr.close()
        self._monitor.close()

    async def _call(self, what: str, *args: Any, **kwargs: Any) -> Any:
        """One netlink request; a dump's messages are all read before the next request."""
        async with self._lock:
            try:
                result = await getattr(self._ipr, what)(*args, **kwargs)
                if hasattr(result, "__aiter__"):
                    return [message async for message in result]
                return result
            except Exception as exc:  # pyroute2 raises NetlinkError and OSError subclasses
                raise HostError(f"netlink {what} {args[0] if args else ''}: {exc}") from exc

    async def links(self) -> dict[str, Link]:
        dump = await self._call("link", "dump")
        return {link.name: link for link in map(_link, dump)}

    async def ipv4_addresses(self, index: int) -> list[IPv4Interface]:
        dump = await self._call("addr", "dump", index=index, family=2)
        return [IPv4Interface(f"{m.get('address')}/{m['prefixlen']}") for m in dump]

    async def ipv6_link_local(self, index: int) -> IPv6Address | None:
        dump = await self._call("addr", "dump", index=index, family=10)
        for message in dump:
            address = IPv6Address(str(message.get("address")))
            if address.is_link_local:
                return address
        return None

    # -- changes (each one recorded in the ledger first) ----------------------------------

    async def add_macvlan(
        self, name: str, parent: int, mac: str, address: IPv4Address | IPv6Address | None
    ) -> None:
        """A vMAC interface; ``address`` is the group's virtual IP (an IPv4 one is added as a
        /32, see the module docstring; an IPv6 group's stays with the AVG's ND answers)."""
        self.ledger.add("link", name)
        await self.delete_link(name, quiet=True, record=False)  # a leftover of a crash
        await self._call(
            "link",
            "add",
            ifname=name,
            kind="macvlan",
            link=parent,
            macvlan_mode="bridge",
            address=mac,
        )
        extra = _IPV6_BARE if isinstance(address, IPv6Address) else _IPV4_ONLY
        for path, value in (*_MACVLAN_SYSCTLS, *extra):
            write_sysctl(path.format(name=name), value)
        if isinstance(address, IPv4Address):
            index = await self._index(name)
            await self._call("addr", "add", index=index, address=str(address), prefixlen=32)
        await self._call("link", "set", ifname=name, state="up")

    async def delete_link(self, name: str, *, quiet: bool = False, record: bool = True) -> None:
        try:
            await self._call("link", "del", ifname=name)
        except HostError:
            if not quiet:
                raise
        if record:
            self.ledger.remove("link", name)

    def set_sysctl(self, path: str, value: str) -> None:
        """Set ``path`` (under /proc/sys), remembering the value it had for :meth:`restore`."""
        old = read_sysctl(path)
        if old == value:
            return
        self.ledger.remember_sysctl(path, old)
        write_sysctl(path, value)

    async def _index(self, ifname: str) -> int:
        links = await self.links()
        if ifname not in links:
            raise HostError(f"no interface {ifname}")
        return links[ifname].index

    async def undo(self) -> None:
        """Undo everything the ledger records (a clean stop, or a crash before this start)."""
        for name in self.ledger.items("link"):
            await self.delete_link(name, quiet=True)
        for path, value in self.ledger.sysctls().items():
            try:
                write_sysctl(path, value)
            except HostError as exc:
                log.warning("%s", exc)
            self.ledger.forget_sysctl(path)

    # -- events ----------------------------------------------------------------------------

    async def routes(self) -> list[Route]:
        """The IPv4 unicast routes of the main table (what ``ip route`` shows)."""
        dump = await self._call("route", "dump", family=2, table=MAIN_TABLE)
        out = []
        for message in dump:
            if message["type"] != RTN_UNICAST:
                continue
            dst = message.get("dst") or "0.0.0.0"  # noqa: S104  (the default route)
            network = IPv4Network(f"{dst}/{message['dst_len']}", strict=False)
            flags = int(message["flags"]) | _nexthop_flags(message)
            out.append(Route(network, message.get("oif"), bool(flags & _UNUSABLE)))
        return out

    async def events(self) -> AsyncIterator[LinkEvent]:
        """Every link change (RTM_NEWLINK, RTM_DELLINK) and IPv4 route change the kernel
        announces, since this host was opened."""
        while True:
            async for message in self._monitor.get():
                event = message.get("event")
                if event in ("RTM_NEWLINK", "RTM_DELLINK") and message.get("ifname"):
                    yield LinkEvent(_link(message), deleted=event == "RTM_DELLINK")
                elif event in ("RTM_NEWROUTE", "RTM_DELROUTE") and message["family"] == 2:
                    yield LinkEvent(None)


def read_sysctl(path: str) -> str:
    try:
        return (SYSCTL_ROOT / path).read_text(encoding="ascii").strip()
    except OSError as exc:
        raise HostError(f"cannot read sysctl {path.replace('/', '.')}: {exc.strerror}") from exc


def write_sysctl(path: str, value: str) -> None:
    try:
        (SYSCTL_ROOT / path).write_text(value + "\n", encoding="ascii")
    except OSError as exc:
        raise HostError(
            f"cannot set sysctl {path.replace('/', '.')}={value}: {exc.strerror}"
        ) from exc


def ipv4_of(addresses: list[IPv4Interface], vip: IPv4Address | None) -> IPv4Interface | None:
    """The interface address in the virtual IP's subnet (else the first)."""
    for address in addresses:
        if vip is not None and vip in address.network:
            return address
    return addresses[0] if addresses else None


__all__ = [
    "MACVLAN_PREFIX",
    "Host",
    "Link",
    "LinkEvent",
    "Route",
    "ipv4_of",
    "macvlan_name",
    "read_sysctl",
    "route_reachable",
    "write_sysctl",
]
