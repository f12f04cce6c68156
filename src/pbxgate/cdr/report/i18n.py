"""The words of a report, in Russian (the default: the article's readers) and English."""

from __future__ import annotations

from datetime import datetime

_RU = {
    "title": "Отчёт о звонках",
    "period": "Период",
    "previous": "предыдущий период",
    "source": "Источник",
    "generated": "Сформирован",
    "kpis": "Главное",
    "kpi": "Показатель",
    "value": "Значение",
    "prev_value": "Было",
    "change": "Изменение",
    "calls": "Звонков",
    "answered": "Отвечено",
    "missed": "Пропущено (входящие)",
    "asr": "ASR (доля отвеченных), %",
    "acd": "ACD (средний разговор)",
    "talk_seconds": "Время разговоров",
    "peak_concurrent": "Пик одновременных звонков",
    "busy_hour": "Час наибольшей нагрузки",
    "inbound": "Входящих",
    "hourly": "Входящие звонки по часам",
    "daily": "Входящие звонки по дням",
    "asr_col": "ASR, %",
    "acd_col": "ACD",
    "hour": "Час",
    "hour_axis": "Час суток",
    "calls_axis": "Звонков, шт.",
    "no_answer": "Без ответа",
    "busy": "Занято",
    "failed": "Сбой",
    "total": "Всего",
    "heatmap": "Входящие звонки: день недели × час",
    "weekday": "День недели",
    "day": "День",
    "top_callers": "Кто звонил чаще всех",
    "number": "Номер",
    "name": "Имя",
    "talk": "Разговор",
    "top_dids": "Входящие линии (DID)",
    "did": "DID",
    "missed_list": "Пропущенные звонки",
    "start": "Время",
    "caller": "Звонивший",
    "dst": "Кому",
    "outcome": "Итог",
    "ring": "Ожидание, с",
    "resolution": "Что дальше",
    "after": "Через",
    "by": "Кто",
    "attempts": "Попыток",
    "called back": "перезвонили",
    "got through": "дозвонился",
    "not yet": "не перезвонили",
    "extensions": "Внутренние номера",
    "extension": "Номер",
    "recordings": "Записи разговоров",
    "recordings_count": (
        "Записано разговоров: {n} (ссылки на них появятся в отчёте, если задать "
        "[report] recordings_url)"
    ),
    "file": "Файл",
    "exists": "Есть",
    "none": "нет данных",
    "more": "ещё {n}",
    "yes": "да",
    "no": "нет",
    "ANSWERED": "отвечен",
    "NO ANSWER": "без ответа",
    "BUSY": "занято",
    "FAILED": "сбой",
    "CONGESTION": "перегрузка",
    "CANCEL": "отменён",
    "queues": "Очереди",
    "queue": "Очередь",
    "offered": "Поступило",
    "abandoned": "Брошено",
    "short_abandoned": "Из них быстро",
    "timed_out": "По таймауту",
    "other_exits": "Прочие выходы",
    "in_queue": "Ещё в очереди",
    "sl_target": "Цель, с",
    "service_level": "SL, %",
    "wait_avg": "Ожид. ср.",
    "wait_p90": "Ожид. p90",
    "wait_max": "Ожид. макс.",
    "talk_avg": "Разг. ср.",
    "all_queues": "Все очереди",
    "queues_note": (
        "SL (уровень сервиса): доля отвеченных за цель очереди среди поступивших, кроме "
        "брошенных быстро (за {short} с) и ещё ждущих."
    ),
    "queue_hourly": "Звонки в очереди по часам",
    "agents": "Операторы",
    "agent": "Оператор",
    "taken": "Принято",
    "rang_unanswered": "Не ответил",
    "logged_in": "В системе",
    "paused": "На паузе",
    "paused_reasons": "Паузы по причинам",
    "occupancy": "Занятость, %",
    "agents_note": "Занятость: время разговоров от времени в системе за вычетом пауз.",
    "footer": "Один звонок = все строки CDR с общим linkedid. Сделано pbxgate.",
}

