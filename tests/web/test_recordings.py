"""The Recordings page over HTTP: roles, the player page, HTTP Range byte for byte, content
types, downloads, the audit of plays, and every way a CDR row or a URL could try to reach a
file outside ``[cdr] monitor_dir`` (real files and symlinks in tmp_path)."""

from __future__ import annotations

import io
import os
import random
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.routing import Route

from pbxgate.cdr.model import Leg
from pbxgate.cdr.store import Store
from pbxgate.web import recordings
from pbxgate.web.recordings import (
    CHUNK,
    RangeNotSatisfiable,
    Unavailable,
    chunks,
    content_type,
    disposition,
    parse_range,
    safe_path,
)
from pbxgate.web.users import Role
from tests.cdr.fixture_calls import REC_A
from tests.web.conftest import Clock, client, log_in, run

Console = tuple[Any, Clock]
SECRET = b"root:x:0:0:the secret outside the recordings folder\n" * 4
DATA = random.Random(7).randbytes(3 * CHUNK + 12_345)  # several chunks, not a whole number


def recorded(key: str, name: str) -> Leg:
    """An answered, recorded inbound call of 2016-03-17 whose recordingfile is ``name``."""
    start = datetime(2016, 3, 17, 10, 0) + timedelta(minutes=len(key))
    return Leg(
        start=start, clid="<84991234567>", src="84991234567", dst="113", duration=70,
        billsec=60, disposition="ANSWERED", dcontext="from-trunk", channel=f"SIP/trunk-{key}",
        dstchannel=f"SIP/113-{key}", lastapp="Dial", uniqueid=f"1458100000.{key}",
        did="4996491913", recordingfile=name, cnum="84991234567", linkedid=key,
        answer=start + timedelta(seconds=10), end=start + timedelta(seconds=70),
    )  # fmt: skip


def day_name(tag: str, ext: str = "wav") -> str:
    return f"external-113-84991234567-20160317-100000-1458100000.{tag}.{ext}"


@pytest.fixture
def files(console: Console, tmp_path: Path) -> dict[str, Any]:
    """REC_A (the fixture day's recorded call) as a multi-chunk file, and calls whose
    recordings are missing, empty, of other types or tricks aimed outside the folder."""
    mon = tmp_path / "mon"
    day = mon / "2016" / "03" / "17"
    (mon / "2016" / "03" / "18").mkdir(parents=True)
    day.mkdir(parents=True)
    (mon / "2016" / "03" / "18" / REC_A).write_bytes(DATA)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.wav").write_bytes(SECRET)
    (outside / day_name("dir").replace("20160317", "20160316")).write_bytes(SECRET)
    (day / day_name("empty")).write_bytes(b"RIFF" + b"\0" * 40)  # 44 bytes: a bare header
    (day / day_name("mp3", "mp3")).write_bytes(b"ID3" + bytes(500))
    (day / day_name("gsm", "gsm")).write_bytes(bytes(330))
    (mon / "inside-link.wav").symlink_to(mon / "2016" / "03" / "18" / REC_A)
    (mon / "out-link.wav").symlink_to(outside / "secret.wav")
    (mon / "2016" / "03" / "16").symlink_to(outside, target_is_directory=True)
    os.mkfifo(day / day_name("fifo"))
    out, odd = "is refused: outside [cdr] monitor_dir", "is refused: a NUL or a backslash"
    special = "is not a regular file"
    tricks = {  # linkedid: (recordingfile, why it is refused)
        "t-dotdot": ("../outside/secret.wav", out),
        "t-etc-rel": ("../../etc/passwd", out),  # refused whether or not it exists
        "t-etc-deep": ("../" * 40 + "etc/passwd", out),  # the real /etc/passwd
        "t-etc": ("/etc/passwd", out),
        "t-abs-out": (str(outside / "secret.wav"), out),
        "t-symlink": ("out-link.wav", out),
        "t-symdir": (day_name("dir").replace("20160317", "20160316"), out),
        "t-climb": ("2016/../../outside/secret.wav", out),
        "t-backslash": ("..\\..\\outside\\secret.wav", odd),
        "t-nul": ("out-link.wav\x00.wav", odd),
        "t-fifo": (day_name("fifo"), special),
        "t-dir": ("2016", special),
    }
    plain = {
        "r-missing": day_name("missing"),
        "r-empty": day_name("empty"),
        "r-mp3": day_name("mp3", "mp3"),
        "r-gsm": day_name("gsm", "gsm"),
        "r-inside-link": "inside-link.wav",
        "r-abs-in": str(mon / "2016" / "03" / "18" / REC_A),
    }
    store = Store.open_sqlite(tmp_path / "fixture.sqlite3")
    names = {**{key: name for key, (name, _) in tricks.items()}, **plain}
    store.insert(recorded(key, name) for key, name in names.items())
    store.engine.dispose()
    return {"tricks": tricks, "mon": mon}


