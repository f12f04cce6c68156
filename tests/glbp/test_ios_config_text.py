"""IOS configuration text: parse into RouterConfig, render back, refuse bad lines clearly."""

from __future__ import annotations

import re
from dataclasses import replace
from ipaddress import IPv4Address, IPv4Interface
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pbxgate.config import Secret
from pbxgate.glbp.config import (
    AuthConfig,
    AuthMode,
    ClientCache,
    GlbpGroupConfig,
    InterfaceConfig,
    LoadBalancing,
    RouterConfig,
    TrackConfig,
    WeightingTrack,
)
from pbxgate.glbp.ios import (
    IosConfigError,
    expand_interface,
    parse_config,
    render_config,
    short_interface,
    show_running_config,
)

GOLDENS = Path(__file__).parent / "goldens"


def load_r2() -> RouterConfig:
    return parse_config((GOLDENS / "ios_R2_input.cfg").read_text(encoding="utf-8"))


def test_article_router_parses_field_by_field() -> None:
    config = load_r2()
    assert config.hostname == "R2"
    assert config.tracks == (TrackConfig(1, "Ethernet0/1"),)
    chain = config.key_chain("GLBP-KEYS")
    assert chain is not None and [k.key_id for k in chain.keys] == [1, 2]
    assert chain.keys[0].key_string == Secret("s3cret")
    e00 = config.interface("Ethernet0/0")
    assert e00 is not None
    assert e00.address == IPv4Interface("192.168.0.1/24")
    assert e00.mac_address == "aabb.cc00.2000" and not e00.shutdown
    g1 = e00.group(1)
    assert g1 == GlbpGroupConfig(
        group=1,
        enabled=True,
        virtual_ip=IPv4Address("192.168.0.254"),
        priority=110,
        preempt=True,
        weighting=130,
        weighting_lower=20,
        weighting_upper=129,
        weighting_tracks=(WeightingTrack(1, 111),),
        load_balancing=LoadBalancing.HOST_DEPENDENT,
        forwarder_preempt_delay=60,
    )
    g2 = e00.group(2)
    assert g2 is not None
    assert (g2.enabled, g2.virtual_ip) == (True, None)
    assert (g2.hello, g2.hold, g2.hello_msec, g2.hold_msec) == (0.25, 0.8, True, True)
    assert (g2.redirect, g2.timeout) == (300, 7200)
    assert g2.load_balancing is LoadBalancing.NONE and not g2.forwarder_preempt
    assert g2.authentication == AuthConfig(AuthMode.MD5_KEY_CHAIN, key_chain="GLBP-KEYS")
    assert (g2.name, g2.client_cache) == ("LAN2", ClientCache(1000, 60))
    e01 = config.interface("Ethernet0/1")
    assert e01 is not None and e01.shutdown and e01.glbp == ()


def test_running_config_golden_and_round_trip(golden) -> None:  # type: ignore[no-untyped-def]
    config = load_r2()
    text = show_running_config(config)
    golden(GOLDENS / "ios_R2_running_config.txt", text)
    assert parse_config(text) == config
    body = render_config(config)
    assert f"Current configuration : {len(body)} bytes\n" in text


def test_defaults_are_not_printed() -> None:
    config = RouterConfig("R9").with_interface(
        InterfaceConfig("Ethernet0/0").with_group(GlbpGroupConfig(5, enabled=True))
    )
    assert render_config(config) == (
        "!\nhostname R9\n!\ninterface Ethernet0/0\n no ip address\n glbp 5 ip\n!\nend\n"
    )


def test_ipv6_and_secondary_addresses_round_trip() -> None:
    text = (
        "interface e0/0\n glbp 55 ipv6 fe80::1:254\n glbp 1 ip 10.0.0.254\n"
        " glbp 1 ip 10.0.1.254 secondary\n glbp 1 ip 10.0.2.254 secondary\n"
        " no glbp 1 ip 10.0.1.254 secondary\n"
    )
    config = parse_config(text)
    e00 = config.interface("Ethernet0/0")
    assert e00 is not None
    assert str(e00.group(55).virtual_ip) == "fe80::1:254"  # type: ignore[union-attr]
    assert e00.group(1).secondary_ips == (IPv4Address("10.0.2.254"),)  # type: ignore[union-attr]
    assert " glbp 55 ipv6 fe80::1:254\n" in render_config(config)
    assert parse_config(render_config(config)) == config


def test_route_track_round_trips() -> None:
    text = "track 2 ip route 10.1.0.0 255.255.0.0 reachability\n"
    text += "interface e0/0\n glbp 1 ip 10.0.0.254\n"
    config = parse_config(text)
    track = config.track(2)
    assert track is not None and str(track.route) == "10.1.0.0/16"
    assert track.kind == "reachability" and track.interface == ""
    assert "track 2 ip route 10.1.0.0 255.255.0.0 reachability\n" in render_config(config)
    assert parse_config(render_config(config)) == config


