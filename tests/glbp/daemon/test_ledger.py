"""The ledger: what the daemon changed, on disk before each change, for the next start."""

from __future__ import annotations

import stat
from pathlib import Path

from pbxgate.glbp.daemon.ledger import Ledger


def test_changes_survive_the_process(tmp_path: Path) -> None:
    path = tmp_path / "run" / "glbp.ledger"
    ledger = Ledger(path)
    assert ledger.empty()
    ledger.add("link", "glbp2v1f1")
    ledger.remember_sysctl("net/ipv4/conf/eth0/arp_ignore", "0")
    again = Ledger(path)
    assert again.items("link") == ["glbp2v1f1"]
    assert again.sysctls() == {"net/ipv4/conf/eth0/arp_ignore": "0"}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_the_first_value_is_the_original(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "l")
    ledger.remember_sysctl("net/ipv4/conf/eth0/arp_ignore", "0")
    ledger.remember_sysctl("net/ipv4/conf/eth0/arp_ignore", "1")  # a second change
    assert Ledger(tmp_path / "l").sysctls()["net/ipv4/conf/eth0/arp_ignore"] == "0"


def test_undone_items_leave_it_empty(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "l")
    ledger.add("link", "glbp2v1f1")
    ledger.remember_sysctl("a", "0")
    ledger.remove("link", "glbp2v1f1")
    ledger.forget_sysctl("a")
    assert Ledger(tmp_path / "l").empty()


def test_a_damaged_file_reads_as_empty(tmp_path: Path) -> None:
    path = tmp_path / "l"
    path.write_text('{"link": ', encoding="utf-8")
    assert Ledger(path).empty()
