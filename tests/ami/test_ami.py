"""AMI: the protocol in any chunking, the client against a manager that behaves like Asterisk's
(login, actions, list actions, events, dropped connections), and the call tracker."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import random
import signal
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pbxgate.ami.calls import ENDED, RINGING, TALKING, CallState, CallTracker, phone_of
from pbxgate.ami.client import AmiClient, AmiError, Earlier, Mark, follow
from pbxgate.ami.protocol import (
    AmiProtocolError,
    AmiSession,
    Closed,
    Greeting,
    Message,
    NeedData,
    format_action,
    redacted,
)
from pbxgate.config import Settings
from tests.fuzz.conftest import FUZZ

GREETING = b"Asterisk Call Manager/9.0.0\r\n"
NEWCHANNEL = (
    b"Event: Newchannel\r\nPrivilege: call,all\r\nChannel: IAX2/trunk-4\r\n"
    b"ChannelState: 0\r\nChannelStateDesc: Down\r\nCallerIDNum: 84991111111\r\n"
    b"CallerIDName: Oleg Ivanov\r\nExten: 4996491913\r\nContext: from-trunk\r\n"
    b"Uniqueid: 1733.1\r\nLinkedid: 1733.1\r\n\r\n"
)


def feed(data: bytes, chunk: int) -> list[object]:
    session = AmiSession()
    out: list[object] = []
    for at in range(0, len(data), chunk):
        session.receive_data(data[at : at + chunk])
        out += list(session.events())
    session.receive_data(b"")
    assert isinstance(session.next_event(), Closed)
    return out


@pytest.mark.parametrize("chunk", [1, 7, 4096])
def test_greeting_and_messages_in_any_chunking(chunk: int) -> None:
    data = (
        GREETING + b"Response: Success\r\nActionID: a1\r\nMessage: Authentication accepted\r\n\r\n"
    )
    data += (
        NEWCHANNEL + b"Response: Success\r\nActionID: a2\r\nOutput: line 1\r\nOutput: line 2\r\n"
    )
    data += b"--END COMMAND--\r\n\r\n"
    greeting, login, event, command = feed(data, chunk)
    assert greeting == Greeting("9.0.0")
    assert isinstance(login, Message) and login.response == "Success" and login.action_id == "a1"
    assert isinstance(event, Message) and event.event == "Newchannel"
    assert event.get("callerIDnum") == "84991111111"  # keys compare without case, as Asterisk's
    assert isinstance(command, Message) and command.all("Output") == ["line 1", "line 2"]
    assert command.all("") == ["--END COMMAND--"]  # a line without a colon is kept, not fatal


def test_what_is_not_a_manager_or_breaks_off_is_one_error() -> None:
    session = AmiSession()
    session.receive_data(b"SSH-2.0-OpenSSH_9.2\r\n")
    with pytest.raises(AmiProtocolError, match="not an Asterisk manager"):
        session.next_event()
    session = AmiSession(max_line=100)
    session.receive_data(GREETING)
    assert isinstance(session.next_event(), Greeting)
    with pytest.raises(AmiProtocolError, match="over 100 bytes"):
        session.receive_data(b"x" * 200)
    session = AmiSession()
    session.receive_data(GREETING + b"Event: Hangup\r\nChannel: X")
    assert isinstance(session.next_event(), Greeting)
    assert isinstance(session.next_event(), NeedData)
    session.receive_data(b"")
    with pytest.raises(AmiProtocolError, match="mid-message"):
        session.next_event()


@FUZZ
@given(st.binary(max_size=600), st.integers(1, 64))
def test_any_bytes_are_messages_or_one_protocol_error(data: bytes, chunk: int) -> None:
    session = AmiSession(max_line=256, max_headers=8)
    try:
        for at in range(0, len(data), chunk):
            session.receive_data(data[at : at + chunk])
            list(session.events())
        session.receive_data(b"")
        assert isinstance(session.next_event(), Closed)
    except AmiProtocolError:
        pass


def test_actions_refuse_line_breaks_and_logs_never_see_the_secret() -> None:
    block = format_action("Login", "a1", {"Username": "pbxgate", "Secret": "s3"})
    assert block == b"Action: Login\r\nActionID: a1\r\nUsername: pbxgate\r\nSecret: s3\r\n\r\n"
    with pytest.raises(ValueError, match="line break in Channel"):
        format_action("Hangup", "a2", {"Channel": "PJSIP/1\r\nAction: Originate"})
    assert redacted({"Username": "u", "Secret": "s3"}) == {"Username": "u", "Secret": "***"}


# -- the client against a manager that answers like Asterisk's ------------------------------


class FakeManager:
    """Greets, takes Login (secret "right"), answers Ping and CoreShowChannels, pushes the
    events it is told to, and can drop every connection. Its channels are what it was given
    and what the events it sent made of them, as Asterisk's: a Newchannel adds one, a Hangup
    takes it away (a list never lacks a channel whose Newchannel came before it, and no
    Hangup of)."""

    def __init__(self) -> None:
        self.logins = 0
        self.writers: list[asyncio.StreamWriter] = []
        self.channels: list[dict[str, str]] = []
        self.denied = False  # CoreShowChannels: the user has no write = reporting
        # events written just before the response to the next action of that name, as
        # Asterisk writes the events queued meanwhile before it reads each action
        # (main/manager.c do_message); none come inside a list
        self.before: dict[str, bytes] = {}

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def push(self, block: bytes) -> None:
        self._track(block)
        for writer in self.writers:
            writer.write(block)
            await writer.drain()

    _LISTED = ("Channel", "Uniqueid", "Linkedid", "CallerIDNum", "CallerIDName", "Exten",
               "Context")  # fmt: skip

    def _track(self, blocks: bytes) -> None:
        for block in blocks.decode().split("\r\n\r\n"):
            fields = dict(line.split(": ", 1) for line in block.split("\r\n") if ": " in line)
            channel = fields.get("Channel", "")
            if fields.get("Event") == "Newchannel":
                self.channels.append({k: fields[k] for k in self._LISTED if k in fields})
            elif fields.get("Event") == "Hangup":
                self.channels = [c for c in self.channels if c.get("Channel") != channel]

    def drop(self) -> None:
        for writer in self.writers:
            writer.close()
        self.writers.clear()

    async def close(self) -> None:
        self.drop()
        self.server.close()
        await self.server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(GREETING)
        self.writers.append(writer)
        fields: dict[str, str] = {}
        while line := await reader.readline():
            text = line.decode().rstrip("\r\n")
            if text:
                key, _, value = text.partition(": ")
                fields[key] = value
                continue
            aid = fields.get("ActionID", "")
            action = fields.get("Action", "")
            early = self.before.pop(action, b"")
            self._track(early)
            writer.write(early)
            if action == "Login":
                ok = fields.get("Secret") == "right"
                self.logins += ok
                status = "Success" if ok else "Error"
                text = "Authentication accepted" if ok else "Authentication failed"
                writer.write(f"Response: {status}\r\nActionID: {aid}\r\nMessage: {text}\r\n\r\n"
                             .encode())  # fmt: skip
            elif action == "CoreShowChannels" and self.denied:  # main/manager.c's answer
                writer.write(f"Response: Error\r\nActionID: {aid}\r\n"
                             "Message: Permission denied\r\n\r\n".encode())  # fmt: skip
            elif action == "CoreShowChannels" and fields.get("Never"):
                writer.write(f"Response: Success\r\nActionID: {aid}\r\n\r\n".encode())
            elif action == "CoreShowChannels":
                out = f"Response: Success\r\nActionID: {aid}\r\nEventList: start\r\n\r\n"
                for ch in self.channels:
                    out += "Event: CoreShowChannel\r\n" + f"ActionID: {aid}\r\n"
                    out += "".join(f"{k}: {v}\r\n" for k, v in ch.items()) + "\r\n"
                out += f"Event: CoreShowChannelsComplete\r\nActionID: {aid}\r\n"
                out += f"EventList: Complete\r\nListItems: {len(self.channels)}\r\n\r\n"
                writer.write(out.encode())
            else:
                writer.write(f"Response: Success\r\nActionID: {aid}\r\nPing: Pong\r\n\r\n".encode())
            fields = {}


def test_login_actions_list_actions_and_events() -> None:
    async def main() -> None:
        manager = FakeManager()
        manager.channels = [{"Channel": "IAX2/trunk-4", "Linkedid": "1733.1", "Uniqueid": "1733.1",
                             "CallerIDNum": "84991111111", "Exten": "600"}]  # fmt: skip
        port = await manager.start()
        client = AmiClient("127.0.0.1", port, "pbxgate", "right")
        await client.connect()
        assert client.version == "9.0.0"
        queue = client.subscribe()
        assert (await client.action("Ping")).get("Ping") == "Pong"
        (channel,) = await client.list_action("CoreShowChannels")
        assert channel.get("Channel") == "IAX2/trunk-4"
        # where the list's answer came, among the events; an action's when it is asked for
        assert queue.get_nowait() == Mark("pbxgate-3") and queue.empty()
        await client.action("Ping", mark=True)
        assert queue.get_nowait() == Mark("pbxgate-4") and queue.empty()
        await manager.push(NEWCHANNEL)
        event = await asyncio.wait_for(queue.get(), 5)
        assert isinstance(event, Message) and event.event == "Newchannel"
        await client.close()
        await manager.close()

    asyncio.run(main())


def test_a_wrong_secret_is_one_line_without_the_secret(caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        manager = FakeManager()
        port = await manager.start()
        client = AmiClient("127.0.0.1", port, "pbxgate", "wrong-s3cret")
        with pytest.raises(AmiError) as caught:
            await client.connect()
        assert str(caught.value) == (
            f"the manager at 127.0.0.1:{port} refused the login of 'pbxgate': Authentication failed"
        )
        assert "s3cret" not in repr(client)
        unreachable = AmiClient("127.0.0.1", 1, "pbxgate", "wrong-s3cret", timeout=2)
        with pytest.raises(AmiError, match=r"cannot reach the manager at 127\.0\.0\.1:1"):
            await unreachable.connect()
        await manager.close()

    with caplog.at_level(logging.DEBUG):
        asyncio.run(main())
    assert "s3cret" not in caplog.text


def test_follow_reconnects_and_resynchronises_after_a_drop(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def main() -> None:
        manager = FakeManager()
        port = await manager.start()
        seen: list[str] = []
        connects: list[int] = []
        stop = asyncio.Event()

        async def resync(client: AmiClient, _: Earlier) -> None:
            connects.append(len(await client.list_action("CoreShowChannels")))

        task = asyncio.create_task(follow(
            lambda: AmiClient("127.0.0.1", port, "pbxgate", "right"),
            lambda m: seen.append(m.event), stop, on_connect=resync, first_delay=0.05,
        ))  # fmt: skip
        try:
            # each push waits for that session's catch-up to have its list: pushed before it,
            # the channel would be in the list too (as Asterisk's list holds it)
            while len(connects) < 1:
                await asyncio.sleep(0.01)
            await manager.push(NEWCHANNEL)
            while not seen:
                await asyncio.sleep(0.01)
            manager.drop()
            while len(connects) < 2:
                await asyncio.sleep(0.01)
            await manager.push(NEWCHANNEL.replace(b"trunk-4", b"trunk-5"))
            while len(seen) < 2:
                await asyncio.sleep(0.01)
            stop.set()
            await asyncio.wait_for(task, 5)
        finally:
            await manager.close()
        # the second catch-up lists the channel the first session's Newchannel made
        assert seen == ["Newchannel", "Newchannel"] and connects == [0, 1]

    with caplog.at_level(logging.INFO, logger="pbxgate.ami.client"):
        asyncio.run(main())
    assert "the manager closed the connection; again in 0 s" in caplog.text


def test_a_catch_up_the_user_may_not_run_backs_off_and_says_what_to_grant(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A user with read = call alone logs in, then is refused CoreShowChannels: the session
    fails at once each time. It used to count as up and reset the wait (a login a second for
    ever); it backs off like a refused login, and the line says what manager.conf needs."""

    async def main() -> None:
        manager = FakeManager()
        manager.denied = True
        port = await manager.start()
        stop = asyncio.Event()
        make = lambda: AmiClient("127.0.0.1", port, "pbxgate", "right")  # noqa: E731
        with pytest.raises(AmiError, match=r"give it write = reporting in manager\.conf"):
            # pbxgate ami watch (it used to go on for ever: the login had succeeded)
            await asyncio.wait_for(CallTracker().follow(make, stop, fail_first=True), 10)
        manager.logins = 0
        task = asyncio.create_task(
            CallTracker().follow(make, stop, first_delay=0.05, max_delay=0.4, rng=random.Random(1))
        )
        await asyncio.sleep(1.2)
        stop.set()
        await asyncio.wait_for(task, 5)
        await manager.close()
        # 0.05, 0.1, 0.2, 0.4, 0.4 s apart (with jitter): five or six; before, one every
        # 0.05 s, some twenty
        assert 3 <= manager.logins <= 7

    with caplog.at_level(logging.WARNING, logger="pbxgate.ami.client"):
        asyncio.run(main())
    assert "(CoreShowChannels: Permission denied): give it write = reporting" in caplog.text


