"""``pbxgate glbp run`` on real Linux routers in network namespaces (the lab of ``netns.py``).

Three routers share a LAN's gateway the way the article's R2/R3/R4 do; hosts ARP for it, get
virtual MACs as the balancing mode says, and their traffic really goes through different
routers. Failover, tracking, preemption, the fifth router, authentication, reload, the console
and clean stops are each driven here and checked from the hosts' side and the routers' logs.
"""

from __future__ import annotations

import json
import re
import signal
import time
from pathlib import Path

import pytest

from tests.glbp.live.daemons import (
    PBXGATE,
    VIP,
    Daemon,
    assert_no_expert_errors,
    config,
    live_roles,
    same_roles,
    simulated_roles,
    start_all,
    tshark,
)
from tests.glbp.live.netns import INTERNET, Lab, wait_for

HOLD_S = 0.7  # the FAST timers' hold time


def _routers(lab: Lab, texts: dict[str, str]) -> dict[str, Daemon]:
    for name in texts:
        lab.add_router(name)
    return start_all(lab, texts)


def _settled(daemons: dict[str, Daemon], forwarders: int, timeout: float = 15) -> None:
    """Wait until one AVG answers and ``forwarders`` vMACs are up, one router each."""

    def ready() -> bool:
        roles = [d.role() for d in daemons.values()]
        macs = [mac for d in daemons.values() for mac in d.vmacs().values()]
        return roles.count("Active") == 1 and len(macs) == len(set(macs)) == forwarders

    wait_for(ready, timeout, interval=0.2, what=f"one AVG and {forwarders} forwarders")


def _owner(daemons: dict[str, Daemon], mac: str) -> str:
    return next(name for name, d in daemons.items() if mac in d.vmacs().values())


def _texts(daemons: dict[str, Daemon]) -> dict[str, str]:
    return {name: daemon.text for name, daemon in daemons.items()}


def three(lab: Lab, hosts: int = 3, **kw: str) -> dict[str, Daemon]:
    daemons = _routers(
        lab,
        {
            "r1": config("R1", 110, **kw),
            "r2": config("R2", 105, **kw),
            "r3": config("R3", 100, **kw),
        },
    )
    for n in range(1, hosts + 1):
        lab.add_host(f"h{n}")
    _settled(daemons, 3)
    return daemons


def test_three_routers_share_the_gateway(lab: Lab) -> None:
    with lab.capture("sw", "br0") as pcap:
        daemons = three(lab)
        macs = {h: lab.resolve(h, VIP) for h in lab.hosts}
        # One answer per request, from the AVG, naming a vMAC: no kernel answers for itself.
        answers = lab.arping("h1", VIP)
        assert len(answers) == 1 and answers[0].startswith("00:07:b4:00:01:0"), answers
        # Round-robin (the IOS default): three hosts, three different vMACs.
        assert len(set(macs.values())) == 3, macs
        assert all(re.fullmatch(r"00:07:b4:00:01:0[1-4]", m or "") for m in macs.values())
        before = {r: lab.link_stats(r) for r in lab.routers}
        for host in lab.hosts:
            lab.run(host, "ping", "-c5", "-i0.05", "-W1", INTERNET)
    for host, mac in macs.items():
        router = _owner(daemons, str(mac))
        name = next(n for n, m in daemons[router].vmacs().items() if m == mac)
        grew = lab.link_stats(router)[name] - before[router].get(name, 0)
        assert grew >= 5, f"{host}'s pings did not go through {router} ({name})"
    assert daemons["r1"].role() == "Active" and daemons["r2"].role() == "Standby"
    assert daemons["r3"].role() == "Listen"
    _wireshark_reads_every_frame(pcap)
    # The simulator, given the same configurations, addresses and MACs, ends the same way.
    same_roles(daemons, simulated_roles(lab, _texts(daemons)))


def _wireshark_reads_every_frame(pcap: Path) -> None:
    fields = ["-T", "fields", "-e", "udp.srcport", "-e", "_ws.col.Protocol", "-e", "ip.ttl"]
    out = tshark(pcap, "-Y", "udp.port == 3222", *fields)
    assert len(out) >= 10, "too few GLBP frames captured"
    assert {line.split("\t")[1] for line in out} == {"GLBP"}
    assert {line.split("\t")[2] for line in out} == {"255"}
    assert_no_expert_errors(pcap)


