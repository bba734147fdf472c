"""rag: local question answering over news articles, with cited sources (README.md)."""

__version__ = "0.1.0"
