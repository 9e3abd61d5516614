"""Exceptions the library raises; cli.py turns each into a clean "Error: ..." and exit 1."""


class TopologyError(Exception):
    """Base of every error this tool reports to a person (never shown as a traceback)."""
