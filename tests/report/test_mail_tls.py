"""SMTP over TLS against aiosmtpd with a throw-away self-signed certificate (made by openssl):
STARTTLS and implicit TLS send, and certificate checking is on unless switched off."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from collections.abc import Iterator
from email.message import EmailMessage

import pytest
from aiosmtpd.controller import Controller

from pbxgate.cdr.report.mail import SmtpError, build_message, send
from pbxgate.cdr.report.settings import SmtpSettings
from pbxgate.config import Secret
from tests.report.helpers import day_report
from tests.report.test_mail import PASSWORD, Sink, check_login, free_port, parse


@pytest.fixture(scope="module")
def tls_context(tmp_path_factory: pytest.TempPathFactory) -> ssl.SSLContext:
    if shutil.which("openssl") is None:
        pytest.skip("openssl not installed")
    where = tmp_path_factory.mktemp("tls")
    key, cert = where / "key.pem", where / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


def serve(sink: Sink, **tls: object) -> tuple[Controller, int]:
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port, authenticator=check_login, **tls)
    controller.start()
    return controller, port


@pytest.fixture
def starttls_server(tls_context: ssl.SSLContext) -> Iterator[tuple[Sink, int]]:
    sink = Sink()
    controller, port = serve(sink, tls_context=tls_context, require_starttls=True)
    try:
        yield sink, port
    finally:
        controller.stop()


def message() -> EmailMessage:
    return build_message(day_report(), sender="s@x.org", to=["a@x.org"], html=False)


def test_starttls_with_login(starttls_server: tuple[Sink, int]) -> None:
    sink, port = starttls_server
    smtp = SmtpSettings(port=port, security="starttls", user="pbx", password=Secret(PASSWORD),
                        verify=False)  # fmt: skip
    send(message(), smtp)
    ((_, raw),) = sink.messages
    assert parse(raw)["Subject"].startswith("Отчёт о звонках: 2016-03-18")


def test_certificates_are_checked_by_default(starttls_server: tuple[Sink, int]) -> None:
    _, port = starttls_server
    smtp = SmtpSettings(port=port, security="starttls", user="pbx", password=Secret(PASSWORD))
    with pytest.raises(SmtpError) as info:
        send(message(), smtp)
    assert str(info.value) == (
        f"SMTP server 127.0.0.1:{port}: self-signed certificate "
        "(a self-signed server needs [report.smtp] verify = false)"
    )


def test_plain_login_refused_when_the_server_wants_starttls(
    starttls_server: tuple[Sink, int],
) -> None:
    _, port = starttls_server
    smtp = SmtpSettings(port=port, user="pbx", password=Secret(PASSWORD))
    with pytest.raises(SmtpError, match=rf"127.0.0.1:{port}") as info:
        send(message(), smtp)
    assert PASSWORD not in str(info.value)


def test_implicit_tls(tls_context: ssl.SSLContext) -> None:
    sink = Sink()
    controller, port = serve(sink, ssl_context=tls_context)
    try:
        send(message(), SmtpSettings(port=port, security="ssl", verify=False))
    finally:
        controller.stop()
    assert len(sink.messages) == 1
