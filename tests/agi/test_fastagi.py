"""The FastAGI server on 127.0.0.1 (ephemeral ports): routing, load, idle peers, drain."""

from __future__ import annotations

import asyncio
import logging
import threading
from pathlib import Path

import pytest

from pbxgate.agi.fastagi import FastAgiServer
from pbxgate.agi.handlers import CallHandler, in_thread
from pbxgate.agi.settings import AgiSettings
from pbxgate.errors import DeliveryError
from tests.agi.fakes import (
    RecordingAccept,
    channel_responder,
    default_responder,
    environment,
    fake_asterisk,
)
from tests.agi.transcripts import load

GOLDENS = Path(__file__).parent / "goldens"


async def started(accept: RecordingAccept, **overrides) -> FastAgiServer:
    settings = AgiSettings(**overrides)
    handler = CallHandler(in_thread(accept), clock=lambda: 1795696980.5)
    server = FastAgiServer(settings, handler.routes())
    await server.start("127.0.0.1", 0)
    return server


def test_captured_environment_gets_a_golden_conversation(asterisk_fixtures, golden):
    env = load(asterisk_fixtures)["fastagi"].from_asterisk().split(b"\n\n")[0] + b"\n\n"

    async def main() -> list[bytes]:
        accept = RecordingAccept()
        server = await started(accept)
        commands = await fake_asterisk(server.address[1], env, default_responder("1795696980.8"))
        await server.drain()
        assert [e.event_id for e in accept.events] == ["incoming:1795696980.8"]
        event = accept.events[0]
        assert (event.caller_number, event.caller_name, event.did) == (
            "84991111111",
            "Oleg Ivanov",
            "100",
        )
        assert event.extra == (("x", "1"),)
        return commands

    commands = asyncio.run(main())
    golden(GOLDENS / "fastagi_notify_commands.txt", b"".join(commands))


def test_many_concurrent_sessions_each_answered_and_accepted_once():
    count = 500

    async def main() -> None:
        accept = RecordingAccept()
        server = await started(accept)
        port = server.address[1]
        results = await asyncio.gather(
            *(
                fake_asterisk(
                    port,
                    environment(uniqueid=f"1700000000.{i}"),
                    default_responder(f"1700000000.{i}"),
                )
                for i in range(count)
            )
        )
        await server.drain()
        for commands in results:
            assert commands[-1] == b'SET VARIABLE "PBXGATE_EVENT" "queued"\n'
        ids = [e.event_id for e in accept.events]
        assert sorted(ids) == sorted(f"incoming:1700000000.{i}" for i in range(count))
        assert server.stats.completed == count and server.active == 0

    asyncio.run(main())


def test_silent_and_half_header_peers_are_dropped_without_blocking_others():
    async def main() -> None:
        accept = RecordingAccept()
        # the normal call and the checks below must end within it, on a loaded machine too
        server = await started(accept, idle_timeout=3)
        port = server.address[1]
        silent = await asyncio.open_connection("127.0.0.1", port)
        half = await asyncio.open_connection("127.0.0.1", port)
        half[1].write(b"agi_network: yes\nagi_network_script: notify\nagi_reque")
        # A normal call completes while both are still connected.
        commands = await fake_asterisk(port, environment(), default_responder("L1"))
        assert commands[-1].endswith(b'"queued"\n')
        assert server.stats.timed_out == 0
        assert not silent[0].at_eof() and not half[0].at_eof()
        # Then the idle timeout closes both from the server side.
        assert await silent[0].read() == b""
        assert await half[0].read() == b""
        assert server.stats.timed_out == 2
        for _, writer in (silent, half):
            writer.close()
        await writer.wait_closed()
        await server.drain()

    asyncio.run(main())


def test_trickling_header_is_bounded_by_the_environment_deadline():
    async def main() -> None:
        server = await started(RecordingAccept(), idle_timeout=0.3)
        reader, writer = await asyncio.open_connection("127.0.0.1", server.address[1])

        # Each line is a valid environment line; the whole block never ends. Wait up to
        # 50 ms for the server's EOF after each line, then send the next.
        while True:
            writer.write(b"agi_arg_1: x\n")
            try:
                data = await asyncio.wait_for(reader.read(1), 0.05)
            except TimeoutError:
                continue
            assert data == b""
            break
        writer.close()
        await writer.wait_closed()
        assert server.stats.timed_out == 1
        await server.drain()

    asyncio.run(main())


