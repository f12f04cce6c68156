"""Handing one message to an SMTP server: the session both notifications and reports use.

``security`` is ``none`` (plain), ``starttls`` (upgrade after EHLO, usually port 587) or ``ssl``
(TLS from the first byte, usually 465). Callers turn smtplib's and ssl's exceptions into their
own outcomes; nothing here logs, and the password goes to the server only.
"""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Callable
from email.message import EmailMessage


def send_message(
    msg: EmailMessage,
    *,
    host: str,
    port: int,
    security: str,
    timeout: float,
    tls: Callable[[], ssl.SSLContext] = ssl.create_default_context,
    login: tuple[str, str] | None = None,
) -> dict[str, tuple[int, bytes]]:
    """Connect, secure the session as ``security`` says (``tls`` makes the context, only
    when one is needed), log in when ``login`` is given (user, password) and send ``msg``;
    the recipients the server refused while it took the others (none refused: {})."""
    client: smtplib.SMTP
    if security == "ssl":
        client = smtplib.SMTP_SSL(host, port, timeout=timeout, context=tls())
    else:
        client = smtplib.SMTP(host, port, timeout=timeout)
    with client:
        if security == "starttls":
            client.starttls(context=tls())
        if login is not None:
            client.login(*login)
        return client.send_message(msg)


__all__ = ["send_message"]
