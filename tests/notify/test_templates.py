from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from pbxgate.errors import ConfigError
from pbxgate.notify.names import NameResolver
from pbxgate.notify.templates import Renderer

from .helpers import make_event

GOLDENS = Path(__file__).parent / "goldens"
MSK = ZoneInfo("Europe/Moscow")
# 2023-11-14 22:13:21 UTC = 2023-11-15 01:13:21 in Moscow (UTC+3)
WHEN = 1700000001.0


def test_default_incoming_text_golden(golden) -> None:  # type: ignore[no-untyped-def]
    msg = Renderer(zone=MSK).render(make_event(1, caller_name="Иван Петров"))
    golden(GOLDENS / "incoming_default.txt", msg.text + "\n")
    assert msg.text.startswith("Сейчас поступит звонок с номера: +79161234567\n")
    assert msg.subject == "Входящий звонок: +79161234567"


def test_default_missed_text_golden(golden) -> None:  # type: ignore[no-untyped-def]
    event = make_event(1, kind="missed", dialstatus="NOANSWER")
    msg = Renderer(zone=MSK).render(event)
    golden(GOLDENS / "missed_default.txt", msg.text + "\n")
    assert "Причина: не ответили" in msg.text


def test_time_is_in_the_configured_zone() -> None:
    text = Renderer(zone=MSK).render(make_event(1)).text
    assert "Время: 15.11.2023 01:13:21" in text
    text = Renderer(zone=ZoneInfo("UTC")).render(make_event(1)).text
    assert "Время: 14.11.2023 22:13:21" in text


def test_anonymous_caller_and_no_did() -> None:
    text = Renderer(zone=MSK).render(make_event(1, caller_number="", did="")).text
    assert text.splitlines() == [
        "Сейчас поступит звонок с номера: скрыт",
        "Время: 15.11.2023 01:13:21",
    ]


def test_custom_template_sees_event_fields() -> None:
    r = Renderer("{{ number }} -> {{ did }} ({{ extra.dept }}) {{ time.year }}", zone=MSK)
    text = r.render(make_event(1, extra=(("dept", "sales"),))).text
    assert text == "+79161234567 -> 74951234567 (sales) 2023"


def test_sandbox_blocks_python_internals() -> None:
    r = Renderer("{{ number.__class__.__mro__[1].__subclasses__() }}", zone=MSK)
    text = r.render(make_event(1)).text
    assert text.startswith("Сейчас поступит звонок с номера:")  # fell back to the default
    assert "template error" in text
    assert "subclasses" not in text.split("template error")[0]


def test_a_template_that_raises_as_it_renders_falls_back_to_the_default() -> None:
    """Arithmetic on a value raises Python's own errors, not the template engine's: the
    default text, and why, rather than an exception for the worker."""
    r = Renderer("{{ 100 / (extra|length) }}%", zone=MSK)
    text = r.render(make_event(1)).text
    assert text.startswith("Сейчас поступит звонок с номера: +79161234567")
    assert "(template error: ZeroDivisionError: division by zero)" in text


def test_syntax_error_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="incoming_template"):
        Renderer("{% if %}")


def test_name_from_phonebook_when_callerid_has_none(tmp_path: Path) -> None:
    book = tmp_path / "book.csv"
    book.write_text("number,name\n8 (916) 123-45-67,Ольга\n", encoding="utf-8")
    r = Renderer(zone=MSK, names=NameResolver(book, None))
    assert "Имя: Ольга" in r.render(make_event(1)).text
    assert "Имя: Пётр" in r.render(make_event(1, caller_name="Пётр")).text
