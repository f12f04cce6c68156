"""Linux interface names in the daemon's IOS configuration."""

from __future__ import annotations

import contextvars

from pbxgate.glbp.config import RouterConfig
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