def plays(app: Any) -> list[tuple[str, str, str, str]]:
    return [
        (e.who, e.action, e.detail, e.address)
        for e in app.state.users.audit_log()
        if e.action.startswith("recording-")
    ]


def test_every_endpoint_by_role(console: Console, files: dict[str, Any]) -> None:
    app, _ = console
    paths = ("/recordings/link-A", "/api/recordings/link-A", "/recordings/link-A/audio")

    async def go() -> None:
        async with client(app) as http:
            for path in paths:
                answer = await http.get(path)
                if path.startswith("/api/"):
                    assert answer.status_code == 401
                else:
                    assert answer.status_code == 303 and answer.headers["location"].startswith(
                        "/login?next=/recordings/link-A"
                    )
        async with client(app) as http:
            await log_in(http, "vera")
            for path in paths:
                refused = await http.get(path)
                assert refused.status_code == 403 and "listener" in refused.text
                assert DATA[:100] not in refused.content
        for name in ("lena", "anna"):
            async with client(app) as http:
                await log_in(http, name)
                for path in paths:
                    assert (await http.get(path)).status_code == 200, (name, path)

    run(go())
    assert {
        getattr(route.endpoint, "role", None)
        for route in recordings.ROUTES
        if isinstance(route, Route)
    } == {Role.LISTENER}
    assert [who for who, *_ in plays(app)] == ["anna", "lena"]


def test_player_page_and_api(console: Console, files: dict[str, Any]) -> None:
    app, _ = console

    async def go() -> None:
        async with client(app) as http:
            await log_in(http, "lena")
            page = await http.get("/recordings/link-A", headers={"accept-language": "en"})
            api = (await http.get("/api/recordings/link-A")).json()
            script = await http.get("/static/player.js")
        text = page.text
        ids = ("player-audio", "player-back", "player-forward", "player-speed",
               "player-download", "recording-summary")  # fmt: skip
        for element in ids:
            assert f'id="{element}"' in text, element
        assert 'src="/recordings/link-A/audio"' in text and "<audio" in text and "controls" in text
        assert 'href="/recordings/link-A/audio?download=1"' in text
        assert '<script src="/static/player.js" defer></script>' in text
        for speed in ("0.75", "1", "1.25", "1.5", "2"):
            assert f'<option value="{speed}"' in text
        assert "Олег Иванов" in text and "84991111111" in text and "130 s" in text
        assert "<kbd>j</kbd>" in text and "10 seconds back" in text  # the keys, written out
        assert str(files["mon"]) not in text and str(files["mon"]) not in str(api)
        assert api["linkedid"] == "link-A" and api["answered_by"] == "113" and api["talk"] == 130
        assert api["start"] == "2016-03-18 12:00:36" and api["caller"] == "Олег Иванов"
        assert api["recording"] == {
            "name": REC_A, "size": len(DATA), "content_type": "audio/wav",
            "audio": "/recordings/link-A/audio",
            "download": "/recordings/link-A/audio?download=1",
        }  # fmt: skip
        assert script.status_code == 200 and "player-speed" in script.text
        assert "http" not in script.text  # nothing fetched from elsewhere

    run(go())
    assert plays(app) == []  # showing the page plays nothing


