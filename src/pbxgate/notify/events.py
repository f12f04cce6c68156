"""The call event: what the AGI side hands to the notify side.

One event per call and kind. ``event_id`` is ``"<kind>:<linkedid>"``: every AGI run for the same
call (a ring group, a retry of the dialplan, a second FastAGI server) yields the same id, so the
outbox stores it once and a delivery retry can never produce a second message. ``linkedid`` is
Asterisk's id shared by every channel of one call (``CHANNEL(linkedid)``, Asterisk 1.8+); the
AGI side falls back to ``agi_uniqueid`` when it is unknown.

With several PBXes, each event names its PBX (``pbx``: the AGI's ``pbx=`` parameter, ``[ami]
pbx``) and its ids carry it (``incoming:office1/<linkedid>``): two PBXes' linkedids may be
equal, their calls never are.

A call's events, in the order they happen (their *stage*): ``incoming`` (it rings), ``answered``
(a phone took it: AMI only; again after each transfer, with ``transfers``), then one final
event: ``ended`` (an answered call hung up: AMI
only) or ``missed`` (nobody answered); and for a missed call, later, ``called_back`` (AMI only:
a phone's call to the number was answered, or the caller's next call was; ``dialstatus``
CALLBACK or GOTTHROUGH says which). The message that follows a call shows the latest stage.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from json.encoder import encode_basestring
from math import isfinite
from typing import Any

from pbxgate.errors import InputError

INCOMING = "incoming"
ANSWERED = "answered"
ENDED = "ended"
MISSED = "missed"
CALLED_BACK = "called_back"
KINDS = (INCOMING, ANSWERED, ENDED, MISSED, CALLED_BACK)
# Where each kind stands in a call's life; a later stage replaces an earlier one, never back.
# An ``answered`` after a transfer stands after the one before it (STAGE + transfers, up to 9).
STAGE = {INCOMING: 0, ANSWERED: 10, ENDED: 20, MISSED: 20, CALLED_BACK: 30}
MAX_TRANSFER_STAGES = 9
# called_back: how a missed call was resolved (its dialstatus)
CALLBACK, GOT_THROUGH = "CALLBACK", "GOTTHROUGH"
FINAL = frozenset({ENDED, MISSED})


@dataclass(frozen=True)
class CallEvent:
    kind: str  # one of KINDS
    uniqueid: str  # agi_uniqueid
    linkedid: str  # CHANNEL(linkedid) when known, else uniqueid
    caller_number: str  # agi_callerid ("" when unknown/anonymous)
    caller_name: str  # agi_calleridname ("" when absent)
    did: str  # the number dialled: agi_dnid, else agi_extension, else ""
    channel: str  # agi_channel
    context: str  # agi_context
    extension: str  # agi_extension
    occurred_at: float  # Unix time (UTC seconds) when the AGI saw the call
    dialstatus: str = ""  # for "missed": DIALSTATUS (NOANSWER, BUSY, CANCEL, ...)
    extra: tuple[tuple[str, str], ...] = ()  # script arguments / query-string parameters
    answered_by: str = ""  # "answered", "ended": the extension that took the call
    answered_name: str = ""  # its caller ID name ("Анна Смирнова"), when the PBX has one
    talk_seconds: float = 0.0  # "ended": from the answer to the hangup
    pbx: str = ""  # the PBX the call is on, where pbxgate serves several ("" = the only one)
    recorded: bool = False  # AMI: the call is recorded (MixMonitor)
    transfers: int = 0  # AMI, "answered"/"ended": how many times the call was transferred

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise InputError(f"unknown call event kind {self.kind!r}", hint=", ".join(KINDS))
        if not (self.linkedid or self.uniqueid):
            raise InputError("a call event needs a linkedid or uniqueid")

    @property
    def event_id(self) -> str:
        """Stable id of this event: the same call and kind always give the same id (and each
        transfer of the call its own ``answered``)."""
        if self.kind == ANSWERED and self.transfers:
            return f"{self.kind}:{self.call_id}#{self.transfers}"
        return f"{self.kind}:{self.call_id}"

    @property
    def call_id(self) -> str:
        """The call this event belongs to (every event of one call shares it)."""
        call = self.linkedid or self.uniqueid
        return f"{self.pbx}/{call}" if self.pbx else call

    @property
    def stage(self) -> int:
        if self.kind == ANSWERED:
            return STAGE[ANSWERED] + min(self.transfers, MAX_TRANSFER_STAGES)
        return STAGE[self.kind]

    @property
    def final(self) -> bool:
        return self.kind in FINAL

    def to_json(self) -> str:
        """The event as JSON: keys sorted, no spaces, non-ASCII as is (what ``json.dumps(...,
        ensure_ascii=False, sort_keys=True, separators=(",", ":"))`` of its fields gives).

        Written out by hand: the FastAGI side's commit does this for every call while holding
        the interpreter lock, and the generic encoder takes three times as long."""
        if not (
            type(self.occurred_at) is float
            and type(self.talk_seconds) is float
            and isfinite(self.occurred_at)
            and isfinite(self.talk_seconds)
            and type(self.recorded) is bool
            and type(self.transfers) is int
        ):  # an int where a float belongs, NaN, infinities: as json writes them
            return self._to_json_generic()
        try:
            return self._to_json_fast()
        except (TypeError, ValueError):  # a field not of its type (None, a number): as json does
            return self._to_json_generic()

    def _to_json_fast(self) -> str:
        q = _QUOTE
        extra = ",".join([f"[{q(k)},{q(v)}]" for k, v in self.extra]) if self.extra else ""
        return (
            f'{{"answered_by":{q(self.answered_by)},"answered_name":{q(self.answered_name)},'
            f'"caller_name":{q(self.caller_name)},"caller_number":{q(self.caller_number)},'
            f'"channel":{q(self.channel)},"context":{q(self.context)},'
            f'"dialstatus":{q(self.dialstatus)},"did":{q(self.did)},'
            f'"extension":{q(self.extension)},"extra":[{extra}],"kind":{q(self.kind)},'
            f'"linkedid":{q(self.linkedid)},"occurred_at":{_FLOAT(self.occurred_at)},'
            f'"pbx":{q(self.pbx)},"recorded":{"true" if self.recorded else "false"},'
            f'"talk_seconds":{_FLOAT(self.talk_seconds)},"transfers":{_INT(self.transfers)},'
            f'"uniqueid":{q(self.uniqueid)}}}'
        )

    def _to_json_generic(self) -> str:
        data = {name: getattr(self, name) for name in _FIELDS}
        data["extra"] = [list(pair) for pair in self.extra]
        return _ENCODE(data)

    @classmethod
    def from_json(cls, text: str) -> CallEvent:
        try:
            data: Any = json.loads(text)
        except ValueError as exc:
            raise InputError(f"call event is not valid JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise InputError("call event JSON must be an object")
        known = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in known}
        try:
            kwargs["extra"] = tuple((str(k), str(v)) for k, v in kwargs.get("extra", ()))
            kwargs["occurred_at"] = float(kwargs.get("occurred_at", 0.0))
            kwargs["talk_seconds"] = float(kwargs.get("talk_seconds", 0.0))
            kwargs["transfers"] = int(kwargs.get("transfers", 0))
            return cls(**kwargs)
        except (TypeError, ValueError) as exc:
            raise InputError(f"call event JSON is incomplete: {exc}") from exc


_FIELDS = tuple(f.name for f in fields(CallEvent))
_QUOTE = encode_basestring  # C: a str as a JSON string, non-ASCII kept
_FLOAT = float.__repr__  # as json writes a finite float
_INT = int.__repr__
_ENCODE = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode

__all__ = [
    "ANSWERED",
    "CALLBACK",
    "CALLED_BACK",
    "ENDED",
    "FINAL",
    "GOT_THROUGH",
    "INCOMING",
    "KINDS",
    "MISSED",
    "STAGE",
    "CallEvent",
]
