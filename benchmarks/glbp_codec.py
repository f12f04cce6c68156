"""GLBP codec speed: encode + decode round trips per second.

Run: ``.venv/bin/python benchmarks/glbp_codec.py [--seconds 2]``. Two packets are measured:
the AVG's hello with one forwarder (60 bytes) and a hello with four forwarders (120 bytes).
"cold" cycles through 10,000 different packets (more than the codec's 4,096-entry caches
hold, so every call really encodes and parses); "repeated" sends the same packet again, as a
router repeating its hello does. Then MD5 key-chain sign + verify. Results go to
docs/glbp-wire.md ("Benchmark").
"""

from __future__ import annotations

import argparse
import itertools
import platform
import time
from collections.abc import Callable
from dataclasses import replace
from ipaddress import IPv4Address

from pbxgate.config import Secret
from pbxgate.glbp.auth import sign, verify
from pbxgate.glbp.config import AuthConfig, AuthMode, KeyChain, KeyChainKey
from pbxgate.glbp.wire import (
    Hello,
    Packet,
    ReqResp,
    VfState,
    VgState,
    decode,
    encode,
    parse_mac,
    virtual_mac,
)

OWNER = parse_mac("aabb.cc00.2000")
HELLO = Hello(VgState.ACTIVE, 110, 3000, 10000, 600, 14400, IPv4Address("192.168.0.254"))


def packet(forwarders: int, hello: Hello = HELLO) -> Packet:
    parts = tuple(
        ReqResp(n, VfState.ACTIVE if n == 1 else VfState.LISTEN, 167, 100, virtual_mac(1, n))
        for n in range(1, forwarders + 1)
    )
    return Packet(1, OWNER, (hello, *parts))


def distinct(forwarders: int, count: int = 10_000) -> list[Packet]:
    return [packet(forwarders, replace(HELLO, hello_ms=1000 + i)) for i in range(count)]


def rate(step: Callable[[], object], seconds: float) -> float:
    count, start = 0, time.perf_counter()
    deadline = start + seconds
    while time.perf_counter() < deadline:
        for _ in range(200):
            step()
        count += 200
    return count / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=2.0, help="time per measurement")
    args = parser.parse_args()
    print(f"python {platform.python_version()} on {platform.machine()}")
    for forwarders in (1, 4):
        p = packet(forwarders)
        size = len(encode(p))
        packets = distinct(forwarders)
        ring = itertools.cycle(packets)
        cold = rate(lambda ring=ring: decode(encode(next(ring))), args.seconds)
        warm = rate(lambda p=p: decode(encode(p)), args.seconds)
        label = f"encode+decode, hello + {forwarders} VF ({size} B)"
        print(f"{label}: cold {cold:,.0f}/s, repeated {warm:,.0f}/s")
    auth = AuthConfig(AuthMode.MD5_KEY_CHAIN, key_chain="K")
    chains = (KeyChain("K", (KeyChainKey(1, Secret("s3cret")),)),)
    source = IPv4Address("192.168.0.1")
    p = packet(1)

    def md5_round() -> bool:
        data = sign(p, auth, source=source, key_chains=chains)
        return verify(data, auth, source=source, key_chains=chains)

    print(f"MD5 key-chain sign+verify, hello + 1 VF: {rate(md5_round, args.seconds):,.0f} /s")


if __name__ == "__main__":
    main()
