"""The Sanic app of one worker: endpoints, the per-worker runtime, client access, and ``serve``."""
