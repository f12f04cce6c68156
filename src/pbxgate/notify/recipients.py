"""Recipients with secrets in them: a webhook URL's path, query string and userinfo.

``https://crm.example.org/hook?key=s3cr3t`` must reach the CRM as it is, and be shown nowhere
as it is: not in ``config show``, the worker's and serve's logs, ``notify status`` (and its
JSON) or the outbox file. Many services keep the secret in the path itself (Bitrix24's
``/rest/1/<secret>/crm.lead.add``, Discord's ``/api/webhooks/<id>/<token>``, Slack's
``/services/T.../B.../<secret>``), so the path is hidden too. So:

* :func:`redact` shows such a URL as ``https://crm.example.org/***?***`` (userinfo ``***@``);
* :func:`ref` is what the outbox stores for a recipient: the recipient itself when it holds no
  secret (a VK id, an e-mail address, a plain URL), otherwise the redacted form and a digest of
  the whole, ``https://crm.example.org/***?*** [3f2a9c0d41b7]``;
* :class:`RecipientBook` turns a stored reference back into the configured recipient when the
  worker sends, and registers the secret parts with the log masker. A reference whose
  recipient has left the settings is a dead letter (the worker cannot guess the URL).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from urllib.parse import urlsplit, urlunsplit

from pbxgate.notify.logmask import register_secret

HIDDEN = "***"


def _secret_parts(text: str) -> list[str]:
    if not text.lower().startswith(("http://", "https://")):  # HTTPS:// is a URL too
        return []
    parts = urlsplit(text)
    found = []
    if parts.username is not None or parts.password is not None:
        found.append(parts.netloc.rpartition("@")[0])
    if parts.path.strip("/"):
        found.append(parts.path)
    if parts.query:
        found.append(parts.query)
    if parts.fragment:
        found.append(parts.fragment)
    return found


def redact(text: str) -> str:
    """``text`` with an http(s) URL's userinfo, path, query string and fragment hidden."""
    if not _secret_parts(text):
        return text
    parts = urlsplit(text)
    host = parts.netloc.rpartition("@")[2]
    netloc = f"{HIDDEN}@{host}" if "@" in parts.netloc else host
    path = f"/{HIDDEN}" if parts.path.strip("/") else parts.path
    return urlunsplit((parts.scheme, netloc, path, HIDDEN if parts.query else "",
                       HIDDEN if parts.fragment else ""))  # fmt: skip


def ref(recipient: str) -> str:
    """What the outbox keeps for ``recipient`` (see the module docstring)."""
    if not _secret_parts(recipient):
        return recipient
    digest = hashlib.sha256(recipient.encode()).hexdigest()[:12]
    return f"{redact(recipient)} [{digest}]"


def is_ref(stored: str) -> bool:
    return stored.endswith("]") and " [" in stored


class RecipientBook:
    """The configured recipients by the reference the outbox keeps for them."""

    def __init__(self, recipients: Iterable[str]) -> None:
        self._by_ref: dict[str, str] = {}
        for recipient in recipients:
            self._by_ref[ref(recipient)] = recipient
            parts = _secret_parts(recipient)
            for part in parts:
                register_secret(part)
            if parts:  # the whole too: a part too short to mask alone is hidden in it
                register_secret(recipient)

    def resolve(self, stored: str) -> str | None:
        """The recipient to send to; None when a reference's recipient is no longer set."""
        if not is_ref(stored):
            return stored  # no secret in it (or a row from before references)
        return self._by_ref.get(stored)


__all__ = ["RecipientBook", "is_ref", "redact", "ref"]