def test_a_dead_forwarder_moves_within_the_hold_time(lab: Lab) -> None:
    daemons = three(lab, hosts=1)
    mac = lab.resolve("h1", VIP)
    victim = _owner(daemons, str(mac))
    ping = lab.pinger("h1", INTERNET, interval=0.02)
    wait_for(lambda: ping.progress().received >= 10, 5, what="pings flowing")
    # The router dies: its daemon is killed and its LAN port goes dark with it.
    daemons[victim].stop(signal.SIGKILL)
    lab.lan_link(victim, False)
    survivors = {n: d for n, d in daemons.items() if n != victim}
    wait_for(
        lambda: any(mac in d.vmacs().values() for d in survivors.values()),
        5,
        what=f"{mac} on another router",
    )
    received = ping.progress().received
    wait_for(lambda: ping.progress().received >= received + 10, 5, what="pings again")
    result = ping.stop()
    # The host kept its vMAC (GLBP moves the forwarder, not the host) and lost at most about
    # one hold time of pings (plus the hello that announces the takeover).
    assert lab.neighbour_mac("h1", VIP) == mac
    assert result.longest_silence_ms() < (HOLD_S + 0.6) * 1000, result.longest_silence_ms()
    simulated = simulated_roles(lab, _texts(daemons), dead=(victim,))
    same_roles(daemons, simulated, skip=(victim,))
    # What the killed daemon left behind, systemd's ExecStopPost takes away.
    assert any(n.startswith("glbp") for n in lab.link_stats(victim))
    cleaned = lab.run(
        victim,
        PBXGATE,
        "glbp",
        "cleanup",
        "--ledger",
        str(daemons[victim].ledger),
    )
    assert "glbp" in cleaned.stderr
    assert not any(n.startswith("glbp") for n in lab.link_stats(victim))
    assert lab.run(victim, "sysctl", "-n", "net.ipv4.conf.eth0.arp_ignore").stdout.strip() == "0"


def test_tracked_uplink_hands_the_forwarder_over(lab: Lab) -> None:
    daemons = three(lab, hosts=1, extra=" glbp 1 forwarder preempt delay minimum 1\n")
    mac = lab.resolve("h1", VIP)
    victim = _owner(daemons, str(mac))
    ping = lab.pinger("h1", INTERNET, interval=0.02)
    wait_for(lambda: ping.progress().received >= 10, 5, what="pings flowing")
    lab.uplink_down(victim)
    wait_for(lambda: mac not in daemons[victim].vmacs().values(), 5, what="vMAC given up")
    received = ping.progress().received
    wait_for(lambda: ping.progress().received >= received + 10, 5, what="pings again")
    result = ping.stop()
    log = daemons[victim].log()
    assert "%TRACK-6-STATE: 1 interface eth1 line-protocol Up -> Down" in log
    assert re.search(r"%GLBP-6-FWDSTATECHANGE: eth0 Grp 1 Fwd \d state Active -> Listen", log)
    # Weighting below 'lower' gives the forwarder up at once: no hold time to wait.
    assert result.longest_silence_ms() < HOLD_S * 1000, result.longest_silence_ms()
    # Back above 'upper', the owner takes its forwarder back after the preempt delay (1 s).
    lab.uplink_up(victim)
    up = time.monotonic()
    wait_for(lambda: mac in daemons[victim].vmacs().values(), 5, what="vMAC taken back")
    assert time.monotonic() - up >= 0.9


