"""A network-namespace lab for GLBP system tests, in the style of FRRouting's topotests.

Theory of operation
-------------------
A :class:`Lab` builds its topology from Linux network namespaces, veth pairs and one bridge::

         h1 eth0        h2 eth0                 hosts: default route via their gateway
            |              |
     +------+--------------+-------------+
     | sw   br0: l-h1 l-h2 l-r1 l-r2     |      the LAN: STP off, mcast_snooping 0
     +------+--------------+-------------+
            |              |
         r1 eth0        r2 eth0                 routers: ip_forward=1, LAN on eth0,
         r1 eth1        r2 eth1                 a /30 uplink on eth1 (default route)
            |              |
     +------+--------------+-------------+
     | wan  u-r1 u-r2, lo 198.51.100.1/32 |     "the internet"
     +-----------------------------------+

Names. Each lab takes a short random id (``pg`` + 4 hex digits, claimed atomically through an
owner file under /run/pbxgate-netns) and names its namespaces ``<id>-<node>``, so parallel runs
never collide and :func:`cleanup_stale` can tell a crashed run's leftovers (owner dead) from a
live lab. Interfaces are created inside the lab's namespaces, never in the root one, so their
names need only be unique per namespace and stay well inside IFNAMSIZ (15 characters).

Link failures are made from the far side: ``uplink_down(r)`` sets ``u-r`` (wan side) down and
``lan_link(r, False)`` sets ``l-r`` (bridge side) down, so the router sees its own eth1/eth0
lose carrier, as it would when a cable is pulled, with its configuration untouched. Routers
set ``ignore_routes_with_linkdown`` so that, as on IOS, routes through a link without carrier
are not used: packets are dropped at once (ICMP unreachable) instead of being held in the
neighbour queue for up to 3 s of ARP retries and delivered late when the link returns.

Return traffic. The wan namespace answers pings itself. Policy routing by incoming interface
cannot steer those replies (locally generated packets match ``iif lo``), this kernel has no
VRF, and iptables is not wanted. So the wan namespace holds one route to the LAN per router,
with metrics in the order the routers were added, and the harness keeps only the routes of
routers whose LAN and uplink are both up, as a routing protocol would withdraw the prefix.
Replies come back through the first healthy router, whichever router forwarded the request.
Measure a router's share of the load on its LAN-side ingress (``rx_packets`` of eth0, or of its
``glbp*`` virtual-MAC interfaces), never on the return path.

IPv6 is off in every namespace unless asked for, so counters and captures see only the test's
traffic (no router solicitations, no MLD reports).

Waiting. Nothing here sleeps for a fixed time: :func:`wait_for` polls with a deadline
(topotest's ``run_and_expect``).
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import logging
import math
import os
import re
import secrets
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

log = logging.getLogger(__name__)

PREFIX = "pg"
OWNERS = Path("/run/pbxgate-netns")  # <lab id> -> pid of the process that owns the lab
INTERNET = "198.51.100.1"  # TEST-NET-2 (RFC 5737): the wan namespace's "internet" address
LAN = "192.168.0.0/24"
SWITCH, WAN = "sw", "wan"
_NODE_NAME = re.compile(r"[a-z][a-z0-9]{0,9}\Z")  # l-/u- + name stays within IFNAMSIZ
_MAC = re.compile(r"\[([0-9A-Fa-f:]{17})\]")
T = TypeVar("T")


# -- polling -----------------------------------------------------------------------------------


def wait_for(
    predicate: Callable[[], T], timeout: float, interval: float = 0.05, what: str = "condition"
) -> T:
    """Poll ``predicate`` until it returns something truthy and return that value.

    Raises AssertionError naming ``what`` and the last value seen when ``timeout`` seconds pass.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}: {value!r}")
        time.sleep(interval)


# -- commands ----------------------------------------------------------------------------------


class CommandError(subprocess.CalledProcessError):
    """A lab command failed; the message carries the command line and its stderr."""

    def __str__(self) -> str:
        detail = (self.stderr or self.stdout or "").strip()
        return f"{shlex.join(self.cmd)} exited {self.returncode}: {detail}"


def _run(
    argv: list[str], check: bool = True, timeout: float = 10.0
) -> subprocess.CompletedProcess[str]:
    log.debug("run: %s", shlex.join(argv))
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    if check and done.returncode:
        raise CommandError(done.returncode, argv, done.stdout, done.stderr)
    return done


