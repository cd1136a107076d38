"""What crosses the wire: the request body and its per-provider rewrites, headers each way, SSE."""
