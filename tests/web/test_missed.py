"""The Missed page over HTTP: the board's states on the fixture day (and on a day of repeated
callers, unanswered call-backs and a withheld number), handled marks with and without CSRF,
the audit log, the store's file."""

from __future__ import annotations

import re
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.routing import Route

from pbxgate.cdr.model import Leg
from pbxgate.cdr.store import Store
from pbxgate.web import missed
from pbxgate.web.missed import MAX_COMMENT, HandledStore
from pbxgate.web.users import Role
from tests.web.conftest import Clock, client, log_in, run

Console = tuple[Any, Clock]


def leg(key: str, at: str, src: str, dst: str, disp: str, talk: int = 0) -> Leg:
    """One leg of 2016-03-17 (the day before the fixture day): a call of its own."""
    start = datetime.fromisoformat(f"2016-03-17 {at}")
    outside = len(src) > 3
    ring = 15
    return Leg(
        start=start, clid=f"<{src}>", src=src, dst=dst, duration=ring + talk, billsec=talk,
        disposition=disp, dcontext="from-trunk" if outside else "from-internal",
        channel=f"SIP/trunk-{key}" if outside else f"SIP/{src}-{key}",
        dstchannel=f"SIP/{dst}-{key}", lastapp="Dial", uniqueid=f"1458200000.{key}",
        did="4996491913" if outside else "", cnum=src, linkedid=f"y-{key}",
        answer=start + timedelta(seconds=ring) if disp == "ANSWERED" else None,
        end=start + timedelta(seconds=ring + talk),
    )  # fmt: skip


# The day before: 84951112233 missed twice and rung back once without an answer; a withheld
# caller; 84957778899 missed, rung back twice, answered the second time.
YESTERDAY = [
    leg("1", "10:00:00", "84951112233", "113", "NO ANSWER"),
    leg("2", "10:30:00", "84951112233", "113", "BUSY"),
    leg("3", "10:40:00", "113", "84951112233", "NO ANSWER"),
    leg("4", "11:00:00", "anonymous", "113", "NO ANSWER"),
    leg("5", "12:00:00", "84957778899", "110", "NO ANSWER"),
    leg("6", "12:05:00", "114", "84957778899", "NO ANSWER"),
    leg("7", "12:10:00", "114", "84957778899", "ANSWERED", talk=60),
]


@pytest.fixture
def yesterday(console: Console, tmp_path: Path) -> Console:
    store = Store.open_sqlite(tmp_path / "fixture.sqlite3")
    store.insert(YESTERDAY)
    store.engine.dispose()
    return console


async def csrf_of(http: httpx.AsyncClient) -> str:
    page = await http.get("/missed")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert token is not None
    return token[1]


