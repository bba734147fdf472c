"""Answering: the prompt files, the pipeline function, the answer cache."""
