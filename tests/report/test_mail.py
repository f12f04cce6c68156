"""The report by e-mail against a local aiosmtpd server: structure, inline charts, errors."""

from __future__ import annotations

import email
import email.policy
import logging
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from pbxgate.cdr.report.mail import SmtpError, build_message, send
from pbxgate.cdr.report.settings import SmtpSettings
from pbxgate.cli.main import main
from pbxgate.config import Secret
from tests.conftest import free_port
from tests.report.helpers import day_report, week_report, write_config

PASSWORD = "s3cret-Parol"


class Sink:
    def __init__(self) -> None:
        self.messages: list[tuple[list[str], bytes]] = []

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if address.startswith("gone@"):
            return "550 5.1.1 no such mailbox"
        if address.startswith("busy@"):
            return "451 4.3.0 try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((list(envelope.rcpt_tos), bytes(envelope.content)))
        return "250 OK"


def check_login(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
        b"pbx",
        PASSWORD.encode(),
    )
    return AuthResult(success=ok, handled=False)


@pytest.fixture
def smtp_server() -> Iterator[tuple[Sink, int]]:
    sink = Sink()
    port = free_port()
    controller = Controller(
        sink, hostname="127.0.0.1", port=port, authenticator=check_login, auth_require_tls=False
    )
    controller.start()
    try:
        yield sink, port
    finally:
        controller.stop()


def mail_day_report(cfg: Path, *extra: str, to: str = "boss@example.org") -> int:
    """`pbxgate cdr report` of the fixture day, mailed to ``to``."""
    day = ["--from", "2016-03-18", "--to", "2016-03-18"]
    return main(["--config", str(cfg), "cdr", "report", *day, *extra, "--mail", to])


def parse(raw: bytes) -> EmailMessage:
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


def test_message_structure_alternative_with_related_inline_charts() -> None:
    report = week_report("ru")
    msg = parse(bytes(build_message(report, sender="pbx@example.org", to=["a@example.org"])))
    assert msg.get_content_type() == "multipart/alternative"
    plain, related = msg.get_payload()  # type: ignore[misc]
    assert plain.get_content_type() == "text/plain"
    assert "Отчёт о звонках: 2024-03-04 – 2024-03-10" in plain.get_content()
    assert related.get_content_type() == "multipart/related"
    html, *images = related.get_payload()
    assert html.get_content_type() == "text/html"
    assert [i.get_content_type() for i in images] == ["image/png"] * 3
    body = html.get_content()
    for image in images:
        cid = image["Content-ID"].strip("<>")
        assert f'src="cid:{cid}"' in body
        assert image.get_content_disposition() == "inline"
        assert image.get_content().startswith(b"\x89PNG")
    assert "data:image" not in body
    assert msg["Subject"].startswith("Отчёт о звонках: 2024-03-04 – 2024-03-10 — Звонков 350")


def test_attachment_makes_it_mixed() -> None:
    report = day_report("en")
    msg = parse(
        bytes(
            build_message(
                report,
                sender="s@x.org",
                to=["a@x.org"],
                attachment=("calls.csv", "text/csv", b"a,b\n"),
            )
        )
    )
    assert msg.get_content_type() == "multipart/mixed"
    alt, att = msg.get_payload()  # type: ignore[misc]
    assert alt.get_content_type() == "multipart/alternative"
    assert att.get_filename() == "calls.csv"


