"""Thin click commands, one module per area; each parses options and calls one library function."""

__all__: list[str] = []
