"""The ``glbp <group> ...`` interface commands and their ``no`` forms (``reference/glbp.md`` §4).

Each command updates one :class:`GlbpGroupConfig` of the interface being configured. Ranges
follow the reference (§3 table, §4); those it marks [unverified] are noted here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from ipaddress import IPv4Address, IPv6Address
from typing import Any

from pbxgate.config import Secret
from pbxgate.glbp import config as cfg
from pbxgate.glbp.config import (
    AuthConfig,
    AuthMode,
    ClientCache,
    GlbpGroupConfig,
    InterfaceConfig,
    LoadBalancing,
    WeightingTrack,
)
from pbxgate.glbp.ios.grammar import Grammar
from pbxgate.glbp.ios.state import Context

# "glbp 1 ?" on IOS 15 (CCIEME) plus the newer keywords; wording of the descriptions follows
# IOS help where it is quoted (load-balancing methods: NSS), otherwise it is ours.
HELP = {
    "glbp": "Gateway Load Balancing Protocol interface commands",
    "group": "Group number",
    "authentication": "Authentication method",
    "client-cache": "Client cache",
    "forwarder": "Forwarder configuration",
    "ip": "Enable group and set virtual IP address",
    "ipv6": "Enable group and set virtual IPv6 address",
    "load-balancing": "Load balancing method",
    "name": "Redundancy name",
    "preempt": "Overthrow lower priority designated routers",
    "priority": "Priority level",
    "timers": "Adjust GLBP timers",
    "weighting": "Gateway weighting and tracking",
    "host-dependent": "Load balance equally, source MAC determines forwarder choice",
    "round-robin": "Load balance equally using each forwarder in turn",
    "weighted": "Load balance in proportion to forwarder weighting",
    "vip": "Virtual IP address",
    "vip6": "Virtual IPv6 link-local address",
    "secondary": "Make this IP address a secondary virtual IP address",
    "level": "Priority value",
    "delay": "Wait before preempting",
    "minimum": "Delay at least this long",
    "seconds": "Number of seconds for minimum delay",
    "maximum": "Maximum number of clients in the cache",
    "weight": "Weighting maximum value",
    "lower": "Weighting lower threshold",
    "upper": "Weighting upper threshold",
    "low": "Weighting lower threshold value",
    "high": "Weighting upper threshold value",
    "track": "Interface tracking",
    "object": "Tracked object number",
    "decrement": "Weighting decrement when the object goes down",
    "amount": "Decrement value",
    "msec": "Specify hello interval in milliseconds",
    "hello": "Hello interval in seconds",
    "hold": "Hold time in seconds",
    "hello_ms": "Hello interval in milliseconds",
    "hold_ms": "Hold time in milliseconds",
    "redirect": "Specify time-out values for failed forwarders",
    "redirect_s": "Redirect timeout in seconds",
    "timeout_s": "Forwarder timeout in seconds",
    "text": "Plain text authentication",
    "md5": "MD5 authentication",
    "key-string": "Authentication key string",
    "key-chain": "Authentication key-chain",
    "string": "Authentication string",
    "chain": "Name of key-chain",
    "0": "Specifies an UNENCRYPTED key string will follow",
    "7": "Specifies a HIDDEN key string will follow",
    "word": "Redundancy name string",
    "clients": "Number of clients",
    "timeout": "Client entry timeout",
    "minutes": "Timeout in minutes",
}

G = "glbp {group:0-1023}"
Handler = Callable[[Context], None]


def _group(ctx: Context) -> tuple[InterfaceConfig, GlbpGroupConfig]:
    name = ctx.mode.interface if ctx.mode else None
    if name is None:  # the grammar is only reachable in config-if mode
        raise RuntimeError("glbp command outside interface configuration")
    interface = ctx.state.config.interface(name) or InterfaceConfig(name)
    number = int(ctx.values["group"])
    return interface, interface.group(number) or GlbpGroupConfig(number)


def _set(ctx: Context, **changes: Any) -> None:
    interface, group = _group(ctx)
    try:
        updated = replace(group, **changes)
    except ValueError as exc:
        ctx.fail(f"% {str(exc).capitalize()}")
        return
    ctx.state.config = ctx.state.config.with_interface(interface.with_group(updated))


def _setter(**changes: Any) -> Handler:
    return lambda ctx: _set(ctx, **changes)


def _from_values(**names: str) -> Handler:
    """Set fields from parameter values: ``_from_values(priority="level")``."""
    return lambda ctx: _set(ctx, **{f: ctx.values[v] for f, v in names.items()})


def _remove_group(ctx: Context) -> None:
    interface, group = _group(ctx)
    ctx.state.config = ctx.state.config.with_interface(interface.without_group(group.group))


def _warn_outside_subnet(ctx: Context, vip: IPv4Address | IPv6Address | None) -> None:
    """A warning for an IPv4 virtual IP outside the interface's (primary) subnet; the address
    is kept, as IOS keeps an FHRP address it warns about (its group then shows the wrong
    subnet), and a configuration file holding one still loads.

    Wording as IOS 15 prints it for HSRP (``% Warning: address is not within a subnet on this
    interface``) [unverified for GLBP]. Secondary interface addresses are not modelled, so a
    virtual IP in one of their subnets is warned about too.
    """
    interface, _ = _group(ctx)
    address = interface.address
    if isinstance(vip, IPv4Address) and address is not None and vip not in address.network:
        ctx.output.append("% Warning: address is not within a subnet on this interface")


def _ip(ctx: Context) -> None:
    vip = ctx.values.get("vip") or ctx.values.get("vip6")
    _warn_outside_subnet(ctx, vip)
    _set(ctx, enabled=True, virtual_ip=vip)


def _secondary(add: bool) -> Handler:
    def apply(ctx: Context) -> None:
        _, group = _group(ctx)
        vip = ctx.values["vip"]
        if add:
            _warn_outside_subnet(ctx, vip)
        others = tuple(a for a in group.secondary_ips if a != vip)
        _set(ctx, secondary_ips=(*others, vip) if add else others)

    return apply


def _preempt(ctx: Context) -> None:
    _set(ctx, preempt=True, preempt_delay=ctx.values.get("seconds", 0))


def _forwarder_preempt(ctx: Context) -> None:
    delay = ctx.values.get("seconds", cfg.DEFAULT_FORWARDER_PREEMPT_DELAY)
    _set(ctx, forwarder_preempt=True, forwarder_preempt_delay=delay)


def _weighting(ctx: Context) -> None:
    lower = ctx.values.get("low", cfg.DEFAULT_LOWER)
    _set(
        ctx,
        weighting=ctx.values["weight"],
        weighting_lower=lower,
        weighting_upper=ctx.values.get("high"),
    )


def _track(add: bool) -> Handler:
    def apply(ctx: Context) -> None:
        _, group = _group(ctx)
        number = ctx.values["object"]
        others = [t for t in group.weighting_tracks if t.track != number]
        if add:
            decrement = ctx.values.get("amount", cfg.DEFAULT_DECREMENT)
            others.append(WeightingTrack(number, decrement))
        _set(ctx, weighting_tracks=tuple(sorted(others, key=lambda t: t.track)))

    return apply


def _timers(ctx: Context) -> None:
    hello_ms = "hello_ms" in ctx.values
    hold_ms = "hold_ms" in ctx.values
    hello = ctx.values["hello_ms"] / 1000 if hello_ms else float(ctx.values["hello"])
    hold = ctx.values["hold_ms"] / 1000 if hold_ms else float(ctx.values["hold"])
    if hold <= hello:
        ctx.fail("% Hold time must be greater than hello time")
        return
    _set(ctx, hello=hello, hold=hold, hello_msec=hello_ms, hold_msec=hold_ms)


def _auth(mode: AuthMode, encrypted: bool = False) -> Handler:
    def apply(ctx: Context) -> None:
        if mode is AuthMode.MD5_KEY_CHAIN:
            auth = AuthConfig(mode, key_chain=ctx.values["chain"])
        else:
            auth = AuthConfig(mode, Secret(ctx.values["string"]), encrypted=encrypted)
        _set(ctx, authentication=auth)

    return apply


def _client_cache(ctx: Context) -> None:
    timeout = ctx.values.get("minutes", cfg.DEFAULT_CLIENT_CACHE_TIMEOUT)
    _set(ctx, client_cache=ClientCache(ctx.values["clients"], timeout))


def add_glbp_commands(grammar: Grammar) -> None:
    """Register every ``glbp`` interface command and its ``no`` form."""
    _add_positive(grammar)
    _add_negative(grammar)


def _add_positive(g: Grammar) -> None:
    add = g.add
    add(f"{G} ip", _ip, HELP)
    add(f"{G} ip {{vip:A.B.C.D}}", _ip, HELP)
    add(f"{G} ip {{vip:A.B.C.D}} secondary", _secondary(True), HELP)
    add(f"{G} ipv6 {{vip6:X:X:X:X::X}}", _ip, HELP)
    add(f"{G} priority {{level:1-255}}", _from_values(priority="level"), HELP)
    add(f"{G} preempt", _preempt, HELP)
    add(f"{G} preempt delay minimum {{seconds:0-3600}}", _preempt, HELP)
    add(f"{G} forwarder preempt", _forwarder_preempt, HELP)
    add(f"{G} forwarder preempt delay minimum {{seconds:0-3600}}", _forwarder_preempt, HELP)
    add(f"{G} weighting {{weight:1-254}}", _weighting, HELP)
    add(f"{G} weighting {{weight:1-254}} lower {{low:1-254}}", _weighting, HELP)
    add(
        f"{G} weighting {{weight:1-254}} lower {{low:1-254}} upper {{high:1-254}}",
        _weighting,
        HELP,
    )
    add(f"{G} weighting {{weight:1-254}} upper {{high:1-254}}", _weighting, HELP)
    add(f"{G} weighting track {{object:1-1000}}", _track(True), HELP)
    add(f"{G} weighting track {{object:1-1000}} decrement {{amount:1-254}}", _track(True), HELP)
    add(f"{G} load-balancing", _setter(load_balancing=LoadBalancing.ROUND_ROBIN), HELP)
    for method in (LoadBalancing.HOST_DEPENDENT, LoadBalancing.ROUND_ROBIN, LoadBalancing.WEIGHTED):
        add(f"{G} load-balancing {method.value}", _setter(load_balancing=method), HELP)
    # hello 1-60 s or 50-60000 ms; hold up to 180 s [unverified ranges, REF §3]
    hello, hold = "{hello:1-60}", "{hold:2-180}"
    hello_ms, hold_ms = "{hello_ms:50-60000}", "{hold_ms:51-180000}"
    for first in (hello, f"msec {hello_ms}"):
        for second in (hold, f"msec {hold_ms}"):
            add(f"{G} timers {first} {second}", _timers, HELP)
    # redirect 0-3600, timeout 700-64800 [unverified, REF §3]
    redirect = _from_values(redirect="redirect_s", timeout="timeout_s")
    add(f"{G} timers redirect {{redirect_s:0-3600}} {{timeout_s:700-64800}}", redirect, HELP)
    add(f"{G} authentication text {{string:WORD}}", _auth(AuthMode.TEXT), HELP)
    add(f"{G} authentication md5 key-string {{string:WORD}}", _auth(AuthMode.MD5_KEY_STRING), HELP)
    add(
        f"{G} authentication md5 key-string 0 {{string:WORD}}", _auth(AuthMode.MD5_KEY_STRING), HELP
    )
    add(
        f"{G} authentication md5 key-string 7 {{string:WORD}}",
        _auth(AuthMode.MD5_KEY_STRING, encrypted=True),
        HELP,
    )
    add(f"{G} authentication md5 key-chain {{chain:WORD}}", _auth(AuthMode.MD5_KEY_CHAIN), HELP)
    add(f"{G} name {{word:WORD}}", _from_values(name="word"), HELP)
    add(f"{G} client-cache maximum {{clients:8-2000}}", _client_cache, HELP)
    add(
        f"{G} client-cache maximum {{clients:8-2000}} timeout {{minutes:1-1440}}",
        _client_cache,
        HELP,
    )


def _add_negative(g: Grammar) -> None:
    def no(pattern: str, handler: Handler, accept_from: int) -> None:
        g.add(f"no {G} {pattern}".rstrip(), handler, HELP, accept_from=accept_from)

    d = GlbpGroupConfig(0)  # the defaults
    no("", _remove_group, 3)
    no("ip {vip:A.B.C.D}", _setter(enabled=False, virtual_ip=None), 4)
    no("ip {vip:A.B.C.D} secondary", _secondary(False), 6)
    no("ipv6 {vip6:X:X:X:X::X}", _setter(enabled=False, virtual_ip=None), 4)
    no("priority {level:1-255}", _setter(priority=d.priority), 4)
    no("preempt delay minimum {seconds:0-3600}", _setter(preempt=False, preempt_delay=0), 4)
    no("forwarder preempt delay minimum {seconds:0-3600}", _setter(forwarder_preempt=False), 5)
    reset = _setter(weighting=d.weighting, weighting_lower=d.weighting_lower, weighting_upper=None)
    no("weighting {weight:1-254} lower {low:1-254} upper {high:1-254}", reset, 4)
    no("weighting {weight:1-254} upper {high:1-254}", reset, 4)
    no("weighting track {object:1-1000} decrement {amount:1-254}", _track(False), 6)
    no("load-balancing", _setter(load_balancing=LoadBalancing.NONE), 4)
    for method in ("host-dependent", "round-robin", "weighted"):
        no(f"load-balancing {method}", _setter(load_balancing=LoadBalancing.NONE), 4)
    timers = _setter(hello=d.hello, hold=d.hold, hello_msec=False, hold_msec=False)
    no("timers {hello:1-60} {hold:2-180}", timers, 4)
    no("timers msec {hello_ms:50-60000} msec {hold_ms:51-180000}", timers, 4)
    no(
        "timers redirect {redirect_s:0-3600} {timeout_s:700-64800}",
        _setter(redirect=d.redirect, timeout=d.timeout),
        5,
    )
    no("authentication text {string:WORD}", _setter(authentication=AuthConfig()), 4)
    no("authentication md5 key-string {string:WORD}", _setter(authentication=AuthConfig()), 4)
    no("authentication md5 key-chain {chain:WORD}", _setter(authentication=AuthConfig()), 4)
    no("name {word:WORD}", _setter(name=None), 4)
    no(
        "client-cache maximum {clients:8-2000} timeout {minutes:1-1440}",
        _setter(client_cache=None),
        4,
    )


__all__ = ["HELP", "add_glbp_commands"]