def require(tool: str, package: str) -> str:
    """The path of ``tool``; a clear error naming the Debian package when it is missing."""
    found = shutil.which(tool)
    if found is None:
        raise RuntimeError(f"{tool} not found: apt-get install {package}")
    return found


# -- namespaces and their owners ---------------------------------------------------------------


def netns_names() -> list[str]:
    """Every named network namespace on the machine (``ip netns list``)."""
    return [
        entry["name"] for entry in json.loads(_run(["ip", "-j", "netns", "list"]).stdout or "[]")
    ]


def _delete_netns(name: str) -> None:
    """Kill what still runs in the namespace (it would keep the namespace alive), delete it."""
    for pid in _run(["ip", "netns", "pids", name], check=False).stdout.split():
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(pid), signal.SIGKILL)
    _run(["ip", "netns", "del", name], check=False)


def _claim(prefix: str) -> str:
    """A fresh lab id, claimed by creating its owner file exclusively."""
    OWNERS.mkdir(parents=True, exist_ok=True)
    for _ in range(100):
        lab_id = prefix + secrets.token_hex(2)
        if _write_owner(lab_id):
            if not any(name.startswith(f"{lab_id}-") for name in netns_names()):
                return lab_id
            (OWNERS / lab_id).unlink()  # a crashed lab's leftovers: cleanup_stale's business
    raise RuntimeError(f"no free lab id with prefix {prefix!r}; run cleanup_stale({prefix!r})")


def _write_owner(lab_id: str) -> bool:
    """Create the owner file holding our pid, atomically: written aside, then hard-linked (a
    link fails if the name exists), so no one ever reads it half-written and takes us for dead.
    """
    draft = OWNERS / f".{lab_id}.{os.getpid()}"
    draft.write_text(f"{os.getpid()}\n")
    try:
        os.link(draft, OWNERS / lab_id)
    except FileExistsError:
        return False
    finally:
        draft.unlink()
    return True


def _owner_alive(lab_id: str) -> bool:
    try:
        pid = int((OWNERS / lab_id).read_text())
    except (OSError, ValueError):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def cleanup_stale(prefix: str = PREFIX) -> list[str]:
    """Delete the namespaces (and kill the processes in them) of crashed earlier labs.

    A namespace counts as stale when its name has the harness's pattern (``<prefix>`` + 4 hex
    digits + ``-node``) and the process that owned its lab is gone. Returns the deleted names.
    """
    lab_id = rf"{re.escape(prefix)}[0-9a-f]{{4}}"
    in_lab = re.compile(rf"({lab_id})-[a-z][a-z0-9]*\Z")
    removed = []
    for name in netns_names():
        match = in_lab.match(name)
        if match and not _owner_alive(match[1]):
            _delete_netns(name)
            removed.append(name)
    owners = OWNERS.iterdir() if OWNERS.is_dir() else iter(())
    for owner in owners:
        if re.fullmatch(lab_id, owner.name) and not _owner_alive(owner.name):
            owner.unlink(missing_ok=True)
    return removed


# -- ping --------------------------------------------------------------------------------------

_REPLY = re.compile(r"^\[(\d+\.\d+)\] \d+ bytes from .*?icmp_seq=(\d+)", re.MULTILINE)
_UNANSWERED = re.compile(r"no answer yet for icmp_seq=(\d+)|From \S+ icmp_seq=(\d+)")
_TOTALS = re.compile(r"(\d+) packets transmitted")


@dataclass(frozen=True)
class PingResult:
    """What a :class:`Pinger` saw; unpacks as ``sent, received, lost = result``.

    ``lost`` holds the sequence numbers that never got a reply; ``reply_times`` the arrival
    time (``ping -D``, epoch seconds) of each reply, in arrival order.
    """

    sent: int
    received: int
    lost: list[int]
    reply_times: tuple[float, ...] = ()

    def __iter__(self) -> Iterator[Any]:
        return iter((self.sent, self.received, self.lost))

    def longest_loss_run(self) -> int:
        """The longest run of consecutive lost sequence numbers."""
        longest = run = 0
        previous = None
        for seq in self.lost:
            run = run + 1 if previous == seq - 1 else 1
            longest, previous = max(longest, run), seq
        return longest

    def longest_outage_ms(self, interval: float) -> float:
        """The longest outage in ms, for pings every ``interval`` s (lost packets only)."""
        return self.longest_loss_run() * interval * 1000

    def longest_silence_ms(self) -> float:
        """The longest wait between two replies in ms: also counts packets held up and then
        delivered late in a burst, which ``lost`` does not."""
        gaps = [b - a for a, b in zip(self.reply_times, self.reply_times[1:], strict=False)]
        return max(gaps, default=0.0) * 1000