def test_cli_mails_the_report(
    tmp_path: Path, smtp_server: tuple[Sink, int], monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    sink, port = smtp_server
    monkeypatch.setenv("SMTP_PASS", PASSWORD)
    cfg = write_config(
        tmp_path,
        smtp=(
            f'[report.smtp]\nport = {port}\nuser = "pbx"\npassword_env = "SMTP_PASS"\n'
            f'sender = "PBX <pbx@example.org>"\n'
        ),
    )
    code = mail_day_report(cfg, "--language", "en", to="boss@example.org,ops@example.org")
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "sent to boss@example.org, ops@example.org" in err
    ((rcpts, raw),) = sink.messages
    assert rcpts == ["boss@example.org", "ops@example.org"]
    msg = parse(raw)
    assert msg["From"] == "PBX <pbx@example.org>"
    assert msg["Subject"] == "Call report: 2016-03-18 — Calls 10, missed 4"
    plain = msg.get_body(("plain",))
    html = msg.get_body(("html",))
    assert plain is not None and "called back" in plain.get_content()
    assert html is not None and 'src="cid:' in html.get_content()
    assert PASSWORD not in out + err


def test_refused_login_is_one_line_naming_server_and_reply(
    tmp_path: Path, smtp_server: tuple[Sink, int], capsys: Any
) -> None:
    _, port = smtp_server
    (tmp_path / "pass").write_text("wrong-" + PASSWORD)
    cfg = write_config(
        tmp_path,
        smtp=(f'[report.smtp]\nport = {port}\nuser = "pbx"\npassword_file = "{tmp_path}/pass"\n'),
    )
    code = mail_day_report(cfg)
    out, err = capsys.readouterr()
    assert code == 5
    assert err.count("\n") == 1
    assert err.startswith(f"error: SMTP server 127.0.0.1:{port} refused the login for pbx: 535")
    assert PASSWORD not in out + err


def test_unreachable_server_is_one_line(tmp_path: Path, capsys: Any) -> None:
    port = free_port()  # nothing listens there
    cfg = write_config(
        tmp_path, smtp=f'[report.smtp]\nport = {port}\npassword = "{PASSWORD}"\nuser = "pbx"\n'
    )
    code = mail_day_report(cfg)
    _, err = capsys.readouterr()
    assert code == 5
    assert err == (
        f"error: cannot reach SMTP server 127.0.0.1:{port}: Connection refused "
        "(check [report.smtp] host and port)\n"
    )
    assert PASSWORD not in err


def test_starttls_against_a_server_without_it_says_so(smtp_server: tuple[Sink, int]) -> None:
    _, port = smtp_server
    smtp = SmtpSettings(port=port, security="starttls", user="pbx", password=Secret(PASSWORD))
    msg = build_message(day_report(), sender="s@x.org", to=["a@x.org"], html=False)
    with pytest.raises(SmtpError, match=rf"SMTP server 127.0.0.1:{port}: STARTTLS") as info:
        send(msg, smtp)
    assert PASSWORD not in str(info.value)


def test_a_login_the_server_offers_only_over_tls_says_what_to_change() -> None:
    """A server that offers AUTH only after STARTTLS (aiosmtpd's default, and many relays'),
    asked for a login in the clear: the line says what to change, not only smtplib's words."""
    port = free_port()
    controller = Controller(Sink(), hostname="127.0.0.1", port=port, authenticator=check_login)
    controller.start()
    try:
        smtp = SmtpSettings(port=port, user="pbx", password=Secret(PASSWORD))
        msg = build_message(day_report(), sender="s@x.org", to=["a@x.org"], html=False)
        with pytest.raises(SmtpError) as info:
            send(msg, smtp)
    finally:
        controller.stop()
    assert str(info.value) == (
        f"SMTP server 127.0.0.1:{port}: SMTP AUTH extension not supported by server. (the "
        'server may offer a login only over TLS: set [report.smtp] security = "starttls" (or '
        '"ssl"); a relay that takes no login needs no user)'
    )
    assert info.value.permanent and PASSWORD not in str(info.value)


def test_text_only_mail_has_no_html(smtp_server: tuple[Sink, int]) -> None:
    sink, port = smtp_server
    msg = build_message(day_report(), sender="s@x.org", to=["a@x.org"], html=False)
    send(msg, SmtpSettings(port=port))
    ((_, raw),) = sink.messages
    assert parse(raw).get_content_type() == "text/plain"


def test_non_ascii_password_is_a_clear_error(smtp_server: tuple[Sink, int]) -> None:
    _, port = smtp_server
    smtp = SmtpSettings(port=port, user="pbx", password=Secret("пароль-123"))
    msg = build_message(day_report(), sender="s@x.org", to=["a@x.org"], html=False)
    with pytest.raises(SmtpError, match="non-ASCII") as info:
        send(msg, smtp)
    assert "пароль" not in str(info.value)


def test_a_recipient_the_server_refuses_is_said_while_the_others_get_it(
    smtp_server: tuple[Sink, int], caplog: pytest.LogCaptureFixture
) -> None:
    """The server took the report for one recipient and refused another: the refusal was
    dropped, and the log said it went to both."""
    sink, port = smtp_server
    msg = build_message(day_report(), sender="s@x.org", to=["boss@x.org", "gone@x.org"])
    with caplog.at_level(logging.WARNING, logger="pbxgate.cdr.report.mail"):
        send(msg, SmtpSettings(port=port))
    ((rcpts, _),) = sink.messages
    assert rcpts == ["boss@x.org"]
    assert "refused gone@x.org: 550 5.1.1 no such mailbox" in caplog.text


def test_what_trying_again_cannot_mend_is_permanent(smtp_server: tuple[Sink, int]) -> None:
    """A refused login and an unknown mailbox are the same the next time: the schedules do
    not try them again for a day; a 4yz reply, a server down, or one address unknown beside
    one refused for now, is tried again."""
    _, port = smtp_server
    down = free_port()
    refusals = {}
    for who, smtp in [
        (["gone@x.org"], SmtpSettings(port=port)),
        (["busy@x.org"], SmtpSettings(port=port)),
        (["gone@x.org", "busy@x.org"], SmtpSettings(port=port)),
        (["a@x.org"], SmtpSettings(port=port, user="pbx", password=Secret("wrong"))),
        (["a@x.org"], SmtpSettings(port=down)),
    ]:
        msg = build_message(day_report(), sender="s@x.org", to=who, html=False)
        with pytest.raises(SmtpError) as info:
            send(msg, smtp)
        refusals[(",".join(who), str(info.value).split(": ")[1])] = info.value.permanent
    assert refusals == {
        ("gone@x.org", "550 5.1.1 no such mailbox"): True,
        ("busy@x.org", "451 4.3.0 try again later"): False,
        ("gone@x.org,busy@x.org", "550 5.1.1 no such mailbox"): False,
        ("a@x.org", "535 5.7.8 Authentication credentials invalid"): True,
        ("a@x.org", "Connection refused (check [report.smtp] host and port)"): False,
    }
