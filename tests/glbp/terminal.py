"""A typist for the interactive shell: answers prompts from a list, then EOF (Ctrl-D)."""

from __future__ import annotations

from collections.abc import Callable, Iterable


def typist(lines: Iterable[str]) -> tuple[Callable[[str], str], list[str]]:
    """``read(prompt)`` returning ``lines`` one by one, and the list of prompts it was shown."""
    typed = iter(lines)
    prompts: list[str] = []

    def read(prompt: str) -> str:
        prompts.append(prompt)
        try:
            return next(typed)
        except StopIteration:
            raise EOFError from None

    return read, prompts
