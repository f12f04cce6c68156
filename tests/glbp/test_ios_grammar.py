"""The command grammar: parameters, abbreviations, help; the executor never raises on input."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from pbxgate.glbp.config import RouterConfig
from pbxgate.glbp.ios import CONFIG, EXEC, IosState, Mode, ModeKind, execute
from pbxgate.glbp.ios.grammar import INCOMPLETE, INVALID, Failure, Grammar, Help, Match

IF_MODE = Mode(ModeKind.CONFIG_IF, "Ethernet0/0")


def grammar() -> Grammar:
    g = Grammar()
    g.add("show glbp {if:IF} {group:0-1023} brief", lambda: None, accept_from=2)
    g.add("description {text:LINE}", lambda: None, {"text": "Description"})
    g.add("mac-address {mac:H.H.H}", lambda: None)
    g.add("ip address {addr:A.B.C.D} {mask:A.B.C.D}", lambda: None)
    g.add("ip ipv6 {a:X:X:X:X::X}", lambda: None)
    g.add("shutdown", lambda: None)
    g.add("show track", lambda: None)
    return g


def test_parameters_and_abbreviations() -> None:
    g = grammar()
    match = g.parse("sho gl Ethernet 0/1 12 b")
    assert isinstance(match, Match)
    assert match.words == ("show", "glbp", "Ethernet0/1", "12", "brief")
    assert match.values == {"if": "Ethernet0/1", "group": 12}
    line = g.parse("description  uplink to  ISP ")
    assert isinstance(line, Match) and line.values["text"] == "uplink to  ISP"
    mac = g.parse("mac-address AABB.cc00.20")
    assert isinstance(mac, Match) and mac.values["mac"] == "aabb.cc00.0020"
    v6 = g.parse("ip ipv6 fe80::1")
    assert isinstance(v6, Match) and str(v6.values["a"]) == "fe80::1"


def test_failures_carry_the_ios_message_and_column() -> None:
    g = grammar()
    assert g.parse("ip address 10.0.0.1 255.255.255.256") == Failure(INVALID, 20)
    assert g.parse("show glbp e0/0 1024") == Failure(INVALID, 15)
    assert g.parse("ip address 10.0.0.1") == Failure(INCOMPLETE)
    assert g.parse("s") == Failure('% Ambiguous command:  "s"')
    assert g.parse("frob") == Failure(INVALID, 0, unknown_command=True)
    assert g.parse("show ? glbp") == Failure(INVALID)
    assert g.parse("sho x?") == Failure("% Unrecognized command")


def test_help_lists_parameters_keywords_and_cr() -> None:
    g = grammar()
    assert g.parse("show glbp ?") == Help(("  Ethernet", "  <cr>"))
    assert g.parse("show glbp e0/0 ?") == Help(("  <0-1023>", "  <cr>"))
    help_lines = g.parse("description ?")
    assert help_lines == Help(("  LINE  Description",))
    assert g.parse("s?") == Help(("show  shutdown",))
    assert g.has_keyword("shutdown") and not g.has_keyword("shut")


WORDS = [
    "glbp", "1", "ip", "192.168.0.254", "priority", "110", "preempt", "delay", "minimum",
    "weighting", "track", "decrement", "lower", "upper", "load-balancing", "host-dependent",
    "forwarder", "timers", "msec", "redirect", "authentication", "md5", "key-string", "7",
    "key-chain", "text", "name", "client-cache", "maximum", "timeout", "no", "do", "show",
    "run", "interface", "e0/0", "Ethernet", "0/1", "exit", "end", "key", "chain", "?", "pr?",
    "hostname", "shutdown", "description", "mac-address", "aabb.cc00.2000", "conf", "t",
    "enable", "disable", "debug", "undebug", "all", "ipv6", "fe80::1", "secondary", "1023",
    "0", "65536", "-1", "x", "",
]  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from([EXEC, CONFIG, IF_MODE, Mode(ModeKind.USER_EXEC)]),
    st.lists(st.lists(st.sampled_from(WORDS), max_size=8).map(" ".join), max_size=6),
)
def test_executor_answers_any_input_without_raising(mode: Mode, lines: list[str]) -> None:
    state = IosState(RouterConfig("R1"))
    current: Mode | None = mode
    for line in lines:
        if current is None:
            break
        if current.kind is ModeKind.CONFIG_IF and state.config.interface("Ethernet0/0") is None:
            execute(state, CONFIG, "interface Ethernet0/0")
        current, output = execute(state, current, line)
        assert isinstance(output, str)
