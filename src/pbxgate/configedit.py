"""``pbxgate config set``: one setting written into the TOML file, the same however often.

The file stays the administrator's: comments, order and other tables are kept. The table's
header (``[report.smtp]``) is found or appended, the key's line in it is replaced or added,
and the result must read back as TOML with only known names in it, or nothing is written.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import stat
import tempfile
import tomllib
from pathlib import Path

from pbxgate.errors import ConfigError, InputError

_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_HEADER = re.compile(r"^\s*\[([^\[\]]+)\]\s*(#.*)?$")


def render_value(text: str) -> str:
    """A command-line value as TOML: true/false, a number, a [list], as TOML reads them;
    anything else (0660, Europe/Moscow) a string."""
    if (
        text in ("true", "false")
        or re.fullmatch(r"-?\d+(\.\d+)?", text)
        or (text.startswith("[") and text.endswith("]"))
    ):
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
    code = _code_lines(lines)  # lines inside a multi-line string are never headers or keys
    header = ".".join(table)
    line = f"{key} = {render_value(value)}"
    start = next((i for i in code if _table_of(lines[i]) == header), None)
    if start is None:
        if lines and lines[-1].strip():
            lines.append("")
        lines += [f"[{header}]", line]
    else:
        end = next((i for i in code if i > start and _table_of(lines[i])), len(lines))
        own = re.compile(rf"^\s*{re.escape(key)}\s*=")
        at = next((i for i in code if start < i < end and own.match(lines[i])), None)
        if at is None:
            lines.insert(end - 1 if not lines[end - 1].strip() else end, line)
        else:
            lines[at] = line + _comment_of(lines[at])
    new = "\n".join(lines) + "\n"
    try:
        tomllib.loads(new)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} would not be valid TOML: {exc}; nothing was written") from exc
    return new


def write(path: Path, text: str) -> None:
    """Replace the file in one step (a reader never sees half of it), keeping its owner, group
    and mode (0600 for a new one); a symlink's target is what gets replaced."""
    path = path.resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    old = path.stat() if path.exists() else None
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)  # O_EXCL, 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            if old is not None:
                os.fchmod(fh.fileno(), stat.S_IMODE(old.st_mode))
                if (old.st_uid, old.st_gid) != (os.getuid(), os.getgid()):
                    with contextlib.suppress(PermissionError):  # only root can give it away
                        os.fchown(fh.fileno(), old.st_uid, old.st_gid)
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _code_lines(lines: list[str]) -> list[int]:
    """The numbers of the lines that are not inside a multi-line string (\"\"\" or \'\'\')."""
    out = []
    inside: str | None = None
    for i, line in enumerate(lines):
        if inside is None:
            out.append(i)
        rest = line
        while True:
            if inside is None:
                hits = [(rest.find(q), q) for q in ('"""', "'''") if q in rest]
                if not hits:
                    break
                at, quote = min(hits)
                inside, rest = quote, rest[at + 3 :]
            else:
                at = rest.find(inside)
                if at < 0:
                    break
                inside, rest = None, rest[at + 3 :]
    return out


def _comment_of(line: str) -> str:
    """The comment that ends a ``key = value`` line, with the spaces before it ("" if none):
    the first ``#`` before which the line reads as TOML (a ``#`` inside a string is not)."""
    at = line.find("#")
    while at >= 0:
        try:
            tomllib.loads(line[:at])
        except tomllib.TOMLDecodeError:
            at = line.find("#", at + 1)
            continue
        head = line[:at].rstrip()
        return line[len(head) :]
    return ""


def _table_of(line: str) -> str | None:
    m = _HEADER.match(line)
    return m.group(1).strip() if m else None


__all__ = ["render_value", "set_value", "write"]
