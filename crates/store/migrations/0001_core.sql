-- The marketplace core. One dialect for SQLite and PostgreSQL (and Postgres-compatible
-- distributed engines): TEXT, BIGINT, composite primary keys led by merchant_id, no sequences,
-- no foreign keys across distribution keys. Money columns are integer rupiah (`_idr`), times
-- are unix milliseconds (`_ms`).

CREATE TABLE merchants (
    merchant_id TEXT NOT NULL PRIMARY KEY,
    name TEXT NOT NULL,
    origin TEXT NOT NULL CHECK (origin IN ('local', 'cross_border')),
    province TEXT NOT NULL,
    nib TEXT,
    created_at_ms BIGINT NOT NULL
);

CREATE TABLE products (
    merchant_id TEXT NOT NULL,
    product_id TEXT NOT NULL,
    title TEXT NOT NULL,
    category TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    PRIMARY KEY (merchant_id, product_id)
);

CREATE TABLE skus (
    merchant_id TEXT NOT NULL,
    sku_id TEXT NOT NULL,
    product_id TEXT NOT NULL,
    code TEXT NOT NULL,
    price_idr BIGINT NOT NULL CHECK (price_idr > 0),
    stock_on_hand BIGINT NOT NULL CHECK (stock_on_hand >= 0),
    stock_reserved BIGINT NOT NULL CHECK (stock_reserved >= 0 AND stock_reserved <= stock_on_hand),
    PRIMARY KEY (merchant_id, sku_id),
    UNIQUE (merchant_id, code)
);
CREATE INDEX skus_by_sku_id ON skus (sku_id);
CREATE INDEX skus_by_product ON skus (merchant_id, product_id);

CREATE TABLE checkouts (
    checkout_id TEXT NOT NULL PRIMARY KEY,
    channel TEXT NOT NULL CHECK (channel IN ('social', 'marketplace')),
    buyer_id TEXT NOT NULL,
    payment_method TEXT NOT NULL,
    total_idr BIGINT NOT NULL CHECK (total_idr >= 0),
    orders_count BIGINT NOT NULL,
    created_at_ms BIGINT NOT NULL
);

CREATE TABLE orders (
    merchant_id TEXT NOT NULL,
    order_id TEXT NOT NULL,
    checkout_id TEXT NOT NULL,
    channel TEXT NOT NULL,
    buyer_id TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('awaiting_payment', 'paid', 'shipped', 'delivered', 'completed', 'cancelled')),
    payment_method TEXT NOT NULL,
    total_idr BIGINT NOT NULL CHECK (total_idr >= 0),
    recipient_name TEXT NOT NULL,
    recipient_phone TEXT NOT NULL,
    street TEXT NOT NULL,
    city TEXT NOT NULL,
    province TEXT NOT NULL,
    postal_code TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL,
    version BIGINT NOT NULL,
    PRIMARY KEY (merchant_id, order_id)
);
CREATE INDEX orders_by_order_id ON orders (order_id);
CREATE INDEX orders_by_checkout ON orders (checkout_id);
CREATE INDEX orders_by_status ON orders (merchant_id, status, order_id);

CREATE TABLE order_lines (
    merchant_id TEXT NOT NULL,
    order_id TEXT NOT NULL,
    line_no BIGINT NOT NULL,
    sku_id TEXT NOT NULL,
    quantity BIGINT NOT NULL CHECK (quantity > 0),
    unit_price_idr BIGINT NOT NULL CHECK (unit_price_idr > 0),
    line_total_idr BIGINT NOT NULL CHECK (line_total_idr > 0),
    PRIMARY KEY (merchant_id, order_id, line_no)
);

-- Transactional outbox: every state change's event, written in the same transaction.
CREATE TABLE outbox (
    event_id TEXT NOT NULL PRIMARY KEY,
    event_type TEXT NOT NULL,
    entity_type TEXT NOT NULL,
    entity_id TEXT NOT NULL,
    merchant_id TEXT,
    channel TEXT,
    payload TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    published_at_ms BIGINT
);
CREATE INDEX outbox_unpublished ON outbox (published_at_ms, event_id);

-- Who did what to which entity, written in the same transaction as the change.
CREATE TABLE audit_log (
    audit_id TEXT NOT NULL PRIMARY KEY,
    at_ms BIGINT NOT NULL,
    actor_role TEXT NOT NULL,
    actor_subject TEXT NOT NULL,
    action TEXT NOT NULL,
    entity_type TEXT NOT NULL,
    entity_id TEXT NOT NULL,
    merchant_id TEXT,
    detail TEXT NOT NULL
);
CREATE INDEX audit_by_entity ON audit_log (entity_type, entity_id);

-- Bearer tokens: only the SHA-256 of the secret is kept.
CREATE TABLE api_tokens (
    token_id TEXT NOT NULL PRIMARY KEY,
    secret_sha256 TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL CHECK (role IN ('operator', 'merchant', 'channel', 'regulator', 'provider')),
    subject TEXT NOT NULL,
    label TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    revoked_at_ms BIGINT
);

-- Idempotency keys per caller: the request's fingerprint and, once done, the response.
CREATE TABLE idempotency_keys (
    scope TEXT NOT NULL,
    idem_key TEXT NOT NULL,
    request_sha256 TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('in_progress', 'completed')),
    status_code BIGINT,
    response_body TEXT,
    created_at_ms BIGINT NOT NULL,
    completed_at_ms BIGINT,
    PRIMARY KEY (scope, idem_key)
);
