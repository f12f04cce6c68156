"""``pbxgate-agi``'s Python side: ``bin/pbxgate-agi`` runs ``python -P -m pbxgate_agi``.

Asterisk sends SIGHUP to a process AGI when the caller hangs up (res_agi.c ``run_agi()``), and
the default action ends the process. The shell script ignores it before the interpreter
starts (an ignored signal stays ignored across exec); this module ignores it again first
thing, before anything of pbxgate is imported (loading pbxgate takes some 50 ms), for a run
that does not come through the script (``python -m pbxgate_agi``).
"""

import signal

signal.signal(signal.SIGHUP, signal.SIG_IGN)


def main() -> int:
    from pbxgate.agi.script import main as run  # noqa: PLC0415 - after the signal, on purpose

    return run()


if __name__ == "__main__":  # bin/pbxgate-agi runs it so
    raise SystemExit(main())