def by_id(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {row["linkedid"]: row for row in rows}


def test_every_endpoint_by_role(console: Console) -> None:
    app, _ = console
    posts = ("/missed/link-F/handled", "/api/missed/link-F/handled",
             "/missed/link-F/unhandled", "/api/missed/link-F/unhandled")  # fmt: skip

    async def go() -> None:
        async with client(app) as http:
            page = await http.get("/missed")
            assert page.status_code == 303 and page.headers["location"] == "/login?next=/missed"
            assert (await http.get("/api/missed")).status_code == 401
            for path in posts:
                answer = await http.post(path, data={"comment": "x"})
                assert answer.status_code == (401 if path.startswith("/api/") else 303)
        for name in ("vera", "lena", "anna"):  # the viewer is the least role: all may
            async with client(app) as http:
                await log_in(http, name)
                assert (await http.get("/missed")).status_code == 200
                assert (await http.get("/api/missed")).status_code == 200
                menu = (await http.get("/today")).text
                assert '<a href="/missed"' in menu

    run(go())
    roles = {
        route.path: getattr(route.endpoint, "role", None)
        for route in missed.ROUTES
        if isinstance(route, Route)
    }
    assert set(roles.values()) == {Role.VIEWER} and len(roles) == 6


def test_board_on_the_fixture_day_matches_today(console: Console) -> None:
    app, _ = console

    async def go() -> None:
        async with client(app) as http:
            await log_in(http, "vera")
            board = (await http.get("/api/missed")).json()
            today = (await http.get("/api/today")).json()
        assert board["window"]["label"] == "2016-03-18"
        kpis = {k["key"]: k["value"] for k in today["kpis"]}
        assert board["total"] == kpis["missed"] == 4
        rows = by_id(board["rows"])
        assert list(rows) == ["link-C", "link-F", "link-G", "link-I"]
        # the same resolution as the Today report's missed table, call by call
        assert [r["resolution"] for r in board["rows"]] == [
            r["resolution"] for r in today["missed"]
        ]
        c, f, g, i = (rows[k] for k in ("link-C", "link-F", "link-G", "link-I"))
        assert c["state"] == "called_back" and c["src"] == "84993333333" and c["dst"] == "110"
        assert c["action"] == {"by": "113", "at": "2016-03-18 12:20:00", "after": "0:14:44",
                               "answered": True}  # fmt: skip
        assert f["state"] == g["state"] == "open" and f["action"] is None
        assert (f["outcome"], g["outcome"]) == ("BUSY", "FAILED")
        assert i["state"] == "got_through" and i["action"]["by"] == "114"
        assert i["action"]["after"] == "0:09:40"
        assert all(r["tries"] == 1 and r["handled"] is None for r in rows.values())
        assert all(r["did"] == "4996491913" for r in rows.values())
        assert board["states"] == {"open": 2, "rang_no_answer": 0, "called_back": 1,
                                   "got_through": 1, "no_number": 0}  # fmt: skip

    run(go())


def test_board_window_from_query(console: Console) -> None:
    app, _ = console

    async def go() -> None:
        async with client(app) as http:
            await log_in(http, "vera")
            part = await http.get("/api/missed?from=2016-03-18 13:00&to=2016-03-18 14:00")
            assert [r["linkedid"] for r in part.json()["rows"]] == ["link-F", "link-G"]
            assert part.json()["filters"] == {"from": "2016-03-18 13:00", "to": "2016-03-18 14:00"}
            none = (await http.get("/api/missed?period=yesterday")).json()
            assert none["total"] == 0 and none["rows"] == []
            bad = await http.get("/api/missed?period=fortnight")
            assert bad.status_code == 400 and "unknown period" in bad.json()["error"]
            assert (await http.get("/missed?period=fortnight")).status_code == 400
            html = (await http.get("/missed?period=yesterday")).text
            assert "missed-row" not in html and 'value="yesterday" selected' in html

    run(go())


def test_repeated_callers_unanswered_callbacks_and_withheld(yesterday: Console) -> None:
    app, _ = yesterday

    async def go() -> dict[str, Any]:
        async with client(app) as http:
            await log_in(http, "vera")
            answer: dict[str, Any] = (await http.get("/api/missed?period=yesterday")).json()
            html = await http.get("/missed?period=yesterday", headers={"accept-language": "en"})
            assert "Called back, no answer" in html.text and "Number withheld" in html.text
            return answer

    board = run(go())
    rows = by_id(board["rows"])
    assert list(rows) == ["y-1", "y-2", "y-4", "y-5"]
    first, second, hidden, rung = rows["y-1"], rows["y-2"], rows["y-4"], rows["y-5"]
    assert first["tries"] == second["tries"] == 2  # the same number missed twice
    for row in (first, second):
        assert row["state"] == "rang_no_answer" and row["attempts"] == 1
        assert row["action"]["by"] == "113" and row["action"]["at"] == "2016-03-17 10:40:00"
        assert row["action"]["answered"] is False
    assert first["action"]["after"] == "0:39:45" and second["action"]["after"] == "0:09:45"
    assert hidden["state"] == "no_number" and hidden["action"] is None and hidden["tries"] == 1
    assert rung["state"] == "called_back" and rung["attempts"] == 1
    assert rung["action"] == {"by": "114", "at": "2016-03-17 12:10:00", "after": "0:09:45",
                              "answered": True}  # fmt: skip
    assert board["states"]["rang_no_answer"] == 2 and board["states"]["no_number"] == 1


def test_mark_and_unmark_through_forms(console: Console, tmp_path: Path) -> None:
    app, _ = console
    users = app.state.users

    async def go() -> None:
        async with client(app) as http:
            await log_in(http, "vera")
            token = await csrf_of(http)
            stale = await http.post("/missed/link-F/handled", data={"comment": "x"})
            assert stale.status_code == 403 and "CSRF" in stale.text
            wrong = await http.post("/missed/link-F/handled", data={"csrf": "nope"})
            assert wrong.status_code == 403
            assert app.state.handled.get("link-F") is None
            form = {"csrf": token, "comment": "  перезвонил, вопрос решён ",
                    "back": "period=today&unhandled=1&evil=1"}  # fmt: skip
            done = await http.post("/missed/link-F/handled", data=form)
            assert done.status_code == 303
            assert done.headers["location"] == "/missed?period=today&unhandled=1#missed-link-F"
            board = (await http.get("/api/missed")).json()
            mark = by_id(board["rows"])["link-F"]["handled"]
            assert mark["who"] == "vera" and mark["comment"] == "перезвонил, вопрос решён"
            assert datetime.fromisoformat(mark["at"]).tzinfo is not None
            assert board["handled"] == 1 and board["total"] == 4
            only = (await http.get("/api/missed?unhandled=1")).json()
            assert [r["linkedid"] for r in only["rows"]] == ["link-C", "link-G", "link-I"]
            assert only["total"] == 4 and only["filters"] == {"unhandled": "1"}
            page = (await http.get("/missed")).text
            assert 'id="unhandled-form-link-F"' in page and 'id="handled-form-link-G"' in page
            assert "перезвонил, вопрос решён" in page
            assert 'id="handled-form-link-F"' not in page
            undo = await http.post("/missed/link-F/unhandled", data={"csrf": token})
            assert undo.status_code == 303 and undo.headers["location"] == "/missed?#missed-link-F"
            assert app.state.handled.get("link-F") is None
            again = await http.post("/missed/link-F/unhandled", data={"csrf": token})
            assert again.status_code == 404 and "no handled mark" in again.text

    run(go())
    log = [(e.who, e.action, e.detail, e.address) for e in users.audit_log()]
    ours = [entry for entry in log if entry[1].startswith("missed-")]
    assert ours == [
        ("vera", "missed-unhandled", "link-F", "127.0.0.1"),
        ("vera", "missed-handled", "link-F: перезвонил, вопрос решён", "127.0.0.1"),
    ]  # newest first; the refused attempts left nothing


def test_mark_and_unmark_through_the_api(console: Console) -> None:
    app, _ = console

    async def go() -> None:
        async with client(app) as http:
            await log_in(http, "lena")
            token = await csrf_of(http)
            body = {"comment": "left a voicemail"}
            refused = await http.post("/api/missed/link-G/handled", json=body)
            assert refused.status_code == 403 and "CSRF" in refused.json()["error"]
            head = {"X-CSRF-Token": token}
            done = await http.post("/api/missed/link-G/handled", json=body, headers=head)
            assert done.status_code == 200
            answer = done.json()
            assert answer["linkedid"] == "link-G" and answer["handled"]["who"] == "lena"
            assert answer["handled"]["comment"] == "left a voicemail"
            redo = await http.post("/api/missed/link-G/handled", json={}, headers=head)
            assert redo.json()["handled"]["comment"] == ""  # a second mark replaces the first
            by_form = await http.post("/api/missed/link-C/handled",
                                      data={"csrf": token, "comment": "ok"})  # fmt: skip
            assert by_form.status_code == 200 and by_form.json()["handled"]["comment"] == "ok"
            long = {"comment": "x" * (MAX_COMMENT + 1)}
            too_long = await http.post("/api/missed/link-I/handled", json=long, headers=head)
            assert too_long.status_code == 400 and "too long" in too_long.json()["error"]
            for bad in ([1, 2], {"comment": 5}):
                wrong = await http.post("/api/missed/link-I/handled", json=bad, headers=head)
                assert wrong.status_code == 400
            for other in ("link-A", "link-D", "link-E", "no-such-call", "x" * 200):
                # answered inbound, outbound, internal, unknown, odd: not missed calls
                miss = await http.post(f"/api/missed/{other}/handled", json={}, headers=head)
                assert miss.status_code == 404, other
                assert "not a missed call" in miss.json()["error"]
            html_miss = await http.post("/missed/link-A/handled", data={"csrf": token})
            assert html_miss.status_code == 404
            assert app.state.handled.get("link-I") is None
            assert app.state.handled.get("link-A") is None
            undo = await http.post("/api/missed/link-G/unhandled", headers=head)
            assert undo.status_code == 200 and undo.json() == {"linkedid": "link-G",
                                                               "handled": None}  # fmt: skip
            gone = await http.post("/api/missed/link-G/unhandled", headers=head)
            assert gone.status_code == 404
            board = (await http.get("/api/missed")).json()
            assert board["handled"] == 1 and by_id(board["rows"])["link-C"]["handled"]

    run(go())
    actions = [(e.action, e.detail) for e in app.state.users.audit_log() if e.who == "lena"]
    assert actions[:4] == [
        ("missed-unhandled", "link-G"),
        ("missed-handled", "link-C: ok"),
        ("missed-handled", "link-G"),
        ("missed-handled", "link-G: left a voicemail"),
    ]


def test_store_is_private_and_reads_many(tmp_path: Path) -> None:
    moment = datetime(2024, 3, 4, 9, 30, tzinfo=UTC)
    path = tmp_path / "sub" / "web.sqlite3"
    store = HandledStore(path, clock=lambda: moment)
    try:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        for n in range(1200):
            store.mark(f"id-{n}", "vera", f"n{n}")
        wanted = [f"id-{n}" for n in range(0, 1300, 3)]  # some exist, some do not
        found = store.marks(wanted)
        assert set(found) == {f"id-{n}" for n in range(0, 1200, 3)}
        assert found["id-999"].comment == "n999" and found["id-999"].at == moment
        assert store.unmark("id-3") and not store.unmark("id-3")
        with pytest.raises(Exception, match="too long"):
            store.mark("id-1", "vera", "y" * (MAX_COMMENT + 1))
        assert store.get("id-1") is not None and store.get("id-1").comment == "n1"  # type: ignore[union-attr]
        assert found["id-0"].as_dict()["at"] == "2024-03-04T09:30:00+00:00"
    finally:
        store.close()


def test_a_window_longer_than_a_year_or_past_the_calendar_is_one_line(console: Console) -> None:
    """A decade of missed calls ties a worker up; ``to=9999-12-31`` once was an OverflowError."""
    app, _ = console

    async def go() -> None:
        async with client(app) as http:
            await log_in(http, "vera")
            year = await http.get("/api/missed?from=2015-03-19&to=2016-03-18")
            assert year.status_code == 200 and year.json()["total"] == 4
            long = await http.get("/api/missed?from=1990-01-01&to=2030-12-31")
            assert long.status_code == 400 and long.json()["error"] == (
                "the window 1990-01-01 .. 2030-12-31 is longer than 366 days "
                "(a year is plenty): narrow from/to"
            )
            assert (await http.get("/missed?from=1990-01-01&to=2030-12-31")).status_code == 400
            for query in ("to=9999-12-31", "from=0001-01-01", "from=0001-01-01&to=0001-01-02",
                          "from=9999-12-31T00:00&to=9999-12-31T23:00"):  # fmt: skip
                for path in ("/missed", "/api/missed"):
                    answer = await http.get(f"{path}?{query}")
                    assert answer.status_code == 400, (path, query)
                    assert "out of range" in answer.text or "longer than" in answer.text

    run(go())


def test_a_marks_body_is_read_only_up_to_16_kib(console: Console) -> None:
    app, _ = console
    pulled: list[int] = []

    async def endless() -> Any:  # a chunked body: no Content-Length to refuse it by
        yield b'{"comment": "'
        for _ in range(64):
            pulled.append(1)
            yield b"x" * 16384

    async def go() -> None:
        async with client(app) as http:
            await log_in(http, "lena")
            head = {"X-CSRF-Token": await csrf_of(http), "content-type": "application/json"}
            big = await http.post("/api/missed/link-G/handled", content=endless(), headers=head)
            assert big.status_code == 400
            assert big.json() == {"error": "the body is larger than 16 KiB: a comment is short"}
            assert len(pulled) <= 2  # not the whole megabyte
            declared = await http.post("/api/missed/link-G/handled", headers=head,
                                       content=b'{"comment": "' + b"x" * 20000 + b'"}')  # fmt: skip
            assert declared.status_code == 400 and "16 KiB" in declared.json()["error"]
            deep = await http.post("/api/missed/link-G/handled", content=b"[" * 16000, headers=head)
            assert deep.status_code == 400 and deep.json() == {
                "error": "the body is not valid JSON"
            }
            fine = await http.post("/api/missed/link-G/handled", json={"comment": "ok"},
                                   headers={"X-CSRF-Token": head["X-CSRF-Token"]})  # fmt: skip
            assert fine.status_code == 200

    run(go())
    assert app.state.handled.get("link-G").comment == "ok"