def test_whole_file_and_ranges_byte_for_byte(console: Console, files: dict[str, Any]) -> None:
    app, _ = console
    size = len(DATA)
    url = "/recordings/link-A/audio"

    async def ranged(http: httpx.AsyncClient, spec: str, **headers: str) -> httpx.Response:
        return await http.get(url, headers={"range": spec, **headers})

    async def go() -> None:
        async with client(app) as http:
            await log_in(http, "lena")
            whole = await http.get(url)
            assert whole.status_code == 200 and whole.content == DATA
            assert whole.headers["accept-ranges"] == "bytes"
            assert whole.headers["content-type"] == "audio/wav"
            assert whole.headers["content-length"] == str(size)
            assert "content-disposition" not in whole.headers
            etag = whole.headers["etag"]
            cases = {
                "bytes=0-99": (0, 99),
                "bytes=1000-": (1000, size - 1),
                "bytes=-500": (size - 500, size - 1),
                f"bytes={size - 10}-{size + 100}": (size - 10, size - 1),
                f"bytes={CHUNK - 5}-{2 * CHUNK + 5}": (CHUNK - 5, 2 * CHUNK + 5),
                f"bytes=-{size * 2}": (0, size - 1),
                "Bytes=7-7": (7, 7),
            }
            for spec, (first, last) in cases.items():
                part = await ranged(http, spec)
                assert part.status_code == 206, spec
                assert part.content == DATA[first : last + 1], spec
                assert part.headers["content-range"] == f"bytes {first}-{last}/{size}"
                assert part.headers["content-length"] == str(last - first + 1)
            # a player's reads, one after another, make up the file exactly
            pieces, at, step = [], 0, 100_003
            while at < size:
                part = await ranged(http, f"bytes={at}-{at + step - 1}")
                pieces.append(part.content)
                at += step
            assert b"".join(pieces) == DATA
            for spec in (f"bytes={size}-", f"bytes={size + 5}-{size + 9}", "bytes=-0"):
                none = await ranged(http, spec)
                assert none.status_code == 416 and none.content == b"", spec
                assert none.headers["content-range"] == f"bytes */{size}"
            for spec in ("bytes=5-2", "items=0-1", "bytes=0-1,5-6", "bytes=x-y", "bytes=-"):
                ignored = await ranged(http, spec)  # RFC 9110 lets a server ignore these
                assert ignored.status_code == 200 and ignored.content == DATA, spec
            same = await ranged(http, "bytes=10-19", **{"if-range": etag})
            assert same.status_code == 206 and same.content == DATA[10:20]
            changed = await ranged(http, "bytes=10-19", **{"if-range": '"other"'})
            assert changed.status_code == 200 and changed.content == DATA
            head = await http.head(url, headers={"range": "bytes=0-9"})
            assert head.status_code == 206 and head.content == b""
            assert head.headers["content-length"] == "10"

    run(go())


def test_download_and_content_types(console: Console, files: dict[str, Any]) -> None:
    app, _ = console

    async def go() -> None:
        async with client(app) as http:
            await log_in(http, "lena")
            got = await http.get("/recordings/link-A/audio?download=1")
            assert got.status_code == 200 and got.content == DATA
            assert got.headers["content-disposition"] == f'attachment; filename="{REC_A}"'
            mp3 = await http.get("/recordings/r-mp3/audio")
            assert mp3.headers["content-type"] == "audio/mpeg" and mp3.content.startswith(b"ID3")
            gsm = await http.get("/recordings/r-gsm/audio")
            assert gsm.headers["content-type"] == "audio/x-gsm" and len(gsm.content) == 330
            for key in ("r-inside-link", "r-abs-in"):  # inside the folder: served
                inside = await http.get(f"/recordings/{key}/audio")
                assert inside.status_code == 200 and inside.content == DATA, key

    run(go())
    expected = {"a.wav": "audio/wav", "a.WAV": "audio/wav", "a.mp3": "audio/mpeg",
                "a.ogg": "audio/ogg", "a.opus": "audio/ogg", "a.gsm": "audio/x-gsm",
                "a.alaw": "audio/x-alaw-basic", "a.bin": "application/octet-stream",
                "noext": "application/octet-stream"}  # fmt: skip
    assert {name: content_type(name) for name in expected} == expected
    assert disposition('a"b.wav') == "attachment; filename=\"a_b.wav\"; filename*=UTF-8''a%22b.wav"
    assert disposition("запись.wav").endswith(
        "filename*=UTF-8''%D0%B7%D0%B0%D0%BF%D0%B8%D1%81%D1%8C.wav"
    )


def test_no_recording_missing_and_empty_are_404(console: Console, files: dict[str, Any]) -> None:
    app, _ = console
    cases = {
        "link-C": "has no recording",  # a missed call: nothing recorded
        "r-missing": "is missing",
        "r-empty": "is empty",
        "no-such-call": "no-such-call&#39; in the CDR",
    }

    async def go() -> None:
        async with client(app) as http:
            await log_in(http, "lena")
            for key, words in cases.items():
                page = await http.get(f"/recordings/{key}")
                assert page.status_code == 404 and words in page.text, key
                assert 'id="recording-error"' in page.text and "player-audio" not in page.text
                plain = words.replace("&#39;", "'")
                api = await http.get(f"/api/recordings/{key}")
                assert api.status_code == 404 and plain in api.json()["error"], key
                audio = await http.get(f"/recordings/{key}/audio")
                assert audio.status_code == 404 and plain in audio.text, key

    run(go())
    assert plays(app) == []


