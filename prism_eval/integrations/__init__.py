"""Bridges to other evaluation tools (optional dependencies, imported only when used)."""