@pytest.mark.parametrize(
    "data",
    [
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        b"agi_network: yes\n" + b"x" * 10000,
        b"agi_network: yes\n" + b"agi_arg_1: yyyyyyyyyyyyyyyyyyyyyyyy\n" * 50,
    ],
    ids=["http", "long-line", "over-header-cap"],
)
def test_malformed_peers_are_dropped_and_others_served(data):
    async def main() -> None:
        accept = RecordingAccept()
        server = await started(accept, max_header_bytes=1000)
        reader, writer = await asyncio.open_connection("127.0.0.1", server.address[1])
        writer.write(data)
        assert await reader.read() == b""
        writer.close()
        await writer.wait_closed()
        assert server.stats.protocol_errors == 1
        await fake_asterisk(server.address[1], environment(script="notify"))
        assert len(accept.events) == 1
        await server.drain()

    asyncio.run(main())


def test_peer_that_drops_mid_conversation_does_not_hurt_the_server():
    async def main() -> None:
        accept = RecordingAccept()
        server = await started(accept, result_variable="")
        reader, writer = await asyncio.open_connection("127.0.0.1", server.address[1])
        writer.write(environment())
        assert (await reader.readline()).startswith(b"GET VARIABLE")
        writer.close()  # gone before answering GET VARIABLE (AGIEXITONHANGUP=yes)
        await writer.wait_closed()
        await server.drain(timeout=5)
        # The event is still queued, with the uniqueid standing in for the linkedid.
        assert [e.event_id for e in accept.events] == ["incoming:1795696980.9"]

    asyncio.run(main())


def test_inline_hangup_before_the_reply():
    def respond(line: bytes) -> bytes:
        return b"HANGUP\n" + default_responder("L7", "NOANSWER")(line)

    async def main() -> None:
        accept = RecordingAccept()
        server = await started(accept)
        script = "missed"
        commands = await fake_asterisk(
            server.address[1], environment(script, uniqueid="L7", extension="h"), respond
        )
        await server.drain()
        assert commands == [
            # in one round trip; the h extension is no dialled number: where FreePBX keeps it
            b'GET FULL VARIABLE "${CHANNEL(linkedid)}|${DIALSTATUS}|${FROM_DID}|${CDR(did)}"\n',
            b'SET VARIABLE "PBXGATE_EVENT" "queued"\n',
        ]
        (event,) = accept.events
        assert (event.kind, event.dialstatus, event.did) == ("missed", "NOANSWER", "")

    asyncio.run(main())


def test_a_value_holding_the_joiner_is_read_again_alone():
    """FROM_DID holds "|": the one GET FULL VARIABLE splits in too many parts, so each name is
    asked for with GET VARIABLE, and the event has the value whole."""
    respond = channel_responder(
        {"CHANNEL(linkedid)": "L8", "DIALSTATUS": "NOANSWER", "FROM_DID": "74951|101"}
    )

    async def main() -> None:
        accept = RecordingAccept()
        server = await started(accept)
        env = environment("missed", uniqueid="L8", extension="h")
        commands = await fake_asterisk(server.address[1], env, respond)
        await server.drain()
        assert commands == [
            b'GET FULL VARIABLE "${CHANNEL(linkedid)}|${DIALSTATUS}|${FROM_DID}|${CDR(did)}"\n',
            b'GET VARIABLE "CHANNEL(linkedid)"\n',
            b'GET VARIABLE "DIALSTATUS"\n',
            b'GET VARIABLE "FROM_DID"\n',
            b'GET VARIABLE "CDR(did)"\n',
            b'SET VARIABLE "PBXGATE_EVENT" "queued"\n',
        ]
        (event,) = accept.events
        assert (event.linkedid, event.dialstatus, event.did) == ("L8", "NOANSWER", "74951|101")

    asyncio.run(main())


@pytest.mark.parametrize(
    ("query", "outcome"),
    [
        ("missed?linkedid=A1&dialstatus=NOANSWER", "queued"),
        ("missed?linkedid=A1&dialstatus=CANCEL", "queued"),
        ("missed?linkedid=A1&dialstatus=ANSWER", "skipped"),
        ("missed?linkedid=A0&dialstatus=CANCEL", "skipped"),  # a ring-group member leg
    ],
)
def test_missed_route_with_query_parameters(query, outcome):
    async def main() -> None:
        accept = RecordingAccept()
        server = await started(accept)
        commands = await fake_asterisk(server.address[1], environment(query, uniqueid="A1"))
        await server.drain()
        # Everything came in the query string: no GET VARIABLE round trips.
        assert commands == [f'SET VARIABLE "PBXGATE_EVENT" "{outcome}"\n'.encode()]
        assert len(accept.events) == (outcome == "queued")

    asyncio.run(main())


