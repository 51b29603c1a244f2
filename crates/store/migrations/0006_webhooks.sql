-- Webhooks out (issue 3 point 8): subscriptions of merchants and channels, one delivery per
-- (subscription, outbox event), and the log of every attempt. Version 6: 5 belongs to the
-- payments work; migrations are applied by version, so either may arrive first.

CREATE TABLE webhook_subscriptions (
    subscription_id TEXT NOT NULL PRIMARY KEY,
    owner_role TEXT NOT NULL CHECK (owner_role IN ('merchant', 'channel')),
    -- The merchant id or the channel name.
    owner_subject TEXT NOT NULL,
    url TEXT NOT NULL,
    -- The Standard Webhooks signing secret (`whsec_…`); the receiver holds the same one.
    secret TEXT NOT NULL,
    -- `*` or a comma-separated list of event types.
    event_types TEXT NOT NULL,
    active BIGINT NOT NULL CHECK (active IN (0, 1)),
    created_at_ms BIGINT NOT NULL
);
CREATE INDEX webhook_subscriptions_by_owner ON webhook_subscriptions (owner_role, owner_subject, subscription_id);

-- The delivery id is the Standard Webhooks `webhook-id`: the same on every retry and replay.
CREATE TABLE webhook_deliveries (
    delivery_id TEXT NOT NULL PRIMARY KEY,
    subscription_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    event_created_at_ms BIGINT NOT NULL,
    -- The event's payload (its `data` in the body sent).
    payload TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts BIGINT NOT NULL CHECK (attempts >= 0),
    -- `attempts` when last replayed: a replay gives the delivery a fresh round of retries.
    attempts_at_replay BIGINT NOT NULL CHECK (attempts_at_replay >= 0 AND attempts_at_replay <= attempts),
    -- When a pending delivery is due; while one is being sent, the end of its lease.
    next_attempt_at_ms BIGINT NOT NULL,
    last_status_code BIGINT,
    last_error TEXT,
    created_at_ms BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL,
    UNIQUE (subscription_id, event_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at_ms);
CREATE INDEX webhook_deliveries_by_subscription ON webhook_deliveries (subscription_id, delivery_id);

CREATE TABLE webhook_attempts (
    delivery_id TEXT NOT NULL,
    attempt_no BIGINT NOT NULL,
    started_at_ms BIGINT NOT NULL,
    duration_ms BIGINT NOT NULL,
    -- The receiver's HTTP status, or NULL when no response came (then `error` says why).
    status_code BIGINT,
    error TEXT,
    PRIMARY KEY (delivery_id, attempt_no)
)
