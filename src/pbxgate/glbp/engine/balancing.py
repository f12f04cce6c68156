"""How the AVG picks a virtual MAC for each ARP request (per host, not per packet; REF §3).

- **round-robin** (IOS default): the next forwarder in number order after the last one handed out.
- **weighted**: Cisco publishes no algorithm (REF §3: "unpublished"). We use *smooth weighted
  round-robin* (the nginx upstream algorithm): each pick adds every candidate's weight to its
  running score, hands out the highest score (ties: lower forwarder number) and subtracts the
  total from the winner. Over any window of ``sum(weights)`` picks each forwarder gets exactly
  its share, and picks are interleaved rather than bunched.
- **host-dependent**: Cisco only says the source MAC decides and that a host keeps its forwarder
  while the forwarder set is unchanged (NX). We use *rendezvous (highest random weight)
  hashing*: the host gets the forwarder whose ``blake2b(host MAC | vMAC)`` is highest. It is
  stable while the set is unchanged and, when a forwarder leaves, only that forwarder's hosts move.
- **none**: the AVG answers with its own vMAC (REF §3, NX).

The result cannot be bit-compatible with IOS for weighted and host-dependent (REF §7).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from pbxgate.glbp.config import LoadBalancing


@dataclass(frozen=True, slots=True)
class Candidate:
    """A forwarder the AVG may hand out: its number, vMAC and advertised weight."""

    number: int
    vmac: str
    weight: int


class Balancer:
    """Keeps the per-method state (round-robin position, weighted scores) of one AVG."""

    def __init__(self, method: LoadBalancing) -> None:
        self.method = method
        self._last: int = 0
        self._scores: dict[int, int] = {}

    def choose(
        self, host_mac: str, candidates: Sequence[Candidate], own: int | None
    ) -> Candidate | None:
        """The forwarder for ``host_mac``; None when there is nothing to hand out."""
        if not candidates:
            return None
        ordered = sorted(candidates, key=lambda c: c.number)
        if self.method is LoadBalancing.NONE:
            return _own_or_first(ordered, own)
        if self.method is LoadBalancing.WEIGHTED:
            return self._weighted(ordered)
        if self.method is LoadBalancing.HOST_DEPENDENT:
            return host_dependent(host_mac, ordered)
        return self._round_robin(ordered)

    def _round_robin(self, ordered: Sequence[Candidate]) -> Candidate:
        for item in ordered:
            if item.number > self._last:
                self._last = item.number
                return item
        self._last = ordered[0].number
        return ordered[0]

    def _weighted(self, ordered: Sequence[Candidate]) -> Candidate:
        present = {c.number for c in ordered}
        for number in list(self._scores):
            if number not in present:
                del self._scores[number]
        total = 0
        for item in ordered:
            weight = max(item.weight, 0)
            total += weight
            self._scores[item.number] = self._scores.get(item.number, 0) + weight
        best = max(ordered, key=lambda c: (self._scores[c.number], -c.number))
        self._scores[best.number] -= total
        return best


def host_dependent(host_mac: str, ordered: Sequence[Candidate]) -> Candidate:
    """Rendezvous hashing of the host MAC over the forwarder set (see the module docstring)."""

    def score(item: Candidate) -> bytes:
        key = f"{host_mac.lower()}|{item.vmac}".encode()
        return hashlib.blake2b(key, digest_size=8).digest()

    return max(ordered, key=score)


def _own_or_first(ordered: Sequence[Candidate], own: int | None) -> Candidate:
    for item in ordered:
        if item.number == own:
            return item
    return ordered[0]


__all__ = ["Balancer", "Candidate", "host_dependent"]
