"""GLBP failover on real Linux routers: how long a host's traffic stops when its forwarder dies.

Three routers run ``pbxgate glbp run`` in network namespaces (the lab of
``tests/glbp/live/netns.py``); one host pings a target behind them every ``--interval``
seconds through its gateway's virtual MAC. Then the router forwarding for that vMAC fails:

* ``dead AVF``: a router that forwards for the host but is not the AVG loses power (its daemon
  is killed with SIGKILL and its LAN port goes dark). The vMAC moves when the survivors' hold
  time for it runs out.
* ``dead AVG``: the same for the AVG that is also the host's forwarder: the standby becomes AVG
  and a survivor takes the forwarder, each after its hold time.
* ``uplink``: its tracked uplink goes down; weighting falls below ``lower`` and the router gives
  the forwarder up in its next hello.

Reported per case: the longest silence between two replies at the host (ms) and the pings lost
(sent minus answered), median and worst over ``--runs``. The physical limit of the ``dead``
cases is the hold time (no protocol can know a silent router is dead sooner); of ``uplink``
one hello interval.

    sudo .venv/bin/python benchmarks/glbp_failover.py --runs 5
"""

from __future__ import annotations

import argparse
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.glbp.live.daemons import VIP, Daemon, config, start_all
from tests.glbp.live.netns import INTERNET, Lab, wait_for

TIMERS = {
    "default (3 s / 10 s)": "",
    "msec 200 / 700": " glbp 1 timers msec 200 msec 700\n",
    "msec 50 / 200": " glbp 1 timers msec 50 msec 200\n",
}


def one_run(case: str, timers: str, interval: float) -> tuple[float, int]:
    with Lab(workdir=Path(tempfile.mkdtemp(prefix="glbp-bench-"))) as lab:
        texts = {f"r{n}": config(f"R{n}", 110 - n, timers=timers) for n in (1, 2, 3)}
        for name in texts:
            lab.add_router(name)
        lab.add_host("h1")
        daemons = start_all(lab, texts)
        wait_for(lambda: _settled(daemons), 90, interval=0.2, what="AVG, standby, forwarders")
        avg = next(n for n, d in daemons.items() if d.role() == "Active")
        for _ in range(3):  # round-robin: each resolution gets the next forwarder
            mac = str(lab.resolve("h1", VIP))
            victim = next(n for n, d in daemons.items() if mac in d.vmacs().values())
            if (victim == avg) == (case == "dead AVG"):
                break
        ping = lab.pinger("h1", INTERNET, interval=interval)
        wait_for(lambda: ping.progress().received >= 20, 10, what="pings flowing")
        if case.startswith("dead"):
            daemons[victim].stop(signal.SIGKILL)
            lab.lan_link(victim, False)
        else:
            lab.uplink_down(victim)
        received = ping.progress().received
        wait_for(lambda: ping.progress().received >= received + 50, 30, what="pings again")
        result = ping.stop()
        _stop_all(daemons)
        return result.longest_silence_ms(), result.sent - result.received


def _settled(daemons: dict[str, Daemon]) -> bool:
    roles = sorted(d.role() for d in daemons.values())
    return roles == ["Active", "Listen", "Standby"] and all(d.vmacs() for d in daemons.values())


def _stop_all(daemons: dict[str, Daemon]) -> None:
    for daemon in daemons.values():
        if daemon.proc is not None:
            daemon.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--interval", type=float, default=0.01, help="ping interval, s")
    parser.add_argument("--timers", nargs="*", default=list(TIMERS))
    args = parser.parse_args()
    print(f"ping every {args.interval * 1000:g} ms; {args.runs} runs each; silence = longest gap")
    print("| timers | case | silence median ms | worst ms | lost median | worst |")
    print("|---|---|---:|---:|---:|---:|")
    for name in args.timers:
        for case in ("dead AVF", "dead AVG", "uplink"):
            runs = []
            for _ in range(args.runs):
                runs.append(one_run(case, TIMERS[name], args.interval))
                print(
                    f"  {name} {case}: {runs[-1][0]:.0f} ms, {runs[-1][1]} lost",
                    file=sys.stderr,
                    flush=True,
                )
                time.sleep(0.2)
            silences, losses = [r[0] for r in runs], [r[1] for r in runs]
            print(
                f"| {name} | {case} | {statistics.median(silences):.0f} | {max(silences):.0f} "
                f"| {statistics.median(losses):g} | {max(losses)} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
