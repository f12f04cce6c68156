"""The Recordings page: listen to a call's recording, for listeners and admins only.

The URL names a call by its linkedid and nothing else; the file comes from that call's CDR
``recordingfile``, placed by FreePBX's ``YYYY/MM/DD`` rule under ``[cdr] monitor_dir``
(:func:`pbxgate.cdr.recordings.resolve`). Only a regular file whose real path (symlinks and
``..`` resolved) lies inside the real monitor directory is served: a name with a NUL or a
backslash, an absolute name elsewhere, ``../`` climbing out, a symlink pointing out are all
refused, and the file is opened without following a last-moment symlink and checked again
through ``/proc/self/fd`` after opening (a folder swapped between the check and the open).

    GET /recordings/{linkedid}          the player page (call summary, <audio>, controls)
    GET /api/recordings/{linkedid}      the same as JSON (no server path in it)
    GET /recordings/{linkedid}/audio    the file, streamed; HTTP Range (RFC 9110 §14);
                                        ?download=1 for Content-Disposition: attachment

Every playback and download is written to the audit log (who, which call, from where) once:
a request is audited, whatever its range (``bytes=1-`` is all of a file but one byte), unless
the same user asked for the same call and kind (play or download) less than
:data:`AUDIT_REPEAT_SECONDS` before; so a player's seeks and repeated starts are not.
"""

from __future__ import annotations

import io
import logging
import os
import re
import stat
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from email.utils import formatdate
from pathlib import Path
from typing import Any
from urllib.parse import quote

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from pbxgate.cdr.api import call_row
from pbxgate.cdr.model import Call
from pbxgate.cdr.recordings import WAV_HEADER_BYTES, resolve
from pbxgate.cdr.settings import CdrSettings
from pbxgate.config import Settings
from pbxgate.errors import PbxgateError
from pbxgate.web.lookup import find_call
from pbxgate.web.render import add_text, is_api, problem, render
from pbxgate.web.security import client_address, requires
from pbxgate.web.users import Role

log = logging.getLogger(__name__)

CHUNK = 64 * 1024
AUDIT_REPEAT_SECONDS = 30.0
MAX_REMEMBERED = 1000
# Asterisk's recording formats (MixMonitor/Monitor) and what browsers call them; a name's
# extension decides, compared without case (Asterisk's "WAV" is GSM in a WAV file: wav49).
AUDIO_TYPES = {
    ".wav": "audio/wav", ".wav49": "audio/wav", ".mp3": "audio/mpeg", ".ogg": "audio/ogg",
    ".oga": "audio/ogg", ".opus": "audio/ogg", ".gsm": "audio/x-gsm", ".flac": "audio/flac",
    ".m4a": "audio/mp4", ".ulaw": "audio/basic", ".ul": "audio/basic",
    ".alaw": "audio/x-alaw-basic", ".al": "audio/x-alaw-basic", ".g722": "audio/G722",
    ".sln": "audio/L16;rate=8000",
}  # fmt: skip
SPEEDS = ("0.75", "1", "1.25", "1.5", "2")
# For /api/openapi.json (openapi.py).
API_PARAMETERS: dict[str, dict[str, Any]] = {
    "/api/recordings/{linkedid}": {"linkedid": "the call's linkedid (as /api/calls lists it)"}
}

add_text(
    {
        "ru": {
            "rec_title": "Запись звонка", "rec_caller": "Кто звонил", "rec_time": "Когда",
            "rec_answered_by": "Кто ответил", "rec_talk": "Разговор", "rec_did": "Номер (DID)",
            "rec_back": "−10 с", "rec_forward": "+10 с", "rec_speed": "Скорость",
            "rec_download": "Скачать", "rec_keys": "Клавиши", "rec_key_play": "пауза / играть",
            "rec_key_back": "на 10 секунд назад", "rec_key_forward": "на 10 секунд вперёд",
            "rec_key_slower": "медленнее", "rec_key_faster": "быстрее",
            "rec_back_label": "Назад на 10 секунд", "rec_forward_label": "Вперёд на 10 секунд",
            "rec_no_audio": "Браузер не играет этот файл; скачайте его.",
            "rec_controls": "Управление воспроизведением", "rec_seconds": "с",
        },
        "en": {
            "rec_title": "Call recording", "rec_caller": "Caller", "rec_time": "When",
            "rec_answered_by": "Answered by", "rec_talk": "Talk", "rec_did": "Number (DID)",
            "rec_back": "−10 s", "rec_forward": "+10 s", "rec_speed": "Speed",
            "rec_download": "Download", "rec_keys": "Keys", "rec_key_play": "pause / play",
            "rec_key_back": "10 seconds back", "rec_key_forward": "10 seconds forward",
            "rec_key_slower": "slower", "rec_key_faster": "faster",
            "rec_back_label": "Back 10 seconds", "rec_forward_label": "Forward 10 seconds",
            "rec_no_audio": "The browser cannot play this file; download it.",
            "rec_controls": "Playback controls", "rec_seconds": "s",
        },
    }
)  # fmt: skip


