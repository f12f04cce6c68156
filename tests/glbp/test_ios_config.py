"""The configuration model the engine consumes: defaults, ranges, copy-on-change helpers."""

from __future__ import annotations

from ipaddress import IPv4Address

import pytest

from pbxgate.config import Secret
from pbxgate.glbp.config import (
    AuthConfig,
    AuthMode,
    GlbpGroupConfig,
    InterfaceConfig,
    KeyChain,
    KeyChainKey,
    LoadBalancing,
    RouterConfig,
    TrackConfig,
    WeightingTrack,
)


def test_group_defaults_follow_cisco() -> None:
    group = GlbpGroupConfig(group=1)
    assert (group.priority, group.preempt, group.preempt_delay) == (100, False, 0)
    assert (group.weighting, group.weighting_lower, group.upper_threshold) == (100, 1, 100)
    assert group.load_balancing is LoadBalancing.ROUND_ROBIN
    assert (group.forwarder_preempt, group.forwarder_preempt_delay) == (True, 30)
    assert (group.hello, group.hold, group.redirect, group.timeout) == (3.0, 10.0, 600, 14400)
    assert group.authentication.mode is AuthMode.NONE
    assert not group.priority_configured


def test_upper_threshold_defaults_to_the_weighting_maximum() -> None:
    assert GlbpGroupConfig(group=1, weighting=130).upper_threshold == 130
    assert GlbpGroupConfig(group=1, weighting=130, weighting_upper=129).upper_threshold == 129


@pytest.mark.parametrize(
    "kwargs",
    [
        {"group": 1024},
        {"group": 1, "priority": 0},
        {"group": 1, "weighting": 255},
        {"group": 1, "hello": 10.0, "hold": 10.0},
        {"group": 1, "weighting_lower": 100},
        {"group": 1, "forwarder_preempt_delay": 3601},
    ],
)
def test_out_of_range_values_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        GlbpGroupConfig(**kwargs)  # type: ignore[arg-type]


def test_auth_secret_is_masked() -> None:
    auth = AuthConfig(AuthMode.MD5_KEY_STRING, Secret("CISCO"))
    assert "CISCO" not in repr(auth)
    with pytest.raises(ValueError):
        AuthConfig(AuthMode.TEXT)
    with pytest.raises(ValueError):
        AuthConfig(AuthMode.MD5_KEY_CHAIN)


def test_router_copy_helpers() -> None:
    group = GlbpGroupConfig(group=1, enabled=True, virtual_ip=IPv4Address("192.168.0.254"))
    intf = InterfaceConfig(name="Ethernet0/0").with_group(group)
    intf = intf.with_group(GlbpGroupConfig(group=0)).with_group(
        GlbpGroupConfig(group=1, priority=110, weighting_tracks=(WeightingTrack(1),))
    )
    assert [g.group for g in intf.glbp] == [0, 1]
    assert intf.group(1) is not None and intf.group(1).priority == 110  # type: ignore[union-attr]
    assert intf.group(1).track_decrement(1) == 10  # type: ignore[union-attr]
    assert intf.without_group(0).group(0) is None
    router = RouterConfig(hostname="R2").with_interface(intf)
    router = router.with_interface(InterfaceConfig(name="ethernet0/0", shutdown=True))
    assert len(router.interfaces) == 1 and router.interfaces[0].shutdown
    router = router.with_track(TrackConfig(2, "Ethernet0/1")).with_track(TrackConfig(1, "E0/2"))
    assert [t.number for t in router.tracks] == [1, 2]
    assert router.without_track(1).track(1) is None
    chain = KeyChain("K", (KeyChainKey(5, Secret("b")), KeyChainKey(2, Secret("a"))))
    router = router.with_key_chain(chain)
    assert router.key_chain("K") is chain
    assert chain.active_key() == KeyChainKey(2, Secret("a"))
    assert router.without_key_chain("K").key_chain("K") is None
