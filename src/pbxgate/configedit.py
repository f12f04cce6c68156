"""``pbxgate config set``: one setting written into the TOML file, the same however often.

The file stays the administrator's: comments, order and other tables are kept. The table's
header (``[report.smtp]``) is found or appended, the key's line in it is replaced or added,
and the result must read back as TOML with only known names in it, or nothing is written.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from pathlib import Path

from pbxgate.errors import ConfigError, InputError

_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_HEADER = re.compile(r"^\s*\[([^\[\]]+)\]\s*(#.*)?$")


def render_value(text: str) -> str:
    """A command-line value as TOML: true/false, a number, a [list], else a string."""
    if text in ("true", "false") or re.fullmatch(r"-?\d+(\.\d+)?", text):
        return text
    if text.startswith("[") and text.endswith("]"):
        try:
            tomllib.loads(f"v = {text}")
            return text
        except tomllib.TOMLDecodeError:
            pass
    return json.dumps(text, ensure_ascii=False)  # a basic TOML string is a JSON string


def set_value(path: Path, dotted: str, value: str) -> str:
    """Write ``dotted`` (``report.smtp.port``) = ``value`` into ``path``; the new text."""
    *table, key = dotted.split(".")
    if not table or not all(_KEY.fullmatch(part) for part in (*table, key)):
        raise InputError(f"{dotted!r} is not SECTION[.TABLE].KEY", hint="e.g. report.smtp.port")
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    lines = text.splitlines()
    header = ".".join(table)
    line = f"{key} = {render_value(value)}"
    start = next((i for i, ln in enumerate(lines) if _table_of(ln) == header), None)
    if start is None:
        if lines and lines[-1].strip():
            lines.append("")
        lines += [f"[{header}]", line]
    else:
        end = next((i for i in range(start + 1, len(lines)) if _table_of(lines[i])), len(lines))
        own = re.compile(rf"^\s*{re.escape(key)}\s*=")
        at = next((i for i in range(start + 1, end) if own.match(lines[i])), None)
        if at is None:
            lines.insert(end - 1 if not lines[end - 1].strip() else end, line)
        else:
            lines[at] = line
    new = "\n".join(lines) + "\n"
    try:
        tomllib.loads(new)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} would not be valid TOML: {exc}; nothing was written") from exc
    return new


def write(path: Path, text: str) -> None:
    """Replace the file in one step (a reader never sees half of it); 0600 for a new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o600
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)


def _table_of(line: str) -> str | None:
    m = _HEADER.match(line)
    return m.group(1).strip() if m else None


__all__ = ["render_value", "set_value", "write"]