def test_avg_failover_and_preemption_with_delay(lab: Lab) -> None:
    preempt = " glbp 1 preempt delay minimum 2\n"
    daemons = _routers(lab, {"r1": config("R1", 110, extra=preempt), "r2": config("R2", 105)})
    lab.add_host("h1")
    _settled(daemons, 2)
    assert daemons["r1"].role() == "Active"
    daemons["r1"].stop(signal.SIGKILL)
    lab.lan_link("r1", False)
    wait_for(lambda: daemons["r2"].role() == "Active", 3, what="R2 takes the AVG role")
    assert lab.resolve("h1", VIP) is not None  # the new AVG answers ARP
    lab.run("r1", PBXGATE, "glbp", "cleanup", "--ledger", str(daemons["r1"].ledger))
    lab.lan_link("r1", True)
    started = time.monotonic()  # its delay begins once it has heard R2, after this
    daemons["r1"].start()
    wait_for(lambda: daemons["r1"].role() in ("Listen", "Standby"), 5, what="R1 back")
    wait_for(lambda: daemons["r1"].role() == "Active", 8, what="R1 preempts")
    assert time.monotonic() - started >= 2.0  # not before its 2 s delay
    assert "undoing" not in daemons["r1"].log()  # cleaned up before the start


def test_the_fifth_router_waits(lab: Lab) -> None:
    daemons = _routers(lab, {f"r{n}": config(f"R{n}", 100 + n, track=False) for n in range(1, 6)})
    _settled(daemons, 4)
    without = [n for n, d in daemons.items() if not d.vmacs()]
    assert len(without) == 1
    simulated = simulated_roles(lab, _texts(daemons))
    # Which router waits depends on who asked the AVG first; the VG roles (by priority) and
    # what the forwarders' holders hold do not.
    wanted = {n: r[0] for n, r in simulated.items()}
    try:
        wait_for(
            lambda: {n: r[0] for n, r in live_roles(daemons).items()} == wanted,
            5,
            what="the simulated VG roles",
        )
    except AssertionError:
        assert {n: r[0] for n, r in live_roles(daemons).items()} == wanted
        raise
    assert sorted(r[1] for r in live_roles(daemons).values()) == [0, 1, 1, 1, 1]
    assert sorted(r[1] for r in simulated.values()) == [0, 1, 1, 1, 1]


def test_wrong_authentication_is_rejected(lab: Lab) -> None:
    good = " glbp 1 authentication md5 key-string s3cret-Key\n"
    bad = " glbp 1 authentication md5 key-string wrong-Key\n"
    daemons = _routers(
        lab,
        {
            "r1": config("R1", 110, extra=good),
            "r2": config("R2", 105, extra=good),
            "r3": config("R3", 100, extra=bad),
        },
    )
    wait_for(
        lambda: (
            "%GLBP-4-BADAUTH: Bad authentication received from 192.168.0.3, group 1"
            in daemons["r1"].log()
        ),
        10,
        what="BADAUTH on R1",
    )
    # R3 hears nobody it trusts: it is its own AVG (reference §3, LAB), R1 and R2 share.
    wait_for(lambda: daemons["r3"].role() == "Active", 10, what="R3 isolated as AVG")
    wait_for(
        lambda: {daemons["r1"].role(), daemons["r2"].role()} == {"Active", "Standby"},
        10,
        what="R1 and R2 elect among themselves",
    )
    same_roles(daemons, simulated_roles(lab, _texts(daemons)))
    for daemon in daemons.values():
        assert "s3cret-Key" not in daemon.log() and "wrong-Key" not in daemon.log()
        assert "s3cret-Key" not in daemon.console("show glbp")[0]


