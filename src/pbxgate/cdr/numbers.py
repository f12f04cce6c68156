"""Which numbers are internal: the one rule the CDR tools and call notifications share.

The article's rule, and the default: internal extensions have at most three digits
(``LENGTH(src) > 3`` means the caller is outside). Sites with longer extensions set
``[cdr] internal_max_digits``; sites with mixed plans set ``internal_pattern`` (a regular
expression that an internal number matches in full).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from fnmatch import fnmatchcase as fnmatch

from pbxgate.cdr.callrules import parse_channel
from pbxgate.cdr.numbers_defaults import INBOUND_CONTEXTS, WITHHELD
from pbxgate.cdr.settings import CdrSettings
from pbxgate.errors import ConfigError


@dataclass(frozen=True)
class InternalRule:
    """Which numbers are internal, and how a call whose caller has no number is placed."""

    max_digits: int = 3
    pattern: str = ""
    withheld: tuple[str, ...] = WITHHELD
    inbound_contexts: tuple[str, ...] = INBOUND_CONTEXTS
    trunk_channels: tuple[str, ...] = ()  # regular expressions a trunk's channel name matches
    _trunks: tuple[re.Pattern[str], ...] = field(default=(), compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.pattern:
            try:
                re.compile(self.pattern)
            except re.error as exc:
                raise ConfigError(f"cdr.internal_pattern is not a valid regex: {exc}") from exc
        trunks = []
        for text in self.trunk_channels:
            try:
                trunks.append(re.compile(text))
            except re.error as exc:
                raise ConfigError(
                    f"cdr.trunk_channels: {text!r} is not a valid regex: {exc}"
                ) from exc
        object.__setattr__(self, "_trunks", tuple(trunks))
        object.__setattr__(self, "withheld", tuple(w.lower() for w in self.withheld))

    @classmethod
    def from_settings(cls, settings: CdrSettings) -> InternalRule:
        return cls(
            max_digits=settings.internal_max_digits,
            pattern=settings.internal_pattern,
            withheld=tuple(settings.withheld_numbers),
            inbound_contexts=tuple(settings.inbound_contexts),
            trunk_channels=tuple(settings.trunk_channels),
        )

    def is_withheld(self, number: str | None) -> bool:
        """True for a caller with no number to call back: empty, or anonymous, Restricted..."""
        text = (number or "").strip()
        return not text or text.lower() in self.withheld

    def from_outside(self, channel: str, context: str) -> bool:
        """Whether a leg came in from a trunk, judged by its channel and context: a trunk
        channel pattern matches, the context is an inbound one, or the channel's device is not
        named like an extension (FreePBX names phones' channels PJSIP/101-...)."""
        if any(p.search(channel) for p in self._trunks):
            return True
        if any(fnmatch(context, pattern) for pattern in self.inbound_contexts):
            return True
        chan = parse_channel(channel)
        if chan is None or chan.local or not chan.name:
            return False
        # a DAHDI channel is named after its port, not an extension: a line, not a phone
        return chan.tech == "DAHDI" or not self.is_extension_device(chan.name)

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

    def is_extension_device(self, name: str) -> bool:
        """Whether a channel's device name is an extension's (PJSIP/101-...): digits that the
        internal rule accepts. "trunk", "mts" or "rt-sip" are trunks whatever their length."""
        return name.isdigit() and self.is_internal(name)

    def is_external(self, number: str | None) -> bool:
        """True for a number that came from (or goes to) outside: not internal, not empty."""
        text = (number or "").strip()
        return bool(text) and not self.is_internal(text)

    def direction(self, src: str, dst: str, channel: str = "", context: str = "") -> str:
        """inbound when the caller is outside (the article's test), outbound when the number
        dialled is; a caller with no number is placed by the channel and context it came in
        on (inbound from a trunk, otherwise internal)."""
        if self.is_withheld(src):
            if (channel or context) and self.from_outside(channel, context):
                return "inbound"
            return "outbound" if self.is_external(dst) else "internal"
        if self.is_external(src):
            return "inbound"
        if self.is_external(dst):
            return "outbound"
        return "internal"

    @property
    def sql_pushdown(self) -> bool:
        """Whether the rule can be written as SQL length tests (the index-friendly path)."""
        return not self.pattern


__all__ = ["INBOUND_CONTEXTS", "WITHHELD", "InternalRule"]
