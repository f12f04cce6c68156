"""Read the conversations captured from Asterisk 22.10.1 (shared fixtures) into byte strings."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Transcript:
    name: str
    # (direction, bytes): "<<" sent by Asterisk, ">>" sent by the AGI side, in order.
    steps: tuple[tuple[str, bytes], ...]

    def from_asterisk(self) -> bytes:
        return b"".join(data for way, data in self.steps if way == "<<")

    def from_agi(self) -> bytes:
        return b"".join(data for way, data in self.steps if way == ">>")


def load(fixtures: Path) -> dict[str, Transcript]:
    """``fastagi`` (connection #1, Python reprs) and ``local`` (the process AGI's stdin)."""
    lines = (fixtures / "agi_transcripts.txt").read_text(encoding="utf-8").splitlines()
    out: dict[str, Transcript] = {}
    steps: list[tuple[str, bytes]] = []
    mode = ""
    for line in lines:
        if line.startswith("===== connection #1"):
            mode, steps = "fastagi", []
        elif line.startswith("=== ") and "local AGI" in line:
            mode, steps = "local", []
        elif mode and line[:3] in ("<< ", ">> "):
            way, rest = line[:2], line[3:]
            data = ast.literal_eval(rest) if mode == "fastagi" else (rest + "\n").encode()
            if mode == "local" and way == ">>" and (("<<", b"\n")) not in steps:
                # The script logged its environment lines but not the blank line that ends them.
                steps.append(("<<", b"\n"))
            steps.append((way, data))
        elif mode and not line.startswith(("-- ", "<<", ">>")):
            out[mode] = Transcript(mode, tuple(steps))
            mode = ""
    if mode:
        out[mode] = Transcript(mode, tuple(steps))
    return out
