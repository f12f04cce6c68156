"""Start-up time of pbxgate's commands beside the interpreter's own start.

Each command runs ``--runs`` times as a fresh process (as a shell or Asterisk runs it); the
median and the slowest run are printed, with ``python -c pass`` as the floor and the goal
(150 ms) for every ``--help`` and for what ``pbxgate-agi`` imports before it can answer a call.

    .venv/bin/python benchmarks/startup.py --runs 20
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

BIN = Path(sys.executable).parent
CASES = {
    "python -c pass (the floor)": [sys.executable, "-c", "pass"],
    "pbxgate --help": [str(BIN / "pbxgate"), "--help"],
    "pbxgate cdr --help": [str(BIN / "pbxgate"), "cdr", "--help"],
    "pbxgate cdr calls --help": [str(BIN / "pbxgate"), "cdr", "calls", "--help"],
    "pbxgate notify --help": [str(BIN / "pbxgate"), "notify", "--help"],
    "pbxgate glbp --help": [str(BIN / "pbxgate"), "glbp", "--help"],
    "pbxgate serve --help": [str(BIN / "pbxgate"), "serve", "--help"],
    # what pbxgate-agi loads before it can read a call and queue its event
    "pbxgate-agi's imports": [
        sys.executable,
        "-c",
        "import pbxgate_agi, pbxgate.agi.script, pbxgate.notify.service",
    ],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f}, {args.runs} runs each")
    print("| command | median ms | max ms |")
    print("|---|---:|---:|")
    for name, cmd in CASES.items():
        times = []
        for _ in range(args.runs):
            started = time.perf_counter()
            subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
            times.append((time.perf_counter() - started) * 1000)
        print(f"| {name} | {statistics.median(times):.0f} | {max(times):.0f} |")


if __name__ == "__main__":
    main()
