"""The README and docs/glbp.md send a network engineer to ``examples/glbp/netns-demo.sh``: it
runs as written, shows what it says, and leaves nothing behind."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

DEMO = Path(__file__).resolve().parents[3] / "examples" / "glbp" / "netns-demo.sh"


def _namespaces() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True)
    return {line.split()[0] for line in out.stdout.splitlines() if line.strip()}


def test_the_netns_demo_runs_as_written() -> None:
    before = _namespaces()
    env = {**os.environ, "PBXGATE": str(Path(sys.executable).parent / "pbxgate")}
    run = subprocess.run(
        ["bash", str(DEMO)], env=env, capture_output=True, text=True, timeout=240, check=False
    )
    out = run.stdout
    assert run.returncode == 0, out + run.stderr
    # three hosts, each given its own forwarder by the AVG, each forwarder on its own router
    hosts = re.findall(r"h\d: gateway 192\.168\.0\.254 is at (\S+) -> forwarded by (r\d)\n", out)
    assert len(hosts) == 3, out
    assert len({mac for mac, _ in hosts}) == 3 and len({r for _, r in hosts}) == 3, out
    assert all(mac.startswith("00:07:b4:00:01:0") for mac, _ in hosts), out
    # h1's router dies: about a hold time of pings is lost (1 s: 50 at 20 ms), then they go
    # through another router, and h1 kept the vMAC it had
    lost, sent = map(int, re.search(r"(\d+) of (\d+) pings lost", out).groups())  # type: ignore[union-attr]
    assert sent >= 100 and lost < 100, out
    assert f"its ARP entry for the gateway is still {hosts[0][0]}" in out, out
    assert re.search(r"%GLBP-6-(FWD)?STATECHANGE", out), out
    assert _namespaces() == before  # everything it made is gone
