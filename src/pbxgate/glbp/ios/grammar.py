"""A small IOS-style command parser: keyword trees, abbreviations, ``?`` help, ``^`` markers.

A :class:`Grammar` is built from patterns such as ``"glbp {group:0-1023} priority {p:1-255}"``:
plain words are keywords (matched by any unambiguous prefix, an exact match wins), and
``{name:kind}`` is a parameter. Kinds: ``lo-hi`` (a decimal number in range), ``A.B.C.D``,
``X:X:X:X::X``, ``H.H.H`` (a MAC), ``WORD``, ``LINE`` (the rest of the line) and ``IF`` (an
interface name, ``e0/0`` or ``Ethernet 0/0``). ``accept_from=k`` makes the command complete
after its first ``k`` tokens too (``no glbp 1 priority [<1-255>]``).

:meth:`Grammar.parse` returns a :class:`Match`, or a :class:`Failure` carrying IOS's own
messages: ``% Invalid input detected at '^' marker.`` (with the column of the first character
no keyword allows), ``% Incomplete command.``, ``% Ambiguous command:  "..."``; or :class:`Help`
for a line ending in ``?``.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address
from typing import Any

from pbxgate.glbp.ios.names import expand_interface, interface_type

INVALID = "% Invalid input detected at '^' marker."
INCOMPLETE = "% Incomplete command."

_MAC = re.compile(r"[0-9a-fA-F]{1,4}\.[0-9a-fA-F]{1,4}\.[0-9a-fA-F]{1,4}")
_PARAM = re.compile(r"\{(\w+):([^}]+)\}")


@dataclass(frozen=True)
class Token:
    text: str
    start: int


def tokenize(line: str, base: int = 0) -> list[Token]:
    return [Token(m.group(), base + m.start()) for m in re.finditer(r"\S+", line)]


class Kind(enum.Enum):
    KEYWORD = "keyword"
    NUMBER = "number"
    IPV4 = "A.B.C.D"
    IPV6 = "X:X:X:X::X"
    MAC = "H.H.H"
    WORD = "WORD"
    LINE = "LINE"
    INTERFACE = "IF"


@dataclass
class Node:
    kind: Kind
    word: str = ""  # keyword text, or parameter name
    low: int = 0
    high: int = 0
    help: str = ""
    handler: Callable[..., Any] | None = None
    children: list[Node] = field(default_factory=list)

    @property
    def label(self) -> str:
        if self.kind is Kind.KEYWORD:
            return self.word
        if self.kind is Kind.NUMBER:
            return f"<{self.low}-{self.high}>"
        if self.kind is Kind.INTERFACE:
            return "Ethernet"  # IOS lists interface types here; one stands for all
        return str(self.kind.value)

    def same_as(self, other: Node) -> bool:
        return (self.kind, self.word, self.low, self.high) == (
            other.kind,
            other.word,
            other.low,
            other.high,
        )

    def match(
        self, tokens: list[Token], index: int, line: str, base: int
    ) -> tuple[Any, int] | None:
        """(value, tokens consumed) when this parameter accepts ``tokens[index]``."""
        text = tokens[index].text
        match self.kind:
            case Kind.NUMBER:
                if text.isdigit() and self.low <= int(text) <= self.high:
                    return int(text), 1
            case Kind.IPV4:
                if re.fullmatch(r"\d{1,3}(\.\d{1,3}){3}", text):
                    try:
                        return IPv4Address(text), 1
                    except ValueError:
                        return None
            case Kind.IPV6:
                try:
                    return IPv6Address(text), 1
                except ValueError:
                    return None
            case Kind.MAC:
                if _MAC.fullmatch(text):
                    return ".".join(part.zfill(4).lower() for part in text.split(".")), 1
            case Kind.WORD:
                return text, 1
            case Kind.LINE:
                return line[tokens[index].start - base :].rstrip(), len(tokens) - index
            case Kind.INTERFACE:
                return _match_interface(tokens, index)
        return None


def _match_interface(tokens: list[Token], index: int) -> tuple[str, int] | None:
    full = expand_interface(tokens[index].text)
    if full is not None:
        return full, 1
    if index + 1 < len(tokens) and interface_type(tokens[index].text):
        full = expand_interface(tokens[index].text + tokens[index + 1].text)
        if full is not None:
            return full, 2
    return None


@dataclass(frozen=True)
class Match:
    handler: Callable[..., Any]
    values: Mapping[str, Any]
    words: tuple[str, ...]  # keywords in full and parameter values, as text


@dataclass(frozen=True)
class Failure:
    message: str
    column: int | None = None  # where the ``^`` goes, in the line as typed
    unknown_command: bool = False  # the first word matched nothing


@dataclass(frozen=True)
class Help:
    lines: tuple[str, ...]


def _node_from(spec: str, help_text: Mapping[str, str]) -> Node:
    param = _PARAM.fullmatch(spec)
    if param is None:
        return Node(Kind.KEYWORD, spec, help=help_text.get(spec, ""))
    name, kind = param.groups()
    numbers = re.fullmatch(r"(\d+)-(\d+)", kind)
    if numbers:
        low, high = int(numbers.group(1)), int(numbers.group(2))
        return Node(Kind.NUMBER, name, low, high, help_text.get(name, ""))
    return Node(Kind(kind), name, help=help_text.get(name, ""))


class Grammar:
    """A tree of commands for one IOS mode."""

    def __init__(self) -> None:
        self.root = Node(Kind.KEYWORD)

    def add(
        self,
        pattern: str,
        handler: Callable[..., Any],
        help_text: Mapping[str, str] | None = None,
        *,
        accept_from: int | None = None,
    ) -> None:
        node = self.root
        specs = pattern.split()
        for depth, spec in enumerate(specs, start=1):
            fresh = _node_from(spec, help_text or {})
            existing = next((c for c in node.children if c.same_as(fresh)), None)
            if existing is None:
                node.children.append(fresh)
                existing = fresh
            node = existing
            if accept_from is not None and depth >= accept_from and depth < len(specs):
                node.handler = node.handler or handler
        node.handler = handler

    def has_keyword(self, word: str) -> bool:
        """Whether ``word`` is spelled out in full as a first keyword of this mode."""
        return any(c.kind is Kind.KEYWORD and c.word == word for c in self.root.children)

    def parse(self, line: str, base: int = 0) -> Match | Failure | Help:
        """Parse ``line``; ``base`` is its column in the line as typed (after ``do``)."""
        tokens = tokenize(line, base)
        node, values, words = self.root, dict[str, Any](), list[str]()
        index = 0
        while index < len(tokens):
            token = tokens[index]
            if token.text.endswith("?"):
                return _help(node, token.text[:-1], index == len(tokens) - 1)
            step = _step(node, tokens, index, line[: token.start - base].strip(), line, base)
            if isinstance(step, Failure):
                return step
            child, value, used = step
            if child.kind is Kind.KEYWORD:
                words.append(child.word)
            else:
                values[child.word] = value
                words.append(str(value))
            node, index = child, index + used
        if node.handler is None:
            return Failure(INCOMPLETE)
        return Match(node.handler, values, tuple(words))


def _step(
    node: Node, tokens: list[Token], index: int, before: str, line: str, base: int
) -> tuple[Node, Any, int] | Failure:
    token = tokens[index]
    text = token.text.lower()
    keywords = [c for c in node.children if c.kind is Kind.KEYWORD]
    exact = [c for c in keywords if c.word.lower() == text]
    if exact:
        return exact[0], None, 1
    for child in node.children:
        if child.kind is not Kind.KEYWORD and child.kind is not Kind.WORD:
            found = child.match(tokens, index, line, base)
            if found is not None:
                return child, found[0], found[1]
    prefixed = [c for c in keywords if c.word.lower().startswith(text)]
    if len(prefixed) == 1:
        return prefixed[0], None, 1
    if len(prefixed) > 1:
        typed = f"{before} {token.text}".strip()
        return Failure(f'% Ambiguous command:  "{typed}"')
    for child in node.children:
        if child.kind is Kind.WORD:
            return child, token.text, 1
    # IOS matches keywords character by character: the marker goes under the first character
    # that no keyword allows ("ip http" on a router without "http" marks the "t", after "h"
    # matched "host"). A bad number or address is marked at its first character.
    matched = max((_common_prefix(text, c.word.lower()) for c in keywords), default=0)
    return Failure(INVALID, token.start + matched, unknown_command=index == 0)


def _common_prefix(left: str, right: str) -> int:
    size = 0
    for a, b in zip(left, right, strict=False):
        if a != b:
            break
        size += 1
    return size


def _help(node: Node, prefix: str, last: bool) -> Help | Failure:
    if not last:
        return Failure(INVALID)
    if prefix:
        words = sorted(
            c.word for c in node.children if c.kind is Kind.KEYWORD and c.word.startswith(prefix)
        )
        if not words:
            return Failure("% Unrecognized command")
        return Help(("  ".join(words),))
    entries = [(c.label, c.help) for c in node.children if c.kind is not Kind.KEYWORD]
    entries += sorted((c.label, c.help) for c in node.children if c.kind is Kind.KEYWORD)
    if node.handler is not None:
        entries.append(("<cr>", ""))
    width = max((len(label) for label, _ in entries), default=0)
    return Help(tuple(f"  {label:<{width}}  {text}".rstrip() for label, text in entries))


__all__ = [
    "INCOMPLETE",
    "INVALID",
    "Failure",
    "Grammar",
    "Help",
    "Kind",
    "Match",
    "Node",
    "Token",
    "tokenize",
]