class Unavailable(PbxgateError):
    """The call has no recording that may be served (the page answers 404)."""


class RangeNotSatisfiable(Exception):
    """A Range none of whose bytes the file has (416)."""


# -- finding the file (no HTTP here) -----------------------------------------------------


@dataclass(frozen=True)
class Located:
    call: Call
    name: str  # the CDR's recordingfile
    path: Path  # the real path, inside the real monitor directory
    root: Path  # the real monitor directory
    size: int

    @property
    def content_type(self) -> str:
        return content_type(self.path.name)


def content_type(name: str) -> str:
    return AUDIO_TYPES.get(Path(name).suffix.lower(), "application/octet-stream")


def locate(settings: Settings, linkedid: str) -> Located:
    """The recording of call ``linkedid``, checked to lie inside ``[cdr] monitor_dir``."""
    call = find_call(settings, linkedid)
    if call is None:
        raise Unavailable(f"no call {linkedid!r} in the CDR")
    if not call.recordings:
        raise Unavailable(f"call {linkedid} has no recording")
    name = call.recordings[0]
    root, path = safe_path(name, settings.get(CdrSettings).monitor_dir, linkedid)
    info = path.stat()
    if not stat.S_ISREG(info.st_mode):
        raise Unavailable(f"the recording of call {linkedid} is not a regular file")
    if info.st_size <= WAV_HEADER_BYTES:
        raise Unavailable(f"the recording of call {linkedid} is empty: nothing was recorded")
    return Located(call, name, path, root, info.st_size)


def safe_path(name: str, monitor_dir: Path, linkedid: str) -> tuple[Path, Path]:
    """The real monitor directory and the real path of ``name`` in it; :class:`Unavailable`
    when the file is missing or lies outside it."""
    if "\x00" in name or "\\" in name:
        _refused(linkedid, name, "a NUL or a backslash in the name")
    try:
        root = monitor_dir.resolve(strict=True)
    except (OSError, RuntimeError):
        raise Unavailable(
            f"the recordings folder {monitor_dir} does not exist", hint="check [cdr] monitor_dir"
        ) from None
    found = resolve(name, monitor_dir)
    if found is None:  # pragma: no cover - an empty name is no recording, caught earlier
        raise Unavailable(f"call {linkedid} has no recording")
    try:
        # First as far as it exists, so that a name outside is refused whether or not its
        # file exists (the answer tells nothing about files elsewhere), then all of it.
        if not found.path.resolve().is_relative_to(root):
            _refused(linkedid, name, "outside [cdr] monitor_dir")
        real = found.path.resolve(strict=True)
    except FileNotFoundError:
        raise Unavailable(f"the recording of call {linkedid} is missing: {name}") from None
    except (OSError, RuntimeError):  # a symlink loop, a file name too long
        raise Unavailable(f"the recording of call {linkedid} cannot be read: {name}") from None
    if not real.is_relative_to(root):  # pragma: no cover - a symlink made meanwhile
        _refused(linkedid, name, "outside [cdr] monitor_dir")
    return root, real


def _refused(linkedid: str, name: str, why: str) -> None:
    log.warning("recording of call %s refused (%s): %r", linkedid, why, name)
    raise Unavailable(f"the recording of call {linkedid} is refused: {why}")


