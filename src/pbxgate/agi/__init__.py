"""agi package."""

__all__: list[str] = []
