"""pbxgate: call notifications, CDR analytics and GLBP for the people who run an office's phones."""

__version__ = "0.1.0"
__all__ = ["__version__"]
