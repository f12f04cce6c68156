"""Which numbers are internal: the one rule the CDR tools and call notifications share.

The article's rule, and the default: internal extensions have at most three digits
(``LENGTH(src) > 3`` means the caller is outside). Sites with longer extensions set
``[cdr] internal_max_digits``; sites with mixed plans set ``internal_pattern`` (a regular
expression that an internal number matches in full).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pbxgate.cdr.settings import CdrSettings
from pbxgate.errors import ConfigError


@dataclass(frozen=True)
class InternalRule:
    max_digits: int = 3
    pattern: str = ""

    def __post_init__(self) -> None:
        if self.pattern:
            try:
                re.compile(self.pattern)
            except re.error as exc:
                raise ConfigError(f"cdr.internal_pattern is not a valid regex: {exc}") from exc

    @classmethod
    def from_settings(cls, settings: CdrSettings) -> InternalRule:
        return cls(max_digits=settings.internal_max_digits, pattern=settings.internal_pattern)

    def is_internal(self, number: str | None) -> bool:
        """True for an extension: by default a non-empty value of at most ``max_digits``
        characters, exactly the article's ``LENGTH(src) > 3`` test turned around (so the rule
        reads the same in SQL and here); with ``pattern``, a full match of it."""
        text = (number or "").strip()
        if not text:
            return False
        if self.pattern:
            return re.fullmatch(self.pattern, text) is not None
        return len(text) <= self.max_digits

    def is_external(self, number: str | None) -> bool:
        """True for a number that came from (or goes to) outside: not internal, not empty."""
        text = (number or "").strip()
        return bool(text) and not self.is_internal(text)

    @property
    def sql_pushdown(self) -> bool:
        """Whether the rule can be written as SQL length tests (the index-friendly path)."""
        return not self.pattern


__all__ = ["InternalRule"]
