"""The ``genlab`` command line: main.py parses, one module per command does the work."""
from genlab.cli.main import main

__all__ = ["main"]
