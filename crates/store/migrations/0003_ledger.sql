-- The double-entry ledger (DESIGN.md §3). Accounts carry cached balances, updated in the same
-- transaction as the transfers that move them and checked against the transfers by
-- `jembatan check`. Transfers are immutable; a pending transfer's fate is in ledger_pending.
-- Accounts are keyed by their own id (platform accounts belong to no merchant); a merchant's
-- balance account carries its merchant_id.

CREATE TABLE ledger_accounts (
    account_id TEXT NOT NULL PRIMARY KEY,
    kind TEXT NOT NULL,
    merchant_id TEXT,
    debits_must_not_exceed_credits BIGINT NOT NULL,
    credits_must_not_exceed_debits BIGINT NOT NULL,
    debits_pending BIGINT NOT NULL CHECK (debits_pending >= 0),
    debits_posted BIGINT NOT NULL CHECK (debits_posted >= 0),
    credits_pending BIGINT NOT NULL CHECK (credits_pending >= 0),
    credits_posted BIGINT NOT NULL CHECK (credits_posted >= 0),
    created_at_ms BIGINT NOT NULL
);
CREATE INDEX ledger_accounts_by_merchant ON ledger_accounts (merchant_id, kind);

CREATE TABLE ledger_transfers (
    transfer_id TEXT NOT NULL PRIMARY KEY,
    debit_account_id TEXT NOT NULL,
    credit_account_id TEXT NOT NULL,
    amount_idr BIGINT NOT NULL CHECK (amount_idr >= 0),
    -- What reached posted balances: the amount of a single transfer, the posted part of a post,
    -- 0 for pending and void transfers.
    amount_posted_idr BIGINT NOT NULL CHECK (amount_posted_idr >= 0),
    kind TEXT NOT NULL CHECK (kind IN ('single', 'pending', 'post', 'void')),
    pending_id TEXT,
    timeout_ms BIGINT NOT NULL,
    -- For a post: the amount asked for (NULL: all of the pending amount).
    post_amount_idr BIGINT,
    linked BIGINT NOT NULL,
    code BIGINT NOT NULL,
    timestamp_ms BIGINT NOT NULL
);
CREATE INDEX ledger_transfers_by_debit ON ledger_transfers (debit_account_id);
CREATE INDEX ledger_transfers_by_credit ON ledger_transfers (credit_account_id);

CREATE TABLE ledger_pending (
    transfer_id TEXT NOT NULL PRIMARY KEY,
    state TEXT NOT NULL CHECK (state IN ('pending', 'posted', 'voided', 'expired')),
    -- 0: never expires.
    expires_at_ms BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL
);
CREATE INDEX ledger_pending_by_expiry ON ledger_pending (state, expires_at_ms);
