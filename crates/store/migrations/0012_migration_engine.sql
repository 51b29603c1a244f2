-- The migration engine's records beside its per-merchant state (migration 10).

-- A legacy row the core could not take, kept with its reason and its raw value; never dropped.
-- `state`: open until the row is fixed in the legacy store and copied (resolved), or the
-- operator accepts moving the merchant without it (accepted, audited).
CREATE TABLE migration_quarantine (
    merchant_id TEXT NOT NULL,
    entity TEXT NOT NULL CHECK (entity IN ('product', 'order')),
    legacy_key TEXT NOT NULL,
    shop_id TEXT NOT NULL,
    kinds TEXT NOT NULL,
    reason TEXT NOT NULL,
    raw TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('open', 'resolved', 'accepted')),
    created_at_ms BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL,
    PRIMARY KEY (merchant_id, entity, legacy_key)
);
CREATE INDEX migration_quarantine_by_state ON migration_quarantine (state, merchant_id);

-- What a verification found: counts and checksums per entity on both sides, and the rows
-- that differ (which rows, which fields), as JSON text for the operator.
CREATE TABLE migration_verifications (
    merchant_id TEXT NOT NULL,
    verification_id TEXT NOT NULL,
    phase TEXT NOT NULL CHECK (phase IN ('before_cutover', 'after_cutover')),
    matched BIGINT NOT NULL CHECK (matched IN (0, 1)),
    legacy_rows BIGINT NOT NULL,
    core_rows BIGINT NOT NULL,
    differences BIGINT NOT NULL,
    report TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    PRIMARY KEY (merchant_id, verification_id)
);
;

-- The engine's progress per merchant: rows written to the core (copy and catch-up, counted
-- once per legacy row version applied), when its copy started and when it was cut over.
ALTER TABLE migration_merchants ADD COLUMN rows_copied BIGINT NOT NULL DEFAULT 0;
ALTER TABLE migration_merchants ADD COLUMN started_at_ms BIGINT;
ALTER TABLE migration_merchants ADD COLUMN cut_over_at_ms BIGINT
;
-- Orders of a cut-over merchant changed at or after this time are written back to the legacy
-- store by the next reverse sync (until the merchant is finalized).
ALTER TABLE migration_merchants ADD COLUMN reverse_synced_at_ms BIGINT NOT NULL DEFAULT 0
