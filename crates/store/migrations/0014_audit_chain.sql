-- The audit chain (issue 6, invariant 8). An entry is written unsealed in its change's own
-- transaction; the sealer then gives it its place in the chain (`chain_seq`, from 1 with no
-- gaps), the previous entry's hash and its own, in commit order, in the background — so no
-- write has to take a lock on the chain's head.
ALTER TABLE audit_log ADD COLUMN chain_seq BIGINT;
ALTER TABLE audit_log ADD COLUMN prev_hash TEXT;
ALTER TABLE audit_log ADD COLUMN entry_hash TEXT;
CREATE UNIQUE INDEX audit_by_chain_seq ON audit_log (chain_seq);
CREATE INDEX audit_unsealed ON audit_log (audit_id) WHERE chain_seq IS NULL;

-- The chain's head at the end of a day, signed with the platform's Ed25519 key.
CREATE TABLE audit_digests (
    day TEXT NOT NULL PRIMARY KEY,
    last_seq BIGINT NOT NULL,
    last_hash TEXT NOT NULL,
    entries BIGINT NOT NULL,
    public_key TEXT NOT NULL,
    signature TEXT NOT NULL,
    signed_at_ms BIGINT NOT NULL
);
