"""``show running-config``: a :class:`RouterConfig` rendered back as IOS text.

Only non-default settings are printed, as IOS does. The order of the ``glbp`` lines inside an
interface follows running configurations seen in labs (ip, timers, priority, preempt,
weighting, load-balancing, authentication, forwarder preempt, name, weighting track)
[inferred: no Cisco document fixes it]. :func:`parse_config` reads this text back.
"""

from __future__ import annotations

from collections.abc import Iterator

from pbxgate.glbp import config as cfg
from pbxgate.glbp.config import (
    AuthMode,
    GlbpGroupConfig,
    InterfaceConfig,
    KeyChain,
    LoadBalancing,
    RouterConfig,
)


def render_config(config: RouterConfig) -> str:
    """The body of ``show running-config`` (from ``hostname`` to ``end``)."""
    lines = ["!", f"hostname {config.hostname}", "!"]
    for chain in config.key_chains:
        lines += [*_key_chain(chain), "!"]
    for track in config.tracks:
        lines += [track.command, "!"]
    for interface in config.interfaces:
        lines += [*_interface(interface), "!"]
    lines.append("end")
    return "\n".join(lines) + "\n"


def show_running_config(config: RouterConfig) -> str:
    """``show running-config`` as IOS prints it, with its two header lines."""
    return _with_header(render_config(config))


def show_running_interface(config: RouterConfig, name: str) -> str:
    """``show running-config interface NAME``: that interface's block between ``!`` and
    ``end``, under the same header. An interface never configured shows its defaults, as
    an idle port does on IOS."""
    interface = config.interface(name) or InterfaceConfig(name)
    return _with_header("\n".join(["!", *_interface(interface), "end"]) + "\n")


# NVRAM size IOL/IOSv report in "Using N out of 262136 bytes" [inferred: lab outputs].
NVRAM_BYTES = 262136


def show_startup_config(config: RouterConfig | None) -> str:
    """``show startup-config``: the saved configuration, or IOS's note that there is none."""
    if config is None:
        return "startup-config is not present\n"
    body = render_config(config)
    return f"Using {len(body.encode('utf-8'))} out of {NVRAM_BYTES} bytes\n{body}"


def _with_header(body: str) -> str:
    size = len(body.encode("utf-8"))
    return f"Building configuration...\n\nCurrent configuration : {size} bytes\n{body}"


def _key_chain(chain: KeyChain) -> Iterator[str]:
    yield f"key chain {chain.name}"
    for key in chain.keys:
        yield f" key {key.key_id}"
        if key.key_string is not None:
            hidden = "7 " if key.encrypted else ""
            yield f"  key-string {hidden}{key.key_string.reveal()}"


def _interface(interface: InterfaceConfig) -> Iterator[str]:
    yield f"interface {interface.name}"
    if interface.description:
        yield f" description {interface.description}"
    if interface.mac_address:
        yield f" mac-address {interface.mac_address}"
    if interface.address is None:
        yield " no ip address"
    else:
        yield f" ip address {interface.address.ip} {interface.address.netmask}"
    for group in interface.glbp:
        yield from (f" {line}" for line in group_lines(group))
    if interface.shutdown:
        yield " shutdown"


def group_lines(group: GlbpGroupConfig) -> Iterator[str]:
    """The ``glbp <g> ...`` (and ``no glbp <g> ...``) lines that recreate ``group``."""
    for line in _group_lines(group):
        if line.startswith("no "):
            yield f"no glbp {group.group} {line[3:]}"
        else:
            yield f"glbp {group.group} {line}"


def _group_lines(group: GlbpGroupConfig) -> Iterator[str]:
    if group.enabled:
        yield _ip(group)
    for address in group.secondary_ips:
        yield f"ip {address} secondary"
    yield from _timers(group)
    if group.priority != cfg.DEFAULT_PRIORITY:
        yield f"priority {group.priority}"
    if group.preempt:
        yield "preempt" + (f" delay minimum {group.preempt_delay}" if group.preempt_delay else "")
    yield from _weighting(group)
    if group.load_balancing is LoadBalancing.NONE:
        yield "no load-balancing"
    elif group.load_balancing is not LoadBalancing.ROUND_ROBIN:
        yield f"load-balancing {group.load_balancing.value}"
    yield from _authentication(group)
    if not group.forwarder_preempt:
        yield "no forwarder preempt"
    elif group.forwarder_preempt_delay != cfg.DEFAULT_FORWARDER_PREEMPT_DELAY:
        yield f"forwarder preempt delay minimum {group.forwarder_preempt_delay}"
    if group.client_cache is not None:
        timeout = group.client_cache.timeout_minutes
        extra = f" timeout {timeout}" if timeout != cfg.DEFAULT_CLIENT_CACHE_TIMEOUT else ""
        yield f"client-cache maximum {group.client_cache.maximum}{extra}"
    if group.name:
        yield f"name {group.name}"
    for track in group.weighting_tracks:
        extra = f" decrement {track.decrement}" if track.decrement != cfg.DEFAULT_DECREMENT else ""
        yield f"weighting track {track.track}{extra}"


def _ip(group: GlbpGroupConfig) -> str:
    if group.virtual_ip is None:
        return "ip"
    return f"ip{'v6' if group.virtual_ip.version == 6 else ''} {group.virtual_ip}"


def _timers(group: GlbpGroupConfig) -> Iterator[str]:
    custom = group.hello_msec or group.hold_msec
    if custom or (group.hello, group.hold) != (cfg.DEFAULT_HELLO, cfg.DEFAULT_HOLD):
        hello, hold = _timer(group.hello, group.hello_msec), _timer(group.hold, group.hold_msec)
        yield f"timers {hello} {hold}"
    if (group.redirect, group.timeout) != (cfg.DEFAULT_REDIRECT, cfg.DEFAULT_TIMEOUT):
        yield f"timers redirect {group.redirect} {group.timeout}"


def _timer(seconds: float, msec: bool) -> str:
    return f"msec {round(seconds * 1000)}" if msec else f"{seconds:g}"


def _weighting(group: GlbpGroupConfig) -> Iterator[str]:
    lower = group.weighting_lower != cfg.DEFAULT_LOWER
    upper = group.weighting_upper is not None and group.weighting_upper != group.weighting
    if group.weighting == cfg.DEFAULT_WEIGHTING and not lower and not upper:
        return
    text = f"weighting {group.weighting}"
    if lower:
        text += f" lower {group.weighting_lower}"
    if upper:
        text += f" upper {group.weighting_upper}"
    yield text


def _authentication(group: GlbpGroupConfig) -> Iterator[str]:
    auth = group.authentication
    secret = auth.secret.reveal() if auth.secret is not None else ""
    if auth.mode is AuthMode.TEXT:
        yield f"authentication text {secret}"
    elif auth.mode is AuthMode.MD5_KEY_STRING:
        yield f"authentication md5 key-string {'7 ' if auth.encrypted else ''}{secret}"
    elif auth.mode is AuthMode.MD5_KEY_CHAIN:
        yield f"authentication md5 key-chain {auth.key_chain}"


__all__ = [
    "NVRAM_BYTES",
    "group_lines",
    "render_config",
    "show_running_config",
    "show_running_interface",
    "show_startup_config",
]
