"""One request along its route: the targets in order, fallback, streaming back, count_tokens."""
