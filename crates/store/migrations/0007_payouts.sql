-- Payouts and reconciliation (DESIGN.md §3–4, issue 3 points 6 and 7). Version 6 is reserved
-- for the webhooks branch; the runner applies every version above the database's, so the gap
-- is harmless.

-- A merchant's withdrawal to its bank. Its money is held in the ledger (merchant balance →
-- payout clearing, pending) from the request until the bank's answer posts or voids it.
CREATE TABLE payouts (
    merchant_id TEXT NOT NULL,
    payout_id TEXT NOT NULL,
    amount_idr BIGINT NOT NULL CHECK (amount_idr > 0),
    bank_code TEXT NOT NULL,
    account_number TEXT NOT NULL,
    account_holder TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('requested', 'exported', 'paid', 'failed')),
    batch_id TEXT,
    failure_reason TEXT,
    created_at_ms BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL,
    -- When the bank's answer was applied (paid or failed).
    confirmed_at_ms BIGINT,
    PRIMARY KEY (merchant_id, payout_id)
);
CREATE UNIQUE INDEX payouts_by_id ON payouts (payout_id);
-- The next batch's queue, and the payouts of a batch.
CREATE INDEX payouts_by_status ON payouts (status, payout_id);
CREATE INDEX payouts_by_batch ON payouts (batch_id);

CREATE TABLE payout_batches (
    batch_id TEXT NOT NULL PRIMARY KEY,
    created_at_ms BIGINT NOT NULL,
    payouts_count BIGINT NOT NULL CHECK (payouts_count > 0),
    total_idr BIGINT NOT NULL CHECK (total_idr > 0)
);

-- One import of a provider's settlement report: a report, not a change to money.
CREATE TABLE reconciliation_runs (
    reconciliation_id TEXT NOT NULL PRIMARY KEY,
    created_at_ms BIGINT NOT NULL,
    period_from_ms BIGINT NOT NULL,
    period_to_ms BIGINT NOT NULL,
    lines_count BIGINT NOT NULL,
    matched_count BIGINT NOT NULL,
    missing_in_ledger_count BIGINT NOT NULL,
    missing_in_report_count BIGINT NOT NULL,
    amount_mismatch_count BIGINT NOT NULL,
    duplicate_in_report_count BIGINT NOT NULL
);

CREATE TABLE reconciliation_items (
    reconciliation_id TEXT NOT NULL,
    item_no BIGINT NOT NULL,
    outcome TEXT NOT NULL CHECK (outcome IN ('matched', 'missing_in_ledger', 'missing_in_report', 'amount_mismatch', 'duplicate_in_report')),
    kind TEXT NOT NULL CHECK (kind IN ('payment', 'refund', 'payout')),
    reference TEXT NOT NULL,
    report_amount_idr BIGINT,
    ledger_amount_idr BIGINT,
    line_no BIGINT,
    PRIMARY KEY (reconciliation_id, item_no)
);

-- What a reconciliation looks up by time: our side of a report's period.
CREATE INDEX payouts_paid_by_time ON payouts (confirmed_at_ms) WHERE status = 'paid';
CREATE INDEX payments_paid_by_time ON payments (paid_at_ms) WHERE status = 'paid';
CREATE INDEX refunds_by_time ON refunds (created_at_ms);