def test_reload_keeps_unchanged_forwarders_and_console_saves(lab: Lab) -> None:
    daemons = _routers(lab, {"r1": config("R1", 110), "r2": config("R2", 105)})
    _settled(daemons, 2)
    r2 = daemons["r2"]
    links = lab.run("r2", "ip", "-o", "link", "show").stdout
    r2.config_path.write_text(config("R2", 120), encoding="utf-8")
    r2.signal(signal.SIGHUP)
    wait_for(
        lambda: "Priority 120 (configured)" in r2.console("show glbp")[0],
        5,
        what="the new priority",
    )
    after = lab.run("r2", "ip", "-o", "link", "show").stdout
    vmac_line = [line for line in links.splitlines() if "glbp" in line]
    assert vmac_line and vmac_line[0] in after  # the same macvlan, same ifindex: not rebuilt
    assert "FWDSTATECHANGE" not in r2.log().split("Configured from")[-1]
    out = r2.console(
        "configure terminal", "interface eth0", "glbp 1 priority 130", "end", "write memory"
    )
    assert "[OK]" in out[-1] or out[-1].strip() == "" or "Building" in out[-1]
    assert " glbp 1 priority 130" in r2.config_path.read_text(encoding="utf-8")
    assert "Priority 130 (configured)" in r2.console("show glbp")[0]
    # The console command itself, as an admin pipes lines into it: a transcript back.
    typed = "show glbp brief\nconfigure terminal\ninterface eth0\nglbp 1 priority 140\nend\n"
    shown = lab.run(
        "r2", "sh", "-c", f"printf '{typed}' | {PBXGATE} glbp console --control {r2.control}"
    ).stdout
    assert "R2#show glbp brief\n" in shown and "R2(config-if)#glbp 1 priority 140" in shown
    assert "Priority 140 (configured)" in r2.console("show glbp")[0]
    # debug glbp sends the engine's debug lines to the log (the journal under systemd).
    r2.console("debug glbp")
    wait_for(
        lambda: re.search(r"GLBP: eth0 Grp 1 Hello +(in|out)", r2.log()),
        5,
        what="debug lines in the log",
    )
    # A file that does not parse is refused on SIGHUP; the running configuration stays.
    r2.config_path.write_text("interface eth0\n glbp 1 priority 999\n", encoding="utf-8")
    r2.signal(signal.SIGHUP)
    wait_for(
        lambda: "reload refused, running configuration kept" in r2.log(), 5, what="the refusal"
    )
    assert r2.proc is not None and r2.proc.poll() is None
    assert "Priority 140 (configured)" in r2.console("show glbp")[0]


def test_a_clean_stop_leaves_nothing(lab: Lab) -> None:
    lab.add_router("r1")
    before = lab.run(
        "r1", "sysctl", "-n", "net.ipv4.conf.eth0.arp_ignore", "net.ipv4.conf.eth0.arp_announce"
    ).stdout
    daemon = Daemon(lab, "r1", config("R1", 110, track=False)).start()
    wait_for(daemon.vmacs, 10, what="a vMAC")
    assert lab.run("r1", "sysctl", "-n", "net.ipv4.conf.eth0.arp_ignore").stdout.strip() == "1"
    assert daemon.stop(signal.SIGTERM) == 0
    assert not any(n.startswith("glbp") for n in lab.link_stats("r1"))
    assert (
        lab.run(
            "r1", "sysctl", "-n", "net.ipv4.conf.eth0.arp_ignore", "net.ipv4.conf.eth0.arp_announce"
        ).stdout
        == before
    )
    assert not daemon.control.exists()
    # Killed instead: the next start finds the ledger and undoes what the dead one left.
    daemon.start()
    wait_for(daemon.vmacs, 10, what="a vMAC again")
    daemon.stop(signal.SIGKILL)
    assert any(n.startswith("glbp") for n in lab.link_stats("r1"))
    daemon.start()
    wait_for(
        lambda: "undoing what a daemon that did not stop cleanly left" in daemon.log(),
        5,
        what="recovery at start",
    )
    wait_for(daemon.vmacs, 10, what="a vMAC after recovery")
    assert len(daemon.vmacs()) == 1
    assert daemon.stop(signal.SIGTERM) == 0
    assert not any(n.startswith("glbp") for n in lab.link_stats("r1"))


@pytest.mark.parametrize("mode", ["host-dependent", "weighted"])
def test_balancing_modes(lab: Lab, mode: str) -> None:
    daemons = three(lab, hosts=2, extra=f" glbp 1 load-balancing {mode}\n")
    first = {h: lab.resolve(h, VIP) for h in lab.hosts}
    again = {h: lab.resolve(h, VIP) for h in lab.hosts}
    assert all(re.fullmatch(r"00:07:b4:00:01:0[1-3]", str(m)) for m in first.values())
    if mode == "host-dependent":
        assert first == again  # the same host always gets the same forwarder
    assert f"Load balancing: {mode}" in daemons["r1"].console("show glbp")[0]


