"""Live reload: the config a worker serves now, watching its files, building the next one off to the side."""