def test_no_forms_restore_defaults() -> None:
    text = (GOLDENS / "ios_R2_input.cfg").read_text(encoding="utf-8").replace("end\n", "")
    text += "\n".join(
        [
            "interface Ethernet0/0",
            " no glbp 1 priority",
            " no glbp 1 preempt",
            " no glbp 1 weighting",
            " no glbp 1 weighting track 1",
            " glbp 1 load-balancing",
            " glbp 1 forwarder preempt",
            " no glbp 1 ip",
            " no glbp 2",
            " no mac-address",
            " no ip address",
            "interface Ethernet0/1",
            " no shutdown",
            "no track 1",
            "no key chain GLBP-KEYS",
        ]
    )
    config = parse_config(text)
    e00 = config.interface("Ethernet0/0")
    assert e00 is not None and e00.address is None and e00.mac_address is None
    assert e00.glbp == (GlbpGroupConfig(1),)
    assert config.tracks == () and config.key_chains == ()
    assert not config.interface("Ethernet0/1").shutdown  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "interface e0/0\n glbp 1 load-balancing host-depended\n",
            "r2.cfg:2: 'glbp 1 load-balancing host-depended': invalid input at 'host-depended'",
        ),
        ("interface e0/0\n glbp 1 priority 256\n", "r2.cfg:2: 'glbp 1 priority 256': invalid"),
        ("interface e0/0\n glbp 1\n", "r2.cfg:2: 'glbp 1': % Incomplete command."),
        ("hostnam R2\nfoo\n", "r2.cfg:2: 'foo': invalid input at 'foo'"),
        ("interface e0/0\n glbp 1 timers 3 3\n", "Hold time must be greater"),
    ],
)
def test_bad_lines_name_file_line_and_word(text: str, message: str) -> None:
    with pytest.raises(IosConfigError) as info:
        parse_config(text, source="r2.cfg")
    assert message in str(info.value)


def test_a_real_router_configuration_loads_with_unmodelled_lines_skipped() -> None:
    text = (GOLDENS / "ios_real_router.cfg").read_text(encoding="utf-8")
    with pytest.raises(IosConfigError, match=re.escape("R3.cfg:8: 'service timestamps debug")):
        parse_config(text, source="R3.cfg")
    skipped: list[str] = []
    config = parse_config(text, source="R3.cfg", skipped=skipped)
    assert config.hostname == "R3" and config.tracks == (TrackConfig(2, "Ethernet0/1"),)
    group = config.interface("Ethernet0/0").group(1)  # type: ignore[union-attr]
    assert group is not None and group.weighting_tracks == (WeightingTrack(2, 20),)
    assert skipped[0] == "R3.cfg:8: service timestamps debug datetime msec"
    assert "R3.cfg:28: duplex auto" in skipped and "R3.cfg:34: ip ospf cost 10" in skipped
    assert "R3.cfg:37: network 10.0.1.0 0.0.0.3 area 0" in skipped
    assert len(skipped) == 23
    bad_glbp = text.replace(" glbp 1 ip 192.168.0.254", " glbp 1 ip 192.168.0.2544")
    with pytest.raises(IosConfigError, match=re.escape("R3.cfg:29:")):
        parse_config(bad_glbp, source="R3.cfg", skipped=[])


def test_secrets_never_appear_in_errors() -> None:
    for text in (
        "interface e0/0\n glbp 1 authentication text TOPSECRET extra\n",
        "interface e0/0\n glbp 1 authentication md5 key-string TOPSECRET extra\n",
        "key chain K\n key 1\n  key-string TOPSECRET extra\n",
    ):
        with pytest.raises(IosConfigError) as info:
            parse_config(text)
        assert "TOPSECRET" not in str(info.value) and "********" in str(info.value)


def test_interface_names() -> None:
    assert expand_interface("e0/0") == "Ethernet0/0"
    assert expand_interface("Fa0/1") == "FastEthernet0/1"
    assert expand_interface("gi 0/0/1") == "GigabitEthernet0/0/1"
    assert expand_interface("t0/0") is None  # Tunnel or TenGigabitEthernet
    assert expand_interface("e0/") is None
    assert short_interface("Ethernet0/0") == "Et0/0"
    assert short_interface("Weird0") == "Weird0"


groups = st.builds(
    GlbpGroupConfig,
    group=st.integers(0, 1023),
    enabled=st.booleans(),
    priority=st.integers(1, 255),
    preempt=st.booleans(),
    weighting=st.integers(100, 254),
    weighting_lower=st.integers(1, 99),
    load_balancing=st.sampled_from(LoadBalancing),
    forwarder_preempt=st.booleans(),
    forwarder_preempt_delay=st.integers(0, 3600),
    redirect=st.integers(0, 3600),
    timeout=st.integers(700, 64800),
    name=st.one_of(st.none(), st.from_regex(r"[A-Za-z][A-Za-z0-9_-]{0,10}", fullmatch=True)),
    weighting_tracks=st.lists(
        st.builds(WeightingTrack, st.integers(1, 1000), st.integers(1, 254)),
        unique_by=lambda t: t.track,
        max_size=3,
    ).map(lambda ts: tuple(sorted(ts, key=lambda t: t.track))),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(groups, unique_by=lambda g: g.group, max_size=3))
def test_any_group_configuration_round_trips(items: list[GlbpGroupConfig]) -> None:
    interface = InterfaceConfig("Ethernet0/0", IPv4Interface("10.0.0.1/24"))
    for item in items:
        preempt_delay = item.preempt_delay if item.preempt else 0
        delay = item.forwarder_preempt_delay if item.forwarder_preempt else 30
        fixed = replace(item, preempt_delay=preempt_delay, forwarder_preempt_delay=delay)
        interface = interface.with_group(fixed)
    config = RouterConfig("R1", (interface,))
    assert parse_config(render_config(config)) == config
