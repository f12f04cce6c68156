"""IPv6 GLBP groups on real routers: hellos to ff02::66, the AVG's Neighbor Advertisements.

Hosts route through the link-local virtual address (``glbp 2 ipv6 fe80::1:254``), as IOS
IPv6 GLBP has them do; each solicitation for it gets a vMAC from the AVG's balancing, and the
hosts' traffic goes through the router that forwards for that vMAC.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.glbp.live.daemons import FAST, Daemon, assert_no_expert_errors, start_all, tshark
from tests.glbp.live.netns import Lab, wait_for

VIP6 = "fe80::1:254"
LAN6 = "2001:db8:100::"
INTERNET6 = "2001:db8:ffff::1"


def _config(name: str, priority: int) -> str:
    timers = FAST.replace("glbp 1", "glbp 2")
    group = f" glbp 2 ipv6 {VIP6}\n glbp 2 priority {priority}\n"
    return f"hostname {name}\ninterface eth0\n{group}{timers}"


def _sysctl(lab: Lab, node: str, *settings: str) -> None:
    lab.run(node, "sysctl", "-qw", *settings)


def _addr(lab: Lab, node: str, address: str, dev: str) -> None:
    lab.run(node, "ip", "-6", "addr", "add", address, "dev", dev, "nodad")


def _dual_stack(lab: Lab) -> None:
    """IPv6 beside the lab's IPv4: the LAN prefix, /64 uplinks, a target on the wan side."""
    _addr(lab, "wan", f"{INTERNET6}/128", "lo")
    for n, router in enumerate(lab.routers, start=1):
        _sysctl(lab, router, "net.ipv6.conf.all.forwarding=1", "net.ipv6.conf.all.accept_dad=0")
        _addr(lab, router, f"{LAN6}{n}/64", "eth0")
        _addr(lab, router, f"2001:db8:{n}::2/64", "eth1")
        _addr(lab, "wan", f"2001:db8:{n}::1/64", f"u-{router}")
        lab.run(router, "ip", "-6", "route", "add", "default", "via", f"2001:db8:{n}::1")
        lab.run(
            "wan",
            "ip",
            "-6",
            "route",
            "add",
            f"{LAN6}/64",
            "via",
            f"2001:db8:{n}::2",
            "metric",
            str(n),
        )
    for n, host in enumerate(lab.hosts, start=1):
        _sysctl(lab, host, "net.ipv6.conf.eth0.accept_ra=0")
        _addr(lab, host, f"{LAN6}{10 + n}/64", "eth0")
        lab.run(host, "ip", "-6", "route", "add", "default", "via", VIP6, "dev", "eth0")


def _resolve6(lab: Lab, host: str) -> str:
    lab.run(host, "ip", "-6", "neigh", "flush", "dev", "eth0", check=False)
    lab.run(host, "ping", "-6", "-n", "-c1", "-W2", "-I", "eth0", VIP6, check=False)

    def mac() -> str | None:
        shown = json.loads(
            lab.run(host, "ip", "-j", "-6", "neigh", "show", VIP6, "dev", "eth0").stdout or "[]"
        )
        return next((e.get("lladdr") for e in shown if e.get("lladdr")), None)

    return str(wait_for(mac, 5, what=f"{host}'s neighbour entry for {VIP6}"))


