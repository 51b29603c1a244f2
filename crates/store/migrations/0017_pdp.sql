-- Data subjects' requests under UU PDP No. 27/2022 (issue 6): an export of what is held about
-- a buyer, a consent withdrawal. Each is tracked with its deadline (3 × 24 hours after it was
-- received) and when it was completed.
CREATE TABLE pdp_requests (
    request_id TEXT NOT NULL PRIMARY KEY,
    buyer_ref TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('export', 'withdrawal')),
    detail TEXT NOT NULL,
    received_at_ms BIGINT NOT NULL,
    due_at_ms BIGINT NOT NULL,
    completed_at_ms BIGINT
);
CREATE INDEX pdp_requests_by_buyer ON pdp_requests (buyer_ref, request_id);
-- A buyer's orders, for the export (a buyer reference is a pseudonym, never a name).
CREATE INDEX orders_by_buyer ON orders (buyer_id);
