"""The way out: the HTTP transport, credentials, and admission (cooldowns, circuits, limits)."""
