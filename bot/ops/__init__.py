"""Operations: metrics, health checks, structured logs, backups and privacy requests."""