def test_route_tracking_from_the_kernel(lab: Lab) -> None:
    route = "track 2 ip route 198.51.100.0 255.255.255.0 reachability\n"
    weighting = " glbp 1 weighting 100 lower 80 upper 95\n glbp 1 weighting track 2 decrement 30\n"
    texts = {
        f"r{n}": route + config(f"R{n}", 110 - n, track=False, extra=weighting) for n in (1, 2)
    }
    for n, name in enumerate(texts, start=1):
        lab.add_router(name)
        lab.run(name, "ip", "route", "add", "198.51.100.0/24", "via", f"10.0.{n}.1")
    daemons = start_all(lab, texts)
    _settled(daemons, 2)
    r2 = daemons["r2"]
    assert "Reachability is Up" in r2.console("show track")[0]
    lab.run("r2", "ip", "route", "del", "198.51.100.0/24")
    wait_for(lambda: not r2.vmacs(), 5, what="R2 gives its forwarder up")
    assert "%TRACK-6-STATE: 2 ip route 198.51.100.0/24 reachability Up -> Down" in r2.log()
    shown = r2.console("show track brief")[0]
    assert re.search(r"2\s+ip route\s+198\.51\.100\.0/24\s+reachability\s+Down", shown), shown
    # A route that stays but whose interface loses its link is unreachable too.
    lab.run("r2", "ip", "route", "add", "198.51.100.0/24", "via", "10.0.2.1")
    wait_for(lambda: "reachability Down -> Up" in r2.log(), 5, what="the route back")
    lab.uplink_down("r1")
    wait_for(
        lambda: (
            "%TRACK-6-STATE: 2 ip route 198.51.100.0/24 reachability Up -> Down"
            in daemons["r1"].log()
        ),
        5,
        what="R1's route through a dead link",
    )


def test_hosts_keep_their_forwarder_when_they_recheck_it(lab: Lab) -> None:
    """Linux re-checks a neighbour it has used for a while with a unicast ARP request to the
    MAC it has: the forwarder with that vMAC answers it, so the host keeps its forwarder (the
    AVG, asked again, could hand it another one)."""
    daemons = three(lab, hosts=1)
    neigh = "net.ipv4.neigh.eth0"
    lab.run(
        "h1",
        "sysctl",
        "-qw",
        f"{neigh}.base_reachable_time_ms=1000",
        f"{neigh}.delay_first_probe_time=1",
    )
    first = lab.resolve("h1", VIP)
    ping = lab.pinger("h1", INTERNET, interval=0.05)
    states: list[tuple[str, str]] = []
    deadline = time.monotonic() + 7
    while time.monotonic() < deadline:
        shown = lab.run("h1", "ip", "neigh", "show", VIP, "dev", "eth0").stdout.split()
        mac = shown[shown.index("lladdr") + 1] if "lladdr" in shown else ""
        if shown and (not states or states[-1] != (mac, shown[-1])):
            states.append((mac, shown[-1]))
        time.sleep(0.05)
    result = ping.stop()
    assert {mac for mac, _ in states} == {first}, states
    kinds = [state for _, state in states]
    assert "DELAY" in kinds or "PROBE" in kinds, kinds  # it did re-check
    assert kinds[-1] != "FAILED" and kinds.count("REACHABLE") >= 2, kinds
    assert result.sent - result.received <= 1
    assert len({m for d in daemons.values() for m in d.vmacs().values()}) == 3


def test_a_deleted_lan_interface_stops_the_daemon(lab: Lab) -> None:
    daemons = _routers(lab, {"r1": config("R1", 110), "r2": config("R2", 105)})
    _settled(daemons, 2)
    proc = daemons["r1"].proc
    assert proc is not None
    lab.run("r1", "ip", "link", "del", "eth0")
    assert proc.wait(10) == 6
    log = daemons["r1"].log()
    assert "LAN interface eth0 was deleted" in log and "error: " in log
    assert not any(n.startswith("glbp") for n in lab.link_stats("r1"))
    # Nothing is left for the next start to undo.
    assert json.loads(daemons["r1"].ledger.read_text()) == {"link": {}, "sysctl": {}}
