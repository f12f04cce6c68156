"""A console over the executor: prompts, reads lines, prints what IOS would print.

:func:`run_session` is the loop behind ``pbxgate glbp shell``; with ``echo`` it writes each
command after its prompt, which turns a scripted session into an IOS-looking transcript.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from pbxgate.glbp.config import RouterConfig
from pbxgate.glbp.ios.executor import execute
from pbxgate.glbp.ios.state import IosState, Mode, ModeKind, ShowHandler

USER_EXEC = Mode(ModeKind.USER_EXEC)


def run_session(
    state: IosState,
    lines: Iterable[str],
    write: Callable[[str], None],
    *,
    echo: bool = True,
    mode: Mode = USER_EXEC,
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


__all__ = ["USER_EXEC", "interact", "run_session", "transcript"]