def test_ipv6_group_balances_hosts_over_routers(tmp_path: Path) -> None:
    with Lab(workdir=tmp_path, ipv6=True) as lab:
        for name in ("r1", "r2"):
            lab.add_router(name)
        for name in ("h1", "h2"):
            lab.add_host(name)
        _dual_stack(lab)
        with lab.capture("sw", "br0") as pcap:
            daemons = start_all(lab, {"r1": _config("R1", 110), "r2": _config("R2", 100)})

            def settled() -> bool:
                macs = [m for d in daemons.values() for m in d.vmacs().values()]
                return daemons["r1"].role() == "Active" and len(set(macs)) == 2

            wait_for(settled, 15, interval=0.2, what="an IPv6 AVG and two forwarders")
            macs = {host: _resolve6(lab, host) for host in lab.hosts}
        _wireshark_reads(pcap)
        assert set(macs.values()) == {"00:07:b4:00:02:01", "00:07:b4:00:02:02"}, macs
        for host, mac in macs.items():
            router = next(n for n, d in daemons.items() if mac in d.vmacs().values())
            name = next(n for n, m in daemons[router].vmacs().items() if m == mac)
            before = lab.link_stats(router)[name]
            lab.run(host, "ping", "-6", "-n", "-c5", "-i0.05", "-W1", INTERNET6)
            assert lab.link_stats(router)[name] - before >= 5, f"{host} not via {router}"
        shown = daemons["r1"].console("show glbp brief")[0]
        assert re.search(r"eth0\s+2\s+-\s+110\s+Active\s+fe80::1:254\s+local\s+fe80::", shown)
        _vmac_has_no_address_of_its_own(lab, daemons["r1"])


def _wireshark_reads(pcap: Path) -> None:
    """Every hello to ff02::66 decodes as GLBP with the IPv6 virtual address; every
    advertisement for it is a valid solicited NA naming a vMAC; no expert errors."""
    fields = ["-T", "fields", "-e", "ipv6.dst", "-e", "ipv6.hlim", "-e", "glbp.hello.virtualipv6"]
    hellos = tshark(pcap, "-Y", "udp.port == 3222", *fields)
    assert len(hellos) >= 5
    assert {line.split("\t")[1] for line in hellos} == {"255"}
    assert any(line.split("\t") == ["ff02::66", "255", VIP6] for line in hellos), hellos[:3]
    na = f"icmpv6.type == 136 && icmpv6.nd.na.target_address == {VIP6}"
    nas = tshark(pcap, "-Y", na, "-T", "fields", "-e", "icmpv6.opt.linkaddr", "-e",
                 "icmpv6.checksum.status", "-e", "icmpv6.nd.na.flag.s")  # fmt: skip
    assert len(nas) >= 2, nas
    for line in nas:
        mac, checksum, solicited = line.split("\t")
        assert mac.startswith("00:07:b4:00:02:0") and checksum == "1" and solicited == "1"
    assert_no_expert_errors(pcap)


def _vmac_has_no_address_of_its_own(lab: Lab, daemon: Daemon) -> None:
    for name in daemon.vmacs():
        shown = lab.run(daemon.router, "ip", "-6", "addr", "show", "dev", name).stdout
        assert "inet6" not in shown, shown  # no link-local from the vMAC: no DAD, no RS


def test_an_ipv6_group_added_from_the_console_speaks(tmp_path: Path) -> None:
    """A group of a family the interface had no socket for yet (added by the console or a
    reload) opens it and hears the other routers: one AVG, not two."""
    with Lab(workdir=tmp_path, ipv6=True) as lab:
        for name in ("r1", "r2"):
            lab.add_router(name)
        _dual_stack(lab)
        v4 = "interface eth0\n glbp 1 ip 192.168.0.254\n" + FAST
        daemons = start_all(lab, {"r1": f"hostname R1\n{v4}", "r2": f"hostname R2\n{v4}"})
        wait_for(
            lambda: sorted(d.role() for d in daemons.values()) == ["Active", "Standby"],
            15,
            what="the IPv4 group",
        )
        timers = FAST.replace("glbp 1", "glbp 2").strip()
        for daemon in daemons.values():
            daemon.console(
                "configure terminal", "interface eth0", f"glbp 2 ipv6 {VIP6}", timers, "end"
            )

        def roles() -> list[str]:
            rows = [d.brief() for d in daemons.values()]
            return sorted(r[4] for rs in rows for r in rs if r[1] == "2" and r[2] == "-")

        wait_for(lambda: roles() == ["Active", "Standby"], 15, what="one IPv6 AVG")
        macs = [m for d in daemons.values() for m in d.vmacs().values()]
        assert sorted(m for m in macs if m.startswith("00:07:b4:00:02")) == [
            "00:07:b4:00:02:01", "00:07:b4:00:02:02"]  # fmt: skip
