"""Local, private question answering over news articles with cited sources."""