def test_events_wait_for_an_outbox_that_fails_and_are_queued_in_order() -> None:
    """An outbox error used to drop the manager's session and the events of the change: the
    tracker had moved on, so a missed call that failed to be queued was never told."""
    from pbxgate.ami.notices import CallNotices, Queueing
    from pbxgate.cdr.numbers import InternalRule
    from pbxgate.errors import DeliveryError

    stored: list[str] = []
    failures = [2]  # the outbox fails twice, then works
    wakes: list[int] = []

    def store(events: list) -> list[bool]:  # type: ignore[type-arg]
        if failures[0]:
            failures[0] -= 1
            raise DeliveryError("outbox: database is locked")
        stored.extend(e.event_id for e in events)
        return [True] * len(events)

    async def main() -> None:
        queueing = Queueing(store, lambda: wakes.append(1), first_delay=0.05)
        notices = CallNotices(InternalRule())
        tracker = CallTracker(lambda state: queueing.add(notices(state)), clock=lambda: 1.0)
        tracker.handle(msg(Event="Newchannel", Channel="IAX2/trunk-1", Uniqueid="4.1",
                           Linkedid="4.1", CallerIDNum="84991111111", Exten="600",
                           Context="from-trunk"))  # fmt: skip
        tracker.handle(msg(Event="Hangup", Channel="IAX2/trunk-1", Linkedid="4.1"))
        assert stored == [] and len(queueing.waiting) == 2  # waiting, not lost
        async with asyncio.timeout(10):  # tried again after 0.05 s, then 0.1 s
            while not stored:
                await asyncio.sleep(0.01)
        assert stored == ["incoming:4.1", "missed:4.1"] and wakes == [1]
        assert queueing.waiting == []

    asyncio.run(main())


