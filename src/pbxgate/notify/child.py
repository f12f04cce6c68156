"""How ``pbxgate serve`` starts its child processes: ``python -P -m pbxgate.notify.child MODULE
[FD ...]``.

A stop signal (SIGTERM from systemd, SIGINT from a terminal) reaches every process of the
service, and the service stops its children itself, last, once the calls in progress are
committed. So the children ignore both, and from as early as they can: here, before the
module they run is imported (the outbox writer's imports alone take tens of milliseconds).
"""

from __future__ import annotations

import signal
import sys

signal.signal(signal.SIGINT, signal.SIG_IGN)
signal.signal(signal.SIGTERM, signal.SIG_IGN)

# what a child may be (nothing else is run)
MODULES = frozenset({"pbxgate.agi.apart", "pbxgate.notify.apart", "pbxgate.notify.writer"})


def main() -> int:
    if len(sys.argv) < 2 or sys.argv[1] not in MODULES:
        print("error: not one of pbxgate serve's child processes", file=sys.stderr)
        return 2
    import runpy  # noqa: PLC0415

    module = sys.argv.pop(1)
    runpy.run_module(module, run_name="__main__", alter_sys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