def parse_ping(text: str) -> PingResult:
    """Read iputils ``ping -D -O`` output. A packet is lost when ping reported it unanswered
    (``-O``) or got an ICMP error for it, and no reply came later; the packet in flight when
    ping was stopped is neither received nor lost."""
    replies = _REPLY.findall(text)
    received = {int(seq) for _, seq in replies}
    unanswered = {int(a or b) for a, b in _UNANSWERED.findall(text)}
    totals = _TOTALS.search(text)
    sent = int(totals[1]) if totals else max(received | unanswered, default=0)
    times = tuple(float(stamp) for stamp, _ in replies)
    return PingResult(sent, len(received), sorted(unanswered - received), times)


class Pinger:
    """A background ``ping -D -O`` from a host; :meth:`stop` ends it and returns the result."""

    def __init__(self, lab: Lab, proc: subprocess.Popen[Any], interval: float) -> None:
        self.lab, self.proc, self.interval = lab, proc, interval

    def progress(self) -> PingResult:
        """The result so far, without stopping (for :func:`wait_for`)."""
        return parse_ping(self.lab.output(self.proc))

    def stop(self) -> PingResult:
        self.lab.stop(self.proc, signal.SIGINT)
        return self.progress()


def _dumpcap_count(output: str) -> int:
    """The packet count dumpcap last reported on stderr ("Packets: N", every half second)."""
    counts = re.findall(r"Packets(?: captured)?: (\d+)", output)
    return int(counts[-1]) if counts else 0


# -- the lab -----------------------------------------------------------------------------------


@dataclass
class Uplink:
    """A router's point-to-point link to the wan namespace and its return route there."""

    address: ipaddress.IPv4Interface  # the router's eth1
    peer: ipaddress.IPv4Interface  # the wan side, the router's default gateway
    metric: int
    up: bool = True


def _peer(address: ipaddress.IPv4Interface) -> ipaddress.IPv4Interface:
    others = [host for host in address.network.hosts() if host != address.ip]
    if len(others) != 1:
        raise ValueError(f"uplink {address} must be a /30 or /31 (point-to-point)")
    return ipaddress.IPv4Interface(f"{others[0]}/{address.network.prefixlen}")