def test_no_trick_reaches_outside_the_folder(console: Console, files: dict[str, Any]) -> None:
    app, _ = console
    urls = [
        "/recordings/%2e%2e/audio",
        "/recordings/%2e%2e%2f%2e%2e%2foutside%2fsecret.wav/audio",
        "/recordings/..%2F..%2Fetc%2Fpasswd/audio",
        "/recordings/%2Fetc%2Fpasswd/audio",
        "/api/recordings/%2e%2e",
        "/recordings/%00/audio",
    ]

    async def go() -> None:
        async with client(app) as http:
            await log_in(http, "anna")
            for key, (_, why) in files["tricks"].items():
                for path in (f"/recordings/{key}/audio", f"/recordings/{key}",
                             f"/api/recordings/{key}"):  # fmt: skip
                    answer = await http.get(path, headers={"range": "bytes=0-"})
                    assert answer.status_code == 404, (key, path, answer.status_code)
                    assert f"call {key} {why}" in answer.text, (key, path)
                    assert b"root:" not in answer.content and SECRET[:20] not in answer.content
            for url in urls:
                raw = httpx.URL(url)
                answer = await http.get(raw)
                assert answer.status_code == 404, url
                assert b"root:" not in answer.content

    run(go())
    assert plays(app) == []


def test_safe_path_refuses_each_trick(tmp_path: Path) -> None:
    mon = tmp_path / "mon"
    (mon / "in").mkdir(parents=True)
    (mon / "in" / "ok.wav").write_bytes(DATA)
    (tmp_path / "out.wav").write_bytes(SECRET)
    (mon / "link.wav").symlink_to(tmp_path / "out.wav")
    (mon / "loop.wav").symlink_to(mon / "loop.wav")
    linked = tmp_path / "linked-mon"
    linked.symlink_to(mon, target_is_directory=True)  # the folder itself may be a symlink
    root, real = safe_path("in/ok.wav", linked, "k")
    assert root == mon.resolve() and real == (mon / "in" / "ok.wav").resolve()
    refused = {
        "../out.wav": "outside",
        str(tmp_path / "out.wav"): "outside",
        "link.wav": "outside",
        "in/../../out.wav": "outside",
        "in\\ok.wav": "backslash",
        "in/ok.wav\x00": "NUL",
        "missing.wav": "missing",
        "loop.wav": "cannot be read",
    }
    for name, why in refused.items():
        with pytest.raises(Unavailable, match=why):
            safe_path(name, mon, "k")
    with pytest.raises(Unavailable, match="does not exist"):
        safe_path("in/ok.wav", tmp_path / "nowhere", "k")


def test_parse_range() -> None:
    assert parse_range(None, 100) is None and parse_range("", 100) is None
    assert parse_range("bytes=0-", 100) == (0, 99)
    assert parse_range("bytes=10-20", 100) == (10, 20)
    assert parse_range("bytes=90-200", 100) == (90, 99)
    assert parse_range("bytes=-30", 100) == (70, 99)
    assert parse_range(" bytes=1-1 ", 100) == (1, 1)
    for ignored in ("bytes=20-10", "bytes=-", "bytes=0-1,3-4", "pages=1-2", "bytes=a-"):
        assert parse_range(ignored, 100) is None, ignored
    for none in ("bytes=100-", "bytes=150-160", "bytes=-0"):
        with pytest.raises(RangeNotSatisfiable):
            parse_range(none, 100)


def test_chunks_stream_the_file_in_pieces(tmp_path: Path) -> None:
    path = tmp_path / "big.wav"
    path.write_bytes(DATA)
    file = io.FileIO(path, "rb")
    pieces = list(chunks(file, 10, len(DATA) - 20))
    assert file.closed and len(pieces) == 4 and all(len(p) <= CHUNK for p in pieces)
    assert b"".join(pieces) == DATA[10:-10]


