"""Weighting with thresholds and tracked objects (REF §3 [confirmed]).

The current weighting is the configured value minus the decrements of every tracked object that
is down (decrements of several down objects add up [inferred]), never below 1. It decides who
forwards, never who is AVG (networklessons forum t/1152: priority elects the AVG).

Hysteresis: a router whose weighting falls *below* ``lower`` gives up forwarding and resumes only
when the weighting is back *at or above* ``upper``. Cisco's text says "above" the upper threshold,
but its default upper threshold equals the configured weighting (100), which a recovered router
could never exceed; so recovery counts from ``upper`` inclusive.
"""

from __future__ import annotations

from collections.abc import Mapping

from pbxgate.glbp.config import WEIGHTING_MIN, GlbpGroupConfig


def current_weight(config: GlbpGroupConfig, tracks: Mapping[int, bool]) -> int:
    """Configured weighting minus the decrements of the tracked objects that are down."""
    down = sum(t.decrement for t in config.weighting_tracks if not tracks.get(t.track, True))
    return max(WEIGHTING_MIN, config.weighting - down)


def next_ok(config: GlbpGroupConfig, weight: int, ok: bool) -> bool:
    """Whether the router may forward, given its previous answer ``ok`` (hysteresis)."""
    if ok:
        return weight >= config.weighting_lower
    return weight >= config.upper_threshold


__all__ = ["current_weight", "next_ok"]