class Lab:
    """A LAN bridge, a wan namespace, and the routers and hosts added to them.

    Use as a context manager: leaving it stops every process started through the lab and
    deletes every namespace (and with them every veth) it made, also after a failure.
    """

    def __init__(self, workdir: Path | None = None, prefix: str = PREFIX, ipv6: bool = False):
        self.prefix, self.ipv6 = prefix, ipv6
        self._own_workdir = workdir is None
        self.workdir = Path(tempfile.mkdtemp(prefix="netns-lab-")) if workdir is None else workdir
        self.id = ""
        self.routers: list[str] = []
        self.hosts: list[str] = []
        self._netns: dict[str, str] = {}
        self._lan_up: dict[str, bool] = {}
        self._uplinks: dict[str, Uplink] = {}
        self._procs: list[subprocess.Popen[Any]] = []
        self.logs: dict[int, Path] = {}

    def __enter__(self) -> Lab:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- building ------------------------------------------------------------------------------

    def start(self) -> None:
        """Claim an id and build the switch and wan namespaces."""
        self.id = _claim(self.prefix)
        self._add_netns(SWITCH)
        # STP off: a port forwards as soon as it is up. Snooping off: every multicast floods.
        bridge = ["type", "bridge", "stp_state", "0", "mcast_snooping", "0"]
        self._ip(SWITCH, "link", "add", "br0", *bridge)
        self._ip(SWITCH, "link", "set", "br0", "up")
        self._add_netns(WAN)
        self._ip(WAN, "addr", "add", f"{INTERNET}/32", "dev", "lo")  # no dummy device here
        log.debug("lab %s: up", self.id)

    def add_router(
        self, name: str, lan_ip: str | None = None, uplink_ip: str | None = None
    ) -> None:
        """A router on the LAN (eth0) with a /30 uplink (eth1) to the wan namespace.

        The n-th router gets 192.168.0.<n>/24 and 10.0.<n>.2/30 unless told otherwise.
        """
        n = len(self.routers) + 1
        self._add_netns(name)
        # IOS withdraws routes through an interface that lost its link; Linux keeps them
        # (flagged linkdown) and holds packets for up to 3 s of ARP retries unless told so.
        self._sysctl(
            name, "net.ipv4.ip_forward=1", "net.ipv4.conf.all.ignore_routes_with_linkdown=1"
        )
        self._lan_port(name, lan_ip or f"192.168.0.{n}/24")
        self._add_uplink(name, ipaddress.IPv4Interface(uplink_ip or f"10.0.{n}.2/30"), n)
        self.routers.append(name)

    def add_host(
        self, name: str, ip: str | None = None, gateway: str | None = "192.168.0.254"
    ) -> None:
        """A host on the LAN (eth0), default route via ``gateway`` (the virtual IP by default).

        The n-th host gets 192.168.0.<10+n>/24 unless told otherwise.
        """
        self._add_netns(name)
        self._lan_port(name, ip or f"192.168.0.{10 + len(self.hosts) + 1}/24")
        if gateway:
            self._ip(name, "route", "add", "default", "via", gateway)
        self.hosts.append(name)

    def _add_netns(self, node: str) -> str:
        if not _NODE_NAME.match(node) or node in self._netns:
            raise ValueError(f"node name {node!r} is taken or not [a-z][a-z0-9]{{0,9}}")
        netns = f"{self.id}-{node}"
        _run(["ip", "netns", "add", netns])
        self._netns[node] = netns
        if not self.ipv6:
            self._sysctl(
                node, "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"
            )
        self._ip(node, "link", "set", "lo", "up")
        return netns

    def _veth(self, node: str, ifname: str, far: str, peer: str) -> None:
        """A veth pair made inside the lab: ``ifname`` in ``node``, ``peer`` in ``far``."""
        pair = ["link", "add", ifname, "type", "veth", "peer", "name", peer]
        self._ip(node, *pair, "netns", self.netns(far))

    def _lan_port(self, node: str, address: str) -> None:
        port = f"l-{node}"
        self._veth(node, "eth0", SWITCH, port)
        self._ip(SWITCH, "link", "set", port, "master", "br0", "up")
        self._ip(node, "addr", "add", address, "dev", "eth0")
        self._ip(node, "link", "set", "eth0", "up")
        self._lan_up[node] = True

    def _add_uplink(self, router: str, address: ipaddress.IPv4Interface, metric: int) -> None:
        port, uplink = f"u-{router}", Uplink(address, _peer(address), metric)
        self._veth(router, "eth1", WAN, port)
        self._ip(router, "addr", "add", str(address), "dev", "eth1")
        self._ip(WAN, "addr", "add", str(uplink.peer), "dev", port)
        self._ip(router, "link", "set", "eth1", "up")
        self._ip(WAN, "link", "set", port, "up")
        self._ip(router, "route", "add", "default", "via", str(uplink.peer.ip))
        self._uplinks[router] = uplink
        self._sync_return_route(router)

    def _sync_return_route(self, router: str) -> None:
        """Keep the wan's route to the LAN via ``router`` only while both its links are up."""
        uplink = self._uplinks[router]
        healthy = uplink.up and self._lan_up[router]
        route = [LAN, "via", str(uplink.address.ip), "metric", str(uplink.metric)]
        # The kernel already dropped the route if the wan-side port went down: no check on del.
        self._ip(WAN, "route", "replace" if healthy else "del", *route, check=healthy)

    # -- failures ------------------------------------------------------------------------------

    def uplink_down(self, router: str) -> None:
        """Set the wan-side peer of ``router``'s eth1 down: eth1 loses carrier."""
        self._set_uplink(router, False)

    def uplink_up(self, router: str) -> None:
        self._set_uplink(router, True)

    def _set_uplink(self, router: str, up: bool) -> None:
        if router not in self._uplinks:
            raise KeyError(f"{router!r} is not a router of this lab ({self.routers})")
        self._ip(WAN, "link", "set", f"u-{router}", "up" if up else "down")
        self._uplinks[router].up = up
        self._sync_return_route(router)

    def lan_link(self, node: str, up: bool) -> None:
        """Set the bridge-side peer of ``node``'s eth0 up or down: eth0 gains or loses carrier."""
        self.netns(node)
        self._ip(SWITCH, "link", "set", f"l-{node}", "up" if up else "down")
        self._lan_up[node] = up
        if node in self._uplinks:
            self._sync_return_route(node)

    # -- running things ------------------------------------------------------------------------

    def netns(self, node: str) -> str:
        """The namespace name of ``node`` (a router, a host, ``sw`` or ``wan``)."""
        try:
            return self._netns[node]
        except KeyError:
            raise KeyError(
                f"no node {node!r} in lab {self.id} (nodes: {list(self._netns)})"
            ) from None

    def run(
        self, node: str, *argv: str, check: bool = True, timeout: float = 10.0
    ) -> subprocess.CompletedProcess[str]:
        """Run a command to completion in ``node``'s namespace (``ip netns exec``)."""
        return _run(["ip", "netns", "exec", self.netns(node), *argv], check, timeout)

    def _ip(self, node: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return _run(["ip", "-n", self.netns(node), *args], check)

    def _sysctl(self, node: str, *settings: str) -> None:
        self.run(node, "sysctl", "-qw", *settings)

    def popen(self, node: str, *argv: str, **kwargs: Any) -> subprocess.Popen[Any]:
        """Start a long-running command in ``node``'s namespace; stopped at teardown.

        Unless ``stdout`` is given, stdout and stderr go to a log file (see :meth:`output`).
        """
        cmd = ["ip", "netns", "exec", self.netns(node), *argv]
        kwargs.setdefault("stdin", subprocess.DEVNULL)
        kwargs.setdefault("start_new_session", True)  # Ctrl-C reaches pytest, teardown the rest
        if "stdout" in kwargs:
            proc = subprocess.Popen(cmd, **kwargs)
        else:
            path = self._new_log(node, Path(argv[0]).name)
            kwargs.setdefault("stderr", subprocess.STDOUT)
            with path.open("wb") as out:
                proc = subprocess.Popen(cmd, stdout=out, **kwargs)
            self.logs[proc.pid] = path
        self._procs.append(proc)
        return proc

    def _new_log(self, node: str, program: str) -> Path:
        for n in range(1, 1000):
            path = self.workdir / f"{node}-{program}-{n}.log"
            if not path.exists():
                return path
        raise RuntimeError(f"too many logs for {node} {program} in {self.workdir}")

    def output(self, proc: subprocess.Popen[Any]) -> str:
        """What a process started by :meth:`popen` has written to its log so far."""
        return self.logs[proc.pid].read_text(errors="replace")

    def stop(
        self, proc: subprocess.Popen[Any], sig: int = signal.SIGTERM, timeout: float = 5.0
    ) -> int:
        """Signal ``proc``, SIGKILL it after ``timeout`` s, close its pipes; its exit code."""
        if proc.poll() is None:
            proc.send_signal(sig)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
        with contextlib.suppress(ValueError):
            self._procs.remove(proc)
        return proc.returncode

    # -- observing -----------------------------------------------------------------------------

    def sys(self, node: str, ifname: str, attribute: str) -> str:
        """``/sys/class/net/<ifname>/<attribute>`` as seen inside ``node``'s namespace."""
        return self.run(node, "cat", f"/sys/class/net/{ifname}/{attribute}").stdout.strip()

    def rx_packets(self, node: str, ifname: str) -> int:
        return int(self.sys(node, ifname, "statistics/rx_packets"))

    def operstate(self, node: str, ifname: str) -> str:
        """``up``, ``down``, ``lowerlayerdown``... (the kernel's RFC 2863 operational state)."""
        return self.sys(node, ifname, "operstate")

    def mac(self, node: str, ifname: str) -> str:
        return self.sys(node, ifname, "address")

    def link_stats(self, node: str) -> dict[str, int]:
        """``{ifname: rx_packets}`` for every link in ``node``'s namespace (glbp* included)."""
        links = json.loads(self._ip(node, "-j", "-s", "link", "show").stdout)
        return {link["ifname"]: link["stats64"]["rx"]["packets"] for link in links}

    def neighbour_mac(self, host: str, ip: str) -> str | None:
        """The MAC ``host``'s kernel has resolved for ``ip`` on eth0, if any."""
        entry = self._neighbour(host, ip)
        return entry.get("lladdr") if entry else None

    def _neighbour(self, host: str, ip: str) -> dict[str, Any] | None:
        entries = json.loads(
            self._ip(host, "-j", "neigh", "show", ip, "dev", "eth0").stdout or "[]"
        )
        for entry in entries:
            if not {"INCOMPLETE", "FAILED"} & set(entry.get("state", [])):
                return {**entry, "lladdr": str(entry.get("lladdr", "")).lower() or None}
            if "FAILED" in entry.get("state", []):
                return {"state": ["FAILED"], "lladdr": None}
        return None

    def resolve(self, host: str, ip: str, timeout: float = 3.5) -> str | None:
        """Flush ``host``'s neighbour entry for ``ip``, make its kernel ARP afresh, return the MAC.

        The kernel itself resolves (one ping triggers it), not arping: arping's answer never
        enters the neighbour table, so the host's next packet would ARP again and, behind a GLBP
        gateway that hands out virtual MACs round-robin, could get a different MAC. None when
        nothing answered within ``timeout`` seconds.
        """
        require("ping", "iputils-ping")
        self._ip(host, "neigh", "flush", "to", ip, "dev", "eth0", check=False)
        probe = self.popen(host, "ping", "-n", "-c1", f"-W{math.ceil(timeout)}", ip)
        try:
            entry = wait_for(lambda: self._neighbour(host, ip), timeout, what=f"ARP for {ip}")
        except AssertionError:
            return None
        finally:
            self.stop(probe)
        return entry.get("lladdr")

    def arping(self, host: str, ip: str, timeout: float = 1.0) -> list[str]:
        """The MACs that answered one ARP request from ``host`` (kernel's table untouched)."""
        require("arping", "iputils-arping")
        argv = ["arping", "-c1", f"-w{math.ceil(timeout)}", "-I", "eth0", ip]
        return [mac.lower() for mac in _MAC.findall(self.run(host, *argv, check=False).stdout)]

    def pinger(self, host: str, target: str, interval: float = 0.05) -> Pinger:
        """Ping ``target`` from ``host`` every ``interval`` s (root may go below 0.2 s)."""
        require("ping", "iputils-ping")
        proc = self.popen(host, "ping", "-n", "-D", "-O", "-i", f"{interval:g}", target)
        return Pinger(self, proc, interval)

    @contextlib.contextmanager
    def capture(self, node: str, iface: str, name: str | None = None) -> Iterator[Path]:
        """Capture on ``iface`` in ``node`` with dumpcap into a classic pcap; yields its path.

        Capturing starts before the block runs. On leaving it, the harness waits until dumpcap
        has taken as many packets as the interface counted meanwhile, then stops it (SIGINT):
        dumpcap reads the kernel's ring a block at a time, and whatever sits in an unfinished
        block when it is interrupted never reaches the file.
        """
        require("dumpcap", "wireshark-common (comes with tshark)")
        path = self.workdir / (name or f"{node}-{iface}.pcap")
        proc = self.popen(node, "dumpcap", "-i", iface, "-P", "-w", str(path))
        try:
            self._capturing(proc, f"dumpcap on {node} {iface}")
            start = self._traffic(node, iface)
            yield path
            target = self._traffic(node, iface) - start
            what = f"dumpcap on {node} {iface} to take the {target} packets the link counted"
            wait_for(lambda: _dumpcap_count(self.output(proc)) >= target, 5.0, what=what)
        finally:
            self.stop(proc, signal.SIGINT)

    def _capturing(self, proc: subprocess.Popen[Any], what: str) -> None:
        wait_for(
            lambda: "Capturing on" in self.output(proc) or proc.poll() is not None, 10.0, what=what
        )
        if proc.poll() is not None:
            raise RuntimeError(f"{what} failed: {self.output(proc)}")

    def _traffic(self, node: str, iface: str) -> int:
        """Packets received plus sent on ``iface``: what a capture on it should see."""
        (link,) = json.loads(self._ip(node, "-j", "-s", "link", "show", "dev", iface).stdout)
        return int(link["stats64"]["rx"]["packets"]) + int(link["stats64"]["tx"]["packets"])

    # -- teardown ------------------------------------------------------------------------------

    def close(self) -> None:
        """Stop every process, delete every namespace; raise if one survives."""
        for proc in reversed(self._procs[:]):
            try:
                self.stop(proc)
            except OSError:
                log.exception("lab %s: could not stop %s", self.id, proc.args)
        for netns in reversed(list(self._netns.values())):
            _delete_netns(netns)
        left = [name for name in netns_names() if name in self._netns.values()]
        self._netns.clear()
        if self.id:
            (OWNERS / self.id).unlink(missing_ok=True)
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
        if left:
            raise RuntimeError(f"lab {self.id}: namespaces survived teardown: {left}")
