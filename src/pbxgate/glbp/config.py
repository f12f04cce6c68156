"""GLBP router configuration: the input of the GLBP engine.

These dataclasses are what the engine (``pbxgate.glbp.engine``) consumes and what the IOS
configuration layer (``pbxgate.glbp.ios``) parses ``show running-config`` text into and renders
back from. They hold *configured* values only; values learned from the AVG (hello/hold) live in
the engine.

All classes are frozen: a configuration change is a new object (``dataclasses.replace``), so an
engine can compare the old and the new configuration and a command executor stays pure.

Defaults and ranges cite their source. Keys: **IOS-CG** = Cisco IOS 15.0M "Configuring GLBP";
**CREF** = Cisco IOS XE 16.5.1a Command Reference (Cat3650); **REF** =
``shared/reference/glbp.md`` (its confidence tags are repeated where a value is weakly sourced).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace
from ipaddress import IPv4Address, IPv4Interface, IPv4Network, IPv6Address

from pbxgate.config import Secret

# Ranges (IOS-CG, REF §3 table).
GROUP_MIN, GROUP_MAX = 0, 1023  # "glbp ?" -> "<0-1023>  Group number" (REF §4, CCIEME)
PRIORITY_MIN, PRIORITY_MAX = 1, 255
WEIGHTING_MIN, WEIGHTING_MAX = 1, 254
TRACK_MIN, TRACK_MAX = 1, 1000  # IOS 15 "track <1-1000>" [inferred from IOS help]
MAX_DELAY = 3600  # preempt / forwarder preempt delay 0-3600 s (CREF)

# Defaults (IOS-CG "GLBP default configuration", REF §3 table).
DEFAULT_PRIORITY = 100
DEFAULT_WEIGHTING = 100
DEFAULT_LOWER = 1
DEFAULT_UPPER = 100  # "upper: default is the maximum weighting", itself 100 by default
DEFAULT_DECREMENT = 10  # weighting track ... decrement: default 10 [REF: unverified]
DEFAULT_HELLO = 3.0  # seconds
DEFAULT_HOLD = 10.0  # seconds
DEFAULT_REDIRECT = 600  # seconds
DEFAULT_TIMEOUT = 14400  # seconds ("forwarder timeout")
DEFAULT_FORWARDER_PREEMPT_DELAY = 30  # seconds (CREF "glbp forwarder preempt")
DEFAULT_CLIENT_CACHE_TIMEOUT = 240  # minutes (IOS XE "glbp client-cache": 4 h) [REF: single]
CLIENT_CACHE_MAX = 2000  # "up to 2000 entries" (REF §3, CCNA60)


class LoadBalancing(enum.Enum):
    """``glbp <g> load-balancing ...``; NONE is ``no glbp <g> load-balancing``."""

    ROUND_ROBIN = "round-robin"  # the IOS default (IOS-CG)
    WEIGHTED = "weighted"
    HOST_DEPENDENT = "host-dependent"
    NONE = "none"  # the AVG hands out only its own vMAC (REF §3, NX)


class AuthMode(enum.Enum):
    """``glbp <g> authentication ...``; the values are the Auth TLV type codes (REF §2)."""

    NONE = 0
    TEXT = 1
    MD5_KEY_STRING = 2
    MD5_KEY_CHAIN = 3


@dataclass(frozen=True)
class AuthConfig:
    """Authentication of one group. ``secret`` is the text or key-string; never printed."""

    mode: AuthMode = AuthMode.NONE
    secret: Secret | None = None
    key_chain: str | None = None
    encrypted: bool = False  # key-string given as "7 <type-7 string>" (kept, not decoded)

    def __post_init__(self) -> None:
        if self.mode in (AuthMode.TEXT, AuthMode.MD5_KEY_STRING) and not self.secret:
            raise ValueError(f"authentication {self.mode.name.lower()} needs a string")
        if self.mode is AuthMode.MD5_KEY_CHAIN and not self.key_chain:
            raise ValueError("authentication md5 key-chain needs a key-chain name")


@dataclass(frozen=True)
class WeightingTrack:
    """``glbp <g> weighting track <obj> [decrement <d>]`` (REF §3)."""

    track: int
    decrement: int = DEFAULT_DECREMENT

    def __post_init__(self) -> None:
        _check("track object", self.track, TRACK_MIN, TRACK_MAX)
        _check("decrement", self.decrement, WEIGHTING_MIN, WEIGHTING_MAX)


@dataclass(frozen=True)
class ClientCache:
    """``glbp <g> client-cache maximum <n> [timeout <min>]``: off unless configured."""

    maximum: int
    timeout_minutes: int = DEFAULT_CLIENT_CACHE_TIMEOUT

    def __post_init__(self) -> None:
        _check("client-cache maximum", self.maximum, 8, CLIENT_CACHE_MAX)
        _check("client-cache timeout", self.timeout_minutes, 1, 1440)


@dataclass(frozen=True)
class GlbpGroupConfig:
    """Every ``glbp <group> ...`` interface command of one group.

    ``enabled`` is set by ``glbp <g> ip [<vip>]``; without a VIP the address is learned from
    the AVG (by analogy with HSRP, REF §4 [inferred]). Hello/hold are seconds as floats; the
    ``*_msec`` flags remember that they were configured with ``msec`` so that the running
    configuration renders back the way it was typed.
    """

    group: int
    enabled: bool = False
    virtual_ip: IPv4Address | IPv6Address | None = None
    secondary_ips: tuple[IPv4Address, ...] = ()
    priority: int = DEFAULT_PRIORITY
    preempt: bool = False  # AVG preemption is off by default (IOS-CG)
    preempt_delay: int = 0  # "Preemption enabled, min delay 0 sec" when on
    weighting: int = DEFAULT_WEIGHTING
    weighting_lower: int = DEFAULT_LOWER
    weighting_upper: int | None = None  # None: the weighting maximum (100 by default) (IOS-CG)
    weighting_tracks: tuple[WeightingTrack, ...] = ()
    load_balancing: LoadBalancing = LoadBalancing.ROUND_ROBIN
    forwarder_preempt: bool = True  # on, 30 s (CREF)
    forwarder_preempt_delay: int = DEFAULT_FORWARDER_PREEMPT_DELAY
    hello: float = DEFAULT_HELLO
    hold: float = DEFAULT_HOLD
    hello_msec: bool = False
    hold_msec: bool = False
    redirect: int = DEFAULT_REDIRECT
    timeout: int = DEFAULT_TIMEOUT
    authentication: AuthConfig = field(default_factory=AuthConfig)
    name: str | None = None
    client_cache: ClientCache | None = None

    def __post_init__(self) -> None:
        _check("group", self.group, GROUP_MIN, GROUP_MAX)
        _check("priority", self.priority, PRIORITY_MIN, PRIORITY_MAX)
        _check("weighting", self.weighting, WEIGHTING_MIN, WEIGHTING_MAX)
        _check("lower", self.weighting_lower, WEIGHTING_MIN, WEIGHTING_MAX)
        _check("upper", self.upper_threshold, WEIGHTING_MIN, WEIGHTING_MAX)
        if self.weighting_lower >= self.upper_threshold:
            raise ValueError("weighting lower threshold must be below the upper threshold")
        _check("preempt delay", self.preempt_delay, 0, MAX_DELAY)
        _check("forwarder preempt delay", self.forwarder_preempt_delay, 0, MAX_DELAY)
        if self.hello <= 0 or self.hold <= self.hello:
            raise ValueError("hold time must be greater than hello time")

    @property
    def upper_threshold(self) -> int:
        """The upper threshold in force: configured, else the weighting maximum (IOS-CG)."""
        return self.weighting if self.weighting_upper is None else self.weighting_upper

    @property
    def priority_configured(self) -> bool:
        """``show glbp`` prints ``Priority 100 (default)`` or ``(configured)``."""
        return self.priority != DEFAULT_PRIORITY

    def track_decrement(self, track: int) -> int | None:
        """The decrement configured for ``track``, or None when the group does not track it."""
        for item in self.weighting_tracks:
            if item.track == track:
                return item.decrement
        return None


@dataclass(frozen=True)
class InterfaceConfig:
    """``interface <name>`` with ``ip address``, ``shutdown``, ``mac-address`` and GLBP groups.

    ``name`` is the full IOS name (``Ethernet0/0``). ``mac_address`` is the burned-in address
    (the GLBP owner ID, REF §1); None lets the driver choose one.
    """

    name: str
    address: IPv4Interface | None = None
    shutdown: bool = False
    mac_address: str | None = None
    description: str | None = None
    glbp: tuple[GlbpGroupConfig, ...] = ()

    def group(self, number: int) -> GlbpGroupConfig | None:
        for item in self.glbp:
            if item.group == number:
                return item
        return None

    def with_group(self, config: GlbpGroupConfig) -> InterfaceConfig:
        """A copy with ``config`` replacing (or added as) its group, groups kept in order."""
        others = [g for g in self.glbp if g.group != config.group]
        groups = tuple(sorted([*others, config], key=lambda g: g.group))
        return replace(self, glbp=groups)

    def without_group(self, number: int) -> InterfaceConfig:
        return replace(self, glbp=tuple(g for g in self.glbp if g.group != number))


@dataclass(frozen=True)
class TrackConfig:
    """Global ``track <n> interface <if> line-protocol`` or ``track <n> ip route <net> <mask>
    reachability`` (``route`` set, ``interface`` empty)."""

    number: int
    interface: str
    kind: str = "line-protocol"
    route: IPv4Network | None = None

    def __post_init__(self) -> None:
        _check("track object", self.number, TRACK_MIN, TRACK_MAX)

    @property
    def command(self) -> str:
        """The configuration line, as ``show running-config`` prints it."""
        if self.route is not None:
            net = self.route
            return f"track {self.number} ip route {net.network_address} {net.netmask} {self.kind}"
        return f"track {self.number} interface {self.interface} {self.kind}"


@dataclass(frozen=True)
class KeyChainKey:
    """``key <id>`` / ``key-string <s>`` inside ``key chain <name>``."""

    key_id: int
    key_string: Secret | None = None
    encrypted: bool = False  # "key-string 7 <type-7 string>" (decoded when used)


@dataclass(frozen=True)
class KeyChain:
    name: str
    keys: tuple[KeyChainKey, ...] = ()

    def active_key(self) -> KeyChainKey | None:
        """The key used to send: IOS picks the lowest-numbered valid key (no lifetimes here)."""
        usable = [k for k in self.keys if k.key_string]
        return min(usable, key=lambda k: k.key_id) if usable else None

    def key(self, key_id: int) -> KeyChainKey | None:
        for item in self.keys:
            if item.key_id == key_id:
                return item
        return None


@dataclass(frozen=True)
class RouterConfig:
    """One router: hostname, interfaces, track objects and key chains."""

    hostname: str = "Router"  # the IOS factory hostname
    interfaces: tuple[InterfaceConfig, ...] = ()
    tracks: tuple[TrackConfig, ...] = ()
    key_chains: tuple[KeyChain, ...] = ()

    def interface(self, name: str) -> InterfaceConfig | None:
        for item in self.interfaces:
            if item.name.lower() == name.lower():
                return item
        return None

    def track(self, number: int) -> TrackConfig | None:
        for item in self.tracks:
            if item.number == number:
                return item
        return None

    def key_chain(self, name: str) -> KeyChain | None:
        for item in self.key_chains:
            if item.name == name:
                return item
        return None

    def with_interface(self, config: InterfaceConfig) -> RouterConfig:
        """A copy with ``config`` replacing the interface of the same name (or appended)."""
        items = list(self.interfaces)
        for index, item in enumerate(items):
            if item.name.lower() == config.name.lower():
                items[index] = config
                break
        else:
            items.append(config)
        return replace(self, interfaces=tuple(items))

    def with_track(self, config: TrackConfig) -> RouterConfig:
        others = [t for t in self.tracks if t.number != config.number]
        return replace(self, tracks=tuple(sorted([*others, config], key=lambda t: t.number)))

    def without_track(self, number: int) -> RouterConfig:
        return replace(self, tracks=tuple(t for t in self.tracks if t.number != number))

    def with_key_chain(self, chain: KeyChain) -> RouterConfig:
        others = [c for c in self.key_chains if c.name != chain.name]
        return replace(self, key_chains=(*others, chain))

    def without_key_chain(self, name: str) -> RouterConfig:
        return replace(self, key_chains=tuple(c for c in self.key_chains if c.name != name))


def _check(what: str, value: int, low: int, high: int) -> None:
    if not low <= value <= high:
        raise ValueError(f"{what} {value} is out of range {low}-{high}")


__all__ = [
    "AuthConfig",
    "AuthMode",
    "ClientCache",
    "GlbpGroupConfig",
    "InterfaceConfig",
    "KeyChain",
    "KeyChainKey",
    "LoadBalancing",
    "RouterConfig",
    "TrackConfig",
    "WeightingTrack",
]
