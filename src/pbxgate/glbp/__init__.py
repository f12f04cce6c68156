"""glbp package."""

__all__: list[str] = []
