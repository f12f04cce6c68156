"""The simulator: topology files, scenario timelines, replay, pcap output and the CLI."""

from __future__ import annotations

import dataclasses
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from pbxgate.cli.main import main
from pbxgate.errors import InputError
from pbxgate.glbp import wire
from pbxgate.glbp.pcap import read_pcap, write_pcap
from pbxgate.glbp.sim import load_topology, parse_topology, run_simulation

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "glbp"
GOLDENS = Path(__file__).parent / "goldens"


def _router(name: str, n: int, extra: str = "") -> dict[str, object]:
    config = (
        f"hostname {name}\ninterface Ethernet0/0\n ip address 192.168.0.{n} 255.255.255.0\n"
        f" glbp 1 ip 192.168.0.254\n{extra}"
    )
    return {"name": name, "config": config}


def _topology(routers: list[dict[str, object]], events: list[dict[str, object]], **top: object):  # type: ignore[no-untyped-def]
    data: dict[str, object] = {"seed": 3, "duration": 120, "router": routers, "event": events}
    data.update(top)
    return parse_topology(data, base=ROOT, source="test")


def test_article_example_replays_the_articles_failover(golden) -> None:  # type: ignore[no-untyped-def]
    report = run_simulation(load_topology(EXAMPLES / "article.toml")).report
    golden(GOLDENS / "sim_article.txt", report.replace(str(EXAMPLES), "examples/glbp"))
    lines = report.splitlines()
    # R2's uplink down: weighting 19 < lower 20 gives Fwd 1 up, R2 stays AVG.
    assert any(
        "R2     %GLBP-6-FWDSTATECHANGE: Ethernet0/0 Grp 1 Fwd 1 state Active -> Listen" in x
        for x in lines
    )
    # R2 off: the standby R4 becomes AVG within the hold time, R3 the new standby.
    off = next(i for i, x in enumerate(lines) if "R2     power off" in x)
    after = lines[off : off + 6]
    assert any(
        "R4     %GLBP-6-STATECHANGE: Ethernet0/0 Grp 1 state Standby -> Active" in x for x in after
    )
    assert any(
        "R3     %GLBP-6-STATECHANGE: Ethernet0/0 Grp 1 state Speak -> Standby" in x for x in after
    )
    # After the redirect time nobody is sent to R2's vMAC any more.
    last_arp = report.rsplit("ARP for the gateway", 1)[1].split("===")[0]
    assert "0007.b400.0101" not in last_arp


def test_five_routers_the_fifth_takes_over_and_later_owns_the_number(golden) -> None:  # type: ignore[no-untyped-def]
    report = run_simulation(load_topology(EXAMPLES / "five-routers.toml")).report
    golden(GOLDENS / "sim_five_routers.txt", report.replace(str(EXAMPLES), "examples/glbp"))
    assert (
        "R5     %GLBP-6-FWDSTATECHANGE: Ethernet0/0 Grp 10 Fwd 2 state Listen -> Active" in report
    )
    shows = report.split("R5#show glbp brief")
    assert "Et0/0       10   2   -   Listen   0007.b400.0a02  192.168.1.3" in shows[1]
    assert "Et0/0       10   2   -   Active   0007.b400.0a02  local" in shows[2]


def test_a_run_replays_exactly_and_the_seed_matters() -> None:
    topology = load_topology(EXAMPLES / "five-routers.toml")
    first = run_simulation(topology).report
    assert run_simulation(topology).report == first
    assert run_simulation(dataclasses.replace(topology, seed=99)).report != first


def test_authentication_mismatch_isolates_a_router() -> None:
    routers = [
        _router("R1", 1, " glbp 1 authentication text CISCO\n"),
        _router("R2", 2, " glbp 1 authentication text CISCO\n"),
        _router("R3", 3, " glbp 1 authentication text OTHER\n"),
    ]
    events = [{"at": 100, "action": "show", "router": "R3", "command": "show glbp brief"}]
    report = run_simulation(_topology(routers, events)).report
    assert "%GLBP-4-BADAUTH: Bad authentication received from 192.168.0.1, group 1" in report
    shown = report.split("R3#show glbp brief")[1]
    assert "Et0/0       1    -   100 Active   192.168.0.254   local           unknown" in shown
    assert "CISCO" not in report and "OTHER" not in report


