"""Operations: logs, the request log, metrics, usage stats, the /health report, doctor, services."""
