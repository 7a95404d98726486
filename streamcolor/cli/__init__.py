"""The ``streamcolor`` command: a thin layer over the Python API."""

from streamcolor.cli.app import main

__all__ = ["main"]
