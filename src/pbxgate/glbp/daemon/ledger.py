"""What the daemon changed on the host, on disk before each change: undone at stop and start.

A daemon killed with SIGKILL cannot clean up; the next start reads the ledger it left and
undoes every macvlan and sysctl listed there before it changes anything itself
(``Host.undo``). The file is small JSON, replaced atomically (write, fsync, rename), owner-only.
"""

from __future__ import annotations

import json
import os
from pathlib import Path


class Ledger:
    """Links made, and sysctls changed with their original values."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._data: dict[str, dict[str, str]] = {"link": {}, "sysctl": {}}
        if path.exists():
            try:
                loaded = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                loaded = {}
            for key in self._data:
                value = loaded.get(key)
                if isinstance(value, dict):
                    self._data[key] = {str(k): str(v) for k, v in value.items()}

    def add(self, kind: str, name: str) -> None:
        if name not in self._data[kind]:
            self._data[kind][name] = ""
            self._save()

    def remove(self, kind: str, name: str) -> None:
        if self._data[kind].pop(name, None) is not None:
            self._save()

    def items(self, kind: str) -> list[str]:
        return list(self._data[kind])

    def remember_sysctl(self, path: str, original: str) -> None:
        """Keep the first value seen: a second change must not overwrite the original."""
        if path not in self._data["sysctl"]:
            self._data["sysctl"][path] = original
            self._save()

    def forget_sysctl(self, path: str) -> None:
        self.remove("sysctl", path)

    def sysctls(self) -> dict[str, str]:
        return dict(self._data["sysctl"])

    def empty(self) -> bool:
        return not any(self._data.values())

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(self._data, handle, indent=1, sort_keys=True)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.path)


__all__ = ["Ledger"]
