"""Keep secrets out of log lines, including the ones third-party libraries write.

httpx logs every request URL at INFO ("HTTP Request: POST https://..."), and the Telegram Bot
API puts the bot token in the URL path. Every channel registers its secret here; a filter on
the pbxgate, httpx and httpcore loggers replaces it with ``********`` before any handler sees it.
"""

from __future__ import annotations

import logging

from pbxgate.config import MASK

LOGGERS = ("pbxgate", "httpx", "httpcore")


class MaskFilter(logging.Filter):
    def __init__(self) -> None:
        super().__init__()
        self.secrets: set[str] = set()

    def mask(self, text: str) -> str:
        for secret in sorted(self.secrets, key=len, reverse=True):
            text = text.replace(secret, MASK)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            message = record.getMessage()
            masked = self.mask(message)
            if masked != message:
                record.msg, record.args = masked, ()
        return True


_filter = MaskFilter()


def register_secret(value: str) -> None:
    """Mask ``value`` in every log line from now on (values shorter than 6 are not secrets)."""
    if len(value) < 6:
        return
    _filter.secrets.add(value)
    for name in LOGGERS:
        logger = logging.getLogger(name)
        if _filter not in logger.filters:
            logger.addFilter(_filter)


def mask(text: str) -> str:
    return _filter.mask(text)


__all__ = ["MaskFilter", "mask", "register_secret"]
