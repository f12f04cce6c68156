"""pbxgate's web console: calls, reports and recordings in a browser, for named users."""

__all__: list[str] = []
