"""``pbxgate web --demo``: the console over two weeks of generated calls, for a first look.

Everything lives in one new owner-only directory: a configuration file, the calls
(``pbxgate cdr generate``'s week in SQLite), short recordings of the last two days' recorded
calls (tones, in FreePBX's ``YYYY/MM/DD`` layout under the demo's monitor directory), the
console's database with one admin user, ``demo``, whose random password the command prints.
Nothing outside that directory is read or written, so the demo never mixes with a real setup.
"""

from __future__ import annotations

import functools
import math
import secrets
import shutil
import wave
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from pbxgate.cdr.generate import generate
from pbxgate.cdr.recordings import resolve
from pbxgate.cdr.store import Store
from pbxgate.cdr.window import now_in
from pbxgate.private import private_dir, private_file

DAYS = 14  # two weeks: "this week against the last" has something to compare
CALLS_PER_DAY = 150
RECORDED_DAYS = 2  # recordings are made for the last two days' calls only (a few MB)
MAX_SECONDS = 20  # a recording is a tone of the call's talk time, at most this long
RATE = 8000  # Asterisk's narrowband rate, 8-bit: 8 KB a second
USER = "demo"
# The GLBP examples of a source checkout (not in a wheel: there the GLBP page says how to set it)
EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "glbp"
PITCHES = (330, 392, 440, 494, 523, 587, 659, 698)  # Hz


@dataclass(frozen=True)
class Demo:
    config: Path
    user: str
    password: str
    calls: int
    recordings: int


def make_demo(directory: Path, listen: str, *, now: datetime | None = None) -> Demo:
    """Fill ``directory`` (made owner-only) with the demo's configuration and data."""
    from pbxgate.config import Settings  # noqa: PLC0415
    from pbxgate.web.settings import WebSettings  # noqa: PLC0415
    from pbxgate.web.users import Role, UserStore  # noqa: PLC0415

    private_dir(directory)
    now = now or now_in(None)
    legs = list(generate(now.date() - timedelta(days=DAYS - 1), now.date(), until=now))
    database = directory / "cdr.sqlite3"
    Store.open_sqlite(database).insert(legs)
    monitor = directory / "monitor"
    recorded = 0
    since = now - timedelta(days=RECORDED_DAYS)
    for leg in legs:
        if leg.recordingfile and leg.start >= since and leg.billsec > 0:
            recording = resolve(leg.recordingfile, monitor)
            assert recording is not None
            _tone(recording.path, min(leg.billsec, MAX_SECONDS), leg.billsec)
            recorded += 1
    glbp = ""
    if EXAMPLES.is_dir():  # a checkout: the GLBP page plays the article's topology, 10x fast
        target = directory / "glbp"
        target.mkdir()
        for name in ("article.toml", "R2.cfg", "R3.cfg", "R4.cfg"):
            shutil.copyfile(EXAMPLES / name, target / name)
        glbp = f'glbp_topology = "{target / "article.toml"}"\nglbp_speed = 10.0\n'
    config = directory / "config.toml"
    private_file(config)
    config.write_text(
        f'[cdr]\ndefault_source = "demo"\nmonitor_dir = "{monitor}"\n'
        f'[cdr.sources.demo]\nurl = "sqlite:///{database}"\n'
        f'[report]\nstate = "{directory}/reports.sqlite3"\n'
        f'[notify]\noutbox = "{directory}/outbox.sqlite3"\n'
        f'[web]\nlisten = "{listen}"\ndatabase = "{directory}/web.sqlite3"\n{glbp}',
        encoding="utf-8",
    )
    password = secrets.token_urlsafe(9)
    web = Settings.load(config).get(WebSettings)
    with UserStore(web.database_path) as users:
        users.add(USER, password, Role.ADMIN)
    calls = len({leg.linkedid for leg in legs})
    return Demo(config, USER, password, calls, recorded)


def _tone(path: Path, seconds: int, pitch_seed: int) -> None:
    """A short WAV (8 kHz, 8-bit mono): a tone that swells and fades every two seconds, its
    pitch one of eight, different from call to call."""
    path.parent.mkdir(parents=True, exist_ok=True)
    block = _swell(pitch_seed % len(PITCHES))
    frames = (block * (seconds // 2 + 1))[: seconds * RATE]
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(1)
        out.setframerate(RATE)
        out.writeframes(frames)
    path.chmod(0o600)


@functools.cache
def _swell(pitch: int) -> bytes:
    frequency = PITCHES[pitch]
    samples = bytearray()
    for n in range(2 * RATE):
        t = n / RATE
        swell = 0.5 - 0.5 * math.cos(math.pi * t)
        samples.append(128 + int(90 * swell * math.sin(2 * math.pi * frequency * t)))
    return bytes(samples)


__all__ = ["Demo", "make_demo"]
