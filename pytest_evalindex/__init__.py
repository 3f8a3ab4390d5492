"""pytest-evalindex: weighted LLM evaluation indexes as pytest runs."""

__version__ = "0.1.0"
