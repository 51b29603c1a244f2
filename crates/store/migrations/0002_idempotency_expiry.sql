-- Completed idempotency keys expire after a retention period (24 h by default); the purge
-- finds them by completion time without scanning the table.
CREATE INDEX idempotency_keys_by_completion ON idempotency_keys (state, completed_at_ms);