_EN = {
    "title": "Call report",
    "period": "Period",
    "previous": "previous period",
    "source": "Source",
    "generated": "Generated",
    "kpis": "Headline",
    "kpi": "KPI",
    "value": "Value",
    "prev_value": "Before",
    "change": "Change",
    "calls": "Calls",
    "answered": "Answered",
    "missed": "Missed (inbound)",
    "asr": "ASR (answered share), %",
    "acd": "ACD (average talk)",
    "talk_seconds": "Talk time",
    "peak_concurrent": "Peak concurrent calls",
    "busy_hour": "Busy hour",
    "inbound": "Inbound",
    "hourly": "Inbound calls per hour",
    "daily": "Inbound calls per day",
    "asr_col": "ASR, %",
    "acd_col": "ACD",
    "hour": "Hour",
    "hour_axis": "Hour of day",
    "calls_axis": "Calls",
    "no_answer": "No answer",
    "busy": "Busy",
    "failed": "Failed",
    "total": "Total",
    "heatmap": "Inbound calls: weekday × hour",
    "weekday": "Weekday",
    "day": "Day",
    "top_callers": "Top callers",
    "number": "Number",
    "name": "Name",
    "talk": "Talk",
    "top_dids": "Inbound lines (DID)",
    "did": "DID",
    "missed_list": "Missed calls",
    "start": "Time",
    "caller": "Caller",
    "dst": "Called",
    "outcome": "Outcome",
    "ring": "Ring, s",
    "resolution": "What next",
    "after": "After",
    "by": "By",
    "attempts": "Attempts",
    "called back": "called back",
    "got through": "got through",
    "not yet": "not yet",
    "extensions": "Extensions",
    "extension": "Extension",
    "recordings": "Recordings",
    "recordings_count": "Recorded calls: {n} (set [report] recordings_url to list them as links)",
    "file": "File",
    "exists": "Exists",
    "none": "no data",
    "more": "{n} more",
    "yes": "yes",
    "no": "no",
    "ANSWERED": "answered",
    "NO ANSWER": "no answer",
    "BUSY": "busy",
    "FAILED": "failed",
    "CONGESTION": "congestion",
    "CANCEL": "cancelled",
    "queues": "Queues",
    "queue": "Queue",
    "offered": "Offered",
    "abandoned": "Abandoned",
    "short_abandoned": "Of them short",
    "timed_out": "Timed out",
    "other_exits": "Other exits",
    "in_queue": "Still queued",
    "sl_target": "Target, s",
    "service_level": "SL, %",
    "wait_avg": "Wait avg",
    "wait_p90": "Wait p90",
    "wait_max": "Wait max",
    "talk_avg": "Talk avg",
    "all_queues": "All queues",
    "queues_note": (
        "SL (service level): answered within the queue's target, of the calls offered less "
        "short abandons (within {short} s) and calls still waiting."
    ),
    "queue_hourly": "Queued calls per hour",
    "agents": "Agents",
    "agent": "Agent",
    "taken": "Taken",
    "rang_unanswered": "Rang, no answer",
    "logged_in": "Logged in",
    "paused": "Paused",
    "paused_reasons": "Paused by reason",
    "occupancy": "Occupancy, %",
    "agents_note": "Occupancy: talk time over logged-in time less pauses.",
    "footer": "One call = all CDR rows sharing a linkedid. Made by pbxgate.",
}

WORDS = {"ru": _RU, "en": _EN}
WEEKDAYS = {
    "ru": ("Пн", "Вт", "Ср", "Чт", "Пт", "Сб", "Вс"),
    "en": ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"),
}


def words(language: str) -> dict[str, str]:
    """The labels of ``language`` (unknown keys fall back to the key itself in :func:`label`)."""
    return WORDS.get(language, _RU)


def label(language: str, key: str) -> str:
    return words(language).get(key, key)


def duration(seconds: float | None) -> str:
    """``1:05:09`` or ``5:09``; empty for no value."""
    if seconds is None:
        return ""
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def paused_reasons(paused: dict[str, int]) -> str:
    """``lunch 30:00, night 8:00:00``: an agent's pauses by reason, in one cell."""
    return ", ".join(f"{reason} {duration(seconds)}" for reason, seconds in paused.items())


def number(value: float | None) -> str:
    """``1 234`` with a thin space for thousands, one decimal for fractions."""
    if value is None:
        return "–"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.1f}".replace(",", "\u202f")
    return f"{int(value):,}".replace(",", "\u202f")


def moment(text: str | None) -> str:
    """A stored ``YYYY-MM-DD HH:MM:SS`` as ``DD.MM HH:MM``."""
    if not text:
        return ""
    return datetime.fromisoformat(text).strftime("%d.%m %H:%M")


__all__ = [
    "WEEKDAYS",
    "WORDS",
    "duration",
    "label",
    "moment",
    "number",
    "paused_reasons",
    "words",
]
