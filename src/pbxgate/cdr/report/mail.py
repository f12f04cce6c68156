"""The report as an e-mail, and sending it over SMTP.

Structure (what mail clients render best, RFC 2046 §5.1.4 and RFC 2387)::

    multipart/mixed                (only when a file is attached)
    └── multipart/alternative
        ├── text/plain             the terminal text: for clients that show no HTML
        └── multipart/related
            ├── text/html          <img src="cid:hourly.…@pbxgate">
            └── image/png …        one inline part per chart, Content-ID matching the src
    └── application/… attachment   xlsx / csv / json, when the schedule asks for one

Errors are one line naming the server and its SMTP reply; the password never appears in them
(smtplib's exceptions carry the server's reply, not the credentials we sent).
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any

from pbxgate.cdr.report.i18n import label
from pbxgate.cdr.report.settings import SmtpSettings
from pbxgate.errors import DeliveryError
from pbxgate.smtp import send_message


class SmtpError(DeliveryError):
    """The SMTP server could not be reached, refused the login or the message. ``permanent``:
    trying again will not help until the settings change (a login refused with a 5yz reply,
    RFC 5321 §4.2.1; every recipient unknown; a security the server lacks). Other 5yz replies
    (a full mailbox, a rate limit, a block list at the greeting) may clear, and are tried
    again."""

    def __init__(self, message: str, *, hint: str | None = None, permanent: bool = False) -> None:
        super().__init__(message, hint=hint)
        self.permanent = permanent


log = logging.getLogger(__name__)


def subject(report: dict[str, Any]) -> str:
    lang = report["language"]
    calls = next((k["value"] for k in report["kpis"] if k["key"] == "calls"), 0)
    missed = next((k["value"] for k in report["kpis"] if k["key"] == "missed"), 0)
    return (
        f"{label(lang, 'title')}: {report['period']['label']} — {label(lang, 'calls')} "
        f"{calls}, {label(lang, 'missed').split(' (')[0].lower()} {missed}"
    )


def build_message(
    report: dict[str, Any],
    *,
    sender: str,
    to: list[str],
    attachment: tuple[str, str, bytes] | None = None,
    max_rows: int = 100,
    message_id: str | None = None,
    html: bool = True,
) -> EmailMessage:
    """The message: text and HTML alternatives, charts as CID parts, an optional file
    ``(name, mime type, bytes)``. A fixed ``message_id`` lets clients drop a repeat."""
    from pbxgate.cdr.report.text import render_text  # noqa: PLC0415

    msg = EmailMessage()
    msg["Subject"] = subject(report)
    msg["From"] = sender
    msg["To"] = ", ".join(to)
    msg["Date"] = formatdate(localtime=True)
    msg["Message-ID"] = message_id or make_msgid(domain="pbxgate")
    msg.set_content(render_text(report, max_rows=max_rows))
    if html:
        _add_html(msg, report, max_rows)
    if attachment is not None:
        name, mime, data = attachment
        maintype, subtype = mime.split("/", 1)
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    return msg


def _add_html(msg: EmailMessage, report: dict[str, Any], max_rows: int) -> None:
    from pbxgate.cdr.report.charts import render_charts  # noqa: PLC0415 - matplotlib
    from pbxgate.cdr.report.html import render_html  # noqa: PLC0415

    charts = render_charts(report)
    cids = {name: make_msgid(idstring=name, domain="pbxgate") for name in charts}
    images = {name: "cid:" + cid[1:-1] for name, cid in cids.items()}
    msg.add_alternative(render_html(report, images, max_rows=max_rows), subtype="html")
    parts = msg.get_payload()
    assert isinstance(parts, list)
    html_part = parts[1]
    assert isinstance(html_part, EmailMessage)
    for name, png in charts.items():
        html_part.add_related(
            png,
            maintype="image",
            subtype="png",
            cid=cids[name],
            filename=f"{name}.png",
            disposition="inline",
        )


def _refused(code: int) -> bool:
    """A 5yz reply: the server will refuse the same again."""
    return 500 <= code < 600


# RCPT replies that name an address the server will not take again (RFC 5321 §4.2.2: mailbox
# unavailable, not local, name not allowed); 552 (storage exceeded) may clear, §4.5.3.1.10.
NO_SUCH_MAILBOX = frozenset({550, 551, 553})


def send(msg: EmailMessage, smtp: SmtpSettings) -> None:
    """Hand ``msg`` to the server; raises :class:`SmtpError` with one clear line."""
    where = smtp.where
    password = smtp.password.reveal() if smtp.password else ""
    try:
        refused = send_message(
            msg,
            host=smtp.host,
            port=smtp.port,
            security=smtp.security,
            timeout=smtp.timeout,
            tls=lambda: _tls(smtp),
            login=(smtp.user, password) if smtp.user else None,
        )
    except smtplib.SMTPAuthenticationError as exc:
        raise SmtpError(
            f"SMTP server {where} refused the login for {smtp.user}: "
            f"{exc.smtp_code} {_reply(exc.smtp_error)}",
            permanent=_refused(exc.smtp_code),
        ) from None
    except smtplib.SMTPRecipientsRefused as exc:
        rcpt, (code, text) = next(iter(exc.recipients.items()))
        # for good only when every address is one the server does not have or take
        gone = all(c in NO_SUCH_MAILBOX for c, _ in exc.recipients.values())
        raise SmtpError(
            f"SMTP server {where} refused {rcpt}: {code} {_reply(text)}", permanent=gone
        ) from None
    except smtplib.SMTPResponseException as exc:  # a full mailbox, a rate limit, a block list
        raise SmtpError(
            f"SMTP server {where} answered {exc.smtp_code} {_reply(exc.smtp_error)}"
        ) from None
    except smtplib.SMTPNotSupportedError as exc:
        hint = "check [report.smtp] security"
        if "AUTH" in str(exc) and smtp.security == "none":  # many offer a login only over TLS
            hint = ('the server may offer a login only over TLS: set [report.smtp] security = '
                    '"starttls" (or "ssl"); a relay that takes no login needs no user')  # fmt: skip
        raise SmtpError(f"SMTP server {where}: {exc}", hint=hint, permanent=True) from None
    except UnicodeEncodeError as exc:
        if not f"{smtp.user}{password}".isascii():  # smtplib sends credentials as ASCII only
            raise SmtpError(
                f"SMTP login for {smtp.user} at {where} failed: the user name or "
                "password has non-ASCII characters, which smtplib cannot send",
                permanent=True,
            ) from None
        raise SmtpError(f"the message for {where} could not be encoded: {exc.reason}") from None
    except ssl.SSLCertVerificationError as exc:
        hint = "a self-signed server needs [report.smtp] verify = false"
        raise SmtpError(f"SMTP server {where}: {exc.verify_message or exc}", hint=hint) from None
    except (smtplib.SMTPException, ssl.SSLError) as exc:
        raise SmtpError(f"SMTP server {where}: {type(exc).__name__}: {exc}") from None
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise SmtpError(
            f"cannot reach SMTP server {where}: {reason}", hint="check [report.smtp] host and port"
        ) from None
    for rcpt, (code, text) in refused.items():  # the others got it
        log.warning("SMTP server %s refused %s: %s %s", where, rcpt, code, _reply(text))


def _tls(smtp: SmtpSettings) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if not smtp.verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _reply(raw: bytes | str) -> str:
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    return " ".join(text.split())[:200]


__all__ = ["SmtpError", "build_message", "send", "subject"]
