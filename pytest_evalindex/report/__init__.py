"""Rendering results: terminal tables (and later HTML, JUnit properties, markdown)."""