def test_missed_reads_an_empty_dialstatus_from_the_channel():
    async def main() -> list[bytes]:
        server = await started(RecordingAccept())
        env = environment("missed?linkedid=A1&dialstatus=", uniqueid="A1")
        commands = await fake_asterisk(server.address[1], env, default_responder("A1", ""))
        await server.drain()
        return commands

    assert asyncio.run(main()) == [
        b'GET VARIABLE "DIALSTATUS"\n',
        b'SET VARIABLE "PBXGATE_EVENT" "skipped"\n',
    ]


def test_one_missed_message_per_call_across_legs():
    async def main() -> None:
        accept = RecordingAccept()
        server = await started(accept)
        port = server.address[1]
        for _ in range(3):  # the h extension run twice plus a hangup handler
            env = environment("missed?linkedid=A1&dialstatus=NOANSWER", uniqueid="A1")
            await fake_asterisk(port, env)
        await server.drain()
        assert [e.event_id for e in accept.events] == ["missed:A1"]

    asyncio.run(main())


def test_unknown_script_is_closed_and_logged(caplog):
    async def main() -> list[bytes]:
        server = await started(RecordingAccept())
        commands = await fake_asterisk(server.address[1], environment("nosuch?x=1"))
        assert server.stats.unrouted == 1
        await server.drain()
        return commands

    with caplog.at_level(logging.WARNING, logger="pbxgate.agi.fastagi"):
        assert asyncio.run(main()) == []
    assert "no handler for script 'nosuch'" in caplog.text


def test_enqueue_failure_sets_failed_and_logs_the_event(caplog):
    async def main() -> list[bytes]:
        server = await started(RecordingAccept(fail=True))
        commands = await fake_asterisk(server.address[1], environment(), default_responder("L9"))
        await server.drain()
        return commands

    with caplog.at_level(logging.ERROR, logger="pbxgate.agi.handlers"):
        commands = asyncio.run(main())
    assert commands[-1] == b'SET VARIABLE "PBXGATE_EVENT" "failed"\n'
    assert "could not queue incoming:L9 (disk full)" in caplog.text
    assert '"caller_number":"84991111111"' in caplog.text


@pytest.mark.parametrize("lands", [True, False], ids=["lands", "fails"])
def test_a_stuck_commit_does_not_hold_the_call(caplog, lands):
    release = threading.Event()
    accept = RecordingAccept()

    def slow_accept(event):
        release.wait(30)
        if not lands:
            raise DeliveryError("outbox: disk I/O error")
        return accept(event)

    async def main() -> list[bytes]:
        handler = CallHandler(in_thread(slow_accept), commit_timeout=0.2)
        server = FastAgiServer(AgiSettings(), handler.routes())
        await server.start("127.0.0.1", 0)
        commands = await fake_asterisk(server.address[1], environment(), default_responder("S1"))
        assert accept.events == []  # the call went on before the commit
        release.set()
        await server.drain()
        for _ in range(200):  # the commit's end, logged once it comes
            if "after its call went on" in caplog.text:
                break
            await asyncio.sleep(0.01)
        return commands

    with caplog.at_level(logging.WARNING, logger="pbxgate.agi.handlers"):
        commands = asyncio.run(main())
    assert commands[-1] == b'SET VARIABLE "PBXGATE_EVENT" "failed"\n'
    assert "queueing incoming:S1 takes over 0.2s" in caplog.text
    if lands:
        assert [e.event_id for e in accept.events] == ["incoming:S1"]  # it landed after all
        assert "incoming:S1 was queued after its call went on" in caplog.text
    else:
        assert accept.events == []
        assert (
            "queueing incoming:S1 failed after its call went on: outbox: disk I/O error"
        ) in caplog.text
    assert "never retrieved" not in caplog.text


