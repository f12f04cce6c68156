"""Live calls from AMI events: who called, which phones ring, who answered, how it ended.

A call is the set of channels that share a ``Linkedid`` (the first channel's uniqueid). The
tracker follows ``Newchannel`` (a channel joins its call; the first one gives the caller and the
number dialled), ``DialBegin``/``DialEnd`` (the phones that ring, and the one that answered:
``DialStatus: ANSWER``, or ``Pickup`` by another phone), ``BridgeEnter`` (talking) and
``Hangup`` (the channel leaves; the last one ends the call, with its cause),
``MixMonitorStart`` (the call is recorded; Asterisk 16.17+), and transfers: after
``BlindTransfer`` the caller's channel dials the target, whose ``DialEnd`` answer makes it the
phone the caller talks with; ``AttendedTransfer`` names the target (``TransferTarget*``; its
channel belongs to the consultation call's linkedid) and the caller's call (``Transferee*``).
After a reconnection the events of the gap are lost: :meth:`CallTracker.resync` rebuilds the
table from ``CoreShowChannels``.

Each change gives a :class:`CallState` snapshot to the listener (the edits of a call's message
and the live view follow these).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from pbxgate.ami.client import AmiClient, AmiError, Earlier, follow
from pbxgate.ami.protocol import Message
from pbxgate.cdr.callrules import parse_channel

RINGING, TALKING, ENDED = "ringing", "talking", "ended"
# The cause of a call that ended while pbxgate was not connected: nobody knows how it ended.
UNKNOWN_END = "unknown: ended while the manager was not followed"


@dataclass(frozen=True)
class CallState:
    linkedid: str
    caller_number: str
    caller_name: str
    did: str  # the number dialled on the first channel (its Exten)
    context: str
    channel: str  # the first channel (the trunk's, for an inbound call)
    state: str  # ringing, talking, ended
    started_at: float
    ringing: tuple[str, ...] = ()  # the phones ringing now
    answered_by: str = ""  # the phone that answered (its extension)
    answered_name: str = ""  # that phone's caller ID name, when it has one
    answered_at: float = 0.0
    ended_at: float = 0.0
    cause: str = ""  # the hangup cause of the last channel ("Normal Clearing")
    dial_status: str = ""  # the last DialEnd's DialStatus other than ANSWER (NOANSWER, BUSY...)
    recorded: bool = False  # MixMonitor started on one of its channels (MixMonitorStart)
    # who the caller talks with now (after a transfer, the transfer's target), and how many
    # times the call was transferred
    talking_to: str = ""
    talking_name: str = ""
    transfers: int = 0


@dataclass
class _Call:
    state: CallState
    channels: set[str] = field(default_factory=set)
    ringing: dict[str, str] = field(default_factory=dict)  # dialled channel -> phone
    blind_transfer: bool = False  # blind-transferred: the next phone to answer is the target
    answered_channel: str = ""  # the dialled channel whose answer made the call answered
    answered_hop: str = ""  # the Local pair whose inner dial that was (a queue's Local member)


def phone_of(channel: str, fallback: str = "") -> str:
    """The extension a channel is of: PJSIP/102-00000004 -> 102, Local/101@from-queue-...;1 ->
    101 (``fallback`` for a trunk or an unknown name)."""
    parsed = parse_channel(channel)
    if parsed is None or not parsed.name:
        return fallback
    if parsed.tech == "Local" or parsed.name.isdigit():
        return parsed.name
    return fallback


class CallTracker:
    """Feed it events with :meth:`handle`; ``listener`` hears every change of a call."""

    def __init__(
        self,
        listener: Callable[[CallState], None] | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.listener = listener
        self.clock = clock
        self.calls: dict[str, _Call] = {}
        self._call_of: dict[str, str] = {}  # channel name -> linkedid
        # bridge -> its channels and their caller IDs (number, name): who the caller is with
        self._bridges: dict[str, dict[str, tuple[str, str]]] = {}
        self._watched: dict[str, str] = {}  # bridge an attended transfer ended in -> linkedid
        # a Local channel pair (its name without ;1/;2) -> the phone its ;2 half's dial
        # answered: a Local hop is that phone once it answered, and nobody before
        self._hop_answered: dict[str, tuple[str, str]] = {}

    def live(self) -> list[CallState]:
        return [c.state for c in self.calls.values()]

    async def follow(
        self,
        make: Callable[[], AmiClient],
        stop: asyncio.Event,
        *,
        caught_up: Callable[[], None] | None = None,
        **options: Any,
    ) -> None:
        """Follow a manager's events until ``stop`` (:func:`pbxgate.ami.client.follow`,
        ``options`` passed on), catching up with ``CoreShowChannels`` after every connection;
        ``caught_up`` runs after each catch-up."""

        async def catch_up(client: AmiClient, earlier: Earlier) -> None:
            try:
                channels = await client.list_action("CoreShowChannels")
            except AmiError as exc:
                if "Permission denied" not in str(exc):
                    raise
                # main/manager.c: CoreShowChannels needs the user's write = system or reporting
                raise AmiError(
                    "the manager user may not list the channels to catch up (CoreShowChannels:"
                    " Permission denied): give it write = reporting in manager.conf"
                ) from None
            # what follows the list's state is taken from the events from now on
            self._forget()
            # the events before the list's answer are older than it
            earlier()
            unseen = self._join(channels)
            # those that happened while Asterisk took the list up come before the answer to
            # the next action: a call the list lacks may have its Hangup among them, and ends
            # with its cause, not as ended unseen
            await client.action("Ping", mark=True)
            earlier()
            self._end_unseen(unseen)
            if caught_up is not None:
                caught_up()

        await follow(make, self.handle, stop, on_connect=catch_up, **options)

    def handle(self, message: Message) -> None:
        kind = message.event
        if kind == "Newchannel":
            self._new_channel(message)
        elif kind == "DialBegin":
            self._dial_begin(message)
        elif kind == "DialEnd":
            self._dial_end(message)
        elif kind == "BridgeEnter":
            self._bridged(message)
            self._entered(message)
        elif kind == "BridgeLeave":
            self._left(message)
        elif kind == "Pickup":
            self._picked_up(message)
        elif kind == "Hangup":
            self._hangup(message)
        elif kind == "BlindTransfer":
            self._blind_transfer(message)
        elif kind == "AttendedTransfer":
            self._attended_transfer(message)
        elif kind == "MixMonitorStart":
            call = self._call(message.get("Linkedid"), message.get("Channel"))
            if call is not None:
                self._change(call, recorded=True)

    def resync(self, channels: Iterable[Message]) -> None:
        """Rebuild from ``CoreShowChannels`` events (after a reconnection: the events of the
        gap are lost). Channels that went away leave their calls; a call with none left ends
        with :data:`UNKNOWN_END` (how it ended was not seen); channels not known yet join
        their calls. A call first seen here is made from its first channel (``Uniqueid`` =
        ``Linkedid``: the caller and the number dialled), whatever order Asterisk lists the
        channels in (its channel container's); without that channel nobody knows who called.
        A ringing call counts as answered only when its first channel is in a bridge with
        another (``BridgeId``): a caller answered by the dialplan (a queue, an IVR) is up, not
        talking."""
        self._forget()
        self._end_unseen(self._join(channels))

    def _forget(self) -> None:
        """Who is in which bridge, and what transfers and Local hops were seen: from a
        catch-up's list and the events from then on."""
        self._bridges.clear()
        self._watched.clear()
        self._hop_answered.clear()

    def _join(self, channels: Iterable[Message]) -> list[str]:
        """:meth:`resync` but for its end: the calls left without a channel (by linkedid)."""
        present: dict[str, set[str]] = {}
        calls: dict[str, list[Message]] = {}
        for item in channels:
            channel, linkedid = item.get("Channel"), item.get("Linkedid") or item.get("Uniqueid")
            if not channel or not linkedid:
                continue
            calls.setdefault(linkedid, []).append(item)
            present.setdefault(linkedid, set()).add(channel)
            if bridge := item.get("BridgeId"):
                number, name = item.get("CallerIDNum"), item.get("CallerIDName")
                self._bridges.setdefault(bridge, {})[channel] = (number, name)
        for linkedid, items in calls.items():
            first = next((i for i in items if i.get("Uniqueid") == linkedid), None)
            if linkedid not in self.calls:
                self._caught_up(linkedid, first)
            for item in items:
                if item.get("Channel") not in self._call_of:
                    self._new_channel(item)
            call = self.calls[linkedid]
            if call.state.state == RINGING:
                self._answered_in_bridge(call)
        unseen = []
        for linkedid, call in list(self.calls.items()):
            here = present.get(linkedid, set())
            for channel in call.channels - here:
                self._call_of.pop(channel, None)
                call.ringing.pop(channel, None)
            call.channels &= here
            if not call.channels:
                unseen.append(linkedid)
            elif call.state.ringing != _phones(call):
                self._change(call, ringing=_phones(call))
        return unseen

    def _end_unseen(self, linkedids: Iterable[str]) -> None:
        """End with :data:`UNKNOWN_END` those of ``linkedids`` still known without a channel
        (a Hangup that came meanwhile ended one with its cause)."""
        for linkedid in linkedids:
            call = self.calls.get(linkedid)
            if call is not None and not call.channels:
                self._end(call, UNKNOWN_END)

    def _caught_up(self, linkedid: str, first: Message | None) -> None:
        """A call first seen in a catch-up: from its first channel, begun ``Duration`` ago;
        without it, a call of nobody knows whom (no caller, no number dialled: no notice)."""
        if first is None:
            first = Message((("Linkedid", linkedid), ("Uniqueid", linkedid)))
        state = _first_state(linkedid, first, self.clock() - _seconds(first.get("Duration")))
        call = self.calls[linkedid] = _Call(state)
        if state.channel:
            self._call_of[state.channel] = linkedid
            call.channels.add(state.channel)
        self._emit(call)

    def _answered_in_bridge(self, call: _Call) -> None:
        """A ringing call whose first channel shares a bridge with another is talking: with
        that channel's phone, when it is one."""
        first = call.state.channel
        for members in self._bridges.values():
            if first not in members:
                continue
            for channel, (number, name) in members.items():
                if channel == first:
                    continue
                phone, shown = self._party(channel, number, name) or ("", "")
                call.answered_channel = channel
                self._change(call, state=TALKING, answered_at=self.clock(), answered_by=phone,
                             answered_name=shown, talking_to=phone, talking_name=shown)  # fmt: skip
                return

    # -- events --------------------------------------------------------------------------

    def _new_channel(self, m: Message) -> None:
        channel = m.get("Channel")
        linkedid = m.get("Linkedid") or m.get("Uniqueid")
        if not channel or not linkedid:
            return
        self._call_of[channel] = linkedid
        call = self.calls.get(linkedid)
        if call is None:
            call = self.calls[linkedid] = _Call(_first_state(linkedid, m, self.clock()))
            call.channels.add(channel)
            self._emit(call)
            return
        call.channels.add(channel)

    def _dial_begin(self, m: Message) -> None:
        call = self._call(m.get("DestLinkedid") or m.get("Linkedid"), m.get("Channel"))
        dest = m.get("DestChannel")
        if call is None or not dest:
            return
        phone = phone_of(dest, m.get("DestCallerIDNum") or m.get("DestExten"))
        call.ringing[dest] = phone
        self._change(call, ringing=_phones(call))

    def _dial_end(self, m: Message) -> None:
        call = self._call(m.get("DestLinkedid") or m.get("Linkedid"), m.get("Channel"))
        dest = m.get("DestChannel")
        hop = _hop(m.get("Channel"))
        if hop and m.get("DialStatus") == "ANSWER":  # a Local hop's inner dial was answered
            number = phone_of(dest, m.get("DestCallerIDNum"))
            self._hop_answered[hop] = (number, _name(m.get("DestCallerIDName"), number))
            self._hop_now_answered(hop)
        if call is None:
            return
        status = m.get("DialStatus")
        phone = call.ringing.pop(dest, "") or phone_of(dest, m.get("DestCallerIDNum"))
        name = _name(m.get("DestCallerIDName"), phone)
        if _hop(dest) and status == "ANSWER":
            # a Local hop is the phone its own dial answered; one the dialplan answered
            # (VoiceMail, a Playback after the phone did not answer) is no phone at all
            phone, name = self._hop_answered.get(_hop(dest), ("", ""))
        if status == "ANSWER" and not call.answered_channel and not call.state.answered_by:
            call.answered_channel, call.answered_hop = dest, hop
            self._change(
                call,
                ringing=_phones(call),
                answered_by=phone,
                answered_name=name,
                talking_to=phone,
                talking_name=name,
                state=TALKING,
                answered_at=self.clock(),
            )
        elif status == "ANSWER" and call.blind_transfer and phone:
            call.blind_transfer = False
            self._transferred(call, phone, name)
            self._change(call, ringing=_phones(call))
        elif status not in ("", "ANSWER") and _took_it(call, dest) and call.state.transfers == 0:
            # app_queue.c: a member answered, then the caller hung up before being put
            # through (ABANDON), or the member was gone (AGENTDUMP): a second DialEnd of the
            # same member, not answered. The call was not answered after all.
            call.answered_channel = call.answered_hop = ""
            self._change(call, ringing=_phones(call), state=RINGING, answered_by="",
                         answered_name="", talking_to="", talking_name="", answered_at=0.0,
                         dial_status=status)  # fmt: skip
        else:
            self._change(call, ringing=_phones(call), dial_status=status or call.state.dial_status)

    def _bridged(self, m: Message) -> None:
        call = self._call(m.get("Linkedid"), m.get("Channel"))
        if call is not None and call.state.state == RINGING and m.get("BridgeNumChannels") == "2":
            self._change(call, state=TALKING, answered_at=self.clock())

    def _blind_transfer(self, m: Message) -> None:
        """The caller (``Transferee``) is sent to the dialplan: the phone that answers its next
        dial is the one it talks with."""
        if m.get("Result") != "Success":
            return
        call = self._call(m.get("TransfereeLinkedid"), m.get("TransfereeChannel"))
        if call is not None:
            call.blind_transfer = True

    def _attended_transfer(self, m: Message) -> None:
        """The caller (``Transferee``) now talks with the consultation call's phone: the
        ``TransferTarget``, or, when Asterisk leaves it out (the transferer hung up to complete
        the transfer: the bridges were merged first), whoever is with the caller in the bridge
        the transfer ended in (``DestBridgeUniqueid``), now or when it enters."""
        if m.get("Result") != "Success" or m.get("DestType") == "Threeway":
            return  # a three-way call: the caller still talks with the transferer
        call = self._call(m.get("TransfereeLinkedid"), m.get("TransfereeChannel")) or self._call(
            m.get("OrigTransfererLinkedid"), m.get("OrigTransfererChannel")
        )  # no Transferee when the transferer went back to the caller before hanging up
        if call is None:
            return
        target = m.get("TransferTargetChannel")
        if target:
            party = self._party(target, m.get("TransferTargetCallerIDNum"),
                                m.get("TransferTargetCallerIDName"))  # fmt: skip
            if party is not None:
                self._transferred(call, *party)
                return
        bridge = m.get("DestBridgeUniqueid")
        if m.get("DestType") != "Bridge" or not bridge:
            return
        self._watched[bridge] = call.state.linkedid
        skip = {m.get("TransfereeChannel"), m.get("OrigTransfererChannel"),
                m.get("SecondTransfererChannel"), call.state.channel}  # fmt: skip
        for channel, (number, name) in self._bridges.get(bridge, {}).items():
            party = self._party(channel, number, name) if channel not in skip else None
            if party is not None:
                self._transferred(call, *party)
                return

    def _party(self, channel: str, number: str, name: str) -> tuple[str, str] | None:
        """The phone and name a channel in the caller's bridge is: a device's own, a Local
        hop's once its inner dial was answered (a ring group's or a transfer target that
        still rings is nobody yet)."""
        hop = _hop(channel)
        if hop:
            return self._hop_answered.get(hop)
        phone = phone_of(channel, number)
        return (phone, _name(name, phone)) if phone else None

    def _hop_now_answered(self, hop: str) -> None:
        """A Local hop waiting in a watched bridge was answered: the caller talks with it."""
        for bridge, linkedid in list(self._watched.items()):
            call = self.calls.get(linkedid)
            members = self._bridges.get(bridge, {})
            if call is not None and any(_hop(channel) == hop for channel in members):
                self._transferred(call, *self._hop_answered[hop])

    def _entered(self, m: Message) -> None:
        bridge, channel = m.get("BridgeUniqueid"), m.get("Channel")
        if not bridge or not channel:
            return
        number, name = m.get("CallerIDNum"), m.get("CallerIDName")
        self._bridges.setdefault(bridge, {})[channel] = (number, name)
        call = self.calls.get(self._watched.get(bridge, ""))
        if call is not None and channel != call.state.channel:
            party = self._party(channel, number, name)
            if party is not None:  # the target's own channel, swapped in for its Local hop
                self._transferred(call, *party)

    def _left(self, m: Message) -> None:
        bridge = m.get("BridgeUniqueid")
        members = self._bridges.get(bridge)
        if members is None:
            return
        members.pop(m.get("Channel"), None)
        if not members:
            del self._bridges[bridge]
            self._watched.pop(bridge, None)

    def _transferred(self, call: _Call, phone: str, name: str) -> None:
        if phone != call.state.talking_to:
            self._change(call, talking_to=phone, talking_name=name,
                         transfers=call.state.transfers + 1)  # fmt: skip

    def _picked_up(self, m: Message) -> None:
        """Another phone took the ringing call (``Pickup``: the picker's channel, and the
        ``Target`` prefix for the channel that rang; main/pickup.c)."""
        call = self._call(m.get("TargetLinkedid"), m.get("TargetChannel"))
        if call is None or call.state.answered_by:
            return
        call.ringing.pop(m.get("TargetChannel"), None)
        phone = phone_of(m.get("Channel"), m.get("CallerIDNum"))
        name = _name(m.get("CallerIDName"), phone)
        self._change(
            call,
            ringing=_phones(call),
            answered_by=phone,
            answered_name=name,
            talking_to=phone,
            talking_name=name,
            state=TALKING,
            answered_at=self.clock(),
        )

    def _hangup(self, m: Message) -> None:
        channel = m.get("Channel")
        if channel.endswith(";2"):
            self._hop_answered.pop(_hop(channel), None)
        linkedid = self._call_of.pop(channel, "") or m.get("Linkedid")
        call = self.calls.get(linkedid)
        if call is None:
            return
        call.channels.discard(channel)
        call.ringing.pop(channel, None)
        if not call.channels:
            self._end(call, m.get("Cause-txt"))
        elif call.state.ringing != _phones(call):
            self._change(call, ringing=_phones(call))

    # -- helpers -------------------------------------------------------------------------

    def _call(self, linkedid: str, channel: str) -> _Call | None:
        return self.calls.get(linkedid) or self.calls.get(self._call_of.get(channel, ""))

    def _change(self, call: _Call, **changes: object) -> None:
        new = replace(call.state, **changes)  # type: ignore[arg-type]
        if new != call.state:
            call.state = new
            self._emit(call)

    def _end(self, call: _Call, cause: str) -> None:
        del self.calls[call.state.linkedid]
        for bridge in [
            b for b, linkedid in self._watched.items() if linkedid == call.state.linkedid
        ]:
            del self._watched[bridge]
        call.ringing.clear()
        self._change(call, state=ENDED, ringing=(), ended_at=self.clock(), cause=cause)

    def _emit(self, call: _Call) -> None:
        if self.listener is not None:
            self.listener(call.state)


def _name(text: str, phone: str) -> str:
    """A caller ID name worth showing: not Asterisk's "<unknown>", not the number again."""
    text = text.replace("<unknown>", "").strip()
    return "" if text == phone else text


def _hop(channel: str) -> str:
    """A Local channel pair's name (``Local/102@from-internal-00000000``), "" for others."""
    if channel.startswith("Local/") and channel[-2:] in (";1", ";2"):
        return channel[:-2]
    return ""


def _took_it(call: _Call, dest: str) -> bool:
    """Whether ``dest`` is the dialled channel that answered ``call``: itself, or the Local
    pair (``;1``, as app_queue names a FreePBX member) whose inner dial answered."""
    if dest == call.answered_channel:
        return True
    return bool(call.answered_hop) and _hop(dest) == call.answered_hop


def _first_state(linkedid: str, first: Message, started: float) -> CallState:
    """A call as its first channel's event (``Newchannel``, ``CoreShowChannel``) tells it."""
    return CallState(
        linkedid=linkedid,
        caller_number=first.get("CallerIDNum").replace("<unknown>", ""),
        caller_name=first.get("CallerIDName").replace("<unknown>", ""),
        did=first.get("Exten"),
        context=first.get("Context"),
        channel=first.get("Channel"),
        state=RINGING,
        started_at=started,
    )


def _seconds(duration: str) -> float:
    """``CoreShowChannel``'s ``Duration`` (HH:MM:SS, since the channel was made) in seconds;
    0 when absent or unreadable."""
    try:
        hours, minutes, seconds = (int(part) for part in duration.split(":"))
    except ValueError:
        return 0.0
    return float(hours * 3600 + minutes * 60 + seconds)


def _phones(call: _Call) -> tuple[str, ...]:
    return tuple(sorted({p for p in call.ringing.values() if p}))


__all__ = ["ENDED", "RINGING", "TALKING", "UNKNOWN_END", "CallState", "CallTracker", "phone_of"]
