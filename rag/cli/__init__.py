"""The `rag` command line: `main` is the console entry point (`rag = "rag.cli:main"`)."""

from rag.cli.main import app, main

__all__ = ["app", "main"]
