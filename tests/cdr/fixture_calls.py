"""A small day of calls with multi-leg calls, and the KPIs computed by hand.

2016-03-18 (the article's day), PBX-local time:

  A 12:00:36 84991111111 -> 113 direct, ANSWERED, 140 s, billsec 130 (recorded)
  B 12:01:33 89162222222 -> ring group: 104 ANSWERED 81/67, 105 NO ANSWER 14/0 (same uniqueid)
  C 12:05:00 84993333333 -> queue: 110 NO ANSWER 15/0, 111 BUSY at 12:05:16 0/0 -> missed
  D 12:20:00 113 -> 84993333333 ANSWERED 60/50   (calls C back, 884 s after C ended)
  E 12:30:00 101 -> 102 ANSWERED 30/25           (internal)
  F 13:00:00 89165555555 -> 113 BUSY 0/0          -> missed, never called back
  G 13:10:00 84996666666 -> 104 FAILED 0/0        -> missed; FAILED does not count for NER
  H 13:30:00 84997777777 -> 104 ANSWERED 40/30, transferred: -> 105 at 13:30:40 ANSWERED 100/90
  I 14:00:00 84998888888 -> 113 NO ANSWER 20/0    -> missed
  J 14:10:00 84998888888 -> 114 ANSWERED 50/40    (I got through 580 s after I ended)

By hand: 10 calls (13 legs); answered A B D E H J = 6, ASR 60.0; NER 9/10 = 90.0 (G failed);
talk 130+67+50+25+130+40 = 442, ACD 73.7 (H: the caller's connected time from the first answer
to the end, 10 s of the transfer ringing included); inbound 8, outbound 1, missed C F G I = 4;
busy hour 12:00 with 5 calls; peak concurrent 2 (A and B) at 12:01:33.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from pbxgate.cdr.model import Leg

DAY = datetime(2016, 3, 18)


def _leg(
    key: str,
    at: str,
    src: str,
    dst: str,
    dur: int,
    bill: int,
    disp: str,
    *,
    seq: int = 0,
    did: str = "4996491913",
    rec: str = "",
    name: str = "",
) -> Leg:
    start = datetime.fromisoformat(f"2016-03-18 {at}")
    uid = f"14582915{ord(key):02d}.1"  # a ring group's and a transfer's legs share it
    return Leg(
        start=start,
        clid=f'"{name or src}" <{src}>',
        src=src,
        dst=dst,
        duration=dur,
        billsec=bill,
        disposition=disp,
        dcontext="from-trunk" if len(src) > 3 else "from-internal",
        channel=f"SIP/trunk-{key}" if len(src) > 3 else f"SIP/{src}-{key}",
        dstchannel=f"SIP/{dst}-{key}{seq}",
        lastapp="Dial",
        lastdata=f"SIP/{dst},30,tT",
        amaflags="DOCUMENTATION",
        uniqueid=uid,
        did=did if len(src) > 3 else "",
        recordingfile=rec,
        cnum=src,
        cnam=name,
        linkedid=f"link-{key}",
        sequence=seq,
        answer=(start + timedelta(seconds=dur - bill)) if disp == "ANSWERED" else None,
        end=start + timedelta(seconds=dur),
    )


REC_A = "external-113-84991111111-20160318-120036-1458291573.157155.wav"

LEGS: list[Leg] = [
    _leg(
        "A", "12:00:36", "84991111111", "113", 140, 130, "ANSWERED", rec=REC_A, name="Олег Иванов"
    ),
    _leg("B", "12:01:33", "89162222222", "104", 81, 67, "ANSWERED", seq=0),
    _leg("B", "12:01:33", "89162222222", "105", 14, 0, "NO ANSWER", seq=1),
    _leg("C", "12:05:00", "84993333333", "110", 15, 0, "NO ANSWER", seq=0),
    _leg("C", "12:05:16", "84993333333", "111", 0, 0, "BUSY", seq=1),
    _leg("D", "12:20:00", "113", "84993333333", 60, 50, "ANSWERED"),
    _leg("E", "12:30:00", "101", "102", 30, 25, "ANSWERED"),
    _leg("F", "13:00:00", "89165555555", "113", 0, 0, "BUSY"),
    _leg("G", "13:10:00", "84996666666", "104", 0, 0, "FAILED"),
    _leg("H", "13:30:00", "84997777777", "104", 40, 30, "ANSWERED", seq=0),
    _leg("H", "13:30:40", "84997777777", "105", 100, 90, "ANSWERED", seq=1),
    _leg("I", "14:00:00", "84998888888", "113", 20, 0, "NO ANSWER"),
    _leg("J", "14:10:00", "84998888888", "114", 50, 40, "ANSWERED"),
]

EXPECTED = {
    "calls": 10,
    "answered": 6,
    "missed": 4,
    "unanswered": 4,
    "asr": 60.0,
    "ner": 90.0,
    "acd": 73.7,
    "talk_seconds": 442,
    "busy_hour": "2016-03-18 12:00",
    "busy_hour_calls": 5,
    "peak_concurrent": 2,
    "peak_at": "2016-03-18 12:01:33",
    "inbound": 8,
    "outbound": 1,
}
