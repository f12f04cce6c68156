"""The pure IOS command executor: ``execute(state, mode, line) -> (mode, output)``.

Modes are IOS's: user exec ``R2>``, privileged exec ``R2#``, ``R2(config)#``,
``R2(config-if)#``, ``R2(config-keychain)#`` and ``R2(config-keychain-key)#``. As on IOS, a
command unknown in a sub-mode is tried in its parent modes (``interface e0/1`` typed in
``config-if`` moves to that interface), ``do`` runs an exec command from a configuration mode,
and a ``None`` mode means the session ended (``exit`` in exec).

Errors print the way IOS prints them after the echoed command line: the ``^`` marker under the
first bad character (counted from the start of the prompt), the message, and a blank line.
Nothing here does I/O: the caller prints, and supplies the ``show`` handler.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from pbxgate.config import MASK
from pbxgate.errors import InputError
from pbxgate.glbp.config import RouterConfig
from pbxgate.glbp.ios import pipe
from pbxgate.glbp.ios.commands import DO, grammars
from pbxgate.glbp.ios.grammar import Failure, Grammar, Help, Match, tokenize
from pbxgate.glbp.ios.state import CONFIG, EXEC, Context, IosState, Mode, ModeKind

UNKNOWN_COMMAND = "% Unknown command or computer name, or unable to find computer address"

_SECRET = re.compile(r"((?:\btext|\bkey-string)\s+(?:[07]\s+)?)\S+.*", re.IGNORECASE)

_PARENTS = {
    ModeKind.CONFIG_IF: (ModeKind.CONFIG,),
    ModeKind.CONFIG_KEYCHAIN: (ModeKind.CONFIG,),
    ModeKind.CONFIG_KEYCHAIN_KEY: (ModeKind.CONFIG_KEYCHAIN, ModeKind.CONFIG),
}


class IosConfigError(InputError):
    """A configuration file line that IOS would refuse.

    ``skippable`` is true when the line belongs to a command pbxgate does not model, so a
    caller passing a ``skipped`` list (the CLI's ``--skip-unknown``) would have loaded it.
    """

    def __init__(self, message: str, *, skippable: bool = False) -> None:
        super().__init__(message)
        self.skippable = skippable


@dataclass(frozen=True)
class Result:
    mode: Mode | None
    output: str
    error: str | None = None  # one line, for configuration files; None on success


@cache
def _grammars() -> dict[ModeKind, Grammar]:
    return grammars()


def execute(state: IosState, mode: Mode, line: str) -> tuple[Mode | None, str]:
    """Run one typed line; ``state.config`` changes in place. Returns the next mode and text."""
    result = run(state, mode, line)
    return result.mode, result.output


def run(state: IosState, mode: Mode, line: str) -> Result:
    if not line.strip() or line.lstrip().startswith("!"):
        return Result(mode, "")
    return _run(state, mode, line, 0, len(state.prompt(mode)))


def _run(state: IosState, mode: Mode, line: str, base: int, indent: int) -> Result:
    if mode.kind in (ModeKind.USER_EXEC, ModeKind.PRIV_EXEC) and "|" in line:
        return _run_piped(state, mode, line, base, indent)
    outcome, used = _parse(mode, line, base)
    if isinstance(outcome, Help):
        return Result(mode, _lines([*outcome.lines, ""]))
    if isinstance(outcome, Failure):
        return _failure(outcome, mode, line, base, indent)
    if outcome.handler is DO:
        command = str(outcome.values["command"])
        start = base + line.index(command, tokenize(line)[0].start + 2)
        inner = _run(state, EXEC, command, start, indent)
        return Result(mode, inner.output, inner.error)
    ctx = Context(state, used, outcome.values, outcome.words)
    outcome.handler(ctx)
    return Result(ctx.mode, _lines(ctx.output), ctx.error)


def _run_piped(state: IosState, mode: Mode, line: str, base: int, indent: int) -> Result:
    """``<exec command> | include|exclude|begin|section <regex>``."""
    command, text, column = pipe.split_pipe(line)
    modifier = pipe.parse_modifier(text or "", base + column)
    if isinstance(modifier, Help):
        return Result(mode, _lines([*modifier.lines, ""]))
    if isinstance(modifier, Failure):
        return _failure(modifier, mode, text or "", base + column, indent)
    result = _run(state, mode, command, base, indent)
    if result.error is not None:
        return result
    return Result(result.mode, pipe.apply(modifier, result.output))


def _parse(mode: Mode, line: str, base: int) -> tuple[Match | Failure | Help, Mode]:
    """Parse in ``mode``; a command that fails there (or whose first word is spelled out in
    full only in a parent mode, like ``key 2`` under ``key 1``) is tried in the parents."""
    first = line.split(maxsplit=1)[0].lower()
    own = _grammars()[mode.kind]
    outcome = own.parse(line, base)
    exact_here = own.has_keyword(first)
    for parent in _PARENTS.get(mode.kind, ()):
        grammar = _grammars()[parent]
        if isinstance(outcome, Failure) or (not exact_here and grammar.has_keyword(first)):
            retry = grammar.parse(line, base)
            if isinstance(retry, Match):
                return retry, _parent_mode(mode, parent)
    return outcome, mode


def _parent_mode(mode: Mode, parent: ModeKind) -> Mode:
    if parent is ModeKind.CONFIG_KEYCHAIN:
        return Mode(parent, key_chain=mode.key_chain)
    return CONFIG


def _failure(failure: Failure, mode: Mode, line: str, base: int, indent: int) -> Result:
    exec_mode = mode.kind in (ModeKind.USER_EXEC, ModeKind.PRIV_EXEC)
    # One unknown word in exec is taken for a host name (IOS tries to telnet to it).
    if failure.unknown_command and exec_mode and base == 0 and len(line.split()) == 1:
        return Result(mode, _lines([UNKNOWN_COMMAND, ""]), UNKNOWN_COMMAND)
    lines = [failure.message, ""]
    error = failure.message
    if failure.column is not None:
        lines.insert(0, " " * (indent + failure.column) + "^")
        word = next(
            (t.text for t in tokenize(line, base) if failure.column < t.start + len(t.text)),
            line.strip(),
        )
        hidden = mask_secrets(line) != line
        error = f"invalid input at {'column ' + str(failure.column + 1) if hidden else repr(word)}"
    return Result(mode, _lines(lines), error)


def mask_secrets(line: str) -> str:
    """``line`` with passwords and key strings replaced, for error messages and logs."""
    return _SECRET.sub(lambda m: m.group(1) + MASK, line)


def _lines(lines: list[str]) -> str:
    return "".join(f"{text}\n" for text in lines)


_SKIP = ("Building configuration", "Current configuration", "version ", "end")


def parse_config(
    text: str, *, source: str = "config", skipped: list[str] | None = None
) -> RouterConfig:
    """Read IOS configuration text (``show running-config`` style) into a RouterConfig.

    Raises :class:`IosConfigError` naming the file and line of the first refused command.
    With a ``skipped`` list, lines pbxgate does not model (``router ospf 1``, ``line con 0``,
    ``ip route ...``, ``duplex auto``) are skipped and listed there instead, so a real
    router's configuration can be loaded; refused ``glbp`` and ``track`` lines still raise.
    """
    state = IosState()
    mode: Mode | None = CONFIG
    block_skipped = False  # a skipped header's indented lines are its, not the last block's
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.rstrip()
        if line.strip().startswith(_SKIP) and not line.startswith(" "):
            continue
        indented = line.startswith(" ")
        if indented and block_skipped and skipped is not None and not _modelled(line):
            skipped.append(f"{source}:{number}: {mask_secrets(line.strip())}")
            continue
        if not indented:
            block_skipped = False
        result = run(state, mode or CONFIG, line)
        if result.error is not None:
            shown = mask_secrets(line.strip())
            if skipped is None or _modelled(line) or (indented and block_skipped):
                raise IosConfigError(
                    f"{source}:{number}: {shown!r}: {result.error}",
                    skippable=not _modelled(line) and not block_skipped,
                )
            skipped.append(f"{source}:{number}: {shown}")
            block_skipped = not indented
            continue
        mode = result.mode if result.mode and result.mode.is_config else CONFIG
    return state.config


def _modelled(line: str) -> bool:
    """Lines of the commands this layer models: their errors are never skipped."""
    words = line.split()
    if words and words[0] == "no":
        words = words[1:]
    return bool(words) and words[0] in ("glbp", "track", "hostname", "key-string")


__all__ = ["IosConfigError", "Result", "execute", "mask_secrets", "parse_config", "run"]
