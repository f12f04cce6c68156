"""``pbxgate-agi``'s entry point: SIGHUP is ignored before anything of pbxgate is imported.

Asterisk sends SIGHUP to a process AGI when the caller hangs up (res_agi.c ``run_agi()``), and
the default action ends the process. Loading pbxgate takes some 50 ms; a caller who hung up
in that time used to take the call's event with him. This module imports only ``signal``
(built into the interpreter) before it ignores the signal, so what is left is the
interpreter's own start. ``Set(AGISIGHUP=no)`` before ``AGI()`` closes that gap too (docs/agi.md).
"""

import signal

signal.signal(signal.SIGHUP, signal.SIG_IGN)


def main() -> int:
    from pbxgate.agi.script import main as run  # noqa: PLC0415 - after the signal, on purpose

    return run()


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