def open_recording(found: Located) -> tuple[io.FileIO, os.stat_result]:
    """Open the file read-only without following a symlink (one that appeared since
    :func:`safe_path`), a FIFO never blocking, and check what was opened."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(found.path, flags)
    except FileNotFoundError:
        raise Unavailable(f"the recording of call {found.call.key} is missing") from None
    except OSError:
        raise Unavailable(f"the recording of call {found.call.key} cannot be opened") from None
    file = io.FileIO(fd, "rb", closefd=True)
    info = os.fstat(fd)
    opened = _opened_path(fd)
    inside = opened is None or opened.is_relative_to(found.root)
    if not stat.S_ISREG(info.st_mode) or not inside or info.st_size <= WAV_HEADER_BYTES:
        file.close()
        raise Unavailable(f"the recording of call {found.call.key} changed: try again")
    return file, info


def _opened_path(fd: int) -> Path | None:
    """Where an open file really is (Linux's /proc), or None where that cannot be told."""
    try:
        return Path(os.readlink(f"/proc/self/fd/{fd}"))
    except OSError:  # pragma: no cover - not Linux
        return None


# -- HTTP Range (RFC 9110 §14) -----------------------------------------------------------

# ASCII digits, at most 19 (up to 2**63, more than any file): Python's int() refuses a string
# of over 4300 digits with a ValueError, and \d would also match other scripts' digits.
_RANGE = re.compile(r"bytes=([0-9]{0,19})-([0-9]{0,19})", re.IGNORECASE | re.ASCII)


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The first and last byte the ``Range`` header asks for, or None for the whole file
    (no header, or one this server ignores as RFC 9110 lets it: another unit, several
    ranges, bad syntax). :class:`RangeNotSatisfiable` when it asks for nothing the file has."""
    if not header:
        return None
    match = _RANGE.fullmatch(header.strip())
    if match is None:
        return None
    first, last = match.groups()
    if not first:
        if not last:
            return None
        suffix = int(last)
        if suffix == 0:
            raise RangeNotSatisfiable
        return max(0, size - suffix), size - 1
    start = int(first)
    if last and int(last) < start:
        return None  # invalid: ignored (RFC 9110 §14.1.1)
    if start >= size:
        raise RangeNotSatisfiable
    end = min(int(last), size - 1) if last else size - 1
    return start, end


def chunks(file: io.FileIO, start: int, length: int) -> Iterator[bytes]:
    """``length`` bytes from ``start``, at most :data:`CHUNK` at a time; closes the file."""
    try:
        offset, left = start, length
        while left > 0:
            data = os.pread(file.fileno(), min(CHUNK, left), offset)
            if not data:  # the file shrank meanwhile
                break
            yield data
            offset += len(data)
            left -= len(data)
    finally:
        file.close()


def _validators(info: os.stat_result) -> tuple[str, str]:
    etag = f'"{info.st_mtime_ns:x}-{info.st_size:x}"'
    return etag, formatdate(info.st_mtime, usegmt=True)


def disposition(name: str) -> str:
    """``attachment`` with the file's name, RFC 6266 (ASCII fallback and UTF-8 form)."""
    plain = "".join(ch if 32 <= ord(ch) < 127 and ch not in '"\\' else "_" for ch in name)
    if plain == name:
        return f'attachment; filename="{name}"'
    return f"attachment; filename=\"{plain}\"; filename*=UTF-8''{quote(name, safe='')}"


# -- the audit of plays ------------------------------------------------------------------


class RecentPlays:
    """Who played which call when (monotonic seconds), to audit a playback once."""

    def __init__(self, repeat: float = AUDIT_REPEAT_SECONDS, keep: int = MAX_REMEMBERED) -> None:
        self.repeat = repeat
        self.keep = keep
        self._seen: OrderedDict[tuple[str, str, str], float] = OrderedDict()

    def first(self, key: tuple[str, str, str], now: float) -> bool:
        """Whether ``key`` was not seen within ``repeat`` seconds; remembers it now."""
        last = self._seen.pop(key, None)
        self._seen[key] = now
        while len(self._seen) > self.keep:
            self._seen.popitem(last=False)
        return last is None or now - last >= self.repeat


# -- pages -------------------------------------------------------------------------------


# What the player page says of the call, as the Calls page's rows say it (cdr.api.call_row).
SUMMARY = ("direction", "src", "caller", "did", "dst", "answered_by", "outcome", "ring", "talk")


def summary(found: Located) -> dict[str, Any]:
    """The page's dict: the call and its recording (its name, never the server's path)."""
    call = found.call
    key = quote(call.key, safe="")
    row = call_row(call)
    return {
        "linkedid": call.key,
        "start": call.start.strftime("%Y-%m-%d %H:%M:%S"),
        **{name: row[name] for name in SUMMARY},
        "recording": {
            "name": found.path.name,
            "size": found.size,
            "content_type": found.content_type,
            "audio": f"/recordings/{key}/audio",
            "download": f"/recordings/{key}/audio?download=1",
        },
    }


async def _locate(request: Request) -> Located:
    settings: Settings = request.app.state.settings_all
    return await run_in_threadpool(locate, settings, request.path_params["linkedid"])


def _unavailable(request: Request, exc: Unavailable) -> Response:
    if is_api(request):
        return JSONResponse({"error": str(exc)}, status_code=404)
    if request.url.path.endswith("/audio"):
        return Response(str(exc), status_code=404, media_type="text/plain; charset=utf-8")
    return render(request, "recordings.html", 404, error=str(exc), call=None, speeds=SPEEDS)


@requires(Role.LISTENER)
async def player_page(request: Request) -> Response:
    try:
        found = await _locate(request)
    except Unavailable as exc:
        return _unavailable(request, exc)
    except PbxgateError as exc:
        return problem(request, exc)
    return render(request, "recordings.html", call=summary(found), speeds=SPEEDS)


@requires(Role.LISTENER)
async def recording_api(request: Request) -> Response:
    """A call's summary and its recording: name, size, type, the audio and download URLs.

    404 when the call is not in the CDR, has no recording, or its file is missing, empty
    (a bare WAV header) or outside [cdr] monitor_dir."""
    try:
        return JSONResponse(summary(await _locate(request)))
    except Unavailable as exc:
        return _unavailable(request, exc)
    except PbxgateError as exc:
        return problem(request, exc)


@requires(Role.LISTENER)
async def audio(request: Request) -> Response:
    """The file, whole or the Range asked for; the first request of a playback is audited."""
    try:
        found = await _locate(request)
        file, info = await run_in_threadpool(open_recording, found)
    except Unavailable as exc:
        return _unavailable(request, exc)
    except PbxgateError as exc:
        return problem(request, exc)
    streaming = False
    try:
        response = _answer(request, found, file, info)
        streaming = isinstance(response, StreamingResponse)  # it closes the file when done
        return response
    finally:
        if not streaming:
            file.close()


def _answer(request: Request, found: Located, file: io.FileIO, info: os.stat_result) -> Response:
    """The 200, 206, 416 or HEAD answer for the open ``file``."""
    size = info.st_size
    etag, modified = _validators(info)
    headers = {
        "Accept-Ranges": "bytes",
        "ETag": etag,
        "Last-Modified": modified,
        "Cache-Control": "private, no-store",
        "X-Content-Type-Options": "nosniff",
    }
    download = request.query_params.get("download") in ("1", "yes", "true")
    if download:
        headers["Content-Disposition"] = disposition(found.path.name)
    if_range = request.headers.get("if-range")
    asked = None if if_range not in (None, etag, modified) else request.headers.get("range")
    try:
        part = parse_range(asked, size)
    except RangeNotSatisfiable:
        headers["Content-Range"] = f"bytes */{size}"
        return Response(status_code=416, headers=headers)
    start, end = part if part is not None else (0, size - 1)
    headers["Content-Length"] = str(end - start + 1)
    headers["Content-Type"] = found.content_type
    if part is not None:
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    status = 206 if part is not None else 200
    if request.method == "HEAD":
        return Response(status_code=status, headers=headers)
    _audit(request, found, "recording-download" if download else "recording-play")
    return StreamingResponse(chunks(file, start, end - start + 1), status, headers)


def _audit(request: Request, found: Located, action: str) -> None:
    user = request.state.user.name
    plays: RecentPlays = request.app.state.recording_plays
    if plays.first((user, found.call.key, action), request.app.state.clock()):
        detail = f"{found.call.key} {found.path.name}"
        request.app.state.users.audit(user, action, detail, client_address(request))


def setup(app: Starlette, settings: Settings) -> None:
    app.state.recording_plays = RecentPlays()


ROUTES: list[BaseRoute] = [
    Route("/recordings/{linkedid}", player_page),
    Route("/api/recordings/{linkedid}", recording_api),
    Route("/recordings/{linkedid}/audio", audio),
]

__all__ = [
    "AUDIO_TYPES",
    "ROUTES",
    "Located",
    "RangeNotSatisfiable",
    "RecentPlays",
    "Unavailable",
    "chunks",
    "content_type",
    "disposition",
    "locate",
    "open_recording",
    "parse_range",
    "safe_path",
    "setup",
]
