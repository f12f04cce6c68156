"""E-mail through SMTP (stdlib ``smtplib``, run in a thread so the loop never blocks).

SMTP has no idempotency key; the ``Message-ID`` is derived from the delivery's idempotency key,
so a resend after a crash carries the same id and mail clients that thread or dedupe by it
(RFC 5322 §3.6.4: the id is unique to one message) show one copy: best effort. SMTP reply codes
(RFC 5321 §4.2.1): 4yz transient -> retry, 5yz permanent -> dead letter.
"""

from __future__ import annotations

import asyncio
import hashlib
import smtplib
from email.message import EmailMessage
from email.utils import format_datetime, formatdate

from pbxgate.notify.channels.base import Dead, Message, Outcome, Retry, Sent
from pbxgate.notify.logmask import guarded
from pbxgate.notify.settings import EmailSettings
from pbxgate.notify.timezone import local_time
from pbxgate.smtp import send_message


def message_id(key: str, domain: str = "pbxgate.invalid") -> str:
    return f"<{hashlib.sha256(key.encode('utf-8')).hexdigest()[:32]}@{domain}>"


def build_email(message: Message, sender: str, recipient: str, key: str) -> EmailMessage:
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = recipient
    mail["Subject"] = message.subject
    mail["Message-ID"] = message_id(key)
    if message.event.occurred_at:
        mail["Date"] = format_datetime(local_time(message.event.occurred_at, None))
    else:
        mail["Date"] = formatdate(localtime=True)
    mail.set_content(message.text)
    return mail


class EmailChannel:
    name = "email"

    def __init__(self, settings: EmailSettings) -> None:
        if settings.security not in ("none", "starttls", "ssl"):
            raise ValueError("notify.email.security must be none, starttls or ssl")
        self.settings = settings
        self._password = guarded(settings.password)

    def _send_blocking(self, mail: EmailMessage) -> None:
        s = self.settings
        send_message(
            mail,
            host=s.host,
            port=s.port,
            security=s.security,
            timeout=s.timeout,
            login=(s.username, self._password.reveal()) if s.username else None,
        )

    async def send(self, message: Message, recipient: str, key: str) -> Outcome:
        mail = build_email(message, self.settings.sender, recipient, key)
        where = f"{self.settings.host}:{self.settings.port}"
        try:
            await asyncio.to_thread(self._send_blocking, mail)
        except smtplib.SMTPRecipientsRefused as exc:
            code, text = next(iter(exc.recipients.values()), (550, b""))
            return _by_code(code, f"{where} refused {recipient}: {_text(text)}")
        except smtplib.SMTPAuthenticationError as exc:
            return Dead(
                f"{where} rejected the SMTP login for {self.settings.username}: {exc.smtp_code}"
            )
        except smtplib.SMTPResponseException as exc:
            return _by_code(
                exc.smtp_code, f"{where} answered {exc.smtp_code} {_text(exc.smtp_error)}"
            )
        except (smtplib.SMTPException, OSError) as exc:
            return Retry(f"cannot talk to SMTP server {where}: {type(exc).__name__}")
        return Sent(f"accepted by {where}")

    async def aclose(self) -> None:
        return None


def _text(raw: bytes | str) -> str:
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    return text[:200]


def _by_code(code: int, reason: str) -> Outcome:
    return Retry(reason) if 400 <= code < 500 else Dead(reason)


__all__ = ["EmailChannel", "build_email", "message_id"]
