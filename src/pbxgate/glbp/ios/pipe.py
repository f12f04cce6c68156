"""Output modifiers of exec commands: ``show running-config | include glbp``.

IOS offers ``| begin``, ``| exclude``, ``| include`` and ``| section`` with a regular
expression. ``section`` keeps every matching line, at any depth, with the lines indented
under it: a matching ``interface`` line brings its whole block, a matching child line
(`` glbp 1 ip ...``) comes alone, without its parent, as on IOS 15 (``show run | section
ospf`` prints the interfaces' `` ip ospf ...`` lines on their own).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from pbxgate.glbp.ios.grammar import Failure, Grammar, Help, Match

HELP = {
    "begin": "Begin with the line that matches",
    "exclude": "Exclude lines that match",
    "include": "Include lines that match",
    "section": "Filter a section of output",
    "regex": "Regular Expression",
}

Filter = Callable[[re.Pattern[str], list[str]], list[str]]
Modifier = Callable[[list[str]], list[str]]


def _include(pattern: re.Pattern[str], lines: list[str]) -> list[str]:
    return [line for line in lines if pattern.search(line)]


def _exclude(pattern: re.Pattern[str], lines: list[str]) -> list[str]:
    return [line for line in lines if not pattern.search(line)]


def _begin(pattern: re.Pattern[str], lines: list[str]) -> list[str]:
    for index, line in enumerate(lines):
        if pattern.search(line):
            return lines[index:]
    return []


def _section(pattern: re.Pattern[str], lines: list[str]) -> list[str]:
    kept: list[str] = []
    depth: int | None = None  # indentation of the matched line whose children are kept
    for line in lines:
        indent = len(line) - len(line.lstrip(" "))
        if depth is not None and indent > depth and line.strip():
            kept.append(line)
            continue
        depth = None
        if pattern.search(line):
            kept.append(line)
            depth = indent
    return kept


def _grammar() -> Grammar:
    g = Grammar()
    for name, handler in (
        ("begin", _begin),
        ("exclude", _exclude),
        ("include", _include),
        ("section", _section),
    ):
        g.add(f"{name} {{regex:LINE}}", handler, HELP)
    return g


GRAMMAR = _grammar()


def split_pipe(line: str) -> tuple[str, str | None, int]:
    """``(command, modifier, modifier column)``; no modifier when the line has no ``|``."""
    head, bar, tail = line.partition("|")
    if not bar:
        return line, None, 0
    return head, tail, len(head) + 1


def parse_modifier(text: str, base: int) -> Modifier | Failure | Help:
    outcome = GRAMMAR.parse(text, base)
    if isinstance(outcome, Match):
        regex = str(outcome.values["regex"])
        try:
            pattern = re.compile(regex)
        except re.error:
            return Failure(f"% Invalid regular expression: {regex}")
        handler: Filter = outcome.handler
        return lambda lines: handler(pattern, lines)
    return outcome


def apply(modifier: Modifier, output: str) -> str:
    return "".join(f"{line}\n" for line in modifier(output.splitlines()))


__all__ = ["GRAMMAR", "Modifier", "apply", "parse_modifier", "split_pipe"]
