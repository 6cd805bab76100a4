"""The command line: one module per command group; ``main`` is the ``narrwatch`` entry point."""

from narrwatch.cli.main import main

__all__ = ["main"]