def test_ios_commands_in_the_timeline_reconfigure_the_engine() -> None:
    routers = [_router("R1", 1), _router("R2", 2)]
    lines = [
        "configure terminal",
        "interface Ethernet0/0",
        "glbp 1 priority 200",
        "glbp 1 preempt",
        "end",
    ]
    events = [
        {"at": 60, "action": "command", "router": "R1", "lines": lines},
        {"at": 100, "action": "show", "router": "R1", "command": "show glbp | include State is"},
    ]
    report = run_simulation(_topology(routers, events)).report
    assert "R1(config-if)#glbp 1 priority 200" in report
    assert "R1     %GLBP-6-STATECHANGE: Ethernet0/0 Grp 1 state Standby -> Active" in report
    assert "R2     %GLBP-6-STATECHANGE: Ethernet0/0 Grp 1 state Active -> Speak" in report
    assert report.split("R1#show glbp | include State is")[1].splitlines()[1] == "  State is Active"


def test_msec_timers_in_a_topology() -> None:
    routers = [
        _router("R1", 1, " glbp 1 timers msec 250 msec 800\n"),
        _router("R2", 2, " glbp 1 timers msec 250 msec 800\n"),
    ]
    events = [
        {"at": 10, "action": "power-off", "router": "R2"},
        {"at": 11, "action": "show", "router": "R1", "command": "show glbp"},
    ]
    report = run_simulation(_topology(routers, events, duration=12)).report
    shown = report.split("R1#show glbp")[1]
    assert "  State is Active" in shown and "Hello time 250 msec, hold time 800 msec" in shown


def test_pcap_holds_every_glbp_and_arp_frame_with_simulated_time(tmp_path: Path) -> None:
    result = run_simulation(load_topology(EXAMPLES / "article.toml"), capture=True)
    path = tmp_path / "run.pcap"
    count = write_pcap(path, result.frames)
    records = list(read_pcap(path.read_bytes()))
    assert count == len(records) > 100
    times = [r.timestamp for r in records]
    assert times == sorted(times) and times[-1] > 900
    arp = [r for r in records if r.frame[12:14] == b"\x08\x06"]
    assert len(arp) == 2 * 6 * 2  # request + reply, six hosts, two ARP rounds
    glbp = [wire.decode(r.frame[42:]) for r in records if r.frame[12:14] == b"\x08\x00"]
    assert {p.group for p in glbp} == {1}
    hellos = [p.hello for p in glbp if p.hello is not None]
    assert {h.priority for h in hellos} == {100, 110}


