"""The daemon's view of the host: Linux interface names in its IOS configuration, routes."""

from __future__ import annotations

import contextvars
import logging
import os
from ipaddress import IPv4Network
from pathlib import Path

import pytest

from pbxgate.glbp.config import RouterConfig
from pbxgate.glbp.daemon.errors import DaemonError
from pbxgate.glbp.daemon.host import Link, Route, _nexthop_flags, route_reachable
from pbxgate.glbp.daemon.ledger import Ledger
from pbxgate.glbp.daemon.main import hold_lock
from pbxgate.glbp.daemon.runtime import Daemon
from pbxgate.glbp.engine import BadAuth
from pbxgate.glbp.ios import parse_config
from pbxgate.glbp.ios.names import HOST_INTERFACES

TEXT = "interface eth0\n glbp 1 ip 192.168.0.254\ntrack 1 interface lan-up line-protocol\n"


def _parse(names: frozenset[str]) -> RouterConfig:
    def inner() -> RouterConfig:
        HOST_INTERFACES.set(names)
        return parse_config(TEXT.replace("lan-up", "eth1"))

    return contextvars.copy_context().run(inner)


def test_host_names_are_taken_as_they_are() -> None:
    config = _parse(frozenset({"eth0", "eth1"}))
    assert [i.name for i in config.interfaces] == ["eth0"]
    assert config.tracks[0].interface == "eth1"


def test_a_console_without_host_names_reads_ios_names() -> None:
    config = _parse(frozenset())
    assert [i.name for i in config.interfaces] == ["Ethernet0"]


def test_route_reachability_as_ios_tracks_it() -> None:
    eth1 = Link(3, "eth1", "02:00:00:00:00:03", admin_up=True, lower_up=True)
    down = Link(4, "eth2", "02:00:00:00:00:04", admin_up=True, lower_up=False)
    links = {3: eth1, 4: down}
    wanted = IPv4Network("198.51.100.0/24")
    default = Route(IPv4Network("0.0.0.0/0"), 3, unusable=False)
    assert not route_reachable([default], wanted, links)  # never through the default route
    covering = Route(IPv4Network("198.51.0.0/16"), 3, unusable=False)
    assert route_reachable([default, covering], wanted, links)
    assert not route_reachable([Route(IPv4Network("198.51.100.0/25"), 3, False)], wanted, links)
    assert not route_reachable([Route(wanted, 3, unusable=True)], wanted, links)  # linkdown
    assert not route_reachable([Route(wanted, 4, unusable=False)], wanted, links)
    assert route_reachable([Route(wanted, None, unusable=False)], wanted, links)


def test_multipath_and_default_routes() -> None:
    eth1 = Link(3, "eth1", "02:00:00:00:00:03", admin_up=True, lower_up=True)
    links = {3: eth1}
    default = Route(IPv4Network("0.0.0.0/0"), 3, unusable=False)
    assert route_reachable([default], IPv4Network("0.0.0.0/0"), links)  # track the default
    one_dead = {"multipath": [{"flags": 0x1}, {"flags": 0x4}]}  # dead + onlink
    all_down = {"multipath": [{"flags": 0x10}, {"flags": 0x1}]}
    assert _nexthop_flags(one_dead) == 0
    assert _nexthop_flags(all_down) != 0
    assert _nexthop_flags({}) == 0


def test_one_daemon_per_ledger(tmp_path: Path) -> None:
    ledger = tmp_path / "run" / "glbp.ledger"
    fd = hold_lock(ledger, "stop")
    try:
        with pytest.raises(DaemonError, match="another pbxgate glbp run is using"):
            hold_lock(ledger, "stop")
    finally:
        os.close(fd)
    os.close(hold_lock(ledger, "stop"))  # free again once the first is gone


def test_bad_authentication_is_logged_once_per_source_and_period(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    daemon = Daemon(RouterConfig(), ledger=Ledger(tmp_path / "l"))
    with caplog.at_level(logging.WARNING, logger="pbxgate.glbp"):
        for t in range(100):
            daemon._log_bad_auth(BadAuth(t * 0.1, "192.168.0.9", 1))
        daemon._log_bad_auth(BadAuth(5.0, "192.168.0.8", 1))
        daemon._log_bad_auth(BadAuth(40.0, "192.168.0.9", 1))
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "%GLBP-4-BADAUTH: Bad authentication received from 192.168.0.9, group 1",
        "%GLBP-4-BADAUTH: Bad authentication received from 192.168.0.8, group 1",
        "%GLBP-4-BADAUTH: Bad authentication received from 192.168.0.9, group 1"
        " (99 more since the last report)",
    ]
