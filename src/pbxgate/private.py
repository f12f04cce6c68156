"""Files that hold phone numbers, caller names or secrets are their owner's alone.

pbxgate's own files (the CDR store, the outbox, import reject files, the report sent-log, a
saved VK token) are created ``0600`` in folders it creates ``0700``, whatever the umask. SQLite
gives a database's ``-wal`` and ``-shm`` files the database file's mode, so creating the
database file first, with its mode, covers them; files left by an older pbxgate with wider
modes are narrowed when pbxgate next opens them for writing. The one place where two users
share a file, the outbox between Asterisk's user (``pbxgate-agi``) and the service user, takes
``[notify] outbox_mode = "0660"`` and a shared group (docs/notify.md).
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

FILE_MODE = 0o600
DIR_MODE = 0o700
SHARED_DIR_MODE = 0o2770  # setgid: files made in it take the folder's group
SQLITE_COMPANIONS = ("-wal", "-shm", "-journal")


def private_dir(path: Path, mode: int = DIR_MODE) -> None:
    """Create ``path`` (and missing parents) with ``mode``; an existing folder is left as the
    administrator set it."""
    missing = []
    for folder in (path, *path.parents):
        if folder.exists():
            break
        missing.append(folder)
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=mode)
        except FileExistsError:
            continue
        os.chmod(folder, mode)  # mkdir's mode is reduced by the umask


def private_file(path: Path, mode: int = FILE_MODE, *, companions: bool = False) -> None:
    """Create ``path`` empty with ``mode`` if it does not exist, else narrow it to ``mode``
    when this user owns it; with ``companions`` the same for SQLite's -wal/-shm files."""
    # A shared group also creates SQLite's -wal and -shm beside the file: it needs the folder,
    # and the folder's group on every file made in it (setgid), whatever each user's own group.
    private_dir(path.parent, DIR_MODE if mode & 0o070 == 0 else SHARED_DIR_MODE)
    if not path.exists():
        with contextlib.suppress(FileExistsError):  # another process was first
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode))
    _narrow(path, mode)
    if companions:
        for suffix in SQLITE_COMPANIONS:
            _narrow(Path(f"{path}{suffix}"), mode)


def open_private(path: Path, mode: int = FILE_MODE) -> int:
    """A descriptor to write ``path`` anew with ``mode`` whatever the umask, an existing file
    narrowed to it too (O_CREAT's mode does not touch a file that was there): for what a
    user asks pbxgate to write (a report, a Master.csv, a queue_log, a token), which holds
    numbers, names or a secret. Another user's file, which cannot be narrowed, is an error
    (the CLI's one line) rather than written as its owner left it."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.fchmod(fd, mode)
    except OSError:
        os.close(fd)
        raise
    return fd


def _narrow(path: Path, mode: int) -> None:
    try:
        info = path.stat()
    except FileNotFoundError:
        return
    if info.st_uid == os.getuid() and stat.S_IMODE(info.st_mode) != mode:
        os.chmod(path, mode)


def parse_mode(text: str) -> int:
    """ "0600" / "0660" -> int; only owner and group bits make sense for these files."""
    try:
        mode = int(text, 8)
    except ValueError:
        raise ValueError(f'file mode {text!r} is not octal, e.g. "0600"') from None
    if mode & ~0o660 or not mode & 0o600 == 0o600:
        raise ValueError(f"file mode {text!r}: use 0600, or 0660 for a shared group")
    return mode


__all__ = ["DIR_MODE", "FILE_MODE", "SHARED_DIR_MODE", "parse_mode", "private_dir", "private_file"]
