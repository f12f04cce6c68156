"""``show glbp``, ``show glbp brief``, ``show track`` and ``debug glbp`` lines, as IOS prints them.

Rendering is a pure function of engine snapshots (``engine.views``) and ``now``. Formats follow
real IOS output collected in ``shared/reference/glbp.md`` §5 (JTD, CCNA60, ANG, LAB and the
seed article): ``show glbp brief`` column widths 12/5/4/4/9/16/16 measured on IOS 15/IOSv/IOL;
``(default)``/``(learnt)`` vMACs, ``(primary)``/``(secondary)`` holders, three-decimal
countdowns; ``Group members`` sorted by MAC [inferred]. Where no real sample exists the choice is
marked [ours]. Secrets never appear: authentication shows its kind only.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address

from pbxgate.glbp.config import AuthMode, TrackConfig
from pbxgate.glbp.engine.messages import Message
from pbxgate.glbp.engine.names import short_interface
from pbxgate.glbp.engine.states import VfState, VgState
from pbxgate.glbp.engine.views import ForwarderView, GroupView, RoleView

IPAddress = IPv4Address | IPv6Address

BRIEF_HEADER = "Interface   Grp  Fwd Pri State    Address         Active router   Standby router"
_STATE_WORDS = {s.label.lower(): s for s in VgState}


def uptime(seconds: float) -> str:
    """``00:06:48``; a day or more is ``1d02h`` as IOS abbreviates it."""
    total = max(0, int(seconds))
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d{hours:02d}h"
    return f"{hours:02d}:{minutes:02d}:{secs:02d}"


def _secs(value: float) -> str:
    return f"{max(value, 0.0):.3f}"


def _timer(value: float, msec: bool) -> str:
    return f"{round(value * 1000)} msec" if msec else f"{value:g} sec"


def _changes(count: int, last: float | None, now: float, indent: str) -> list[str]:
    if not count or last is None:
        return []
    noun = "state change" if count == 1 else "state changes"
    return [f"{indent}{count} {noun}, last state change {uptime(now - last)}"]


def _role(kind: str, role: RoleView | None, now: float) -> str:
    if role is None:
        return f"  {kind} is unknown"
    if role.ip is None:
        return f"  {kind} is local"
    left = _secs((role.deadline or now) - now)
    return f"  {kind} is {role.ip}, priority {role.priority} (expires in {left} sec)"


def _timers(view: GroupView, now: float) -> list[str]:
    hello = _timer(view.hello, view.hello_msec and not view.learned)
    hold = _timer(view.hold, view.hold_msec and not view.learned)
    if view.learned and (view.hello, view.hold) != (view.hello_cfg, view.hold_cfg):
        hello += f" (cfgd {_timer(view.hello_cfg, view.hello_msec)})"
        hold += f" (cfgd {_timer(view.hold_cfg, view.hold_msec)})"
    lines = [f"  Hello time {hello}, hold time {hold}"]
    if view.next_hello is not None:
        lines.append(f"    Next hello sent in {_secs(view.next_hello - now)} secs")
    lines.append(f"  Redirect time {view.redirect} sec, forwarder timeout {view.timeout} sec")
    return lines


def _auth(view: GroupView) -> list[str]:
    if view.auth is AuthMode.TEXT:
        return ["  Authentication text"]  # IOS prints the string; we never print secrets
    if view.auth is AuthMode.MD5_KEY_STRING:
        return ["  Authentication MD5, key-string"]
    if view.auth is AuthMode.MD5_KEY_CHAIN:
        return [f'  Authentication MD5, key-chain "{view.key_chain}"']
    return []


def _weighting(view: GroupView) -> list[str]:
    where = "default" if view.weighting_default else "configured"
    if view.weight == view.weighting:
        head = f"  Weighting {view.weight} ({where} {view.weighting})"
    elif not view.weight_ok:
        head = f"  Weighting {view.weight}, low (configured {view.weighting})"
    else:
        head = f"  Weighting {view.weight} (configured {view.weighting})"
    lines = [f"{head}, thresholds: lower {view.lower}, upper {view.upper}"]
    for track in view.tracks:
        state = "Up" if track.up else "Down"
        lines.append(f"    Track object {track.number} state {state} decrement {track.decrement}")
    return lines


def _members(view: GroupView) -> list[str]:
    if not view.members:
        return []
    lines = ["  Group members:"]
    for member in view.members:
        suffix = " local" if member.local else ""
        if not member.local and view.auth is not AuthMode.NONE:
            suffix = " authenticated"
        lines.append(f"    {member.mac} ({member.ip}){suffix}")
    return lines


def render_group(view: GroupView, now: float) -> str:
    """The ``show glbp`` block of one group."""
    lines = [f"{view.interface} - Group {view.group}"]
    lines.append(f"  State is {view.state.label}")
    lines += _changes(view.changes, view.last_change, now, "    ")
    vip = view.virtual_ip if view.virtual_ip is not None else "unknown"
    lines.append(f"  Virtual IP address is {vip}")
    lines += _timers(view, now)
    lines += _auth(view)
    if view.preempt:
        lines.append(f"  Preemption enabled, min delay {view.preempt_delay} sec")
    else:
        lines.append("  Preemption disabled")
    lines.append(_role("Active", view.active, now))
    lines.append(_role("Standby", view.standby, now))
    configured = "configured" if view.priority_configured else "default"
    lines.append(f"  Priority {view.priority} ({configured})")
    lines += _weighting(view)
    lines.append(f"  Load balancing: {view.load_balancing.value}")
    if view.name:
        lines.append(f"  IP redundancy name is {view.name}")
    lines += _members(view)
    lines += _forwarders(view, now)
    return "\n".join(lines)


def _forwarders(view: GroupView, now: float) -> list[str]:
    count = len(view.forwarders)
    if not count:
        return []
    active = sum(1 for f in view.forwarders if f.state is VfState.ACTIVE)
    noun = "is 1 forwarder" if count == 1 else f"are {count} forwarders"
    lines = [f"  There {noun} ({active} active)"]
    avg = view.state is VgState.ACTIVE
    for fwd in view.forwarders:
        lines += _forwarder(fwd, avg, now)
    return lines


def _forwarder(fwd: ForwarderView, avg: bool, now: float) -> list[str]:
    origin = "default" if fwd.owned else "learnt"
    lines = [f"  Forwarder {fwd.number}", f"    State is {fwd.state.label}"]
    lines += _changes(fwd.changes, fwd.last_change, now, "      ")
    lines.append(f"    MAC address is {fwd.vmac} ({origin})")
    lines.append(f"    Owner ID is {fwd.owner_mac or 'unknown'}")  # learnt from a secondary
    if avg:
        lines.append(_redirection(fwd, now))
    if fwd.timeout_deadline is not None:
        left = _secs(fwd.timeout_deadline - now)
        lines.append(f"    Time to live: {left} sec (maximum {fwd.timeout} sec)")
    if fwd.preempt:
        lines.append(f"    Preemption enabled, min delay {fwd.preempt_delay} sec")
    else:
        lines.append("    Preemption disabled")
    lines.append(_holder(fwd, now))
    return lines  # newer IOS adds "Client selection count"; the article's IOS does not


def _redirection(fwd: ForwarderView, now: float) -> str:
    if fwd.redirect_deadline is None:
        return "    Redirection enabled"
    left = fwd.redirect_deadline - now
    if left <= 0:
        return "    Redirection disabled"  # [ours]: the AVG no longer hands this vMAC out
    return f"    Redirection enabled, {_secs(left)} sec remaining (maximum {fwd.redirect} sec)"


def _holder(fwd: ForwarderView, now: float) -> str:
    if fwd.state is VfState.ACTIVE:
        return f"    Active is local, weighting {fwd.holder_weight}"
    if fwd.holder is None:
        return "    Active is unknown"
    role = "primary" if fwd.holder_primary else "secondary"
    left = _secs((fwd.holder_deadline or now) - now)
    return (
        f"    Active is {fwd.holder} ({role}), weighting {fwd.holder_weight} "
        f"(expires in {left} sec)"
    )


def _brief_row(cells: Sequence[str]) -> str:
    widths = (12, 5, 4, 4, 9, 16, 16)
    text = "".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=False))
    return (text + cells[-1]).rstrip()


def _who(role: RoleView | None) -> str:
    if role is None:
        return "unknown"
    return "local" if role.ip is None else str(role.ip)


def render_brief(views: Iterable[GroupView]) -> str:
    """``show glbp brief``: a group row, then one row per forwarder."""
    lines = [BRIEF_HEADER]
    for view in views:
        name = short_interface(view.interface)
        vip = str(view.virtual_ip) if view.virtual_ip is not None else "unknown"
        lines.append(
            _brief_row(
                [
                    name,
                    str(view.group),
                    "-",
                    str(view.priority),
                    view.state.label,
                    vip,
                    _who(view.active),
                    _who(view.standby),
                ]
            )
        )
        for fwd in view.forwarders:
            holder = "local" if fwd.state is VfState.ACTIVE else str(fwd.holder or "-")
            lines.append(
                _brief_row(
                    [
                        name,
                        str(view.group),
                        str(fwd.number),
                        "-",
                        fwd.state.label,
                        fwd.vmac,
                        holder,
                        "-",
                    ]
                )
            )
    return "\n".join(lines)


@dataclass(frozen=True)
class ShowFilter:
    """The arguments of ``show glbp [<if>] [<group>] [<state>] [brief|detail]``."""

    interface: str | None = None
    group: int | None = None
    state: VgState | None = None
    brief: bool = False

    @classmethod
    def parse(cls, words: Sequence[str]) -> ShowFilter:
        interface, group, state, brief = None, None, None, False
        for word in words:
            low = word.lower()
            if low.isdigit():
                group = int(low)
            elif low == "brief":
                brief = True
            elif low == "detail":
                continue
            elif low in _STATE_WORDS:
                state = _STATE_WORDS[low]
            else:
                interface = word
        return cls(interface, group, state, brief)

    def matches(self, view: GroupView) -> bool:
        if self.interface is not None and not _same_interface(self.interface, view.interface):
            return False
        if self.group is not None and view.group != self.group:
            return False
        return self.state is None or view.state is self.state


def _same_interface(asked: str, name: str) -> bool:
    low = asked.lower()
    return low in (name.lower(), short_interface(name).lower())


def show_glbp(views: Iterable[GroupView], now: float, words: Sequence[str] = ()) -> str:
    """``show glbp`` with its optional words (``("Ethernet0/0", "1", "brief")``)."""
    wanted = ShowFilter.parse(words)
    chosen = sorted((v for v in views if wanted.matches(v)), key=lambda v: (v.interface, v.group))
    if wanted.brief:
        return render_brief(chosen)
    return "\n".join(render_group(v, now) for v in chosen)


@dataclass(frozen=True)
class TrackStatus:
    """A ``track N interface X line-protocol`` (or ``ip route ... reachability``) object and
    who tracks it."""

    number: int
    interface: str
    up: bool
    changes: int
    last_change: float | None
    tracked_by: tuple[tuple[str, int], ...]  # (interface, group)
    route: IPv4Network | None = None

    @property
    def brief_cells(self) -> tuple[str, str, str]:
        """Type, Instance and Parameter of ``show track brief``."""
        if self.route is not None:
            return "ip route", self.route.with_prefixlen, "reachability"
        return "interface", self.interface, "line-protocol"


def show_track(tracks: Iterable[TrackStatus], now: float, brief: bool = False) -> str:
    """``show track`` / ``show track brief`` (IOS 15 layout)."""
    items = sorted(tracks, key=lambda t: t.number)
    if brief:
        lines = ["Track Type        Instance                   Parameter        State Last Change"]
        for t in items:
            state = "Up" if t.up else "Down"
            since = uptime(now - t.last_change) if t.last_change is not None else "never"
            kind, instance, parameter = t.brief_cells
            lines.append(f"{t.number:<6d}{kind:<12}{instance:<27}{parameter:<17}{state:<6}{since}")
        return "\n".join(lines)
    lines = []
    for t in items:
        lines.append(f"Track {t.number}")
        state = "Up" if t.up else "Down"
        if t.route is not None:
            net = t.route
            lines.append(f"  IP route {net.network_address} {net.netmask} reachability")
            lines.append(f"  Reachability is {state}")
        else:
            lines.append(f"  Interface {t.interface} line-protocol")
            lines.append(f"  Line protocol is {state}")
        noun = "change" if t.changes == 1 else "changes"
        since = uptime(now - t.last_change) if t.last_change is not None else "never"
        lines.append(f"    {t.changes} {noun}, last change {since}")
        if t.tracked_by:
            lines.append("  Tracked by:")
            lines += [f"    GLBP {name} {group}" for name, group in t.tracked_by]
    return "\n".join(lines)


def track_log(track: TrackConfig, up: bool) -> str:
    """``%TRACK-6-STATE: 1 interface Et0/1 line-protocol Up -> Down`` (and the route form)."""
    states = "Down -> Up" if up else "Up -> Down"
    if track.route is not None:
        what = f"ip route {track.route.with_prefixlen} {track.kind}"
    else:
        what = f"interface {short_interface(track.interface)} {track.kind}"
    return f"%TRACK-6-STATE: {track.number} {what} {states}"


def debug_packet(interface: str, direction: str, peer: IPAddress, message: Message) -> str:
    """A ``debug glbp`` packet line (JTD):

    ``GLBP: Fa0/0 Grp 1 Hello  in  10.10.10.3 VG Active  pri 150 vIP 10.10.10.1 hello 3000,
    hold 10000 VF 1 Active  pri 167 vMAC 0007.b400.0101`` (one line).
    """
    head = f"GLBP: {short_interface(interface)} Grp {message.group}"
    hello = message.hello
    parts: list[str] = []
    if hello is None:
        kind = "Req" if any(p.is_request for p in message.forwarders) else "Resp"
        parts.append(f"{head} {kind:<6} {direction:<3} {peer}")
    else:
        vip = hello.virtual_ip if hello.virtual_ip is not None else "unknown"
        parts.append(
            f"{head} Hello  {direction:<3} {peer} VG {hello.state.label:<7} pri "
            f"{hello.priority} vIP {vip} hello {hello.hello_ms}, hold {hello.hold_ms}"
        )
    for part in message.forwarders:
        if part.is_request:
            parts.append("VF 0 request")
            continue
        state = part.state.label if part.state is not None else "Unknown"
        parts.append(f"VF {part.forwarder} {state:<7} pri {part.priority} vMAC {part.vmac}")
    return " ".join(parts)


__all__ = [
    "BRIEF_HEADER",
    "ShowFilter",
    "TrackStatus",
    "debug_packet",
    "render_brief",
    "render_group",
    "show_glbp",
    "show_track",
    "track_log",
    "uptime",
]
