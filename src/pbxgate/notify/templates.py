"""Messages are Jinja2 templates rendered in a sandbox (an admin's template cannot reach Python).

The default incoming message keeps the article's first line, "Сейчас поступит звонок с номера:
<callerid>" (seed article, asteriskvk.php), and adds the caller's name, the number dialled and the
time in the PBX's zone. Variables available to a template:

    number, name, name_source, did, time (datetime), time_text, kind, dialstatus,
    dialstatus_text, channel, context, extension, uniqueid, linkedid, extra (dict)
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
from pbxgate.notify.events import MISSED, CallEvent
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

SUBJECTS = {"incoming": "Входящий звонок", MISSED: "Пропущенный звонок"}


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
    ) -> None:
        env = SandboxedEnvironment(autoescape=False, undefined=jinja2.ChainableUndefined)
        self._templates = {
            "incoming": _compile(env, incoming, "notify.incoming_template"),
            MISSED: _compile(env, missed, "notify.missed_template"),
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
        }

    def render(self, event: CallEvent, extra: Mapping[str, Any] | None = None) -> Message:
        ctx = self.context(event) | dict(extra or {})
        try:
            text = self._templates[event.kind].render(ctx).strip()
        except jinja2.TemplateError as exc:
            # SecurityError (sandbox) is a TemplateError too; fall back to the built-in text.
            fallback = DEFAULT_MISSED if event.kind == MISSED else DEFAULT_INCOMING
            text = SandboxedEnvironment().from_string(fallback).render(ctx).strip()
            text += f"\n(template error: {exc})"
        subject = f"{SUBJECTS[event.kind]}: {ctx['number'] or 'скрыт'}"
        return Message(text=text, subject=subject, event=event)


__all__ = ["DEFAULT_INCOMING", "DEFAULT_MISSED", "DIALSTATUS_TEXT", "Renderer", "read_template"]
