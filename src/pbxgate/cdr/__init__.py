"""CDR analytics: schema variants, stores, Master.csv import, calls, KPIs and reports."""

__all__: list[str] = []