def test_each_playback_audited_once(console: Console, files: dict[str, Any]) -> None:
    app, clock = console
    url = "/recordings/link-A/audio"
    detail = f"link-A {REC_A}"

    async def go() -> None:
        async with client(app) as http:
            await log_in(http, "lena")
            assert (await http.get(url, headers={"range": "bytes=0-"})).status_code == 206
            for spec in ("bytes=5000-", "bytes=-100", "bytes=70000-80000"):  # seeking
                await http.get(url, headers={"range": spec})
            await http.get(url, headers={"range": "bytes=0-"})  # the browser asks again
            await http.head(url)
            assert plays(app) == [("lena", "recording-play", detail, "127.0.0.1")]
            clock.now += 31  # a new playback later
            await http.get(url)
            await http.get(url + "?download=1")
            await http.get(url + "?download=1", headers={"range": "bytes=100-"})  # resumed

    run(go())
    assert plays(app) == [
        ("lena", "recording-download", detail, "127.0.0.1"),
        ("lena", "recording-play", detail, "127.0.0.1"),
        ("lena", "recording-play", detail, "127.0.0.1"),
    ]


def test_a_range_of_many_digits_or_other_scripts_digits_is_ignored() -> None:
    big = 2**63 - 1  # 19 digits: more than any file
    assert parse_range(f"bytes=0-{big}", 100) == (0, 99)
    assert parse_range(f"bytes=-{big}", 100) == (0, 99)
    for ignored in ("bytes=" + "9" * 5000 + "-", "bytes=1-" + "9" * 5000, "bytes=-" + "9" * 5000,
                    "bytes=-99999999999999999999", "bytes=٣-", "bytes=0-٣"):  # fmt: skip
        assert parse_range(ignored, 100) is None, ignored[:30]


def test_every_odd_range_is_answered_and_its_file_closed(
    console: Console, files: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    app, _ = console
    url = "/recordings/link-A/audio"
    opened: list[io.FileIO] = []
    real_open = recordings.open_recording

    def tracked(found: Any) -> Any:
        file, info = real_open(found)
        opened.append(file)
        return file, info

    monkeypatch.setattr(recordings, "open_recording", tracked)
    odd = {"bytes=" + "9" * 5000 + "-": 200, "bytes=1-" + "9" * 5000: 200, "bytes=-0": 416,
           "bytes=-" + "9" * 5000: 200, "bytes=5-3": 200, "bytes=0-1,5-6": 200}  # fmt: skip

    async def go() -> None:
        async with client(app) as http:
            await log_in(http, "lena")
            for spec, status in odd.items():
                answer = await http.get(url, headers={"range": spec})
                assert answer.status_code == status, spec[:30]
                assert status == 416 or answer.content == DATA
            assert (await http.head(url)).status_code == 200
        assert len(opened) == len(odd) + 1 and all(f.closed for f in opened)
        opened.clear()

        def broken(header: str | None, size: int) -> None:
            raise RuntimeError("a bug while answering")

        monkeypatch.setattr(recordings, "parse_range", broken)
        quiet = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=quiet, base_url="http://testserver") as http:
            await log_in(http, "lena")
            assert (await http.get(url)).status_code == 500
        assert len(opened) == 1 and opened[0].closed  # closed on the way out of the bug

    run(go())


def test_a_range_not_from_byte_0_is_audited_too(console: Console, files: dict[str, Any]) -> None:
    """All of a file but its first byte (``bytes=1-``, or a suffix one short) once went
    unaudited: only a range from byte 0 counted as the start of a playback."""
    app, clock = console
    url = "/recordings/link-A/audio"
    detail = f"link-A {REC_A}"

    async def go() -> None:
        async with client(app) as http:
            await log_in(http, "lena")
            part = await http.get(url, headers={"range": "bytes=1-"})
            assert part.status_code == 206 and DATA[:1] + part.content == DATA
            suffix = {"range": f"bytes=-{len(DATA) - 1}"}
            down = await http.get(url + "?download=1", headers=suffix)
            assert down.status_code == 206 and DATA[:1] + down.content == DATA
            assert plays(app) == [
                ("lena", "recording-download", detail, "127.0.0.1"),
                ("lena", "recording-play", detail, "127.0.0.1"),
            ]
            await http.get(url, headers={"range": "bytes=500-"})  # a seek: the same playback
            clock.now += 31
            await http.get(url, headers={"range": "bytes=70000-"})  # later: a new one

    run(go())
    assert [p[1] for p in plays(app)] == ["recording-play", "recording-download", "recording-play"]
