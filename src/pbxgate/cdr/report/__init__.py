"""CDR reports people read: one dict per report, rendered as text, HTML, XLSX, CSV or JSON,
mailed with inline charts, and sent on cron schedules by ``pbxgate serve``.

Importing this package loads no plotting or spreadsheet library: the renderers that need them
import them when called.
"""

from pbxgate.cdr.report.build import ReportOptions, assemble, build_report, collect
from pbxgate.cdr.report.formats import FORMATS, file_name, render
from pbxgate.cdr.report.settings import ReportSettings, ScheduleSettings, SmtpSettings

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
]
