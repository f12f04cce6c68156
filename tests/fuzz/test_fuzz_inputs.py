"""Hostile bytes and values into every parser of outside input: each must turn them into its
documented error (or a rejected row, a dropped packet, a dead letter) and nothing else."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from pathlib import Path

import httpx
from hypothesis import given
from hypothesis import strategies as st

from pbxgate.agi.errors import AgiError
from pbxgate.agi.protocol import AgiSession, ConnectionClosed, NeedData
from pbxgate.config import Settings
from pbxgate.errors import PbxgateError
from tests.fuzz.conftest import FUZZ

# -- AGI: the environment block and replies, in any chunking ---------------------------------

AGI_PIECES = st.sampled_from([
    b"agi_request: x\n", b"agi_uniqueid: 1.1\n", b"agi_callerid: \xd0\n", b"\n", b"200 result=1\n",
    b"520-Invalid\n", b"520 End\n", b"HANGUP\n", b"\r\n", b"\x00", b"agi_", b": ", b"a" * 5000,
])  # fmt: skip


@FUZZ
@given(st.lists(st.one_of(st.binary(max_size=200), AGI_PIECES), max_size=30), st.booleans())
def test_agi_session_takes_any_bytes(chunks: list[bytes], close: bool) -> None:
    session = AgiSession()
    try:
        for chunk in chunks:
            session.receive_data(chunk)
            while not isinstance(event := session.next_event(), NeedData):
                if isinstance(event, ConnectionClosed):
                    return
        if close:
            session.receive_data(b"")
            session.next_event()
    except AgiError:
        pass  # the documented refusal of a malformed or oversized peer


# -- Master.csv / cdr_custom rows --------------------------------------------------------------

CSV_CHARS = st.text(alphabet=st.sampled_from(list('",\n\r\x00ab01:- Ж\u2028\\')), max_size=40)
FIELD = st.one_of(CSV_CHARS, st.sampled_from(["", "ANSWERED", "2016-03-18 09:01:33", "17", "-1",
                                               "9" * 30, "1458291693.1"]))  # fmt: skip


@FUZZ
@given(st.lists(st.lists(FIELD, min_size=1, max_size=22), max_size=12), st.booleans())
def test_master_csv_rows_import_or_are_rejected(rows: list[list[str]], bulk: bool) -> None:
    import tempfile

    from pbxgate.cdr.csvimport import import_csv
    from pbxgate.cdr.store import Store
    from pbxgate.cdr.window import Zones

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "Master.csv"
        path.write_text("\n".join(",".join(r) for r in rows) + "\n", encoding="utf-8")
        store = Store.open_sqlite(Path(tmp) / "s.db")
        try:
            result = import_csv(path, store, Zones(None, None), bulk=bulk,
                                max_consecutive_rejects=0)  # fmt: skip
        except PbxgateError:
            return
        assert result.inserted + result.duplicates + result.rejected == result.rows
        assert store.count() == result.inserted
        store.engine.dispose()


NUMBER = st.one_of(
    st.integers(0, 4000).map(str),
    st.sampled_from(["", "0", "007", "+5", "-5", " 5", "5 ", "\u0663", "1_0", "2147483647",
                     "2147483648", "9" * 30, "1e3"]),
)  # fmt: skip
TIME = st.one_of(
    st.datetimes(datetime(2000, 1, 1), datetime(2040, 1, 1)).map(
        lambda d: d.strftime("%Y-%m-%d %H:%M:%S")
    ),
    st.sampled_from(["", "2024-01-01T00:00:00", "2024-02-30 00:00:00", "2024-01-01 00:00",
                     "20240101T000000", "2024-01-01 00:00:00.5", "x"]),
)  # fmt: skip
NAME = st.text(alphabet=st.sampled_from(list('ab "<>\n\tЖ1')), max_size=8)
CLID = st.one_of(
    st.builds(lambda name, num: f'"{name}" <{num}>', NAME, NAME), NAME, st.just('"102" <102>')
)


@FUZZ
@given(TIME, TIME, TIME, NUMBER, NUMBER, NUMBER, CLID, st.sampled_from(["102", "", "a"]),
       st.sampled_from([16, 18, 21]))  # fmt: skip
def test_a_completed_row_is_what_the_plain_rules_make_of_it(
    start: str, answer: str, end: str, duration: str, billsec: str, sequence: str, clid: str,
    src: str, width: int,
) -> None:  # fmt: skip
    """complete_row takes shortcuts (C-only checks of the usual row, remembered caller names,
    the key text joined rather than formatted); each row must come out as the plain rules make
    it: every time checked, numbers in range and canonical, the name parsed afresh, the key
    of the start and KEY_FIELDS (pbxgate.cdr.store.key_of)."""
    from pbxgate.cdr.csvimport import _NAME_NUM, _int, _time, complete_row, plan_for_row
    from pbxgate.cdr.store import KEY_FIELDS, key_of
    from pbxgate.cdr.window import Zones

    zones = Zones(None, None)
    fields = ["acc", src, "100", "ctx", clid, "PJSIP/t-1", "PJSIP/102-2", "Dial", "x", start,
              answer, end, duration, billsec, "ANSWERED", "DOCUMENTATION", "1.1", "uf", "",
              "1.1", sequence][:width]  # fmt: skip
    plan = plan_for_row(fields)
    row = dict(zip(plan.names, fields, strict=True))
    try:
        for column in ("start", "answer", "end"):
            row[column] = _time(row[column], column, zones)
        numbers = {c: _int(row[c], c) for c in ("duration", "billsec")}
        if numbers["billsec"] > numbers["duration"]:
            raise ValueError(f"billsec {numbers['billsec']} exceeds duration {numbers['duration']}")
        if "sequence" in row:
            numbers["sequence"] = _int(row["sequence"], "sequence")
        row.update((c, str(v)) for c, v in numbers.items())
    except ValueError as exc:
        expected: object = ("rejected", str(exc))
    else:
        match = _NAME_NUM.match(clid)
        name = match.group("name") if match else ""
        key = key_of([row["start"], *(row.get(c, "") for c in KEY_FIELDS)])
        expected = [*row.values(), "" if name == src else name, key]
    try:
        got: object = complete_row(list(fields), plan, zones)
    except ValueError as exc:
        got = ("rejected", str(exc))
    assert got == expected


# -- Settings: any TOML-shaped structure -------------------------------------------------------

SCALAR = st.one_of(st.none(), st.booleans(), st.integers(-10, 10**6), st.floats(allow_nan=True),
                   st.text(max_size=20), st.lists(st.text(max_size=5), max_size=3))  # fmt: skip
NAMES = st.sampled_from(["cdr", "notify", "agi", "report", "vk", "smtp", "sources", "x", "url",
                         "timezone", "listen_port", "recipients", "enabled", "schedules",
                         "outbox_mode", "cron", "table", "token_env", "password_file"])  # fmt: skip
TREE = st.recursive(SCALAR, lambda inner: st.dictionaries(NAMES, inner, max_size=4), max_leaves=12)


@FUZZ
@given(st.dictionaries(NAMES, TREE, max_size=4))
def test_settings_of_any_shape_are_a_config_error_or_accepted(raw: dict[str, object]) -> None:
    from pbxgate.cli.context import SETTINGS_MODULES

    for module in SETTINGS_MODULES:
        __import__(module)
    settings = Settings(raw, path=Path("fuzz.toml"), environ={})
    try:
        settings.check_names()
        for cls in list(settings_classes()):
            settings.get(cls)
    except PbxgateError:
        pass


def settings_classes() -> list[type]:
    from pbxgate.config import registered_sections

    return list(registered_sections().values())


# -- Message templates with hostile caller names ------------------------------------------------

HOSTILE = st.one_of(
    st.text(max_size=200),
    st.sampled_from([
        "<script>alert(1)</script>", "*bold* _it_ [x](http://evil)", "{{ 7*7 }}",
        "{% for x in range(10**9) %}", "\u202e\u0000\x1b[31m", "&lt;b&gt;", "Ж" * 500,
    ]),
)  # fmt: skip


@FUZZ
@given(name=HOSTILE, number=HOSTILE, did=HOSTILE)
def test_hostile_caller_names_render_as_text(name: str, number: str, did: str) -> None:
    from pbxgate.notify.build import build_renderer
    from pbxgate.notify.events import CallEvent

    renderer = build_renderer(Settings({}, environ={}))
    event = CallEvent(kind="incoming", uniqueid="1.1", linkedid="1.1", caller_number=number,
                      caller_name=name, did=did, channel="", context="", extension="",
                      occurred_at=0.0)  # fmt: skip
    message = renderer.render(event)
    if "{{ 7*7 }}" in (name, number, did):
        assert "{{ 7*7 }}" in message.text  # a caller's name is data, never a template
    assert isinstance(message.text, str)


@FUZZ
@given(name=HOSTILE)
def test_a_hostile_name_goes_into_email_as_plain_text(name: str) -> None:
    """The message is text/plain only: a name with markup cannot become HTML in a mail client,
    and header injection through it is impossible (it never reaches a header)."""
    from pbxgate.notify.channels.base import Message
    from pbxgate.notify.channels.email import build_email
    from pbxgate.notify.events import CallEvent

    event = CallEvent(kind="incoming", uniqueid="1.1", linkedid="1.1", caller_number="8499",
                      caller_name=name, did="", channel="", context="", extension="",
                      occurred_at=0.0)  # fmt: skip
    mail = build_email(Message(f"Звонок: {name}", "Звонок", event), "a@b.c", "d@e.f", "k")
    assert [part.get_content_type() for part in mail.walk()] == ["text/plain"]
    assert "\n" not in str(mail["Subject"]) and mail["To"] == "d@e.f"


# -- VK, Telegram and webhook answers: never an exception out of send() -------------------------

BODIES = st.one_of(
    st.binary(max_size=300),
    st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=30)),
                 lambda inner: st.one_of(st.lists(inner, max_size=3),
                                         st.dictionaries(st.sampled_from(
                                             ["response", "error", "error_code", "error_msg",
                                              "ok", "result", "description", "parameters",
                                              "retry_after", "message_id"]), inner, max_size=4)),
                 max_leaves=10).map(lambda v: json.dumps(v).encode()),
)  # fmt: skip


STATUSES = st.sampled_from([200, 201, 204, 301, 400, 401, 403, 404, 408, 429, 500, 502, 503])
HEADERS = st.dictionaries(
    st.sampled_from(["Retry-After", "Content-Type"]),
    st.text(alphabet="0123456789ab -/", max_size=12),
    max_size=2,
)


@FUZZ
@given(status=STATUSES, body=BODIES, channel=st.sampled_from(["vk", "telegram", "webhook"]),
       headers=HEADERS)  # fmt: skip
def test_any_api_answer_is_an_outcome(
    status: int, body: bytes, channel: str, headers: dict[str, str]
) -> None:
    from pbxgate.notify.build import build_channel
    from pbxgate.notify.channels.base import Dead, Message, Retry, Sent
    from pbxgate.notify.events import CallEvent
    from pbxgate.notify.settings import NotifySettings

    recipient = "1" if channel != "webhook" else "http://h/x"
    section = {"enabled": True, "token": "fuzz-token-123", "recipients": [recipient]}
    raw = {"notify": {channel: section}}
    ns = Settings(raw, environ={}).get(NotifySettings)
    transport = httpx.MockTransport(
        lambda req: httpx.Response(status, content=body, headers=headers)
    )
    ch = build_channel(channel, ns, transport)
    event = CallEvent(kind="incoming", uniqueid="1.1", linkedid="1.1", caller_number="8499",
                      caller_name="", did="", channel="", context="", extension="",
                      occurred_at=datetime(2026, 1, 1).timestamp())  # fmt: skip

    async def go() -> object:
        try:
            return await ch.send(Message("text", "subject", event), recipient, "key")
        finally:
            await ch.aclose()

    outcome = asyncio.run(go())
    assert isinstance(outcome, Sent | Retry | Dead)


# -- GLBP: random datagrams into a live engine ---------------------------------------------------


@FUZZ
@given(st.lists(st.binary(max_size=120), max_size=20))
def test_glbp_engine_drops_what_does_not_decode(datagrams: list[bytes]) -> None:
    from ipaddress import ip_address

    from pbxgate.glbp.sim.lab import make_engine, routers

    (spec,) = routers(1)
    engine = make_engine(spec, 0.0, seed=1)
    now = 0.0
    for data in datagrams:
        now += 0.5
        engine.receive_packet(data, ip_address("192.168.0.9"), now)
        engine.handle_timer(now)
        engine.messages_to_send()
    # every datagram that does not decode was counted as malformed (and dropped, not raised)
    assert engine.counters.malformed == sum(1 for d in datagrams if not _decodes(d))


def _decodes(data: bytes) -> bool:
    from pbxgate.glbp import wire
    from pbxgate.glbp.engine.codec import decode_message

    try:
        decode_message(data)
    except (wire.DecodeError, ValueError):
        return False
    return True
