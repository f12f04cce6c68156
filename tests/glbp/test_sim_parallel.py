"""Independent segments run in worker processes give exactly what one process gives."""

from __future__ import annotations

from pbxgate.glbp.sim.fleet import build_fleet, run_fleet, shards, summarize


def test_shards_cover_every_group_once_in_order() -> None:
    assert shards(10, 3) == [(0, 4), (4, 3), (7, 3)]
    assert shards(2, 8) == [(0, 1), (1, 1)]
    assert shards(5, 1) == [(0, 5)]


def test_parallel_run_is_identical_to_the_serial_run() -> None:
    serial = run_fleet(7, 4, 200.0, workers=1)
    parallel = run_fleet(7, 4, 200.0, workers=3)
    assert serial.avgs == 7
    assert serial.sent > 0 and serial.delivered > serial.sent
    assert parallel == serial
    assert parallel.digest == serial.digest


def test_one_network_of_all_groups_matches_groups_run_apart() -> None:
    together = build_fleet(0, 5, 5, wire=False)
    together.run_until(120.0)
    apart = [build_fleet(g, 1, 5, wire=False) for g in range(5)]
    for net in apart:
        net.run_until(120.0)
    outcomes = tuple(line for net in apart for line in summarize(net).outcomes)
    assert summarize(together).outcomes == outcomes
