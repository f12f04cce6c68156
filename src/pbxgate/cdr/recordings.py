"""Where a call's recording lives.

FreePBX stores ``recordingfile`` as a bare name and the file under
``<monitor dir>/YYYY/MM/DD/``, the date taken from the fourth dash-separated part of the name
(``external-113-84991111111-20160318-115933-1458291573.157155.wav``); a file of 44 bytes or less
is a bare WAV header, i.e. nothing was recorded (FreePBX/cdr ``Cdr::processPath()``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

WAV_HEADER_BYTES = 44


@dataclass(frozen=True)
class Recording:
    name: str
    path: Path
    exists: bool
    size: int


def resolve(name: str, monitor_dir: Path) -> Recording | None:
    """The recording for ``name`` under ``monitor_dir``; None when the call has none."""
    if not name:
        return None
    candidate = Path(name)
    if candidate.is_absolute():
        path = candidate
    else:
        parts = name.split("-")
        day = parts[3] if len(parts) > 3 and len(parts[3]) == 8 and parts[3].isdigit() else ""
        path = monitor_dir / day[:4] / day[4:6] / day[6:] / name if day else monitor_dir / name
    try:
        size = path.stat().st_size
    except OSError:
        return Recording(name, path, False, 0)
    return Recording(name, path, size > WAV_HEADER_BYTES, size)


__all__ = ["WAV_HEADER_BYTES", "Recording", "resolve"]
