"""``pbxgate glbp shell`` on a simulated router: live show output, configuration reaching the
engines, the ``sim wait`` clock, and the one-router lab for a bare configuration file."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from pbxgate.cli.main import main
from pbxgate.glbp.ios import EXEC
from pbxgate.glbp.ios.shell import interact
from pbxgate.glbp.sim import SimConsole, load_topology, settle_time
from tests.glbp.terminal import typist

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "glbp"
GOLDENS = Path(__file__).parent / "goldens"

# R2 (priority 110) is the article's AVG, so the priority change that moves the AVG is made
# on R3: with 150 and preemption it takes the role from R2 at once.
R3_PREEMPT = [
    "show glbp brief",
    "enable",
    "conf t",
    "int e0/0",
    "glbp 1 priority 150",
    "glbp 1 preempt",
    "end",
    "sim wait 10",
    "show glbp brief",
    "?",
    "sim ?",
    "sim wait x",
]

# Shutting the AVG's interface down: R4 (standby) takes over after the hold time.
R2_SHUTDOWN = [
    "show glbp brief",
    "enable",
    "conf t",
    "int e0/0",
    "shutdown",
    "end",
    "sim wait 15",
    "show glbp brief",
    "conf t",
    "int e0/0",
    "no shutdown",
    "no glbp 1",
    "do sim wait 1",
    "end",
    "show running-config | section Ethernet0/0",
]


def _shell(
    args: list[str],
    commands: list[str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> tuple[int, str, str]:
    monkeypatch.setattr("sys.stdin", io.StringIO("".join(f"{c}\n" for c in commands)))
    code = main(["glbp", "shell", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _avg_row(block: str) -> str:
    """The group row (Fwd ``-``) of a ``show glbp brief`` table."""
    return next(line for line in block.splitlines() if line.startswith("Et0/0       1    -"))


@pytest.mark.parametrize(
    ("router", "commands", "name"),
    [
        ("R3", R3_PREEMPT, "shell_article_r3_preempt.txt"),
        ("R2", R2_SHUTDOWN, "shell_article_r2_shutdown.txt"),
    ],
)
def test_article_session_golden(  # type: ignore[no-untyped-def]
    router: str,
    commands: list[str],
    name: str,
    golden,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    topology = str(EXAMPLES / "article.toml")
    code, out, err = _shell([topology, "--router", router], commands, monkeypatch, capsys)
    assert code == 0
    assert err.startswith(f"{router} at virtual time 40 s of ")
    golden(GOLDENS / name, out)


def test_priority_and_preempt_move_the_avg(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _, out, _ = _shell(
        [str(EXAMPLES / "article.toml"), "--router", "R3"], R3_PREEMPT, monkeypatch, capsys
    )
    before, after = out.split("R3#sim wait 10\n")
    assert "Listen   192.168.0.254   192.168.0.1" in _avg_row(before)
    assert " 150 Active   192.168.0.254   local" in _avg_row(after)
    # A preempting router speaks (one hello) before it takes over (reference §3).
    assert "R3     %GLBP-6-STATECHANGE: Ethernet0/0 Grp 1 state Listen -> Speak" in after
    assert "R3     %GLBP-6-STATECHANGE: Ethernet0/0 Grp 1 state Speak -> Active" in after
    assert "  sim        Simulated network" in after  # '?' lists the driver's command


def test_shutdown_lets_the_standby_take_over(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _, out, _ = _shell(
        [str(EXAMPLES / "article.toml"), "--router", "R2"], R2_SHUTDOWN, monkeypatch, capsys
    )
    # The log lines of the change print right after the command, as on an IOS console.
    assert (
        "R2(config-if)#shutdown\n"
        "00:00:40.000  R2     %LINK-5-CHANGED: Interface Ethernet0/0, changed state to "
        "administratively down\n"
        "00:00:40.000  R2     %LINEPROTO-5-UPDOWN: Line protocol on Interface Ethernet0/0, "
        "changed state to down\n"
        "00:00:40.000  R2     %GLBP-6-STATECHANGE: Ethernet0/0 Grp 1 state Active -> Init\n"
    ) in out
    assert "%LINK-3-UPDOWN: Interface Ethernet0/0, changed state to up" in out  # no shutdown
    assert "R4     %GLBP-6-STATECHANGE: Ethernet0/0 Grp 1 state Standby -> Active" in out
    assert "state Listen -> Disabled" in out  # no glbp 1
    assert "glbp" not in out.split("R2#show running-config")[1]


def test_shutting_a_tracked_interface_logs_link_lineproto_and_track() -> None:
    console = SimConsole(load_topology(EXAMPLES / "article.toml"), "R2")
    state = console.state
    mode = EXEC
    for line in ("conf t", "int e0/1"):
        mode, _ = console.execute(state, mode, line)  # type: ignore[assignment]
    _, down = console.execute(state, mode, "shutdown")
    assert down.splitlines()[:3] == [
        "00:00:40.000  R2     %LINK-5-CHANGED: Interface Ethernet0/1, changed state to "
        "administratively down",
        "00:00:40.000  R2     %LINEPROTO-5-UPDOWN: Line protocol on Interface Ethernet0/1, "
        "changed state to down",
        "00:00:40.000  R2     %TRACK-6-STATE: 1 interface Et0/1 line-protocol Up -> Down",
    ]
    # weighting 130 - 111 = 19 is below lower 20: R2 gives up its forwarder (reference §3)
    assert "Fwd 1 state Active -> Listen" in down
    _, up = console.execute(state, mode, "no shutdown")
    assert up.splitlines() == [
        "00:00:40.000  R2     %LINK-3-UPDOWN: Interface Ethernet0/1, changed state to up",
        "00:00:40.000  R2     %LINEPROTO-5-UPDOWN: Line protocol on Interface Ethernet0/1, "
        "changed state to up",
        "00:00:40.000  R2     %TRACK-6-STATE: 1 interface Et0/1 line-protocol Down -> Up",
    ]
    assert console.execute(state, mode, "description uplink")[1] == ""  # no change, no log


def test_log_lines_after_sim_wait_are_in_time_order() -> None:
    """R3 debugs its hellos while the timeline takes R2's uplink down at 120 s: the log
    lines of that moment come between the hellos before and after it."""
    console = SimConsole(load_topology(EXAMPLES / "article.toml"), "R3")
    state = console.state
    mode, _ = console.execute(state, EXEC, "debug glbp")
    _, waited = console.execute(state, mode, "sim wait 100")  # type: ignore[arg-type]
    stamps = [line[:12] for line in waited.splitlines() if line[:2] == "00"]
    assert "Hello  in" in waited and "R2     %GLBP-6-FWDSTATECHANGE" in waited
    assert len(stamps) > 50 and stamps == sorted(stamps)


def test_a_shut_interface_hears_no_hellos() -> None:
    """R2's LAN interface shut: its debug shows no hello in or out from then on."""
    console = SimConsole(load_topology(EXAMPLES / "article.toml"), "R2")
    state = console.state
    mode = EXEC
    for line in ("debug glbp", "conf t", "int e0/0", "shutdown", "end"):
        mode, _ = console.execute(state, mode, line)  # type: ignore[assignment]
    _, waited = console.execute(state, mode, "sim wait 15")
    assert "R4     %GLBP-6-STATECHANGE" in waited  # the others noticed R2 going
    assert "Hello" not in waited


