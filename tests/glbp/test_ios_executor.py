"""The pure IOS executor and the shell: transcript goldens, modes, help, errors, delegation."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from pbxgate.cli.main import main
from pbxgate.glbp.config import LoadBalancing, RouterConfig
from pbxgate.glbp.ios import CONFIG as CONFIG_MODE
from pbxgate.glbp.ios import EXEC, IosState, Mode, ModeKind, execute, parse_config
from pbxgate.glbp.ios.shell import interact, transcript
from tests.glbp.terminal import typist

GOLDENS = Path(__file__).parent / "goldens"

# The article's configuration walk on R2, typo included (seed article, second part).
ARTICLE = [
    "enable",
    "configure terminal",
    "interface e0/0",
    "ip address 192.168.0.1 255.255.255.0",
    "glbp 1 ip 192.168.0.254",
    "glbp 1 priority 110",
    "glbp 1 preempt",
    "glbp 1 weighting 115",
    "glbp 1 load-balancing host-depended",
    "glbp 1 load-balancing host-dependent",
    "glbp 1 weighting 130 lower 20 upper 129",
    "exit",
    "track 1 interface e0/1 line-protocol",
    "int e0/0",
    "glbp 1 weighting track 1 decrement 111",
    "glbp 1 forwarder preempt delay minimum 60",
    "glbp 1 timers 3 10",
    "glbp 1 authentication md5 key-string CISCO",
    "glbp 1 authentication text CISCO",
    "end",
    "show running-config",
]

HELP = [
    "?",
    "en",
    "conf t",
    "?",
    "int e0/0",
    "?",
    "glbp ?",
    "glbp 1 ?",
    "glbp 1 pr?",
    "glbp 1 load-balancing ?",
    "glbp 1 timers ?",
    "glbp 1 timers msec ?",
    "glbp 1 weighting ?",
    "glbp 1 weighting 130 ?",
    "glbp 1 authentication ?",
    "glbp 1 authentication md5 ?",
    "do show glbp ?",
    "do sh ?",
]

ERRORS = [
    "configure terminal",
    "enable",
    "conf t",
    "int e0/0",
    "glbp",
    "glbp 1 p",
    "glbp 1 priority 256",
    "glbp 1024 ip",
    "glbp 1 ip 192.168.0.300",
    "glbp 1 timers 5 5",
    "glbp 1 weighting 100 lower 100",
    "ip address 192.168.0.1 255.0.255.0",
    "ip address 192.168.0.1 255.255.255.0",
    "glbp 1 ip 10.0.0.1",
    "glbp 1 ip 192.168.0.254",
    "glbp 1 ip 10.0.0.2 secondary",
    "do show glbpx",
    "end",
    "frobnicate",
    "show track 1 brief",
    "exit",
    "show running-config",
]

# Saving: write memory, copy running-config startup-config, show startup-config.
SAVE = [
    "enable",
    "show startup-config",
    "write memory",
    "show startup-config",
    "conf t",
    "int e0/0",
    "ip address 192.168.0.1 255.255.255.0",
    "glbp 1 ip 192.168.0.254",
    "do copy running-config startup-config",
    "end",
    "copy ?",
    "copy run start",
    "show startup-config | section interface",
    "write ?",
    "wr",
]


@pytest.mark.parametrize(
    ("name", "commands"),
    [("article", ARTICLE), ("help", HELP), ("errors", ERRORS), ("save", SAVE)],
)
def test_session_transcripts(name: str, commands: list[str], golden) -> None:  # type: ignore[no-untyped-def]
    text = transcript(RouterConfig("R2"), commands)
    golden(GOLDENS / f"ios_session_{name}.txt", text)


def test_the_article_typo_gets_the_ios_marker_under_the_bad_word() -> None:
    state = IosState(RouterConfig("R2"))
    mode, output = execute(state, Mode(ModeKind.CONFIG_IF, "Ethernet0/0"), ARTICLE[8])
    assert mode == Mode(ModeKind.CONFIG_IF, "Ethernet0/0")
    marker, message, blank = output.split("\n")[:3]
    typed = "R2(config-if)#" + ARTICLE[8]
    # "host-depende" still fits "host-dependent": the marker is under the last "d"
    assert marker.index("^") == typed.index("host-depended") + len("host-depende")
    assert (message, blank) == ("% Invalid input detected at '^' marker.", "")
    assert state.config == RouterConfig("R2")  # nothing changed


def test_article_session_builds_the_article_configuration() -> None:
    state = IosState(RouterConfig("R2"))
    mode: Mode | None = Mode(ModeKind.USER_EXEC)
    for line in ARTICLE:
        assert mode is not None
        mode, _ = execute(state, mode, line)
    group = state.config.interfaces[0].glbp[0]
    assert (group.priority, group.preempt, group.weighting) == (110, True, 130)
    assert (group.weighting_lower, group.weighting_upper) == (20, 129)
    assert group.load_balancing is LoadBalancing.HOST_DEPENDENT
    assert group.forwarder_preempt_delay == 60
    assert state.config.tracks[0].interface == "Ethernet0/1"


def test_a_virtual_ip_outside_the_interface_subnet_is_warned_about() -> None:
    state = IosState(RouterConfig("R2"))
    config_if = Mode(ModeKind.CONFIG_IF, "Ethernet0/0")
    for line in ("interface e0/0", "ip address 192.168.0.1 255.255.255.0"):
        execute(state, config_if, line)
    warning = "% Warning: address is not within a subnet on this interface\n"
    assert execute(state, config_if, "glbp 1 ip 10.0.0.1") == (config_if, warning)
    assert execute(state, config_if, "glbp 7 ip 192.168.1.254 secondary")[1] == warning
    group = state.config.interface("Ethernet0/0").group(1)  # type: ignore[union-attr]
    assert group is not None and str(group.virtual_ip) == "10.0.0.1"  # kept, as IOS keeps it
    assert execute(state, config_if, "glbp 1 ip 192.168.0.254") == (config_if, "")
    group = state.config.interface("Ethernet0/0").group(1)  # type: ignore[union-attr]
    assert group is not None and str(group.virtual_ip) == "192.168.0.254"
    # what is saved loads again (a file never fails on it)
    text = "interface Ethernet0/0\n ip address 192.168.0.1 255.255.255.0\n glbp 2 ip 10.0.0.1\n"
    loaded = parse_config(text).interface("Ethernet0/0").group(2)  # type: ignore[union-attr]
    assert loaded is not None and str(loaded.virtual_ip) == "10.0.0.1"


def test_a_skipped_block_takes_its_indented_lines_with_it() -> None:
    """`interface Dialer1` is not modelled: skipping it must not hand its address to the
    interface before it."""
    text = ("interface Ethernet0/0\n ip address 192.168.0.1 255.255.255.0\n"
            " glbp 1 ip 192.168.0.254\ninterface Dialer1\n ip address 10.9.9.1 255.255.255.0\n"
            "hostname R9\n")  # fmt: skip
    skipped: list[str] = []
    config = parse_config(text, source="r9.cfg", skipped=skipped)
    assert skipped == ["r9.cfg:4: interface Dialer1", "r9.cfg:5: ip address 10.9.9.1 255.255.255.0"]
    assert str(config.interface("Ethernet0/0").address) == "192.168.0.1/24"  # type: ignore[union-attr]
    assert config.hostname == "R9"


def test_show_running_config_interface_prints_that_block() -> None:
    state = IosState(parse_config((GOLDENS / "ios_R2_input.cfg").read_text(encoding="utf-8")))
    _, text = execute(state, EXEC, "sh run int e0/1")
    body = "!\ninterface Ethernet0/1\n ip address 10.0.0.1 255.255.255.252\n shutdown\nend\n"
    assert text == f"Building configuration...\n\nCurrent configuration : {len(body)} bytes\n{body}"
    config_if = Mode(ModeKind.CONFIG_IF, "Ethernet0/0")
    _, whole = execute(state, config_if, "do show running-config interface Ethernet0/0")
    assert whole.splitlines()[4:6] == ["interface Ethernet0/0", " mac-address aabb.cc00.2000"]
    assert "Ethernet0/1" not in whole and whole.endswith(" glbp 2 name LAN2\nend\n")
    # an interface never configured shows its defaults, as an idle port does
    assert execute(state, EXEC, "show running-config interface e0/3")[1].endswith(
        "!\ninterface Ethernet0/3\n no ip address\nend\n"
    )
    assert execute(state, EXEC, "show running-config ?")[1] == (
        "  interface  Show interface configuration\n  <cr>\n\n"
    )


def test_write_memory_saves_the_running_config_as_startup() -> None:
    state = IosState(RouterConfig("R2"))
    assert state.startup is None
    assert execute(state, EXEC, "write memory") == (EXEC, "Building configuration...\n[OK]\n")
    assert state.startup == RouterConfig("R2")
    execute(state, CONFIG_MODE, "hostname R5")
    assert state.startup == RouterConfig("R2")  # the running config moved on, startup did not
    _, copied = execute(state, EXEC, "copy running-config startup-config")
    assert copied.splitlines() == [
        "Destination filename [startup-config]?",
        "Building configuration...",
        "[OK]",
    ]
    assert state.startup == state.config
    assert execute(state, EXEC, "show startup-config")[1].startswith(
        "Using 20 out of 262136 bytes\n!\nhostname R5\n!\nend\n"
    )
    # privileged only, as on IOS
    assert "% Invalid input" in execute(state, Mode(ModeKind.USER_EXEC), "write memory")[1]


def test_modes_and_prompts() -> None:
    state = IosState(RouterConfig("R3"))
    steps = [
        ("enable", "R3#"),
        ("conf t", "R3(config)#"),
        ("key chain K", "R3(config-keychain)#"),
        ("key 1", "R3(config-keychain-key)#"),
        ("key-string abc", "R3(config-keychain-key)#"),
        ("key 2", "R3(config-keychain-key)#"),
        ("exit", "R3(config-keychain)#"),
        ("interface Ethernet 0/2", "R3(config-if)#"),
        ("hostname R4", "R4(config)#"),
        ("int e0/2", "R4(config-if)#"),
        ("end", "R4#"),
        ("disable", "R4>"),
    ]
    mode: Mode | None = Mode(ModeKind.USER_EXEC)
    for line, prompt in steps:
        assert mode is not None
        mode, _ = execute(state, mode, line)
        assert state.prompt(mode) == prompt, line
    chain = state.config.key_chain("K")
    assert chain is not None and [k.key_id for k in chain.keys] == [1, 2]
    assert execute(state, Mode(ModeKind.USER_EXEC), "exit")[0] is None


def test_show_commands_go_to_the_callers_handler() -> None:
    calls: list[tuple[str, ...]] = []

    def show(words: tuple[str, ...], config: RouterConfig) -> str:
        calls.append(words)
        return f"{config.hostname}: {' '.join(words)}\n"

    state = IosState(RouterConfig("R2"), show)
    config_if = Mode(ModeKind.CONFIG_IF, "Ethernet0/0")
    assert execute(state, EXEC, "sh glbp br") == (EXEC, "R2: show glbp brief\n")
    assert execute(state, config_if, "do sh glbp e0/0 1")[1] == "R2: show glbp Ethernet0/0 1\n"
    execute(state, EXEC, "show track")
    assert calls == [
        ("show", "glbp", "brief"),
        ("show", "glbp", "Ethernet0/0", "1"),
        ("show", "track"),
    ]


def test_output_modifiers() -> None:
    state = IosState(parse_config((GOLDENS / "ios_R2_input.cfg").read_text(encoding="utf-8")))
    _, included = execute(state, EXEC, "show running-config | include glbp 1 ")
    assert included.splitlines() == [
        " glbp 1 ip 192.168.0.254",
        " glbp 1 priority 110",
        " glbp 1 preempt",
        " glbp 1 weighting 130 lower 20 upper 129",
        " glbp 1 load-balancing host-dependent",
        " glbp 1 forwarder preempt delay minimum 60",
        " glbp 1 weighting track 1 decrement 111",
    ]
    _, section = execute(state, EXEC, "sh run | sec Ethernet0/1")
    assert section.splitlines() == [
        "track 1 interface Ethernet0/1 line-protocol",
        "interface Ethernet0/1",
        " ip address 10.0.0.1 255.255.255.252",
        " shutdown",
    ]
    _, glbp_section = execute(state, EXEC, "show run | section glbp 1 (ip|pri)")
    assert glbp_section.splitlines() == [" glbp 1 ip 192.168.0.254", " glbp 1 priority 110"]
    _, chain_section = execute(state, EXEC, "show run | section ^key chain|^ key 2")
    assert chain_section.splitlines() == [
        "key chain GLBP-KEYS",
        " key 1",
        "  key-string s3cret",
        " key 2",
        "  key-string 7 094F471A1A0A",
    ]
    _, key2 = execute(state, EXEC, "show run | section ^ key 2")
    assert key2.splitlines() == [" key 2", "  key-string 7 094F471A1A0A"]
    _, begun = execute(state, EXEC, "sh run | b ^interface Ethernet0/1")
    assert begun.splitlines()[0] == "interface Ethernet0/1" and begun.endswith("end\n")
    _, excluded = execute(state, EXEC, "sh run | e glbp|key|!")
    assert "glbp" not in excluded and "hostname R2\n" in excluded
    config_if = Mode(ModeKind.CONFIG_IF, "Ethernet0/0")
    assert execute(state, config_if, "do sh run | i hostname")[1] == "hostname R2\n"
    marker = execute(state, EXEC, "sh run | x")[1].splitlines()[0]
    assert marker.index("^") == len("R2#sh run | ")
    assert execute(state, EXEC, "sh run | i (")[1].startswith("% Invalid regular expression")
    assert execute(state, EXEC, "sh glbpx | i a")[1].startswith(" " * len("R2#sh glbp") + "^")


def test_debug_switches() -> None:
    state = IosState(RouterConfig("R2"))
    assert execute(state, EXEC, "debug glbp")[1] == "GLBP debugging is on\n"
    assert state.debugs == {"glbp"}
    assert execute(state, EXEC, "undebug all")[1] == "All possible debugging has been turned off\n"
    assert state.debugs == set()


def test_interactive_loop_ends_on_eof_and_exit() -> None:
    read, prompts = typist(["enable", "show running-config"])
    out: list[str] = []

    interact(IosState(RouterConfig("R2")), read, out.append)
    assert prompts == ["R2>", "R2#", "R2#"]
    assert "hostname R2" in "".join(out)


def test_cli_shell_scripted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "r2.cfg"
    config.write_text((GOLDENS / "ios_R2_input.cfg").read_text(encoding="utf-8"))
    commands = "enable\nconf t\nint e0/0\nglbp 1 priority 120\nend\nshow run\n"
    monkeypatch.setattr("sys.stdin", io.StringIO(commands))
    assert main(["glbp", "shell", str(config)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("R2>enable\nR2#conf t\n")
    assert out.endswith("end\nR2#\n")
    running = parse_config(out[out.index("Building") : -len("R2#\n")])
    assert running.interface("Ethernet0/0").group(1).priority == 120  # type: ignore[union-attr]


def test_cli_shell_bad_config_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "r2.cfg"
    config.write_text("interface e0/0\n glbp 1 authentication text SECRET junk\n")
    assert main(["glbp", "shell", str(config)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "r2.cfg:2" in err and "SECRET" not in err
    assert "--skip-unknown" not in err  # a refused glbp line is not skipped by the option
    config.write_bytes(b"\xff\xfe")
    assert main(["glbp", "shell", str(config)]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_cli_shell_skip_unknown(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "R3.cfg"
    config.write_text((GOLDENS / "ios_real_router.cfg").read_text(encoding="utf-8"))
    assert main(["glbp", "shell", str(config)]) == 2
    err = capsys.readouterr().err
    assert err == (
        f"error: {config}:8: 'service timestamps debug datetime msec': invalid input at "
        "'service' (pass --skip-unknown to skip such lines)\n"
    )
    monkeypatch.setattr("sys.stdin", io.StringIO("show running-config | include glbp\n"))
    assert main(["glbp", "shell", "--skip-unknown", str(config)]) == 0
    captured = capsys.readouterr()
    assert captured.err.startswith("skipped 23 unsupported lines, first ")
    assert captured.out == (
        "R3>show running-config | include glbp\n"
        " glbp 1 ip 192.168.0.254\n"
        " glbp 1 weighting track 2 decrement 20\n"
        "R3>\n"
    )


def test_cli_shell_help_has_an_example(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["glbp", "shell", "--help"]) == 0
    assert "Example:" in capsys.readouterr().out
