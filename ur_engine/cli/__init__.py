"""The ``ur`` command line: an edge that parses, calls the library once and formats."""

from ur_engine.cli.main import main

__all__ = ["main"]
