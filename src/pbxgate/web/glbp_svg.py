"""The GLBP page's picture: groups drawn as one inline SVG, server-side, from plain data.

A group is a dict (what ``/api/glbp`` returns)::

    {"group": 1, "vip": "192.168.0.254", "segment": "lan",
     "routers": [{"name": "R2", "ip": "192.168.0.1", "state": "Active", "priority": 110,
                  "weight": 130, "forwarders": [{"number": 1, "vmac": "0007.b400.0101"}]}],
     "hosts": [{"name": "VPC1", "ip": "192.168.0.11", "vmac": "0007.b400.0101",
                "router": "R4", "forwarder": 1}]}

``state`` is the router's gateway state as ``show glbp`` prints it (Active: the AVG; Standby;
Listen; Init; Disabled) or ``off``; ``forwarders`` are the virtual MACs it forwards for now
(it is their AVF). Each router is a box (the AVG's stroke thick, the standby's dashed, a router
that is off faded), the virtual IP above, the hosts below with a line to the router that
forwards for the vMAC each got. Forwarder numbers have colours (Okabe-Ito, readable by
colour-blind readers) but every fact is also written as text, and the ``<title>``/``<desc>``
say it all for a screen reader. Text is ``currentColor``: the picture follows a dark theme.
"""

from __future__ import annotations

from html import escape
from typing import Any

# Okabe & Ito's colour-blind-safe palette, one colour per forwarder number (1..4 in GLBP).
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#999933")
ROUTER_W, ROUTER_GAP, LINE = 190, 20, 16
HOST_W, HOST_H, HOST_GAP = 156, 44, 10
MARGIN = 10
ROLE = {"Active": "AVG", "Standby": "standby", "off": "off"}


def colour(number: int | None) -> str:
    return "currentColor" if not number else PALETTE[(number - 1) % len(PALETTE)]


def role(router: dict[str, Any]) -> str:
    """``AVG``, ``standby``, ``off`` or the state in lower case (``listen``)."""
    state = str(router.get("state") or "unknown")
    return ROLE.get(state, state.lower())


def _text(x: float, y: float, body: str, **attrs: Any) -> str:
    extra = "".join(f' {k.replace("_", "-")}="{escape(str(v))}"' for k, v in attrs.items())
    return f'<text x="{x:g}" y="{y:g}" fill="currentColor"{extra}>{escape(body)}</text>'


def _router_lines(router: dict[str, Any]) -> list[tuple[str, int | None]]:
    """The lines of a router's box with the forwarder number that colours each (or None)."""
    head = f"{router['name']} {router.get('ip') or ''}".strip()
    facts = []
    if router.get("priority") is not None:
        facts.append(f"priority {router['priority']}")
    if router.get("weight") is not None:
        low = " (low)" if router.get("weight_low") else ""  # below the lower threshold
        facts.append(f"weight {router['weight']}{low}")
    lines: list[tuple[str, int | None]] = [(head, None), (role(router), None)]
    if facts:
        lines.append((" · ".join(facts), None))
    for fwd in router.get("forwarders", []):
        lines.append((f"AVF {fwd['number']} {fwd['vmac']}", int(fwd["number"])))
    return lines


def _router_box(router: dict[str, Any], x: float, y: float, height: float) -> str:
    kind = role(router)
    stroke = {"AVG": ' stroke-width="3"', "standby": ' stroke-width="2" stroke-dasharray="6 3"'}
    faded = ' opacity="0.45"' if kind == "off" else ""
    parts = [
        f'<g class="router" data-router="{escape(router["name"])}" data-role="{escape(kind)}"'
        f"{faded}>",
        f'<rect x="{x:g}" y="{y:g}" width="{ROUTER_W}" height="{height:g}" rx="8" '
        f'fill="#0072B2" fill-opacity="{0.16 if kind == "AVG" else 0.05}" '
        f'stroke="currentColor"{stroke.get(kind, "")}/>',
    ]
    for i, (line, number) in enumerate(_router_lines(router)):
        attrs = {"font_weight": "bold"} if i < 2 else {}
        if number:
            attrs["style"] = f"fill:{colour(number)}"  # over the default currentColor
        parts.append(_text(x + 10, y + 20 + i * LINE, line, **attrs))
    parts.append("</g>")
    return "".join(parts)


