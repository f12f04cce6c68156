"""The ``lab`` fixture: a fresh network-namespace :class:`Lab` per test.

Every test here is skipped, with the reason, only when the machine cannot make namespaces at
all (not root, or no ``ip netns``); CI runs as root, so there they always run.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.glbp.live.netns import Lab, cleanup_stale


@functools.cache
def _unavailable() -> str:
    """Why namespaces cannot be made here, or "" when they can."""
    if os.geteuid() != 0:
        return "the network-namespace lab needs root (CI runs as root)"
    ip = shutil.which("ip")
    if ip is None:
        return "iproute2's ip is not installed (apt-get install iproute2)"
    probe = subprocess.run([ip, "netns", "list"], capture_output=True, text=True, check=False)
    if probe.returncode:
        return f"ip netns is unavailable: {probe.stderr.strip()}"
    return ""


@pytest.fixture(autouse=True)
def _needs_netns() -> None:
    if _unavailable():
        pytest.skip(_unavailable())


@pytest.fixture(scope="session")
def _stale_cleared() -> None:
    """Leftovers of crashed earlier runs go before the first lab of this run is built."""
    if not _unavailable():
        cleanup_stale()


@pytest.fixture
def lab(_stale_cleared: None, tmp_path: Path) -> Iterator[Lab]:
    """A started lab (switch and wan only); logs and captures land in ``tmp_path``."""
    with Lab(workdir=tmp_path) as built:
        yield built
