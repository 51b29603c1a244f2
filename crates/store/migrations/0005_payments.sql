-- Payments, refunds, payouts and reconciliation (DESIGN.md §3–4, issue 3).

-- One payment per checkout, covering its orders. What the buyer needs to pay (VA number, QRIS
-- payload, e-wallet reference) is kept as the provider gave it. `provider_ref` is the provider's
-- reference: callbacks and settlement reports name it.
CREATE TABLE payments (
    payment_id TEXT NOT NULL PRIMARY KEY,
    checkout_id TEXT NOT NULL UNIQUE,
    method TEXT NOT NULL CHECK (method IN ('virtual_account', 'qris', 'ewallet', 'cod')),
    amount_idr BIGINT NOT NULL CHECK (amount_idr >= 0),
    status TEXT NOT NULL CHECK (status IN ('pending', 'paid', 'expired')),
    provider TEXT NOT NULL,
    provider_ref TEXT NOT NULL UNIQUE,
    bank_code TEXT,
    va_number TEXT,
    qris_payload TEXT,
    ewallet_ref TEXT,
    redirect_url TEXT,
    -- 0: never expires (cash on delivery is paid when the courier hands over the goods).
    expires_at_ms BIGINT NOT NULL,
    paid_at_ms BIGINT,
    created_at_ms BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL
);
-- Only pending payments are in this index (the expiry sweep's queue).
CREATE INDEX payments_expiry ON payments (expires_at_ms) WHERE status = 'pending';

-- Every provider callback received, applied or not, with what was decided and why.
CREATE TABLE payment_callbacks (
    callback_id TEXT NOT NULL PRIMARY KEY,
    received_at_ms BIGINT NOT NULL,
    provider TEXT NOT NULL,
    payment_id TEXT,
    provider_ref TEXT,
    amount_idr BIGINT,
    outcome TEXT NOT NULL,
    detail TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX payment_callbacks_by_payment ON payment_callbacks (payment_id);

-- Money of an order held in escrow now (total − refunded while unreleased, 0 before payment,
-- after release or after a void): a cache checked by `jembatan check` against the ledger.
ALTER TABLE orders ADD COLUMN held_idr BIGINT NOT NULL DEFAULT 0;
ALTER TABLE orders ADD COLUMN refunded_idr BIGINT NOT NULL DEFAULT 0;
ALTER TABLE orders ADD COLUMN delivered_at_ms BIGINT;
-- The auto-confirm sweep's queue: delivered orders only.
CREATE INDEX orders_auto_confirm ON orders (delivered_at_ms) WHERE status = 'delivered';

CREATE TABLE refunds (
    merchant_id TEXT NOT NULL,
    refund_id TEXT NOT NULL,
    order_id TEXT NOT NULL,
    amount_idr BIGINT NOT NULL CHECK (amount_idr > 0),
    -- The part of the platform fee given back with this refund (after release).
    fee_reversed_idr BIGINT NOT NULL CHECK (fee_reversed_idr >= 0),
    stage TEXT NOT NULL CHECK (stage IN ('before_release', 'after_release')),
    reason TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    PRIMARY KEY (merchant_id, refund_id)
);
CREATE INDEX refunds_by_order ON refunds (merchant_id, order_id);
CREATE UNIQUE INDEX refunds_by_id ON refunds (refund_id);
