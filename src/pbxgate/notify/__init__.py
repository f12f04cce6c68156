"""notify package."""

__all__: list[str] = []
