"""The command grammars of each IOS mode (exec, config, config-if, key chain, key).

Handlers change ``ctx.state.config`` (a new frozen :class:`RouterConfig`) and ``ctx.mode``.
``show glbp``/``show track`` go to the caller's show handler; ``show running-config`` is
rendered here. ``do <command>`` is marked with :data:`DO` and run by the executor.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from ipaddress import IPv4Interface, IPv4Network
from typing import Any

from pbxgate.config import Secret
from pbxgate.glbp.config import InterfaceConfig, KeyChain, KeyChainKey, TrackConfig
from pbxgate.glbp.ios.glbp_commands import add_glbp_commands
from pbxgate.glbp.ios.grammar import Grammar
from pbxgate.glbp.ios.render import (
    show_running_config,
    show_running_interface,
    show_startup_config,
)
from pbxgate.glbp.ios.state import CONFIG, EXEC, Context, Mode, ModeKind

HELP = {
    "configure": "Enter configuration mode",
    "terminal": "Configure from the terminal",
    "debug": "Debugging functions (see also 'undebug')",
    "undebug": "Disable debugging functions (see also 'debug')",
    "disable": "Turn off privileged commands",
    "enable": "Turn on privileged commands",
    "exit": "Exit from the EXEC",
    "logout": "Exit from the EXEC",
    "show": "Show running system information",
    "glbp": "GLBP information",
    "track": "Tracking information",
    "running-config": "Current operating configuration",
    "brief": "Brief output",
    "detail": "Detailed output",
    "active": "Active routers",
    "disabled": "Disabled routers",
    "init": "Routers in init state",
    "listen": "Routers in listen state",
    "speak": "Routers in speak state",
    "standby": "Standby routers",
    "all": "Enable all debugging",
    "interface": "Select an interface to configure",
    "if": "Interface name",
    "group": "Group number",
    "object": "Tracked object",
    "hostname": "Set system's network name",
    "name": "This system's network name",
    "key": "Key management",
    "chain": "Key-chain management",
    "chain_name": "Key-chain name",
    "end": "Exit from configure mode",
    "do": "To run exec commands in config mode",
    "command": "Exec Command",
    "no": "Negate a command or set its defaults",
    "line-protocol": "Track interface line-protocol",
    "route": "IP route",
    "reachability": "Reachability",
    "ip": "Interface Internet Protocol config commands",
    "address": "Set the IP address of an interface",
    "addr": "IP address",
    "mask": "IP subnet mask",
    "shutdown": "Shutdown the selected interface",
    "mac-address": "Manually set interface MAC address",
    "mac": "MAC address",
    "description": "Interface specific description",
    "text": "Up to 240 characters describing this interface",
    "key_id": "Key identifier",
    "key-string": "Set key string",
    "string": "The UNENCRYPTED (cleartext) user password",
    "0": "Specifies an UNENCRYPTED password will follow",
    "7": "Specifies a HIDDEN password will follow",
    "startup-config": "Contents of startup configuration",
    "write": "Write running configuration to memory, network, or terminal",
    "memory": "Write to NV memory",
    "copy": "Copy from one file to another",
    "packets": "GLBP packets",
    "events": "GLBP events",
}

SHOW_RUN_HELP = {**HELP, "interface": "Show interface configuration"}
COPY_HELP = {
    **HELP,
    "running-config": "Copy from current system configuration",
    "startup-config": "Copy to startup configuration",
}

CONFIGURE_BANNER = "Enter configuration commands, one per line.  End with CNTL/Z."


def DO(ctx: Context) -> None:
    """``do <exec command>`` in a configuration mode."""


def _goto(mode: Mode | None, text: str | None = None) -> Callable[[Context], None]:
    def apply(ctx: Context) -> None:
        ctx.mode = mode
        if text:
            ctx.output.append(text)

    return apply


def _parent(ctx: Context) -> None:
    """``exit`` one level up."""
    mode = ctx.mode or EXEC
    if mode.kind is ModeKind.CONFIG_KEYCHAIN_KEY:
        ctx.mode = Mode(ModeKind.CONFIG_KEYCHAIN, key_chain=mode.key_chain)
    elif mode.kind in (ModeKind.CONFIG_IF, ModeKind.CONFIG_KEYCHAIN):
        ctx.mode = CONFIG
    else:
        ctx.mode = EXEC


def _show(ctx: Context) -> None:
    if ctx.words[:2] == ("show", "running-config"):
        config = ctx.state.config
        name = ctx.values.get("if")
        text = show_running_config(config) if name is None else show_running_interface(config, name)
        ctx.output.append(text.rstrip("\n"))
        return
    if ctx.state.show is None:
        ctx.fail("% GLBP state is shown by a running engine: try 'pbxgate glbp sim'")
        return
    text = ctx.state.show(ctx.words, ctx.state.config)
    if text:
        ctx.output.append(text.rstrip("\n"))


def _save(prompt: bool) -> Callable[[Context], None]:
    """``write memory`` and ``copy running-config startup-config``: the running configuration
    becomes the router's startup configuration. ``copy`` first asks for the destination; the
    default (``startup-config``) is taken, as Enter would on IOS."""

    def apply(ctx: Context) -> None:
        if prompt:
            ctx.output.append("Destination filename [startup-config]?")
        ctx.state.startup = ctx.state.config
        ctx.output += ["Building configuration...", "[OK]"]

    return apply


def _show_startup(ctx: Context) -> None:
    ctx.output.append(show_startup_config(ctx.state.startup).rstrip("\n"))


def _debug(on: bool) -> Callable[[Context], None]:
    def apply(ctx: Context) -> None:
        if on:
            ctx.state.debugs.add(" ".join(ctx.words[1:]))
            ctx.output.append("GLBP debugging is on")
        else:
            ctx.state.debugs.clear()
            ctx.output.append("All possible debugging has been turned off")

    return apply


# show glbp [<if>] [<group>] [<state>] [brief | detail] (reference/glbp.md §4)
SHOW_STATES = ("active", "disabled", "init", "listen", "speak", "standby")


def _add_show_glbp(g: Grammar) -> None:
    for prefix in (
        "show glbp",
        "show glbp {if:IF}",
        "show glbp {if:IF} {group:0-1023}",
        "show glbp {group:0-1023}",
    ):
        g.add(prefix, _show, HELP)
        for tail in ("brief", "detail", *SHOW_STATES, *(f"{s} brief" for s in SHOW_STATES)):
            g.add(f"{prefix} {tail}", _show, HELP)


def exec_grammar(privileged: bool) -> Grammar:
    g = Grammar()
    g.add("exit", _goto(None), HELP)
    g.add("logout", _goto(None), HELP)
    _add_show_glbp(g)
    g.add("show track {object:1-1000} brief", _show, HELP, accept_from=2)
    g.add("show track brief", _show, HELP)
    g.add("show running-config", _show, HELP)
    g.add("show running-config interface {if:IF}", _show, SHOW_RUN_HELP)
    if not privileged:
        g.add("enable", _goto(EXEC), HELP)
        return g
    g.add("disable", _goto(Mode(ModeKind.USER_EXEC)), HELP)
    g.add("configure terminal", _goto(CONFIG, CONFIGURE_BANNER), HELP)
    g.add("write", _save(prompt=False), HELP)
    g.add("write memory", _save(prompt=False), HELP)
    g.add("copy running-config startup-config", _save(prompt=True), COPY_HELP)
    g.add("show startup-config", _show_startup, HELP)
    for what in ("glbp", "glbp packets", "glbp events", "all"):
        g.add(f"debug {what}", _debug(True), HELP)
    g.add("undebug all", _debug(False), HELP)
    g.add("no debug all", _debug(False), HELP)
    return g


CONFIG_HELP = {**HELP, "exit": "Exit from configure mode"}


def _add_common(g: Grammar) -> None:
    g.add("exit", _parent, CONFIG_HELP)
    g.add("end", _goto(EXEC), CONFIG_HELP)
    g.add("do {command:LINE}", DO, HELP)


def _hostname(ctx: Context) -> None:
    ctx.state.config = replace(ctx.state.config, hostname=str(ctx.values["name"]))


def _interface(ctx: Context) -> None:
    name = str(ctx.values["if"])
    if ctx.state.config.interface(name) is None:
        ctx.state.config = ctx.state.config.with_interface(InterfaceConfig(name))
    ctx.mode = Mode(ModeKind.CONFIG_IF, interface=name)


def _track(ctx: Context) -> None:
    track = TrackConfig(int(ctx.values["object"]), str(ctx.values["if"]))
    ctx.state.config = ctx.state.config.with_track(track)


def _track_route(ctx: Context) -> None:
    text = f"{ctx.values['addr']}/{ctx.values['mask']}"
    try:
        route = IPv4Network(text, strict=False)
    except ValueError:
        ctx.fail("% Invalid mask")
        return
    track = TrackConfig(int(ctx.values["object"]), "", "reachability", route)
    ctx.state.config = ctx.state.config.with_track(track)


def _no_track(ctx: Context) -> None:
    ctx.state.config = ctx.state.config.without_track(int(ctx.values["object"]))


def _key_chain(ctx: Context) -> None:
    name = str(ctx.values["chain_name"])
    if ctx.state.config.key_chain(name) is None:
        ctx.state.config = ctx.state.config.with_key_chain(KeyChain(name))
    ctx.mode = Mode(ModeKind.CONFIG_KEYCHAIN, key_chain=name)


def _no_key_chain(ctx: Context) -> None:
    ctx.state.config = ctx.state.config.without_key_chain(str(ctx.values["chain_name"]))


def config_grammar() -> Grammar:
    g = Grammar()
    _add_common(g)
    g.add("hostname {name:WORD}", _hostname, HELP)
    g.add("interface {if:IF}", _interface, HELP)
    g.add("track {object:1-1000} interface {if:IF} line-protocol", _track, HELP)
    route = "track {object:1-1000} ip route {addr:A.B.C.D} {mask:A.B.C.D} reachability"
    g.add(route, _track_route, HELP)
    g.add("no track {object:1-1000}", _no_track, HELP)
    g.add("key chain {chain_name:WORD}", _key_chain, HELP)
    g.add("no key chain {chain_name:WORD}", _no_key_chain, HELP)
    return g


def _edit_interface(ctx: Context, **changes: Any) -> None:
    name = ctx.mode.interface if ctx.mode else None
    current = ctx.state.config.interface(name or "")
    if current is None:
        raise RuntimeError("interface command outside interface configuration")
    ctx.state.config = ctx.state.config.with_interface(replace(current, **changes))


def _ip_address(ctx: Context) -> None:
    address, mask = ctx.values["addr"], ctx.values["mask"]
    try:
        interface = IPv4Interface(f"{address}/{mask}")
    except ValueError:
        ctx.fail(f"% Bad mask {mask} for address {address}")
        return
    _edit_interface(ctx, address=interface)


def _setter(**changes: Any) -> Callable[[Context], None]:
    return lambda ctx: _edit_interface(ctx, **changes)


def interface_grammar() -> Grammar:
    g = Grammar()
    _add_common(g)
    g.add("ip address {addr:A.B.C.D} {mask:A.B.C.D}", _ip_address, HELP)
    g.add("no ip address {addr:A.B.C.D} {mask:A.B.C.D}", _setter(address=None), HELP, accept_from=3)
    g.add("shutdown", _setter(shutdown=True), HELP)
    g.add("no shutdown", _setter(shutdown=False), HELP)
    g.add(
        "mac-address {mac:H.H.H}", lambda c: _edit_interface(c, mac_address=c.values["mac"]), HELP
    )
    g.add("no mac-address", _setter(mac_address=None), HELP)
    g.add(
        "description {text:LINE}", lambda c: _edit_interface(c, description=c.values["text"]), HELP
    )
    g.add("no description", _setter(description=None), HELP)
    add_glbp_commands(g)
    return g


def _chain(ctx: Context) -> KeyChain:
    name = ctx.mode.key_chain if ctx.mode else None
    chain = ctx.state.config.key_chain(name or "")
    if chain is None:
        raise RuntimeError("key command outside key chain configuration")
    return chain


def _key(ctx: Context) -> None:
    chain, key_id = _chain(ctx), int(ctx.values["key_id"])
    if chain.key(key_id) is None:
        keys = tuple(sorted([*chain.keys, KeyChainKey(key_id)], key=lambda k: k.key_id))
        ctx.state.config = ctx.state.config.with_key_chain(replace(chain, keys=keys))
    ctx.mode = Mode(ModeKind.CONFIG_KEYCHAIN_KEY, key_chain=chain.name, key_id=key_id)


def _no_key(ctx: Context) -> None:
    chain, key_id = _chain(ctx), int(ctx.values["key_id"])
    keys = tuple(k for k in chain.keys if k.key_id != key_id)
    ctx.state.config = ctx.state.config.with_key_chain(replace(chain, keys=keys))


def _key_string(value: bool, encrypted: bool = False) -> Callable[[Context], None]:
    def apply(ctx: Context) -> None:
        chain = _chain(ctx)
        key_id = ctx.mode.key_id if ctx.mode else None
        secret = Secret(str(ctx.values["string"])) if value else None
        hidden = encrypted and value
        keys = tuple(
            replace(k, key_string=secret, encrypted=hidden) if k.key_id == key_id else k
            for k in chain.keys
        )
        ctx.state.config = ctx.state.config.with_key_chain(replace(chain, keys=keys))

    return apply


def keychain_grammar() -> Grammar:
    g = Grammar()
    _add_common(g)
    g.add("key {key_id:0-2147483647}", _key, HELP)
    g.add("no key {key_id:0-2147483647}", _no_key, HELP)
    return g


def key_grammar() -> Grammar:
    g = Grammar()
    _add_common(g)
    g.add("key-string {string:WORD}", _key_string(True), HELP)
    g.add("key-string 0 {string:WORD}", _key_string(True), HELP)
    g.add("key-string 7 {string:WORD}", _key_string(True, encrypted=True), HELP)
    g.add("no key-string", _key_string(False), HELP)
    return g


def grammars() -> dict[ModeKind, Grammar]:
    return {
        ModeKind.USER_EXEC: exec_grammar(privileged=False),
        ModeKind.PRIV_EXEC: exec_grammar(privileged=True),
        ModeKind.CONFIG: config_grammar(),
        ModeKind.CONFIG_IF: interface_grammar(),
        ModeKind.CONFIG_KEYCHAIN: keychain_grammar(),
        ModeKind.CONFIG_KEYCHAIN_KEY: key_grammar(),
    }


__all__ = ["CONFIGURE_BANNER", "DO", "HELP", "grammars"]
