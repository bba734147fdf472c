"""Measuring against a gold question set: the format, retrieval and answer measures, runs, reports."""
