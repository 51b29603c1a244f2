-- The social storefront in the core (DESIGN.md §3, issue 4).

-- Each social shop the core knows: its merchant in the core and which system owns its
-- catalogue, stock and orders now. A shop with no row here is owned by the legacy store.
-- Payments are the core's for every shop from the start, whatever the owner.
CREATE TABLE social_shops (
    shop_id TEXT NOT NULL PRIMARY KEY,
    merchant_id TEXT NOT NULL UNIQUE,
    owner TEXT NOT NULL CHECK (owner IN ('legacy', 'migrating', 'core')),
    owner_version BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL
);

-- Legacy ids of the social shop (digits) and the core ids they stand for, so that old links
-- keep working after a shop moved and the social contract keeps its id format. Keyed by the
-- social id: it is the directory every social request starts from (a reference table on
-- Citus-style engines).
CREATE TABLE social_ids (
    kind TEXT NOT NULL CHECK (kind IN ('product', 'sku', 'order')),
    social_id TEXT NOT NULL,
    merchant_id TEXT NOT NULL,
    core_id TEXT NOT NULL,
    PRIMARY KEY (kind, social_id)
);
CREATE UNIQUE INDEX social_ids_by_core_id ON social_ids (core_id);

-- 'legacy': placed while the shop's catalogue and stock were in the legacy store, which took
-- the stock; the core holds its payment and escrow only.
ALTER TABLE orders ADD COLUMN origin TEXT NOT NULL DEFAULT 'core';
-- 1 once the shop's stock moved to the core: a cancelled twin's units go back to the core's
-- SKU (before, the legacy store, which took them, gets them back).
ALTER TABLE orders ADD COLUMN legacy_stock_moved BIGINT NOT NULL DEFAULT 0;
-- The gateway's sync brings legacy rows up to their core twins (paid, expired, auto-confirmed)
-- by walking the twins changed lately.
CREATE INDEX orders_legacy_twins ON orders (updated_at_ms) WHERE origin = 'legacy';

-- Consents of social-app users to share more than an order needs with the marketplace
-- (compliance rule R6): purpose, the version of the text they agreed to, when.
CREATE TABLE consents (
    consent_id TEXT NOT NULL PRIMARY KEY,
    buyer_ref TEXT NOT NULL,
    purpose TEXT NOT NULL,
    text_version TEXT NOT NULL,
    granted_at_ms BIGINT NOT NULL,
    withdrawn_at_ms BIGINT
);
CREATE INDEX consents_by_buyer ON consents (buyer_ref, purpose);

-- Profile fields shared under a consent, and only while it stands.
CREATE TABLE buyer_profiles (
    buyer_ref TEXT NOT NULL PRIMARY KEY,
    consent_id TEXT NOT NULL,
    nickname TEXT NOT NULL,
    email TEXT NOT NULL,
    updated_at_ms BIGINT NOT NULL
)