@pytest.mark.tshark
def test_wireshark_decodes_the_simulated_capture(tmp_path: Path) -> None:
    if shutil.which("tshark") is None:
        pytest.skip("tshark not installed")
    result = run_simulation(load_topology(EXAMPLES / "article.toml"), capture=True)
    path = tmp_path / "run.pcap"
    write_pcap(path, result.frames)
    out = subprocess.run(
        [
            "tshark",
            "-r",
            str(path),
            "-Y",
            "glbp.hello.vgstate == 32",
            "-T",
            "fields",
            "-e",
            "glbp.group",
            "-e",
            "glbp.hello.priority",
            "-e",
            "glbp.hello.virtualipv4",
            "-e",
            "glbp.reqresp.virtualmac",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.splitlines()
    assert out and out[0].split("\t")[:3] == ["1", "110", "192.168.0.254"]
    assert "00:07:b4:00:01:01" in out[0]


def test_cli_runs_a_topology(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    pcap = tmp_path / "out.pcap"
    code = main(
        [
            "glbp",
            "sim",
            str(EXAMPLES / "five-routers.toml"),
            "--duration",
            "100",
            "--pcap",
            str(pcap),
        ]
    )
    captured = capsys.readouterr()
    assert code == 0
    assert "R4     %GLBP-6-STATECHANGE: Ethernet0/0 Grp 10 state Speak -> Active" in captured.out
    assert captured.err.startswith("wrote ") and pcap.stat().st_size > 24


def test_cli_bad_topology_is_one_error_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(
        '[[router]]\nname = "R1"\nconfig = "hostname R1\\n"\n'
        '[[event]]\nat = 1\naction = "explode"\n'
    )
    code = main(["glbp", "sim", str(bad)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "unknown action 'explode'" in err


def test_bad_ios_line_in_a_router_config_names_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[[router]]\nname = "R1"\nconfig = "R1.cfg"\n')
    (tmp_path / "R1.cfg").write_text(
        "interface Ethernet0/0\n glbp 1 load-balancing host-depended\n"
    )
    with pytest.raises(InputError, match=r"R1.cfg:2"):
        load_topology(bad)


def test_debug_glbp_typed_in_the_timeline_logs_packets() -> None:
    routers = [_router("R1", 1), _router("R2", 2)]
    events = [{"at": 50, "action": "command", "router": "R1", "lines": ["debug glbp"]}]
    report = run_simulation(_topology(routers, events, duration=56)).report
    debug = [line for line in report.splitlines() if "R1     GLBP: Et0/0 Grp 1 Hello" in line]
    assert any(
        " in  192.168.0.2 VG Active  pri 100 vIP 192.168.0.254 hello 3000, hold 10000"
        " VF 1 Active  pri 167 vMAC 0007.b400.0101" in line
        for line in debug
    )
    assert any(" out 192.168.0.1 VG Standby pri 100" in line for line in debug)
    assert all(line >= "00:00:50" for line in debug)


def test_interface_logs_as_ios_writes_them_and_no_track_line_at_boot() -> None:
    """A reboot starts its tracks anew (no TRACK line for their state, as at the first boot);
    `shutdown` of an interface whose link is already down still logs the administrative
    change; `no shutdown` there logs the link's own state, and no line-protocol change."""
    track = "track 1 interface Ethernet0/1 line-protocol\ninterface Ethernet0/1\n"
    track += " ip address 10.0.2.2 255.255.255.252\n"
    routers = [_router("R1", 1, track), _router("R2", 2)]
    shut = ["configure terminal", "interface Ethernet0/1", "shutdown", "end"]
    unshut = ["configure terminal", "interface Ethernet0/1", "no shutdown", "end"]
    events = [
        {"at": 20, "action": "power-off", "router": "R1"},
        {"at": 30, "action": "power-on", "router": "R1"},
        {"at": 50, "action": "link-down", "router": "R1", "interface": "Ethernet0/1"},
        {"at": 60, "action": "command", "router": "R1", "lines": shut},
        {"at": 70, "action": "command", "router": "R1", "lines": unshut},
    ]
    report = run_simulation(_topology(routers, events)).report
    logs = [line[14:] for line in report.splitlines() if "%" in line and "R1  " in line[:20]]
    logs = [line for line in logs if "%GLBP" not in line]
    e01 = "Interface Ethernet0/1, changed state to"
    assert logs == [
        f"R1     %LINK-3-UPDOWN: {e01} down",  # the link lost at 50 s
        f"R1     %LINEPROTO-5-UPDOWN: Line protocol on {e01} down",
        "R1     %TRACK-6-STATE: 1 interface Et0/1 line-protocol Up -> Down",
        f"R1     %LINK-5-CHANGED: {e01} administratively down",  # shut at 60 s, link down
        f"R1     %LINK-3-UPDOWN: {e01} down",  # no shutdown at 70 s: the link is still down
    ]


def test_a_state_change_is_logged_before_the_hello_that_announces_it() -> None:
    """As IOS prints it with debug glbp: the timer, the state change, then the hello (the
    AVG's LAN interface shut; the standby R3 takes over)."""
    shut = ["configure terminal", "interface Ethernet0/0", "shutdown", "end"]
    routers = [_router("R1", 1, " glbp 1 priority 200\n"), _router("R2", 2),
               {**_router("R3", 3), "debug": True}]  # fmt: skip
    events = [{"at": 60, "action": "command", "router": "R1", "lines": shut}]
    report = run_simulation(_topology(routers, events)).report
    lines = [line[14:] for line in report.splitlines() if line[14:17] == "R3 "]
    at = next(i for i, line in enumerate(lines) if "Standby: g/Active timer expired" in line)
    assert "state Standby -> Active" in lines[at + 1]
    assert "Hello  out" in lines[at + 3] and "VG Active" in lines[at + 3]
    assert not any("out" in line and "VG Active" in line for line in lines[:at])


def test_a_route_track_follows_the_connected_subnet_that_holds_it() -> None:
    """The simulator has no routing protocol: `track N ip route` is up while an up interface's
    connected subnet holds the route, and weighting follows it as for line protocol."""
    track = "track 2 ip route 10.0.2.0 255.255.255.252 reachability\ninterface Ethernet0/1\n"
    track += " ip address 10.0.2.2 255.255.255.252\ninterface Ethernet0/0\n"
    track += " glbp 1 weighting 100 lower 80 upper 95\n glbp 1 weighting track 2 decrement 30\n"
    routers = [_router("R1", 1, track), _router("R2", 2)]
    events = [
        {"at": 50, "action": "link-down", "router": "R1", "interface": "Ethernet0/1"},
        {"at": 60, "action": "show", "router": "R1", "command": "show track brief"},
    ]
    report = run_simulation(_topology(routers, events, duration=65)).report
    assert "R1     %TRACK-6-STATE: 2 ip route 10.0.2.0/30 reachability Up -> Down" in report
    assert re.search(r"\n2\s+ip route\s+10\.0\.2\.0/30\s+reachability\s+Down", report)
    assert re.search(
        r"R1     %GLBP-6-FWDSTATECHANGE: Ethernet0/0 Grp 1 Fwd \d state Active", report
    )
