"""A console over the executor: prompts, reads lines, prints what IOS would print.

:func:`run_session` is the loop behind ``pbxgate glbp shell``; with ``echo`` it writes each
command after its prompt, which turns a scripted session into an IOS-looking transcript.

A driver may add exec commands of its own (the simulator's ``sim wait 30``) with
:class:`ExecExtension`: they parse with the same grammar machinery, so abbreviations, ``?``
help (merged with the router's own exec commands) and ``^`` markers behave as IOS's do, while
the executor itself stays pure and knows nothing of them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from pbxgate.glbp.config import RouterConfig
from pbxgate.glbp.ios.commands import exec_grammar
from pbxgate.glbp.ios.executor import execute
from pbxgate.glbp.ios.grammar import Failure, Grammar, Help, Kind, tokenize
from pbxgate.glbp.ios.state import IosState, Mode, ModeKind, ShowHandler

USER_EXEC = Mode(ModeKind.USER_EXEC)

# What run_session and interact call for each line: the pure executor, or a driver's wrapper.
Execute = Callable[[IosState, Mode, str], tuple[Mode | None, str]]
# A driver command's handler gets the parsed parameters and returns the text to print.
DriverHandler = Callable[[Mapping[str, Any]], str]


class ExecExtension:
    """Exec commands added by a driver, in front of the pure executor.

    ``add("sim wait {seconds:0-86400}", handler, help)`` uses the grammar's pattern syntax.
    A line goes to the driver when its first word can only mean a driver keyword (typed in an
    exec mode, or after ``do`` in a configuration mode); a lone first-word ``?`` lists the
    router's commands and the driver's together. Everything else reaches ``execute``.
    """

    def __init__(self, execute: Execute = execute) -> None:
        self._execute = execute
        self._patterns: list[tuple[str, DriverHandler, Mapping[str, str]]] = []
        self._merged: dict[bool, Grammar] = {}

    def add(self, pattern: str, handler: DriverHandler, help_text: Mapping[str, str]) -> None:
        self._patterns.append((pattern, handler, help_text))
        self._merged.clear()

    def __call__(self, state: IosState, mode: Mode, line: str) -> tuple[Mode | None, str]:
        command, base = _exec_part(mode, line)
        if command is None:
            return self._execute(state, mode, line)
        grammar = self._grammar(mode.kind is not ModeKind.USER_EXEC)
        first = command.split()[0].lower()
        lone_help = first.endswith("?") and len(command.split()) == 1 and not mode.is_config
        if not (lone_help or self._ours(grammar, first)):
            return self._execute(state, mode, line)
        outcome = grammar.parse(command, base)
        if isinstance(outcome, Help):
            return mode, _text([*outcome.lines, ""])
        if isinstance(outcome, Failure):
            marker = (
                []
                if outcome.column is None
                else [" " * (len(state.prompt(mode)) + outcome.column) + "^"]
            )
            return mode, _text([*marker, outcome.message, ""])
        return mode, outcome.handler(outcome.values)

    def _grammar(self, privileged: bool) -> Grammar:
        if privileged not in self._merged:
            grammar = exec_grammar(privileged)
            for pattern, handler, help_text in self._patterns:
                grammar.add(pattern, handler, help_text)
            self._merged[privileged] = grammar
        return self._merged[privileged]

    def _ours(self, grammar: Grammar, first: str) -> bool:
        """``first`` abbreviates a driver keyword and nothing else (so ``s`` stays ``show``)."""
        mine = {pattern.split()[0] for pattern, _, _ in self._patterns}
        words = [c.word for c in grammar.root.children if c.kind is Kind.KEYWORD]
        hits = [w for w in words if w.startswith(first)]
        return first in mine or (len(hits) == 1 and hits[0] in mine)


def _exec_part(mode: Mode, line: str) -> tuple[str | None, int]:
    """The exec command in ``line`` and its column: the line itself in exec, the part after
    ``do`` in a configuration mode (``do sim wait 10``), else None."""
    tokens = tokenize(line)
    if not tokens:
        return None, 0
    if not mode.is_config:
        return line, 0
    if len(tokens) > 1 and tokens[0].text.lower() == "do":
        return line[tokens[1].start :], tokens[1].start
    return None, 0


def _text(lines: list[str]) -> str:
    return "".join(f"{line}\n" for line in lines)


def run_session(
    state: IosState,
    lines: Iterable[str],
    write: Callable[[str], None],
    *,
    echo: bool = True,
    mode: Mode = USER_EXEC,
    execute: Execute = execute,
) -> Mode | None:
    """Feed ``lines`` to the executor until they run out or the session exits."""
    current: Mode | None = mode
    for line in lines:
        if current is None:
            break
        text = line.rstrip("\r\n")
        write(state.prompt(current) + (text + "\n" if echo else ""))
        current, output = execute(state, current, text)
        write(output)
    if current is not None and echo:
        write(state.prompt(current) + "\n")
    return current


def interact(
    state: IosState,
    read: Callable[[str], str],
    write: Callable[[str], None],
    *,
    mode: Mode = USER_EXEC,
    execute: Execute = execute,
) -> None:
    """An interactive session: ``read(prompt)`` returns a line, EOFError ends it."""
    current: Mode | None = mode
    while current is not None:
        try:
            line = read(state.prompt(current))
        except EOFError:
            write("\n")
            return
        current, output = execute(state, current, line)
        write(output)


def transcript(
    config: RouterConfig,
    commands: Iterable[str],
    *,
    show: ShowHandler | None = None,
    mode: Mode = USER_EXEC,
) -> str:
    """The text of a session typing ``commands`` on a router configured with ``config``."""
    parts: list[str] = []
    run_session(IosState(config, show), commands, parts.append, mode=mode)
    return "".join(parts)


__all__ = [
    "USER_EXEC",
    "DriverHandler",
    "ExecExtension",
    "Execute",
    "interact",
    "run_session",
    "transcript",
]
