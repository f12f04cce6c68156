"""The sans-I/O AGI session: captured transcripts, replies, HANGUP, caps, EOF everywhere."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pbxgate.agi.errors import LocalProtocolError, RemoteProtocolError
from pbxgate.agi.protocol import (
    NEED_DATA,
    AgiSession,
    ConnectionClosed,
    Environment,
    Event,
    Hangup,
    Reply,
    State,
    decode_value,
)
from tests.agi.transcripts import Transcript, load

GOLDENS = Path(__file__).parent / "goldens"
ENV = b"agi_network: yes\nagi_network_script: notify?x=1\nagi_uniqueid: 1.2\n\n"


def replay(transcript: Transcript, *, chunk: int | None) -> list[Event]:
    """Play Asterisk's side into a session, sending our side's commands where they were."""
    session = AgiSession()
    events: list[Event] = []
    for way, data in transcript.steps:
        if way == ">>":
            command = data.decode().split(" ", 1)[0]
            args = _args_of(data)
            assert session.send_command(command, *args) == data
            continue
        pieces = [data] if chunk is None else [data[i : i + chunk] for i in range(len(data))]
        for piece in pieces:
            session.receive_data(piece)
            events.extend(session.events())
    session.receive_data(b"")
    events.extend(session.events())
    return events


def _args_of(line: bytes) -> list[str | int]:
    # The captured commands are VERBOSE "<text>" <level>.
    text = line.decode().rstrip("\n").split(" ", 1)[1]
    quoted, level = text.rsplit(" ", 1)
    return [json.loads(quoted), int(level)]


def render(events: list[Event]) -> str:
    out = []
    for event in events:
        if isinstance(event, Environment):
            out.append(f"Environment network={event.network} script={event.script!r}")
            out.append(f"  query={event.query!r} args={event.args!r}")
            out.extend(f"  {k}={v!r}" for k, v in event.variables.items())
        else:
            out.append(repr(event))
    return "\n".join(out) + "\n"


@pytest.mark.parametrize("name", ["fastagi", "local"])
@pytest.mark.parametrize("chunk", [None, 1], ids=["whole", "byte-by-byte"])
def test_captured_transcripts_replay_byte_exact(asterisk_fixtures, golden, name, chunk):
    transcript = load(asterisk_fixtures)[name]
    events = replay(transcript, chunk=chunk)
    golden(GOLDENS / f"transcript_{name}.txt", render(events))
    assert isinstance(events[0], Environment)
    assert events[1] == Reply(200, text="result=1", result=1)
    assert isinstance(events[-1], ConnectionClosed)


def test_fastagi_environment_fields(asterisk_fixtures):
    session = AgiSession()
    session.receive_data(load(asterisk_fixtures)["fastagi"].from_asterisk())
    env = session.next_event()
    assert isinstance(env, Environment)
    assert env.network and env.script == "notify" and env.query == (("x", "1"),)
    assert env.get("callerid") == "84991111111"
    assert env.get("agi_calleridname") == "Oleg Ivanov"
    assert env.get("dnid") == ""  # "unknown" means absent
    assert env.variables["agi_dnid"] == "unknown"
    assert env.get("accountcode") == ""
    assert session.state is State.IDLE


def test_local_environment_args(asterisk_fixtures):
    session = AgiSession()
    session.receive_data(load(asterisk_fixtures)["local"].from_asterisk())
    env = session.next_event()
    assert isinstance(env, Environment)
    assert not env.network
    assert env.script == "/var/lib/asterisk/agi-bin/notify.sh"
    assert env.args == ("arg1", "arg 2")


def _ready(*more: bytes) -> tuple[AgiSession, list[Event]]:
    session = AgiSession()
    session.receive_data(ENV)
    assert isinstance(session.next_event(), Environment)
    events: list[Event] = []
    for data in more:
        session.receive_data(data)
        events.extend(session.events())
    return session, events


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (b"200 result=1\n", Reply(200, "result=1", 1)),
        (b"200 result=0\n", Reply(200, "result=0", 0)),
        (b"200 result=1 (queued)\n", Reply(200, "result=1 (queued)", 1, "queued")),
        (b"200 result=1 (a (b) c)\n", Reply(200, "result=1 (a (b) c)", 1, "a (b) c")),
        (
            b"200 result=-1 (hangup) endpos=1234\n",
            Reply(200, "result=-1 (hangup) endpos=1234", -1, "hangup", 1234),
        ),
        (b"200 result=0 endpos=0\n", Reply(200, "result=0 endpos=0", 0, None, 0)),
        (b"510 Invalid or unknown command\n", Reply(510, "Invalid or unknown command")),
        (
            b"511 Command Not Permitted on a dead channel or intercept routine\n",
            Reply(511, "Command Not Permitted on a dead channel or intercept routine"),
        ),
        (
            b"520 Invalid command syntax.  Proper usage not available.\n",
            Reply(520, "Invalid command syntax.  Proper usage not available."),
        ),
    ],
)
def test_single_line_replies(line, expected):
    session, _ = _ready()
    session.send_command("NOOP")
    session.receive_data(line)
    assert session.next_event() == expected
    assert session.state is State.IDLE


USAGE = (
    b"520-Invalid command syntax.  Proper usage follows:\n"
    b" Usage: SET VARIABLE <variablename> <value>\n"
    b"\n"
    b"   Sets a variable to the current channel.\n"
    b"520 End of proper usage.\n"
)


@pytest.mark.parametrize("chunk", [len(USAGE), 1, 7])
def test_multiline_520_usage(chunk):
    session, _ = _ready()
    session.send_command("SET VARIABLE", "X")
    events: list[Event] = []
    for i in range(0, len(USAGE), chunk):
        session.receive_data(USAGE[i : i + chunk])
        events.extend(session.events())
    assert events == [
        Reply(
            520,
            "Invalid command syntax.  Proper usage follows:",
            usage=(
                " Usage: SET VARIABLE <variablename> <value>",
                "",
                "   Sets a variable to the current channel.",
            ),
        )
    ]
    assert session.state is State.IDLE
    assert session.send_command("NOOP") == b"NOOP\n"


def test_hangup_before_reply_and_mid_session():
    session, events = _ready(b"HANGUP\n")
    assert events == [Hangup()] and session.hung_up
    session.send_command("GET VARIABLE", "DIALSTATUS")
    session.receive_data(b"HANGUP\n200 result=1 (NOANSWER)\n")
    assert list(session.events()) == [Hangup(), Reply(200, "result=1 (NOANSWER)", 1, "NOANSWER")]
    session.receive_data(b"")
    assert list(session.events()) == [ConnectionClosed()]
    assert session.state is State.CLOSED


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "before the end of the AGI environment"),
        (b"agi_network: yes\n", "before the end of the AGI environment"),
        (b"agi_network: y", "in the middle of a line"),
        (ENV + b"HANGUP", "in the middle of a line"),
    ],
)
def test_eof_in_environment_or_mid_line(data, message):
    session = AgiSession()
    session.receive_data(data)
    session.receive_data(b"")
    with pytest.raises(RemoteProtocolError, match=message):
        list(session.events())
    assert session.state is State.ERROR
    with pytest.raises(RemoteProtocolError, match="already failed"):
        session.next_event()


@pytest.mark.parametrize(
    ("tail", "message"),
    [
        (b"", "waiting for a reply"),
        (b"200 resu", "middle of a line"),
        (b"520-Invalid command syntax.  Proper usage follows:\n", "inside a 520"),
        (b"520-Invalid command syntax.  Proper usage follows:\n Usage: x\n", "inside a 520"),
        (b"520-Invalid command syntax.  Proper usage follows:\n Usage", "middle of a line"),
    ],
)
def test_eof_while_awaiting_reply(tail, message):
    session, _ = _ready()
    session.send_command("NOOP")
    session.receive_data(tail)
    session.receive_data(b"")
    with pytest.raises(RemoteProtocolError, match=message):
        list(session.events())


def test_eof_when_idle_is_clean_and_repeatable():
    session, _ = _ready()
    session.receive_data(b"")
    session.receive_data(b"")
    assert session.next_event() == ConnectionClosed()
    assert session.next_event() == ConnectionClosed()
    with pytest.raises(LocalProtocolError, match="after EOF"):
        session.receive_data(b"x")
    with pytest.raises(LocalProtocolError, match="peer closed"):
        session.send_command("NOOP")


def test_need_data_until_a_line_is_complete():
    session = AgiSession()
    session.receive_data(b"agi_request: agi://h/notify")
    assert session.next_event() is NEED_DATA
    session.receive_data(b"\n\n")
    assert isinstance(session.next_event(), Environment)
    assert session.next_event() is NEED_DATA


@pytest.mark.parametrize(
    "data",
    [
        b"GET / HTTP/1.1\r\n\r\n",
        b"agi_request agi://x\n\n",
        b"agi_bad key: 1\n\n",
    ],
)
def test_malformed_environment(data):
    session = AgiSession()
    session.receive_data(data)
    with pytest.raises(RemoteProtocolError, match="malformed AGI environment"):
        session.next_event()


@pytest.mark.parametrize(
    "line", [b"hello\n", b"200 result=x\n", b"20 result=1\n", b"200 nonsense\n"]
)
def test_malformed_reply(line):
    session, _ = _ready()
    session.send_command("NOOP")
    session.receive_data(line)
    with pytest.raises(RemoteProtocolError, match="malformed"):
        session.next_event()


def test_unsolicited_reply_is_the_peers_fault():
    session, _ = _ready()
    session.receive_data(b"200 result=1\n")
    with pytest.raises(RemoteProtocolError, match="no command outstanding"):
        session.next_event()


def test_line_cap_without_newline_and_with_one():
    session = AgiSession(max_line_bytes=64)
    session.receive_data(b"agi_request: " + b"x" * 51)
    assert session.next_event() is NEED_DATA  # 64 bytes buffered: still allowed
    session.receive_data(b"y")
    with pytest.raises(RemoteProtocolError, match="longer than 64"):
        session.next_event()
    session = AgiSession(max_line_bytes=64)
    session.receive_data(b"agi_request: " + b"x" * 100 + b"\n\n")
    with pytest.raises(RemoteProtocolError, match="longer than 64"):
        session.next_event()


def test_header_cap():
    session = AgiSession(max_header_bytes=100)
    session.receive_data(b"".join(b"agi_arg_%d: 0123456789\n" % i for i in range(1, 6)))
    with pytest.raises(RemoteProtocolError, match="environment larger than 100"):
        list(session.events())


def test_usage_cap():
    session = AgiSession(max_header_bytes=200)
    session.receive_data(ENV)
    list(session.events())
    session.send_command("NOOP")
    session.receive_data(b"520-Invalid\n" + b"usage line\n" * 30)
    with pytest.raises(RemoteProtocolError, match="520 usage reply larger"):
        list(session.events())


def test_send_command_quoting():
    session, _ = _ready()
    line = session.send_command("set variable", "PBXGATE_EVENT", 'a "q" \\ b')
    assert line == b'SET VARIABLE "PBXGATE_EVENT" "a \\"q\\" \\\\ b"\n'
    session.receive_data(b"200 result=1\n")
    list(session.events())
    assert session.send_command("VERBOSE", "", 1) == b'VERBOSE "" 1\n'


@pytest.mark.parametrize(
    ("command", "args", "message"),
    [
        ("NOOP", ("a\nHANGUP",), "newline"),
        ("NOOP", ("a\rb",), "newline"),
        ("NOOP\nHANGUP", (), "not an AGI command"),
        ('NOOP "x"', (), "not an AGI command"),
        ("", (), "not an AGI command"),
        ("VERBOSE", ("x" * 3000,), "Asterisk reads at most 2048"),
        ("VERBOSE", (True,), "str or int"),
    ],
)
def test_send_command_refuses(command, args, message):
    session, _ = _ready()
    with pytest.raises(LocalProtocolError, match=message):
        session.send_command(command, *args)
    assert session.state is State.IDLE  # a refused command changes nothing


def test_command_before_environment_and_while_waiting():
    session = AgiSession()
    with pytest.raises(LocalProtocolError, match="before the environment"):
        session.send_command("NOOP")
    session, _ = _ready()
    session.send_command("NOOP")
    with pytest.raises(LocalProtocolError, match="awaits its reply"):
        session.send_command("NOOP")


CUT_NAME = "Иванов К".encode() + "ё".encode()[:1]


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        (b"Oleg Ivanov", "Oleg Ivanov"),
        ("Олег Иванов".encode(), "Олег Иванов"),
        (CUT_NAME, "Иванов К"),  # cut mid-character by the trunk: the partial char is dropped
        (b"K129\xd0", "K129"),  # the panoramisk PR #106 case
        ("Олег".encode("cp1251"), "Олег"),  # legacy Windows-1251 equipment
        (b"\xd0\x00\xff", "Р\x00я"),
    ],
)
def test_decode_value(raw, text):
    assert decode_value(raw) == text


def test_decode_value_without_fallback_replaces():
    assert decode_value("Олег".encode("cp1251"), "") == "\ufffd" * 4


def test_non_utf8_caller_name_in_environment():
    session = AgiSession()
    session.receive_data(b"agi_calleridname: " + CUT_NAME + b"\nagi_callerid: unknown\n\n")
    env = session.next_event()
    assert isinstance(env, Environment)
    assert env.get("calleridname") == "Иванов К"
    assert env.get("callerid", "-") == "-"


def test_crlf_lines_are_accepted():
    session = AgiSession()
    session.receive_data(b"agi_callerid: 100\r\n\r\n")
    env = session.next_event()
    assert isinstance(env, Environment) and env.get("callerid") == "100"


def test_query_keeps_plus_signs_and_decodes_escapes():
    session = AgiSession()
    session.receive_data(
        b"agi_network: yes\nagi_network_script: missed?did=+74951234567&n=a%26b&flag&e=\n\n"
    )
    env = session.next_event()
    assert isinstance(env, Environment)
    assert env.script == "missed"
    assert env.query == (("did", "+74951234567"), ("n", "a&b"), ("flag", ""), ("e", ""))


@pytest.mark.parametrize("tail", [b"", b"\n"], ids=["unterminated", "terminated"])
def test_reply_line_cap(tail):
    session = AgiSession(max_line_bytes=64)
    session.receive_data(ENV)
    list(session.events())
    session.send_command("GET VARIABLE", "X")
    session.receive_data(b"200 result=1 (" + b"v" * 80 + b")" + tail)
    with pytest.raises(RemoteProtocolError, match="longer than 64"):
        session.next_event()


def test_complete_block_over_the_header_cap():
    session = AgiSession(max_header_bytes=40)
    session.receive_data(b"agi_request: agi://h/notify\nagi_arg_1: 0123456789\n\n")
    with pytest.raises(RemoteProtocolError, match="environment larger than 40"):
        session.next_event()


def test_repr_of_need_data():
    assert repr(NEED_DATA) == "NEED_DATA"
