-- The live migration of social shops from the legacy store to the core (DESIGN.md §6, issue 5).

-- A wave: the merchants one `migrate plan` chose, by a selection, up to a limit. Planning the
-- same wave again (same selection and limit) adds the shops not yet in it, so a plan cut short
-- can be repeated. `paused` stops the engine from starting more work on the wave.
CREATE TABLE migration_waves (
    name TEXT NOT NULL PRIMARY KEY,
    selection TEXT NOT NULL,
    merchants_limit BIGINT,
    paused BIGINT NOT NULL DEFAULT 0 CHECK (paused IN (0, 1)),
    created_at_ms BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL
);

-- One row per merchant being moved (merchant-owned: keyed by merchant_id, the distribution key).
-- A merchant is in at most one wave at a time: rolled back, it may be planned into another
-- (the row is reused). shop_id is unique through social_shops (one merchant per shop); it is not
-- declared UNIQUE here because a distributed engine only enforces uniqueness that includes the
-- distribution key. Planned figures are what the plan counted; `snapshot_position` is the legacy
-- changelog position of the copy's snapshot, `checkpoint` where the copy stopped (the engine's
-- own text), `cutover_pause_us` the measured pause of its writes at the flip.
CREATE TABLE migration_merchants (
    merchant_id TEXT NOT NULL PRIMARY KEY,
    shop_id TEXT NOT NULL,
    wave TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('legacy', 'copying', 'catching_up', 'verified', 'fenced', 'cut_over', 'finalized', 'rolled_back', 'quarantined')),
    rows_planned BIGINT NOT NULL CHECK (rows_planned >= 0),
    gmv_planned_idr BIGINT NOT NULL CHECK (gmv_planned_idr >= 0),
    defects_expected BIGINT NOT NULL CHECK (defects_expected >= 0),
    snapshot_position BIGINT,
    checkpoint TEXT,
    attempts BIGINT NOT NULL DEFAULT 0,
    last_error TEXT,
    cutover_pause_us BIGINT,
    planned_at_ms BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL
);
CREATE INDEX migration_merchants_by_wave ON migration_merchants (wave, merchant_id);
CREATE INDEX migration_merchants_by_shop ON migration_merchants (shop_id)
