"""CDR reports people read: one dict per report, rendered as text, HTML, XLSX, CSV or JSON,
mailed with inline charts, and sent on cron schedules by ``pbxgate serve``.

Importing this package loads nothing heavy: names are resolved on first use (PEP 562), and the
renderers import matplotlib and openpyxl only when called, so ``pbxgate serve`` (and the AGI
path beside it) pays for none of them until a report is due.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ReportOptions": "build",
    "assemble": "build",
    "build_report": "build",
    "collect": "build",
    "FORMATS": "formats",
    "file_name": "formats",
    "render": "formats",
    "ReportSettings": "settings",
    "ScheduleSettings": "settings",
    "SmtpSettings": "settings",
    "run_schedules": "schedule",
}


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = importlib.import_module(f"{__name__}.{_EXPORTS[name]}")
    return getattr(module, name)


__all__ = [
    "FORMATS",
    "ReportOptions",
    "ReportSettings",
    "ScheduleSettings",
    "SmtpSettings",
    "assemble",
    "build_report",
    "collect",
    "file_name",
    "render",
    "run_schedules",
]