def test_events_the_outbox_never_took_are_logged_whole_at_the_end(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from pbxgate.ami.notices import Queueing
    from pbxgate.errors import DeliveryError
    from tests.notify.helpers import make_event

    def store(events: list) -> list[bool]:  # type: ignore[type-arg]
        raise DeliveryError("outbox: disk full")

    async def main() -> None:
        queueing = Queueing(store, limit=2)
        queueing.add([make_event(1), make_event(2)])
        queueing.add([make_event(3)])  # past the limit: the oldest is logged, not kept
        assert [e.uniqueid for e in queueing.waiting] == ["1700000000.2", "1700000000.3"]
        queueing.close()
        assert queueing.waiting == []

    with caplog.at_level(logging.ERROR, logger="pbxgate.ami.notices"):
        asyncio.run(main())
    lines = [r.getMessage() for r in caplog.records]
    assert sum('"uniqueid":"1700000000.1"' in line for line in lines) == 1
    assert sum("could not queue a call event" in line for line in lines) == 2


# -- the tracker ------------------------------------------------------------------------------


def msg(**headers: str) -> Message:
    return Message(tuple(headers.items()))


def test_a_ring_group_call_rings_is_answered_and_ends() -> None:
    now = [100.0]
    changes: list[CallState] = []
    tracker = CallTracker(changes.append, clock=lambda: now[0])
    trunk = "IAX2/trunk-00000004"
    tracker.handle(msg(Event="Newchannel", Channel=trunk, CallerIDNum="84991111111",
                       CallerIDName="Oleg", Exten="4996491913", Context="from-trunk",
                       Uniqueid="1.1", Linkedid="1.1"))  # fmt: skip
    for n, ext in enumerate(("101", "102")):
        chan = f"PJSIP/{ext}-0000000{n}"
        tracker.handle(msg(Event="Newchannel", Channel=chan, Uniqueid=f"1.{n + 2}", Linkedid="1.1"))
        tracker.handle(msg(Event="DialBegin", Channel=trunk, DestChannel=chan, Linkedid="1.1",
                           DestLinkedid="1.1", DestCallerIDNum=ext))  # fmt: skip
    assert changes[-1].state == RINGING and changes[-1].ringing == ("101", "102")
    now[0] = 104.0
    tracker.handle(msg(Event="DialEnd", Channel=trunk, DestChannel="PJSIP/102-00000001",
                       DestLinkedid="1.1", DialStatus="ANSWER",
                       DestCallerIDName="Анна Смирнова"))  # fmt: skip
    tracker.handle(msg(Event="DialEnd", Channel=trunk, DestChannel="PJSIP/101-00000000",
                       DestLinkedid="1.1", DialStatus="CANCEL"))  # fmt: skip
    tracker.handle(msg(Event="Hangup", Channel="PJSIP/101-00000000", Linkedid="1.1"))
    talking = changes[-1]
    assert (talking.state, talking.answered_by, talking.answered_at, talking.ringing,
            talking.answered_name) == (TALKING, "102", 104.0, (), "Анна Смирнова")  # fmt: skip
    now[0] = 160.0
    for chan in ("PJSIP/102-00000001", trunk):
        tracker.handle(msg(Event="Hangup", Channel=chan, Linkedid="1.1",
                           **{"Cause-txt": "Normal Clearing"}))  # fmt: skip
    ended = changes[-1]
    assert (ended.state, ended.answered_by, ended.ended_at, ended.cause) == (
        ENDED,
        "102",
        160.0,
        "Normal Clearing",
    )
    assert ended.caller_number == "84991111111" and ended.did == "4996491913"
    assert tracker.live() == []


def test_resync_ends_calls_that_are_gone_and_adds_new_ones() -> None:
    changes: list[CallState] = []
    tracker = CallTracker(changes.append, clock=lambda: 5.0)
    tracker.handle(msg(Event="Newchannel", Channel="IAX2/trunk-1", Uniqueid="9.1", Linkedid="9.1",
                       CallerIDNum="111"))  # fmt: skip
    tracker.resync([msg(Event="CoreShowChannel", Channel="IAX2/trunk-2", Uniqueid="9.2",
                        Linkedid="9.2", CallerIDNum="222", ChannelStateDesc="Ring")])  # fmt: skip
    assert [(c.linkedid, c.state) for c in changes] == [("9.1", RINGING), ("9.2", RINGING),
                                                        ("9.1", ENDED)]  # fmt: skip
    assert [c.caller_number for c in tracker.live()] == ["222"]


def test_a_catch_up_reads_calls_from_their_first_channel_and_answers_from_bridges() -> None:
    """Asterisk lists the channels in its container's order. A queue caller is up (Answer())
    while its members ring: it is not talking. A call begun during the gap is made from its
    first channel (Uniqueid = Linkedid), not from a phone's leg listed before it; and one whose
    first channel shares a bridge with a phone is talking with that phone."""
    from pbxgate.ami.notices import CallNotices
    from pbxgate.cdr.numbers import InternalRule

    changes: list[CallState] = []
    tracker = CallTracker(changes.append, clock=lambda: 100.0)
    trunk = "IAX2/trunk-1"
    tracker.handle(msg(Event="Newchannel", Channel=trunk, CallerIDNum="84991000021",
                       Exten="74951110700", Context="from-trunk", Uniqueid="1.1",
                       Linkedid="1.1"))  # fmt: skip
    tracker.resync([
        msg(Event="CoreShowChannel", Channel="Local/101@from-queue-00000000;1",
            ChannelStateDesc="Ringing", Uniqueid="1.2", Linkedid="1.1", BridgeId=""),
        msg(Event="CoreShowChannel", Channel=trunk, ChannelStateDesc="Up", Uniqueid="1.1",
            Linkedid="1.1", Exten="700", Context="ext-queues", BridgeId=""),
        # begun in the gap: the phone's leg listed first
        msg(Event="CoreShowChannel", Channel="PJSIP/102-00000013", ChannelStateDesc="Up",
            CallerIDNum="102", Context="from-internal", Exten="102", Uniqueid="2.3",
            Linkedid="2.1", BridgeId="b-2"),
        msg(Event="CoreShowChannel", Channel="IAX2/trunk-7", ChannelStateDesc="Up",
            CallerIDNum="84991000022", Context="from-trunk", Exten="74951110701",
            Uniqueid="2.1", Linkedid="2.1", Duration="00:01:05", BridgeId="b-2"),
    ])  # fmt: skip
    queued = tracker.calls["1.1"].state
    assert (queued.state, queued.answered_at) == (RINGING, 0)
    talking = tracker.calls["2.1"].state
    assert (talking.caller_number, talking.did, talking.channel, talking.context) == (
        "84991000022", "74951110701", "IAX2/trunk-7", "from-trunk")  # fmt: skip
    assert (talking.state, talking.answered_by, talking.started_at) == (TALKING, "102", 35.0)
    notices = CallNotices(InternalRule())
    assert [e.kind for e in notices(talking)] == ["incoming", "answered"]
    # a call whose first channel has gone: nobody knows who called, nothing is told
    tracker.resync([msg(Event="CoreShowChannel", Channel="PJSIP/103-00000014", Uniqueid="3.2",
                        Linkedid="3.1", CallerIDNum="103", Context="from-internal")])  # fmt: skip
    unknown = tracker.calls["3.1"].state
    assert (unknown.caller_number, unknown.channel, unknown.did) == ("", "", "")
    assert notices(unknown) == []


@pytest.mark.parametrize(
    ("channel", "phone"),
    [("PJSIP/102-00000004", "102"), ("IAX2/101-3", "101"),
     ("Local/101@from-queue-00000001;1", "101"), ("IAX2/trunk-00000004", ""), ("", "")],
)  # fmt: skip
def test_the_phone_of_a_channel(channel: str, phone: str) -> None:
    assert phone_of(channel) == phone


def test_a_call_picked_up_by_another_phone_is_answered_by_that_phone() -> None:
    changes: list[CallState] = []
    tracker = CallTracker(changes.append, clock=lambda: 7.0)
    tracker.handle(msg(Event="Newchannel", Channel="IAX2/trunk-1", Uniqueid="3.1", Linkedid="3.1",
                       CallerIDNum="84991000014", Exten="74951110103"))  # fmt: skip
    tracker.handle(msg(Event="DialBegin", Channel="IAX2/trunk-1", DestChannel="PJSIP/103-2",
                       DestLinkedid="3.1", DestCallerIDNum="103"))  # fmt: skip
    tracker.handle(msg(Event="Pickup", Channel="PJSIP/102-5", CallerIDNum="102", Linkedid="5.1",
                       CallerIDName="<unknown>", TargetChannel="PJSIP/103-2",
                       TargetLinkedid="3.1"))  # fmt: skip
    assert (changes[-1].state, changes[-1].answered_by, changes[-1].ringing,
            changes[-1].answered_name) == (TALKING, "102", (), "")  # fmt: skip


# -- pbxgate ami watch --------------------------------------------------------------------------


def test_ami_watch_prints_calls_and_stops_on_sigterm(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    env = {**os.environ, "PBXGATE_CONFIG": str(config), "PBXGATE_AMI_SECRET": "right"}
    argv = [sys.executable, "-m", "pbxgate.cli.main", "ami", "watch", "--json"]
    hangup = b"Event: Hangup\r\nChannel: IAX2/trunk-4\r\nLinkedid: 1733.1\r\n"
    hangup += b"Cause-txt: Normal Clearing\r\n\r\n"

    async def main() -> tuple[dict[str, object], dict[str, object], int]:
        manager = FakeManager()
        port = await manager.start()
        config.write_text(f'[ami]\nport = {port}\nusername = "pbxgate"\n', encoding="utf-8")
        proc = await asyncio.create_subprocess_exec(
            *argv, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        try:
            async with asyncio.timeout(20):
                while manager.logins < 1:
                    await asyncio.sleep(0.05)
                await manager.push(NEWCHANNEL + hangup)
                assert proc.stdout is not None
                first = json.loads(await proc.stdout.readline())
                second = json.loads(await proc.stdout.readline())
                proc.send_signal(signal.SIGTERM)
                code = await proc.wait()
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
            await manager.close()
        return first, second, code

    first, second, code = asyncio.run(main())
    assert (first["state"], first["caller_number"], first["did"]) == (
        "ringing", "84991111111", "4996491913")  # fmt: skip
    assert (second["state"], second["cause"], code) == ("ended", "Normal Clearing", 0)


def test_ami_watch_with_a_wrong_secret_or_no_manager_stops_with_one_line(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    argv = [sys.executable, "-m", "pbxgate.cli.main", "ami", "watch"]

    async def main() -> list[tuple[int, str]]:
        manager = FakeManager()
        port = await manager.start()
        out = []
        for secret, where in (("wr0ng-s3cret", port), ("right", 1), ("", port)):
            config.write_text(f'[ami]\nport = {where}\nusername = "pbxgate"\n', encoding="utf-8")
            env = {**os.environ, "PBXGATE_CONFIG": str(config), "PBXGATE_AMI_SECRET": secret}
            proc = await asyncio.create_subprocess_exec(
                *argv, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
            )
            _, err = await asyncio.wait_for(proc.communicate(), 30)
            out.append((proc.returncode or 0, err.decode()))
        await manager.close()
        return out

    refused, unreachable, unset = asyncio.run(main())
    for code, err in (refused, unreachable, unset):
        assert code != 0 and "Traceback" not in err and "s3cret" not in err, err
    assert "refused the login of 'pbxgate': Authentication failed" in refused[1]
    assert "cannot reach the manager at 127.0.0.1:1" in unreachable[1]
    assert "no AMI user configured" in unset[1]


# -- notifications from AMI alone ------------------------------------------------------------


def test_inbound_calls_give_the_agi_events_and_only_those() -> None:
    from pbxgate.ami.notices import CallNotices
    from pbxgate.cdr.numbers import InternalRule

    notices = CallNotices(InternalRule())
    base = CallState(linkedid="1.1", caller_number="84991111111", caller_name="Oleg",
                     did="4996491913", context="from-trunk", channel="IAX2/trunk-1",
                     state=RINGING, started_at=10.0)  # fmt: skip
    (incoming,) = notices(base)
    assert incoming.event_id == "incoming:1.1"
    assert notices(replace(base, ringing=("101",))) == []  # announced once
    (missed,) = notices(replace(base, state=ENDED, ended_at=30.0, dial_status="BUSY"))
    assert (missed.event_id, missed.dialstatus) == ("missed:1.1", "BUSY")
    assert [e.kind for e in notices(replace(base, linkedid="1.2"))] == ["incoming"]
    talking = replace(base, linkedid="1.2", state=TALKING, answered_by="102",
                      answered_name="Анна Смирнова", answered_at=12.5)  # fmt: skip
    # the caller of the missed 1.1 got through: that call is told too (called_back)
    got_through, answered = notices(talking)
    assert (got_through.event_id, got_through.dialstatus) == ("called_back:1.1", "GOTTHROUGH")
    assert (answered.event_id, answered.answered_by, answered.answered_name,
            answered.occurred_at) == ("answered:1.2", "102", "Анна Смирнова", 12.5)  # fmt: skip
    assert notices(replace(talking, ringing=())) == []  # answered once
    (ended,) = notices(replace(talking, state=ENDED, ended_at=163.5))
    assert (ended.event_id, ended.talk_seconds, ended.answered_by) == ("ended:1.2", 151.0, "102")
    outbound = replace(base, linkedid="1.3", caller_number="101", did="89161000001",
                       channel="PJSIP/101-5", context="from-internal")  # fmt: skip
    internal = replace(outbound, linkedid="1.4", did="102")
    assert notices(outbound) == [] and notices(internal) == []
    assert notices(replace(outbound, state=ENDED)) == []


def serve_settings(port: int, tmp_path: Path) -> Settings:
    """pbxgate serve following the fake manager at ``port``, its outbox in ``tmp_path``."""
    return Settings({
        "ami": {"enabled": True, "port": port, "username": "pbxgate", "secret": "right"},
        "notify": {"outbox": str(tmp_path / "outbox.sqlite3")},
    })  # fmt: skip


def test_serve_with_ami_queues_the_calls_events_without_any_dialplan(tmp_path: Path) -> None:
    from pbxgate.agi.runner import run_service
    from pbxgate.notify.outbox import Outbox

    hangup = b"Event: Hangup\r\nChannel: IAX2/trunk-4\r\nLinkedid: 1733.1\r\n"
    hangup += b"Cause-txt: Normal Clearing\r\n\r\n"

    async def main() -> None:
        manager = FakeManager()
        port = await manager.start()
        settings = serve_settings(port, tmp_path)
        stop = asyncio.Event()
        service = asyncio.create_task(
            run_service(settings, stop, listen=("127.0.0.1", 0), worker=None)
        )
        async with asyncio.timeout(20):
            while manager.logins < 1:
                await asyncio.sleep(0.02)
            await manager.push(NEWCHANNEL + hangup)
            box = Outbox.open(tmp_path / "outbox.sqlite3")
            while len(box.unplanned()) < 2:
                await asyncio.sleep(0.02)
        stop.set()
        await service
        events = box.unplanned()
        box.close()
        assert [(e.event_id, e.caller_number, e.did) for e in events] == [
            ("incoming:1733.1", "84991111111", "4996491913"),
            ("missed:1733.1", "84991111111", "4996491913"),
        ]
        await manager.close()

    asyncio.run(main())


# -- found in review ------------------------------------------------------------------------------


def test_a_call_that_ends_while_disconnected_ends_and_is_not_called_missed() -> None:
    from pbxgate.ami.calls import UNKNOWN_END
    from pbxgate.ami.notices import CallNotices
    from pbxgate.cdr.numbers import InternalRule

    changes: list[CallState] = []
    tracker = CallTracker(changes.append, clock=lambda: 1.0)
    tracker.handle(msg(Event="Newchannel", Channel="IAX2/trunk-1", Uniqueid="4.1", Linkedid="4.1",
                       CallerIDNum="84991111111", Exten="600", Context="from-trunk"))  # fmt: skip
    tracker.handle(msg(Event="Newchannel", Channel="PJSIP/101-2", Uniqueid="4.2", Linkedid="4.1"))
    tracker.handle(msg(Event="DialBegin", Channel="IAX2/trunk-1", DestChannel="PJSIP/101-2",
                       DestLinkedid="4.1", DestCallerIDNum="101"))  # fmt: skip
    # disconnected: the phone's Hangup is lost; after the catch-up only the trunk is left
    tracker.resync([msg(Event="CoreShowChannel", Channel="IAX2/trunk-1", Linkedid="4.1",
                        Uniqueid="4.1", ChannelStateDesc="Ring")])  # fmt: skip
    assert changes[-1].ringing == ()
    tracker.handle(msg(Event="Hangup", Channel="IAX2/trunk-1", Linkedid="4.1"))
    assert changes[-1].state == ENDED and tracker.live() == []
    notices = CallNotices(InternalRule())
    assert [e.kind for e in notices(changes[-1])] == ["incoming", "missed"]  # the end was seen
    # a call wholly gone during the gap ends too, but nobody can say it was missed
    tracker.handle(msg(Event="Newchannel", Channel="IAX2/trunk-9", Uniqueid="5.1", Linkedid="5.1",
                       CallerIDNum="84991111111", Exten="600", Context="from-trunk"))  # fmt: skip
    tracker.resync([])
    assert (changes[-1].state, changes[-1].cause) == (ENDED, UNKNOWN_END)
    assert [e.kind for e in notices(changes[-1])] == ["incoming"]  # neither missed nor ended


class Following:
    """A call tracker following a :class:`FakeManager`: its changes, a dropped connection
    caught up again, and the end."""

    def __init__(self) -> None:
        self.manager = FakeManager()
        self.changes: list[CallState] = []
        self.tracker = CallTracker(self.changes.append)
        self._stop = asyncio.Event()
        self._caught_up = asyncio.Event()

    async def start(self) -> None:
        port = await self.manager.start()
        self._task = asyncio.create_task(self.tracker.follow(
            lambda: AmiClient("127.0.0.1", port, "pbxgate", "right"), self._stop,
            caught_up=self._caught_up.set, first_delay=0.05,
        ))  # fmt: skip
        await asyncio.wait_for(self._caught_up.wait(), 5)

    async def reconnect(self) -> None:
        """The connection drops; once the tracker has caught up again."""
        self._caught_up.clear()
        self.manager.drop()
        await asyncio.wait_for(self._caught_up.wait(), 5)

    async def until(self, done: Callable[[list[CallState]], bool]) -> None:
        """Once ``done`` holds for the changes so far (at most 5 s: a test that fails)."""
        async with asyncio.timeout(5):
            while not done(self.changes):
                await asyncio.sleep(0.01)

    async def stop(self) -> list[CallState]:
        self._stop.set()
        await asyncio.wait_for(self._task, 5)
        await self.manager.close()
        return self.changes


def block(**fields: str) -> bytes:
    return ("".join(f"{k.replace('_', '-')}: {v}\r\n" for k, v in fields.items()) + "\r\n").encode()


def test_a_call_that_ends_while_the_catch_up_is_asked_for_ends_as_it_did() -> None:
    """Events that come before the catch-up's list are older than it: a call whose last
    Hangup falls between the login and the list ends with its cause (and is told missed), not
    as ended unseen; one that ends as Asterisk takes the list up (its Hangup written after the
    list, before the answer to the next action), too."""
    from pbxgate.ami.calls import UNKNOWN_END
    from pbxgate.ami.notices import CallNotices
    from pbxgate.cdr.numbers import InternalRule

    async def main() -> list[CallState]:
        following = Following()
        manager = following.manager
        await following.start()
        for n, linkedid in enumerate(("7.1", "8.1")):
            await manager.push(block(Event="Newchannel", Channel=f"IAX2/trunk-{n}",
                                     Uniqueid=linkedid, Linkedid=linkedid,
                                     CallerIDNum=f"8499111111{n}", Exten="600",
                                     Context="from-trunk"))  # fmt: skip
        while len(following.tracker.live()) < 2:
            await asyncio.sleep(0.01)
        # the connection drops; the calls' ends come between the next login and the list
        manager.before["CoreShowChannels"] = block(
            Event="Hangup", Channel="IAX2/trunk-0", Linkedid="7.1", Cause_txt="User busy"
        )
        manager.before["Ping"] = block(
            Event="Hangup", Channel="IAX2/trunk-1", Linkedid="8.1", Cause_txt="Normal Clearing"
        )
        await following.reconnect()
        with contextlib.suppress(TimeoutError):  # both ended, however: the asserts say how
            await following.until(lambda changes: sum(c.state == ENDED for c in changes) == 2)
        return await following.stop()

    changes = asyncio.run(main())
    ends = {c.linkedid: c for c in changes if c.state == ENDED}
    assert {k: c.cause for k, c in ends.items()} == {"7.1": "User busy", "8.1": "Normal Clearing"}
    assert UNKNOWN_END not in [c.cause for c in changes]
    assert [e.kind for e in CallNotices(InternalRule())(ends["7.1"])] == ["incoming", "missed"]


def test_what_the_events_before_the_catch_up_s_list_tell_is_kept() -> None:
    """An attended transfer seen between the login and the list, into a bridge nobody is in
    yet, still names the phone that enters that bridge after the catch-up: the list rebuilds
    the bridges and transfers it knows, and must not undo the events older than it."""
    trunk = "IAX2/trunk-1"

    async def main() -> list[CallState]:
        following = Following()
        manager, changes = following.manager, following.changes
        await following.start()
        for channel, uniqueid, number in ((trunk, "1.1", "84991000021"),
                                          ("PJSIP/102-5", "1.2", "102")):  # fmt: skip
            await manager.push(block(Event="Newchannel", Channel=channel, Uniqueid=uniqueid,
                                     Linkedid="1.1", Exten="600", Context="from-trunk",
                                     CallerIDNum=number))  # fmt: skip
        await manager.push(block(Event="DialEnd", Channel=trunk, DestChannel="PJSIP/102-5",
                                 DestLinkedid="1.1", DestCallerIDNum="102",
                                 DialStatus="ANSWER"))  # fmt: skip
        while not changes or changes[-1].state != TALKING:
            await asyncio.sleep(0.01)
        # 102 transfers the caller to a consultation call whose bridge nobody is in yet
        manager.channels = [{"Channel": trunk, "Uniqueid": "1.1", "Linkedid": "1.1"}]
        manager.before["CoreShowChannels"] = block(
            Event="AttendedTransfer", Result="Success", DestType="Bridge",
            DestBridgeUniqueid="b-9", TransfereeChannel=trunk, TransfereeLinkedid="1.1",
            OrigTransfererChannel="PJSIP/102-5", OrigTransfererLinkedid="1.1",
        )  # fmt: skip
        await following.reconnect()
        await manager.push(block(Event="BridgeEnter", BridgeUniqueid="b-9",
                                 Channel="PJSIP/103-6", CallerIDNum="103"))  # fmt: skip
        await manager.push(block(Event="BridgeEnter", BridgeUniqueid="b-9", Channel=trunk,
                                 CallerIDNum="84991000021"))  # fmt: skip
        with contextlib.suppress(TimeoutError):  # the transfer told, or not: the asserts say
            await following.until(lambda changes: changes[-1].talking_to != "102")
        return await following.stop()

    last = asyncio.run(main())[-1]
    assert (last.answered_by, last.talking_to, last.transfers) == ("102", "103", 1)


def test_a_queue_member_who_answered_but_was_never_put_through_did_not_answer() -> None:
    """app_queue.c publishes ANSWER when a member picks up, before the announcement; if the
    caller hangs up meanwhile (ABANDON) or the member is gone (AGENTDUMP), a second DialEnd of
    the same member says NOANSWER. The call was missed, not answered and ended."""
    from pbxgate.ami.notices import CallNotices
    from pbxgate.cdr.numbers import InternalRule

    now = [0.0]
    changes: list[CallState] = []
    tracker = CallTracker(changes.append, clock=lambda: now[0])
    notices = CallNotices(InternalRule(), clock=lambda: now[0])
    told: list[tuple[str, str, str]] = []
    trunk, member = "IAX2/trunk-1", "IAX2/101-5"

    def handle(**headers: str) -> None:
        tracker.handle(msg(**headers))
        told.extend((e.kind, e.answered_by, e.dialstatus) for e in notices(changes[-1]))

    handle(Event="Newchannel", Channel=trunk, CallerIDNum="84991000021", Exten="74951110700",
           Context="from-trunk", Uniqueid="1.1", Linkedid="1.1")  # fmt: skip
    handle(Event="Newchannel", Channel=member, Uniqueid="1.2", Linkedid="1.1")
    handle(Event="DialBegin", Channel=trunk, Linkedid="1.1", DestChannel=member,
           DestLinkedid="1.1", DestCallerIDNum="101")  # fmt: skip
    now[0] = 5.0
    handle(Event="DialEnd", Channel=trunk, Linkedid="1.1", DestChannel=member,
           DestLinkedid="1.1", DialStatus="ANSWER")  # fmt: skip
    assert changes[-1].state == TALKING and changes[-1].answered_by == "101"
    now[0] = 7.0  # the caller hangs up during the member's announcement
    handle(Event="DialEnd", Channel=trunk, Linkedid="1.1", DestChannel=member,
           DestLinkedid="1.1", DialStatus="NOANSWER")  # fmt: skip
    assert (changes[-1].state, changes[-1].answered_by, changes[-1].answered_at) == (RINGING, "", 0)
    for channel in (member, trunk):
        handle(Event="Hangup", Channel=channel, Linkedid="1.1", **{"Cause-txt": "Normal Clearing"})
    assert told == [("incoming", "", ""), ("answered", "101", "ANSWER"), ("missed", "", "NOANSWER")]


def test_a_queue_s_local_member_who_was_never_put_through_did_not_answer() -> None:
    """FreePBX's queue members are Local channels: the member's own dial answers first (the
    ;2 half's DialEnd), then app_queue's DialEnd names the ;1 half, ANSWER, and its second one
    NOANSWER when the caller hung up during the announcement."""
    changes: list[CallState] = []
    tracker = CallTracker(changes.append, clock=lambda: 1.0)
    trunk, hop1, phone = "PJSIP/trunk-1", "Local/102@from-queue-00000002;1", "PJSIP/102-4"
    hop2 = hop1[:-1] + "2"
    tracker.handle(msg(Event="Newchannel", Channel=trunk, Uniqueid="1.1", Linkedid="1.1",
                       CallerIDNum="84991111111", Exten="700", Context="from-trunk"))  # fmt: skip
    for channel, uniqueid in ((hop1, "1.2"), (hop2, "1.3"), (phone, "1.4")):
        tracker.handle(msg(Event="Newchannel", Channel=channel, Uniqueid=uniqueid, Linkedid="1.1"))
    tracker.handle(msg(Event="DialBegin", Channel=trunk, DestChannel=hop1, DestLinkedid="1.1"))
    tracker.handle(msg(Event="DialBegin", Channel=hop2, DestChannel=phone, DestLinkedid="1.1",
                       DestCallerIDNum="102"))  # fmt: skip
    tracker.handle(msg(Event="DialEnd", Channel=hop2, DestChannel=phone, DestLinkedid="1.1",
                       DestCallerIDNum="102", DialStatus="ANSWER"))  # fmt: skip
    tracker.handle(msg(Event="DialEnd", Channel=trunk, DestChannel=hop1, DestLinkedid="1.1",
                       DialStatus="ANSWER"))  # fmt: skip
    assert (changes[-1].state, changes[-1].answered_by) == (TALKING, "102")
    tracker.handle(msg(Event="DialEnd", Channel=trunk, DestChannel=hop1, DestLinkedid="1.1",
                       DialStatus="NOANSWER"))  # fmt: skip
    assert (changes[-1].state, changes[-1].answered_by, changes[-1].answered_at) == (RINGING, "", 0)


def test_a_local_hop_the_dialplan_answered_is_no_phone() -> None:
    """Dial(Local/101@office): its second half dials PJSIP/101, nobody answers, and it goes on
    to VoiceMail(101), which answers the hop. Nobody talked with phone 101."""
    changes: list[CallState] = []
    tracker = CallTracker(changes.append, clock=lambda: 1.0)
    trunk, hop1, hop2 = "IAX2/trunk-1", "Local/101@office-00000000;1", "Local/101@office-00000000;2"
    for channel, uniqueid in ((trunk, "1.1"), (hop1, "1.2"), (hop2, "1.3"), ("PJSIP/101-7", "1.4")):
        tracker.handle(msg(Event="Newchannel", Channel=channel, Uniqueid=uniqueid, Linkedid="1.1",
                           CallerIDNum="84991000021" if channel == trunk else "",
                           Exten="4996491913", Context="from-trunk"))  # fmt: skip
    tracker.handle(msg(Event="DialBegin", Channel=trunk, DestChannel=hop1, DestLinkedid="1.1"))
    tracker.handle(msg(Event="DialBegin", Channel=hop2, DestChannel="PJSIP/101-7",
                       DestLinkedid="1.1", DestCallerIDNum="101"))  # fmt: skip
    tracker.handle(msg(Event="DialEnd", Channel=hop2, DestChannel="PJSIP/101-7",
                       DestLinkedid="1.1", DialStatus="NOANSWER"))  # fmt: skip
    tracker.handle(msg(Event="Hangup", Channel="PJSIP/101-7", Linkedid="1.1"))
    tracker.handle(msg(Event="DialEnd", Channel=trunk, DestChannel=hop1, DestLinkedid="1.1",
                       DialStatus="ANSWER"))  # fmt: skip
    answered = changes[-1]
    assert (answered.state, answered.answered_by, answered.talking_to) == (TALKING, "", "")
    assert answered.answered_at == 1.0  # answered all the same: by the PBX


def test_a_bridged_call_without_a_phone_name_is_not_missed() -> None:
    from pbxgate.ami.notices import CallNotices
    from pbxgate.cdr.numbers import InternalRule

    changes: list[CallState] = []
    tracker = CallTracker(changes.append, clock=lambda: 2.0)
    tracker.handle(msg(Event="Newchannel", Channel="IAX2/trunk-1", Uniqueid="6.1", Linkedid="6.1",
                       CallerIDNum="84991111111", Exten="600", Context="from-trunk"))  # fmt: skip
    tracker.handle(msg(Event="DialEnd", Channel="IAX2/trunk-1", DestChannel="PJSIP/reception-3",
                       DestLinkedid="6.1", DialStatus="ANSWER"))  # fmt: skip
    tracker.handle(msg(Event="Hangup", Channel="IAX2/trunk-1", Linkedid="6.1"))
    assert changes[-1].state == ENDED and changes[-1].answered_at == 2.0
    assert [e.kind for e in CallNotices(InternalRule())(changes[-1])] == ["incoming", "ended"]


def test_follow_outlives_a_list_that_never_ends_and_a_failing_handler(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from pbxgate.errors import DeliveryError

    async def main() -> None:
        manager = FakeManager()
        port = await manager.start()
        stop = asyncio.Event()
        attempts: list[int] = []

        async def stuck(client: AmiClient, _: Earlier) -> None:
            attempts.append(1)
            if len(attempts) == 1:  # the first catch-up never ends
                await client.list_action("CoreShowChannels", Never="1")

        def failing(message: Message) -> None:
            raise DeliveryError("outbox: database is locked")

        task = asyncio.create_task(follow(
            lambda: AmiClient("127.0.0.1", port, "pbxgate", "right", timeout=0.3),
            failing, stop, on_connect=stuck, first_delay=0.05,
        ))  # fmt: skip
        while len(attempts) < 2:
            await asyncio.sleep(0.02)
        await manager.push(NEWCHANNEL)
        while manager.logins < 3:
            await asyncio.sleep(0.02)
        stop.set()
        await asyncio.wait_for(task, 5)
        await manager.close()

    with caplog.at_level(logging.INFO, logger="pbxgate.ami.client"):
        asyncio.run(main())
    assert "CoreShowChannels: the list did not end in 0 s; again in 0 s" in caplog.text
    assert "outbox: database is locked" in caplog.text


def test_serve_stops_at_once_however_early_the_stop_comes(tmp_path: Path) -> None:
    from pbxgate.agi.runner import run_service

    async def main() -> None:
        manager = FakeManager()
        port = await manager.start()
        settings = serve_settings(port, tmp_path)
        for _ in range(10):
            stop = asyncio.Event()
            stop.set()
            await asyncio.wait_for(run_service(settings, stop, listen=("127.0.0.1", 0)), 20)
        await manager.close()

    asyncio.run(main())


def test_a_missed_call_called_back_or_got_through_later_is_told() -> None:
    from pbxgate.ami.notices import CallNotices
    from pbxgate.cdr.numbers import InternalRule

    notices = CallNotices(InternalRule(), callback_hours=1)
    missed = CallState(linkedid="7.1", caller_number="84991000015", caller_name="", did="600",
                       context="from-trunk", channel="IAX2/trunk-1", state=ENDED,
                       started_at=100.0, ended_at=110.0)  # fmt: skip
    assert [e.kind for e in notices(missed)] == ["incoming", "missed"]
    out = CallState(linkedid="7.2", caller_number="101", caller_name="Анна", did="84991000015",
                    context="from-internal", channel="IAX2/101-3", state=RINGING,
                    started_at=200.0)  # fmt: skip
    assert notices(out) == []  # ringing: not yet called back
    (back,) = notices(replace(out, state=TALKING, answered_at=205.0, answered_by="84991000015"))
    assert (back.event_id, back.call_id, back.dialstatus, back.answered_by,
            back.answered_name, back.occurred_at) == (
        "called_back:7.1", "7.1", "CALLBACK", "101", "Анна", 205.0)  # fmt: skip
    assert notices(replace(out, state=ENDED, answered_at=205.0, ended_at=230.0)) == []  # once
    # the caller's own next call, answered: got through; +7 and 8 forms are the same number
    notices(replace(missed, linkedid="8.1", caller_number="+74991000015"))
    again = replace(missed, linkedid="8.2", state=TALKING, answered_at=300.0,
                    answered_by="102", ended_at=0.0)  # fmt: skip
    kinds = [(e.kind, e.call_id, e.dialstatus) for e in notices(again)]
    assert kinds == [("called_back", "8.1", "GOTTHROUGH"), ("incoming", "8.2", ""),
                     ("answered", "8.2", "ANSWER")]  # fmt: skip
    # past callback_hours, or an unanswered attempt: nothing
    notices(replace(missed, linkedid="9.1", caller_number="84990000001"))
    late = replace(out, linkedid="9.2", did="84990000001", state=TALKING, answered_at=4000.0)
    assert notices(late) == []


def test_a_recorded_call_is_known_by_mixmonitor_start() -> None:
    changes: list[CallState] = []
    tracker = CallTracker(changes.append, clock=lambda: 1.0)
    tracker.handle(msg(Event="Newchannel", Channel="IAX2/trunk-1", Uniqueid="3.1", Linkedid="3.1",
                       CallerIDNum="84991000014", Exten="600"))  # fmt: skip
    assert changes[-1].recorded is False
    tracker.handle(msg(Event="MixMonitorStart", Channel="IAX2/trunk-1", Linkedid="3.1"))
    assert changes[-1].recorded is True
    tracker.handle(msg(Event="MixMonitorStart", Channel="IAX2/other-9", Linkedid="9.9"))  # unknown
    assert len(changes) == 2


def test_every_missed_call_of_a_number_is_resolved_by_one_call_back() -> None:
    from pbxgate.ami.notices import CallNotices
    from pbxgate.cdr.numbers import InternalRule

    notices = CallNotices(InternalRule())
    missed = CallState(linkedid="7.1", caller_number="84991000015", caller_name="", did="600",
                       context="from-trunk", channel="IAX2/trunk-1", state=ENDED,
                       started_at=100.0, ended_at=110.0)  # fmt: skip
    notices(missed)
    notices(replace(missed, linkedid="7.5", started_at=200.0, ended_at=210.0))
    back = CallState(linkedid="7.9", caller_number="101", caller_name="", did="84991000015",
                     context="from-internal", channel="IAX2/101-3", state=TALKING,
                     started_at=300.0, answered_at=305.0)  # fmt: skip
    assert [e.event_id for e in notices(back)] == ["called_back:7.1", "called_back:7.5"]
    assert notices(replace(back, linkedid="7.10")) == []  # resolved already


def test_a_restart_remembers_the_missed_calls_waiting_for_a_call_back(tmp_path: Path) -> None:
    """The missed calls are read back from the outbox when the service starts: a call-back
    after a restart is told, once, and only for calls no call-back resolved before it."""
    from pbxgate.ami.notices import CallNotices
    from pbxgate.cdr.numbers import InternalRule
    from pbxgate.notify.outbox import Outbox

    outbox = Outbox.open(tmp_path / "outbox.sqlite3")
    before = CallNotices(InternalRule(), pbx="office", callback_hours=1)
    missed = CallState(linkedid="7.1", caller_number="84991000015", caller_name="", did="600",
                       context="from-trunk", channel="IAX2/trunk-1", state=ENDED,
                       started_at=100.0, ended_at=110.0)  # fmt: skip
    for state in (
        missed,
        replace(missed, linkedid="7.2", caller_number="84991000016"),  # called back before
        replace(missed, linkedid="7.3", caller_number="84991000017", ended_at=-4000.0),  # old
    ):
        outbox.enqueue_many(before(state))
    back = CallState(linkedid="7.4", caller_number="101", caller_name="", did="84991000016",
                     context="from-internal", channel="IAX2/101-3", state=TALKING,
                     started_at=150.0, answered_at=155.0)  # fmt: skip
    (told,) = before(back)
    outbox.enqueue_many([told])
    other = CallNotices(InternalRule(), pbx="branch", callback_hours=1)  # another PBX's outbox
    outbox.enqueue_many(other(replace(missed, linkedid="9.1", caller_number="84991000018")))

    after = CallNotices(InternalRule(), pbx="office", callback_hours=1)
    since = 200.0 - 3600
    assert after.remember(outbox.events_since(("missed", "called_back"), since), now=200.0) == 1
    calls = {n: replace(back, linkedid=f"8.{n[-1]}", did=n, answered_at=250.0)
             for n in ("84991000015", "84991000016", "84991000017", "84991000018")}  # fmt: skip
    assert [e.event_id for e in after(calls["84991000015"])] == ["called_back:office/7.1"]
    assert after(calls["84991000015"]) == []  # once
    for number in ("84991000016", "84991000017", "84991000018"):
        assert after(calls[number]) == [], number
    outbox.close()


def test_a_restart_keeps_counting_the_transfers_of_a_call_in_progress(tmp_path: Path) -> None:
    """The manager tells a restarted service only who talks now: the transfers queued before
    are read back, so the next transfer is a new state of the message and the call ends with
    all of them counted."""
    from pbxgate.ami.notices import CallNotices
    from pbxgate.cdr.numbers import InternalRule
    from pbxgate.notify.outbox import Outbox

    outbox = Outbox.open(tmp_path / "outbox.sqlite3")
    call = CallState(linkedid="7.1", caller_number="84991000015", caller_name="", did="600",
                     context="from-trunk", channel="IAX2/trunk-1", state=TALKING,
                     started_at=100.0, answered_at=105.0, answered_by="101")  # fmt: skip
    before = CallNotices(InternalRule(), clock=lambda: 150.0)
    outbox.enqueue_many(before(call))
    moved = replace(call, talking_to="102", transfers=1)
    (transfer,) = before(moved)
    assert transfer.event_id == "answered:7.1#1"
    outbox.enqueue_many([transfer])
    ended_earlier = replace(call, linkedid="7.2", transfers=3, talking_to="103")
    outbox.enqueue_many(before(ended_earlier))
    outbox.enqueue_many(before(replace(ended_earlier, state=ENDED, ended_at=160.0)))

    after = CallNotices(InternalRule(), clock=lambda: 250.0)
    after.remember(outbox.events_since(("answered", "ended", "missed"), 0.0), now=200.0)
    resynced = replace(call, answered_by="102")  # who talks now; no transfer seen yet
    assert outbox.enqueue_many(after(resynced)) == [False, False]  # told before the restart
    again = replace(resynced, talking_to="103", transfers=1)
    (third,) = after(again)
    assert (third.event_id, third.answered_by, third.transfers) == ("answered:7.1#2", "103", 2)
    (end,) = after(replace(again, state=ENDED, ended_at=300.0))
    assert (end.kind, end.answered_by, end.transfers) == ("ended", "103", 2)
    # a call that had ended keeps nothing: the same linkedid again is a new call
    fresh = after(replace(ended_earlier, transfers=0, talking_to=""))
    assert [e.event_id for e in fresh] == ["incoming:7.2", "answered:7.2"]
    outbox.close()


def _answered_call(tracker: CallTracker, linkedid: str, phone: str) -> str:
    """An inbound call on a trunk channel, answered by ``phone``; returns the trunk channel."""
    trunk = f"IAX2/trunk-{linkedid}"
    tracker.handle(msg(Event="Newchannel", Channel=trunk, Uniqueid=linkedid, Linkedid=linkedid,
                       CallerIDNum="84991000012", Exten="74951110101",
                       Context="from-trunk"))  # fmt: skip
    dest = f"IAX2/{phone}-{linkedid}"
    tracker.handle(msg(Event="Newchannel", Channel=dest, Uniqueid=f"{linkedid}1",
                       Linkedid=linkedid))  # fmt: skip
    tracker.handle(msg(Event="DialBegin", Channel=trunk, DestChannel=dest, Linkedid=linkedid,
                       DestLinkedid=linkedid, DestCallerIDNum=phone))  # fmt: skip
    tracker.handle(msg(Event="DialEnd", Channel=trunk, DestChannel=dest, Linkedid=linkedid,
                       DestLinkedid=linkedid, DestCallerIDNum=phone,
                       DestCallerIDName="Анна Смирнова", DialStatus="ANSWER"))  # fmt: skip
    return trunk


def test_a_blind_transfer_makes_the_target_the_phone_the_caller_talks_with() -> None:
    changes: list[CallState] = []
    tracker = CallTracker(changes.append, clock=lambda: 1.0)
    trunk = _answered_call(tracker, "5.1", "101")
    assert (changes[-1].answered_by, changes[-1].talking_to, changes[-1].transfers) == (
        "101", "101", 0)  # fmt: skip
    # a dial that is not after a transfer (a Local hop's inner leg) changes nothing
    tracker.handle(msg(Event="DialEnd", Channel=trunk, DestChannel="Local/101@from-queue-1;1",
                       Linkedid="5.1", DialStatus="ANSWER"))  # fmt: skip
    assert changes[-1].talking_to == "101"
    tracker.handle(msg(Event="BlindTransfer", Result="Fail", TransfereeChannel=trunk,
                       TransfereeLinkedid="5.1", Extension="102"))  # fmt: skip
    tracker.handle(msg(Event="BlindTransfer", Result="Success", TransfereeChannel=trunk,
                       TransfereeLinkedid="5.1", Extension="102",
                       Context="from-internal"))  # fmt: skip
    tracker.handle(msg(Event="DialBegin", Channel=trunk, DestChannel="IAX2/102-9",
                       Linkedid="5.1", DestCallerIDNum="102"))  # fmt: skip
    tracker.handle(msg(Event="DialEnd", Channel=trunk, DestChannel="IAX2/102-9", Linkedid="5.1",
                       DestCallerIDNum="102", DestCallerIDName="Борис Петров",
                       DialStatus="ANSWER"))  # fmt: skip
    last = changes[-1]
    assert (last.answered_by, last.talking_to, last.talking_name, last.transfers) == (
        "101", "102", "Борис Петров", 1)  # fmt: skip


def test_an_attended_transfer_names_the_consultation_call_s_phone() -> None:
    from pbxgate.ami.notices import CallNotices
    from pbxgate.cdr.numbers import InternalRule

    changes: list[CallState] = []
    now = [10.0]
    tracker = CallTracker(changes.append, clock=lambda: now[0])
    trunk = _answered_call(tracker, "6.1", "101")
    tracker.handle(msg(Event="AttendedTransfer", Result="Success",
                       OrigTransfererChannel="IAX2/101-6.1", TransfereeChannel=trunk,
                       TransfereeLinkedid="6.1", TransferTargetChannel="IAX2/102-77",
                       TransferTargetLinkedid="6.9", TransferTargetCallerIDNum="102",
                       TransferTargetCallerIDName="<unknown>"))  # fmt: skip
    assert (changes[-1].talking_to, changes[-1].talking_name, changes[-1].transfers) == (
        "102", "", 1)  # fmt: skip
    now[0] = 70.0
    for channel in ("IAX2/101-6.1", trunk):
        tracker.handle(msg(Event="Hangup", Channel=channel, Linkedid="6.1",
                           **{"Cause-txt": "Normal Clearing"}))  # fmt: skip
    notices = CallNotices(InternalRule())
    events = [e for state in changes for e in notices(state)]
    ended = events[-1]
    assert (ended.kind, ended.answered_by, ended.transfers, ended.talk_seconds) == (
        "ended", "102", 1, 60.0)  # fmt: skip


def test_the_ended_text_says_after_a_transfer() -> None:
    from pbxgate.notify.events import CallEvent
    from pbxgate.notify.templates import Renderer

    event = CallEvent(kind="ended", uniqueid="1", linkedid="1", caller_number="84991000012",
                      caller_name="", did="", channel="", context="", extension="",
                      occurred_at=0.0, answered_by="102", answered_name="Борис Петров",
                      talk_seconds=151, transfers=1, recorded=True)  # fmt: skip
    text = Renderer().render(event).text
    assert text.splitlines()[0] == (
        "84991000012 — разговор 2:31 с Борис Петров (102), после перевода, запись"
    )
    assert CallEvent.from_json(event.to_json()) == event


TRANSCRIPTS = Path(__file__).parent / "transcripts"


def test_transfers_as_a_real_asterisk_22_tells_them() -> None:
    """The manager's events of three of the test office's calls on Asterisk 22.10.1 (the
    noise left out): a blind transfer 101 -> 102, an attended one (101 consults 102 over a
    Local channel, then hangs up: Asterisk's AttendedTransfer then names no TransferTarget,
    only the bridge the caller is in), and a queue's agent 101 blind-transferring the caller
    to 103. Each call ends with the caller talking to the target, after one transfer."""
    from pbxgate.ami.notices import CallNotices
    from pbxgate.cdr.numbers import InternalRule

    changes: list[CallState] = []
    tracker = CallTracker(changes.append, clock=lambda: 1.0)
    lines = (TRANSCRIPTS / "asterisk22_transfers.jsonl").read_text(encoding="utf-8").splitlines()
    for line in lines:
        tracker.handle(msg(**json.loads(line)))
    ended = {s.caller_number: s for s in changes if s.state == ENDED}
    got = {n: (s.answered_by, s.talking_to, s.transfers) for n, s in ended.items()}
    assert got == {
        "84991000012": ("101", "102", 1),
        "84991000013": ("101", "102", 1),
        "84991000021": ("101", "103", 1),
    }
    assert tracker.calls == {} and tracker._bridges == {} and tracker._watched == {}
    notices = CallNotices(InternalRule(), clock=lambda: 2.0)
    events = [e for state in changes for e in notices(state)]
    moved = sorted((e.caller_number, e.answered_by, e.event_id.endswith("#1"))
                   for e in events if e.kind == "answered" and e.transfers)  # fmt: skip
    assert moved == [("84991000012", "102", True), ("84991000013", "102", True),
                     ("84991000021", "103", True)]  # fmt: skip
    finals = [e for e in events if e.kind == "ended"]
    assert sorted((e.caller_number, e.answered_by, e.transfers) for e in finals) == [
        ("84991000012", "102", 1), ("84991000013", "102", 1), ("84991000021", "103", 1)
    ]  # fmt: skip


def test_one_serve_follows_several_managers(tmp_path: Path) -> None:
    """[ami] and [ami.managers.branch]: both PBXes' calls are queued under their own names,
    also when their linkedids are the same, and each PBX streams its live calls apart."""
    from pbxgate.agi.runner import run_service
    from pbxgate.ami.live import read_socket
    from pbxgate.notify.outbox import Outbox

    hangup = b"Event: Hangup\r\nChannel: IAX2/trunk-4\r\nLinkedid: 1733.1\r\n"
    hangup += b"Cause-txt: Normal Clearing\r\n\r\n"

    async def main() -> None:
        office, branch = FakeManager(), FakeManager()
        ports = [await office.start(), await branch.start()]
        settings = Settings({
            "ami": {"enabled": True, "port": ports[0], "username": "pbxgate",
                    "secret": "right", "pbx": "office",
                    "managers": {"branch": {"port": ports[1], "username": "pbxgate",
                                            "secret": "right"}}},
            "notify": {"outbox": str(tmp_path / "outbox.sqlite3")},
        })  # fmt: skip
        stop = asyncio.Event()
        service = asyncio.create_task(
            run_service(settings, stop, listen=("127.0.0.1", 0), worker=None)
        )
        async with asyncio.timeout(20):
            while office.logins < 1 or branch.logins < 1:
                await asyncio.sleep(0.02)
            await branch.push(NEWCHANNEL)
            sockets = tmp_path / "data" / "pbxgate"
            calls: list[dict[str, str]] = []
            while not calls:  # until the branch's call has reached its hub
                await asyncio.sleep(0.02)
                with contextlib.suppress(OSError):
                    stream = read_socket(sockets / "live-branch.sock")
                    calls = (await anext(stream))["calls"]
                    await stream.aclose()
            assert [c["caller_number"] for c in calls] == ["84991111111"]
            stream = read_socket(sockets / "live-office.sock")
            assert (await anext(stream))["calls"] == []
            await stream.aclose()
            await office.push(NEWCHANNEL + hangup)
            await branch.push(hangup)
            box = Outbox.open(tmp_path / "outbox.sqlite3")
            while len(box.unplanned()) < 4:
                await asyncio.sleep(0.02)
        stop.set()
        await service
        events = sorted(e.event_id for e in box.unplanned())
        box.close()
        assert events == ["incoming:branch/1733.1", "incoming:office/1733.1",
                          "missed:branch/1733.1", "missed:office/1733.1"]  # fmt: skip
        await office.close()
        await branch.close()

    asyncio.run(main())


def test_several_managers_are_checked_before_anything_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from pbxgate.cli.main import main

    config = tmp_path / "pbxgate.toml"
    for body, message in (
        ('[ami.managers.branch]\nusername = "pbxgate"\n',
         "no AMI user configured in [ami.managers.branch]"),
        ('[ami]\nusername = "u"\nsecret = "s"\npbx = "branch"\n[ami.managers.branch]\n'
         'username = "pbxgate"\nsecret = "s"\n', "two AMI managers are both PBX 'branch'"),
        ('[ami]\nusername = "u"\nsecret = "s"\npbx = "office"\n[ami.managers.branch]\n'
         'username = "pbxgate"\nsecret = "s"\n', "several AMI managers (office, branch)"),
    ):  # fmt: skip
        config.write_text("[ami]\nenabled = true\n" + body if not body.startswith("[ami]\n")
                          else body.replace("[ami]\n", "[ami]\nenabled = true\n", 1),
                          encoding="utf-8")  # fmt: skip
        command = ["ami", "watch"] if "several" in message else ["serve"]
        assert main(["--config", str(config), *command]) != 0
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err
    # --pbx picks one; an unknown one is named
    assert main(["--config", str(config), "ami", "live", "--pbx", "nowhere"]) != 0
    assert "no AMI manager of PBX 'nowhere'" in capsys.readouterr().err
    assert main(["--config", str(config), "ami", "live", "--pbx", "branch"]) != 0
    assert "live-branch.sock" in capsys.readouterr().err  # no serve runs: no stream there


def _consult(tracker: CallTracker, trunk: str, linkedid: str, hop: str) -> None:
    """101 consults over a Local hop (as the atxfer feature dials), which enters the caller's
    bridge when 101 hangs up: Asterisk 22's AttendedTransfer then names only that bridge."""
    tracker.handle(msg(Event="BridgeEnter", BridgeUniqueid=f"B{linkedid}", Channel=trunk,
                       Linkedid=linkedid, CallerIDNum="84991000012"))  # fmt: skip
    for half in (";1", ";2"):
        tracker.handle(msg(Event="Newchannel", Channel=hop + half, Linkedid=linkedid))
    tracker.handle(msg(Event="BridgeEnter", BridgeUniqueid=f"B{linkedid}", Channel=hop + ";1",
                       Linkedid=linkedid, CallerIDNum="600"))  # fmt: skip
    tracker.handle(msg(Event="AttendedTransfer", Result="Success", DestType="Bridge",
                       DestBridgeUniqueid=f"B{linkedid}",
                       OrigTransfererChannel=f"IAX2/101-{linkedid}",
                       TransfereeChannel=trunk, TransfereeLinkedid=linkedid))  # fmt: skip


def test_review_cases_a_transfer_target_is_a_phone_that_answered() -> None:
    """A target still ringing when the transferer hangs up (a "blond" transfer) is nobody
    until it answers; a Local hop to a ring group is the phone that answered in it; a
    three-way call is no transfer; without a Transferee (the transferer went back to the
    caller first) the transferer's call is the one transferred."""
    changes: list[CallState] = []
    tracker = CallTracker(changes.append, clock=lambda: 1.0)
    trunk = _answered_call(tracker, "7.1", "101")
    _consult(tracker, trunk, "7.1", "Local/600@from-internal-00000001")
    assert (changes[-1].talking_to, changes[-1].transfers) == ("101", 0)  # still ringing
    tracker.handle(msg(Event="DialEnd", Channel="Local/600@from-internal-00000001;2",
                       DestChannel="IAX2/102-5", Linkedid="7.1", DestCallerIDNum="102",
                       DestCallerIDName="Борис Петров", DialStatus="ANSWER"))  # fmt: skip
    assert (changes[-1].talking_to, changes[-1].talking_name, changes[-1].transfers) == (
        "102", "Борис Петров", 1)  # fmt: skip

    trunk = _answered_call(tracker, "8.1", "101")
    _consult(tracker, trunk, "8.1", "Local/102@from-internal-00000002")
    for channel in ("Local/102@from-internal-00000002;1", "Local/102@from-internal-00000002;2",
                    trunk, "IAX2/101-8.1"):  # fmt: skip
        tracker.handle(msg(Event="Hangup", Channel=channel, Linkedid="8.1"))
    (ended,) = [s for s in changes if s.linkedid == "8.1" and s.state == ENDED]
    assert (ended.talking_to, ended.transfers) == ("101", 0)  # 102 never answered

    trunk = _answered_call(tracker, "9.1", "101")
    tracker.handle(msg(Event="AttendedTransfer", Result="Success", DestType="Threeway",
                       TransfereeChannel=trunk, TransfereeLinkedid="9.1",
                       TransferTargetChannel="IAX2/102-9",
                       TransferTargetCallerIDNum="102"))  # fmt: skip
    assert (changes[-1].linkedid, changes[-1].transfers) == ("9.1", 0)

    trunk = _answered_call(tracker, "10.1", "101")
    tracker.handle(msg(Event="BridgeEnter", BridgeUniqueid="B9", Channel=trunk, Linkedid="10.1"))
    tracker.handle(msg(Event="BridgeEnter", BridgeUniqueid="B9", Channel="IAX2/103-2",
                       Linkedid="10.1", CallerIDNum="103"))  # fmt: skip
    tracker.handle(msg(Event="AttendedTransfer", Result="Success", DestType="Bridge",
                       DestBridgeUniqueid="B9", OrigTransfererChannel="IAX2/101-10.1",
                       OrigTransfererLinkedid="10.1"))  # fmt: skip
    assert (changes[-1].linkedid, changes[-1].talking_to, changes[-1].transfers) == (
        "10.1", "103", 1)  # fmt: skip


def test_one_manager_is_chosen_and_checked_alone() -> None:
    from pbxgate.ami.settings import AmiSettings
    from pbxgate.errors import ConfigError

    ami = Settings({"ami": {"username": "u", "pbx": "office", "managers": {
        "b": {"username": "p", "secret": "s", "pbx": "branch"}}}}).get(AmiSettings)  # fmt: skip
    assert ami.manager("branch").pbx == "branch"  # [ami]'s secret is not needed for it
    with pytest.raises(ConfigError, match=r"^no AMI user configured in \[ami\] "):
        ami.manager("office")
    with pytest.raises(ConfigError, match=r"^no AMI user configured in \[ami\] "):
        ami.followed()
    assert [m.pbx for m in ami.followed(check=False)] == ["office", "branch"]