def test_wait_plays_the_rest_of_the_timeline(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [str(EXAMPLES / "article.toml"), "--router", "R2", "--at", "100"]
    _, out, err = _shell(args, ["si w 45", "show track"], monkeypatch, capsys)
    assert err.startswith("R2 at virtual time 100 s")
    assert "00:02:00.000  link   isp-r2 down" in out  # the timeline's event at 120 s
    assert "--- 00:02:20.000 R2#show glbp brief" in out  # and its show output
    assert "Virtual clock 00:02:25.000" in out
    assert "Track 1\n  Interface Ethernet0/1 line-protocol\n  Line protocol is Down" in out


def test_a_config_file_is_a_one_router_lab(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = _shell([str(EXAMPLES / "R2.cfg")], ["s glbp brief"], monkeypatch, capsys)
    assert code == 0
    assert " 110 Active   192.168.0.254   local           unknown" in _avg_row(out)


def test_unknown_router_is_one_line_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    topology = str(EXAMPLES / "article.toml")
    code, out, err = _shell([topology, "--router", "R9"], [], monkeypatch, capsys)
    assert (code, out) == (2, "")
    assert err == f"error: {topology}: no router named 'R9' (choose one of R2, R3, R4)\n"
    code, _, err = _shell([topology], [], monkeypatch, capsys)
    assert code == 2 and err.count("\n") == 1 and "--router" in err


def test_settle_time_and_console_api() -> None:
    topology = load_topology(EXAMPLES / "article.toml")
    assert settle_time(topology) == 40.0  # four default hold times after the boots at 0
    console = SimConsole(topology, "R3", at=35)
    assert console.now == 35.0
    _, output = console.execute(console.state, EXEC, "sim wait 5")
    assert output.endswith("Virtual clock 00:00:40.000\n")
    _, output = console.execute(console.state, EXEC, "show glbp brief")
    assert "Listen" in _avg_row(output)


def test_interactive_console_drives_the_clock() -> None:
    """The terminal path (interact) goes through the same driver as the scripted one."""
    console = SimConsole(load_topology(EXAMPLES / "article.toml"), "R3")
    read, prompts = typist(
        ["enable", "conf t", "int e0/0", "glbp 1 pri 150", "gl 1 pre", "do si w 5"]
    )
    out: list[str] = []

    interact(console.state, read, out.append, execute=console.execute)
    assert prompts[-1] == "R3(config-if)#"
    assert "Virtual clock 00:00:45.000" in "".join(out)
    assert console.state.config.interface("Ethernet0/0").group(1).priority == 150  # type: ignore[union-attr]
    assert "Active" in _avg_row(show_brief(console))


def test_driver_words_do_not_shadow_ios_abbreviations() -> None:
    console = SimConsole(load_topology(EXAMPLES / "article.toml"), "R2")
    _, output = console.execute(console.state, EXEC, "s glbp brief")  # 's' is still show
    assert output.startswith("Interface   Grp")
    _, output = console.execute(console.state, EXEC, "s?")
    assert output == "show  sim\n\n"


def show_brief(console: SimConsole) -> str:
    return console.execute(console.state, EXEC, "show glbp brief")[1]


def test_a_router_booted_from_its_configuration_has_it_as_startup_config() -> None:
    console = SimConsole(load_topology(EXAMPLES / "article.toml"), "R2")
    _, shown = console.execute(console.state, EXEC, "show startup-config")
    assert "startup-config is not present" not in shown
    assert "hostname R2" in shown and " glbp 1 ip 192.168.0.254" in shown


def test_a_key_chain_given_after_the_group_and_a_rotated_key_reach_the_engine() -> None:
    """IOS takes ``glbp 1 authentication md5 key-chain K`` before ``key chain K`` exists, and
    a key-string changed later: the engines kept the chains of their start (the first made
    ``sim wait`` fail, the second went on signing with the old key)."""
    console = SimConsole(load_topology(EXAMPLES / "article.toml"), "R2")
    state, mode = console.state, EXEC
    lines = ["enable", "configure terminal", "interface e0/0",
             "glbp 1 authentication md5 key-chain K", "end", "sim wait 5",
             "configure terminal", "key chain K", "key 1", "key-string ONE", "end",
             "sim wait 5"]  # fmt: skip
    for line in lines:
        mode, _ = console.execute(state, mode, line)  # type: ignore[assignment]
    engine = console.simulation.routers["R2"].nodes[0].engine
    assert [k.key_string.reveal() for c in engine.key_chains for k in c.keys] == ["ONE"]
    for line in ["configure terminal", "key chain K", "key 1", "key-string TWO", "end",
                 "sim wait 5"]:  # fmt: skip
        mode, _ = console.execute(state, mode, line)  # type: ignore[assignment]
    assert [k.key_string.reveal() for c in engine.key_chains for k in c.keys] == ["TWO"]
