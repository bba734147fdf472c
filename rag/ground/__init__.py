"""Checking answers against the passages: numbers and names, citations resolved to article spans, conflicts."""