def _host_box(host: dict[str, Any], x: float, y: float) -> str:
    number = host.get("forwarder")
    where = f"Fwd {number} {host['router']}" if host.get("router") else "no forwarder"
    dash = "" if host.get("router") else ' stroke-dasharray="3 3"'
    return (
        f'<g class="host" data-host="{escape(host["name"])}" '
        f'data-vmac="{escape(host.get("vmac") or "")}" '
        f'data-router="{escape(host.get("router") or "")}">'
        f'<rect x="{x:g}" y="{y:g}" width="{HOST_W}" height="{HOST_H}" rx="4" fill="Canvas" '
        f'stroke="{colour(number)}" stroke-width="2"{dash}/>'
        + _text(x + 6, y + 17, f"{host['name']} {host.get('vmac') or '?'}", font_size="11")
        + _text(x + 6, y + 34, where, font_size="11")
        + "</g>"
    )


def _group(group: dict[str, Any], top: float, width: float) -> tuple[list[str], float]:
    """The SVG elements of one group starting at ``top``, and the height they take."""
    routers = group.get("routers", [])
    order = {router["name"]: i for i, router in enumerate(routers)}
    # Hosts under the router that forwards for them: fewer lines cross.
    hosts = sorted(group.get("hosts", []), key=lambda h: order.get(h.get("router"), len(order)))
    vip = group.get("vip") or "unknown"
    parts = [
        _text(
            width / 2,
            top + 18,
            f"GLBP group {group['group']} · virtual IP {vip}",
            text_anchor="middle",
            font_weight="bold",
        )
    ]
    height = 30 + max((len(_router_lines(r)) for r in routers), default=2) * LINE
    row = len(routers) * ROUTER_W + max(0, len(routers) - 1) * ROUTER_GAP
    left, y = (width - row) / 2, top + 34
    centres: dict[str, float] = {}
    for i, router in enumerate(routers):
        x = left + i * (ROUTER_W + ROUTER_GAP)
        centres[router["name"]] = x + ROUTER_W / 2
        parts.append(_router_box(router, x, y, height))
    bottom = y + height
    per_row = max(1, int((width - 2 * MARGIN + HOST_GAP) // (HOST_W + HOST_GAP)))
    host_top = bottom + 50
    boxes = []  # drawn after every line: a box hides the lines that pass behind it
    for i, host in enumerate(hosts):
        line, col = divmod(i, per_row)
        count = min(per_row, len(hosts) - line * per_row)
        start = (width - count * HOST_W - (count - 1) * HOST_GAP) / 2
        x, hy = start + col * (HOST_W + HOST_GAP), host_top + line * (HOST_H + HOST_GAP)
        target = centres.get(host.get("router") or "")
        if target is not None:
            parts.append(
                f'<line x1="{x + HOST_W / 2:g}" y1="{hy:g}" x2="{target:g}" y2="{bottom:g}" '
                f'stroke="{colour(host.get("forwarder"))}" stroke-opacity="0.6"/>'
            )
        boxes.append(_host_box(host, x, hy))
    parts += boxes
    rows = -(-len(hosts) // per_row)
    used = (host_top - top) + rows * (HOST_H + HOST_GAP) if hosts else bottom - top + 10
    return parts, used + 10


def describe(groups: list[dict[str, Any]]) -> str:
    """The picture in words (its ``<desc>``): each router's role and what it forwards."""
    out = []
    for group in groups:
        items = []
        for router in group.get("routers", []):
            fwds = ", ".join(f"AVF {f['number']}" for f in router.get("forwarders", []))
            items.append(f"{router['name']} {role(router)}" + (f" ({fwds})" if fwds else ""))
        out.append(f"group {group['group']} {group.get('vip') or ''}: " + "; ".join(items))
    return ". ".join(out)


def draw(groups: list[dict[str, Any]], title: str, ident: str = "glbp") -> str:
    """One ``<svg>`` with every group, one above the other; ``ident`` prefixes its element
    ids (several pictures on one page)."""
    widest = max((len(g.get("routers", [])) for g in groups), default=1)
    width = max(760, widest * (ROUTER_W + ROUTER_GAP) + 2 * MARGIN)
    parts: list[str] = []
    top = 0.0
    for group in groups:
        items, used = _group(group, top, width)
        parts += items
        top += used
    height = max(top, 40.0)
    if not groups:
        parts.append(_text(width / 2, 24, "no GLBP groups", text_anchor="middle"))
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="glbp-picture" role="img" '
        f'viewBox="0 0 {width:g} {height:g}" width="100%" font-family="system-ui, sans-serif" '
        f'font-size="13" aria-labelledby="{ident}-title {ident}-desc">'
        f'<title id="{ident}-title">{escape(title)}</title>'
        f'<desc id="{ident}-desc">{escape(describe(groups))}</desc>' + "".join(parts) + "</svg>"
    )


__all__ = ["PALETTE", "colour", "describe", "draw", "role"]
