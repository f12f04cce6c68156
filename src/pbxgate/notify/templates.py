"""Messages are Jinja2 templates rendered in a sandbox (an admin's template cannot reach Python).

The default incoming message keeps the article's first line, "Сейчас поступит звонок с номера:
<callerid>" (seed article, asteriskvk.php), and adds the caller's name, the number dialled and the
time in the PBX's zone. Variables available to a template:

    number, name, name_source, did, time (datetime), time_text, kind, dialstatus,
    dialstatus_text, channel, context, extension, uniqueid, linkedid, extra (dict),
    answered_by, answered_name, talk_seconds, talk_text ("2:31"), pbx, recorded, transfers

A call whose message follows it (docs/notify.md, "The message follows the call") is shown with
the template of its latest event: incoming, then answered, then ended or missed.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import tzinfo
from pathlib import Path
from typing import Any

import jinja2
from jinja2.sandbox import SandboxedEnvironment

from pbxgate.errors import ConfigError
from pbxgate.notify.channels.base import Message
from pbxgate.notify.events import ANSWERED, CALLED_BACK, ENDED, INCOMING, MISSED, CallEvent
from pbxgate.notify.names import NameResolver
from pbxgate.notify.timezone import local_time

DEFAULT_INCOMING = """\
Сейчас поступит звонок с номера: {{ number or "скрыт" }}
{%- if name %}
Имя: {{ name }}{% endif %}
{%- if did %}
Набран номер: {{ did }}{% endif %}
Время: {{ time_text }}"""

DEFAULT_MISSED = """\
Пропущенный звонок с номера: {{ number or "скрыт" }}
{%- if name %}
Имя: {{ name }}{% endif %}
{%- if did %}
Набран номер: {{ did }}{% endif %}
Время: {{ time_text }}
{%- if dialstatus_text %}
Причина: {{ dialstatus_text }}{% endif %}"""

DEFAULT_ANSWERED = """\
{{ number or "скрыт" }} — разговаривает с {{ answered_name ~ " (" ~ answered_by ~ ")"
   if answered_name else answered_by or "оператором" }}{% if transfers %}, после перевода{% endif %}
{%- if name %}
Имя: {{ name }}{% endif %}
{%- if did %}
Набран номер: {{ did }}{% endif %}
Время: {{ time_text }}"""

DEFAULT_ENDED = """\
{{ number or "скрыт" }} — разговор {{ talk_text }}
{%- if answered_by %} с {{ answered_name ~ " (" ~ answered_by ~ ")"
   if answered_name else answered_by }}{% endif %}{% if transfers %}, после перевода{% endif %}
{%- if recorded %}, запись{% endif %}
{%- if name %}
Имя: {{ name }}{% endif %}
{%- if did %}
Набран номер: {{ did }}{% endif %}
Время: {{ time_text }}"""

DEFAULT_CALLED_BACK = """\
Пропущенный звонок с номера: {{ number or "скрыт" }} —
{%- if dialstatus == "GOTTHROUGH" %} дозвонился позже{% if answered_by %}, ответил {{
answered_name ~ " (" ~ answered_by ~ ")" if answered_name else answered_by }}{% endif %}
{%- else %} перезвонили{% if answered_by %}: {{ answered_name ~ " (" ~ answered_by ~ ")"
if answered_name else answered_by }}{% endif %}{% endif %}
{%- if name %}
Имя: {{ name }}{% endif %}
{%- if did %}
Набран номер: {{ did }}{% endif %}
Время: {{ time_text }}"""

# DIALSTATUS values: Asterisk app_dial documentation.
DIALSTATUS_TEXT = {
    "NOANSWER": "не ответили",
    "BUSY": "занято",
    "CANCEL": "звонящий положил трубку",
    "CONGESTION": "перегрузка",
    "CHANUNAVAIL": "абонент недоступен",
    "DONTCALL": "отклонён",
    "TORTURE": "отклонён",
    "INVALIDARGS": "ошибка набора",
}

SUBJECTS = {
    INCOMING: "Входящий звонок",
    ANSWERED: "Разговор",
    ENDED: "Звонок завершён",
    MISSED: "Пропущенный звонок",
    CALLED_BACK: "Пропущенный звонок: перезвонили",
}
DEFAULTS = {
    INCOMING: DEFAULT_INCOMING,
    ANSWERED: DEFAULT_ANSWERED,
    ENDED: DEFAULT_ENDED,
    MISSED: DEFAULT_MISSED,
    CALLED_BACK: DEFAULT_CALLED_BACK,
}


def talk_text(seconds: float) -> str:
    """2:31, or 1:02:07 past an hour."""
    total = max(0, round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _compile(env: SandboxedEnvironment, source: str, where: str) -> jinja2.Template:
    try:
        return env.from_string(source)
    except jinja2.TemplateSyntaxError as exc:
        raise ConfigError(
            f"{where} is not a valid template: {exc.message} (line {exc.lineno})"
        ) from exc


def read_template(inline: str, path: Path | None, default: str, where: str) -> str:
    if inline:
        return inline
    if path is not None:
        try:
            return path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read {where}_file {path}: {exc.strerror}") from exc
    return default


class Renderer:
    def __init__(
        self,
        incoming: str = DEFAULT_INCOMING,
        missed: str = DEFAULT_MISSED,
        zone: tzinfo | None = None,
        names: NameResolver | None = None,
        *,
        answered: str = DEFAULT_ANSWERED,
        ended: str = DEFAULT_ENDED,
        called_back: str = DEFAULT_CALLED_BACK,
    ) -> None:
        env = SandboxedEnvironment(autoescape=False, undefined=jinja2.ChainableUndefined)
        sources = {
            INCOMING: incoming,
            ANSWERED: answered,
            ENDED: ended,
            MISSED: missed,
            CALLED_BACK: called_back,
        }
        self._templates = {
            kind: _compile(env, source, f"notify.{kind}_template")
            for kind, source in sources.items()
        }
        self.zone = zone
        self.names = names or NameResolver()

    def context(self, event: CallEvent) -> dict[str, Any]:
        name, source = self.names.resolve(event.caller_number, event.caller_name)
        when = local_time(event.occurred_at, self.zone)
        return {
            "number": event.caller_number,
            "name": name,
            "name_source": source,
            "did": event.did,
            "time": when,
            "time_text": when.strftime("%d.%m.%Y %H:%M:%S"),
            "kind": event.kind,
            "dialstatus": event.dialstatus,
            "dialstatus_text": DIALSTATUS_TEXT.get(event.dialstatus, event.dialstatus.lower()),
            "channel": event.channel,
            "context": event.context,
            "extension": event.extension,
            "uniqueid": event.uniqueid,
            "linkedid": event.linkedid,
            "extra": dict(event.extra),
            "answered_by": event.answered_by,
            "answered_name": event.answered_name,
            "talk_seconds": event.talk_seconds,
            "talk_text": talk_text(event.talk_seconds),
            "pbx": event.pbx,
            "recorded": event.recorded,
            "transfers": event.transfers,
        }

    def render(self, event: CallEvent, extra: Mapping[str, Any] | None = None) -> Message:
        ctx = self.context(event) | dict(extra or {})
        try:
            text = self._templates[event.kind].render(ctx).strip()
        except Exception as exc:  # an admin's template: anything it raises
            # SecurityError (sandbox) is a TemplateError; arithmetic on a value raises what
            # Python does (ZeroDivisionError, TypeError...): the built-in text, and why
            fallback = DEFAULTS[event.kind]
            text = SandboxedEnvironment().from_string(fallback).render(ctx).strip()
            why = str(exc)
            if not isinstance(exc, jinja2.TemplateError):
                why = f"{type(exc).__name__}: {why}"
            text += f"\n(template error: {why})"
        subject = f"{SUBJECTS[event.kind]}: {ctx['number'] or 'скрыт'}"
        return Message(text=text, subject=subject, event=event)


__all__ = [
    "DEFAULTS",
    "DEFAULT_ANSWERED",
    "DEFAULT_CALLED_BACK",
    "DEFAULT_ENDED",
    "DEFAULT_INCOMING",
    "DEFAULT_MISSED",
    "DIALSTATUS_TEXT",
    "Renderer",
    "read_template",
    "talk_text",
]