@pytest.mark.parametrize("where", ["reading", "committing"])
def test_a_call_the_drain_cuts_has_its_event_logged_whole(caplog, where):
    """SIGTERM's drain cancels what is still open after its grace: a call cut while Asterisk
    was asked for a name (its event is not stored: the dialplan's fallback reads it again), or
    while its event was being stored (the commit goes on). Either way the event is in the log
    whole; before, the cancellation passed every line that held it."""
    release = threading.Event()
    reached = threading.Event()  # the call is where the drain is to cut it
    accept = RecordingAccept()

    def slow_accept(event):
        reached.set()
        release.wait(30)
        return accept(event)

    def silent(line: bytes) -> bytes:  # Asterisk does not answer the name's read
        reached.set()
        return b""

    async def main() -> None:
        handler = CallHandler(in_thread(slow_accept), commit_timeout=30)
        server = FastAgiServer(AgiSettings(), handler.routes())
        await server.start("127.0.0.1", 0)
        respond = silent if where == "reading" else default_responder("S1")
        call = asyncio.ensure_future(fake_asterisk(server.address[1], environment(), respond))
        async with asyncio.timeout(30):
            while not reached.is_set():
                await asyncio.sleep(0.01)
        await server.drain(timeout=0.1)
        release.set()
        await call
        for _ in range(200):  # the commit the cut call left, logged once it ends
            if where == "reading" or "was queued after its call went on" in caplog.text:
                break
            await asyncio.sleep(0.01)

    with caplog.at_level(logging.WARNING, logger="pbxgate.agi.handlers"):
        asyncio.run(main())
    lines = [
        r.getMessage() for r in caplog.records if '"caller_number":"84991111111"' in r.getMessage()
    ]
    if where == "reading":
        assert accept.events == []
        assert len(lines) == 1 and lines[0].startswith("the service stopped before incoming:")
    else:
        assert [e.event_id for e in accept.events] == ["incoming:S1"]
        assert len(lines) == 1
        assert lines[0].startswith("the service stopped while incoming:S1 was being queued")
        assert "incoming:S1 was queued after its call went on" in caplog.text


def test_drain_stops_listening_and_waits_for_open_sessions():
    async def main() -> None:
        accept = RecordingAccept()
        server = await started(accept)
        port = server.address[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(environment())
        first = await reader.readline()  # the server now waits for our reply
        drain = asyncio.create_task(server.drain(timeout=30))
        while any(s.is_serving() for s in server._servers):
            await asyncio.sleep(0)
        with pytest.raises(OSError):
            await asyncio.open_connection("127.0.0.1", port)
        assert not drain.done()
        writer.write(default_responder("D1")(first))
        assert (await reader.readline()).startswith(b"SET VARIABLE")
        writer.write(b"200 result=1\n")
        await drain
        assert [e.event_id for e in accept.events] == ["incoming:D1"]
        writer.close()
        await writer.wait_closed()

    asyncio.run(main())


def test_drain_cuts_sessions_after_the_grace_period():
    async def main() -> None:
        server = await started(RecordingAccept())
        reader, writer = await asyncio.open_connection("127.0.0.1", server.address[1])
        writer.write(environment())
        await reader.readline()
        await server.drain(timeout=0.05)
        assert server.active == 0
        assert await reader.read() == b""
        writer.close()
        await writer.wait_closed()

    asyncio.run(main())


def test_refuses_connections_beyond_max_sessions(caplog):
    async def main() -> None:
        server = await started(RecordingAccept(), max_sessions=1)
        port = server.address[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(environment())
        await reader.readline()
        other_reader, other_writer = await asyncio.open_connection("127.0.0.1", port)
        assert await other_reader.read() == b""
        assert server.stats.refused == 1
        other_writer.close()
        await other_writer.wait_closed()
        writer.close()
        await writer.wait_closed()
        await server.drain(timeout=0.05)

    with caplog.at_level(logging.WARNING):
        asyncio.run(main())
    assert "refusing a connection" in caplog.text


def test_the_last_command_comes_with_the_end_and_its_answer_is_still_read():
    """SET VARIABLE is the session's last command: the server's end follows it at once, so
    Asterisk continues the dialplan right after answering; the answer is read before the
    server closes, so Asterisk never meets a reset."""

    async def main() -> None:
        accept = RecordingAccept()
        server = await started(accept)
        reader, writer = await asyncio.open_connection("127.0.0.1", server.address[1])
        writer.write(environment())
        get = await reader.readline()
        writer.write(default_responder("LAST.1")(get))
        assert await reader.readline() == b'SET VARIABLE "PBXGATE_EVENT" "queued"\n'
        assert await asyncio.wait_for(reader.read(), 5) == b""  # the end, before our answer
        assert server.stats.completed == 0  # the server still waits for the answer...
        writer.write(b"200 result=1\n")
        await writer.drain()
        await server.drain(timeout=5)
        assert server.stats.completed == 1  # ...and has read it before it closed
        writer.close()
        await writer.wait_closed()
        assert [e.event_id for e in accept.events] == ["incoming:LAST.1"]

    asyncio.run(main())
