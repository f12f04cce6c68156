"""Keep secrets out of log lines, including the ones third-party libraries write.

httpx logs every request URL at INFO ("HTTP Request: POST https://..."), and the Telegram Bot
API puts the bot token in the URL path. Every channel registers its secret here. Masking happens
where records are made (a wrapped ``logging`` record factory), so it covers every logger, child
loggers and handlers added later (a logger's own filters would miss records from its children).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from pbxgate.config import MASK, Secret

_secrets: set[str] = set()
_installed = False
_lock = threading.Lock()


def mask(text: str) -> str:
    for secret in sorted(_secrets, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


def _masking_factory(previous: Any) -> Any:
    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record: logging.LogRecord = previous(*args, **kwargs)
        if _secrets:
            try:
                message = record.getMessage()
            except Exception:  # a broken format string is logging's problem, not ours
                return record
            masked = mask(message)
            if masked != message:
                record.msg, record.args = masked, ()
        return record

    return factory


def guarded(secret: Secret | None) -> Secret:
    """``secret`` (an empty one when unset), registered so that no log line shows it."""
    value = secret or Secret("")
    if value:
        register_secret(value.reveal())
    return value


def register_secret(value: str) -> None:
    """Mask ``value`` in every log line from now on (values shorter than 6 are not secrets)."""
    global _installed  # noqa: PLW0603 - one process-wide hook
    if len(value) < 6:
        return
    with _lock:
        _secrets.add(value)
        if not _installed:
            logging.setLogRecordFactory(_masking_factory(logging.getLogRecordFactory()))
            _installed = True


__all__ = ["mask", "register_secret"]
