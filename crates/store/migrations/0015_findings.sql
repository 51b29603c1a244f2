-- Compliance findings (issue 6): a rule of the policy file broken by an entity, with what
-- shows it. One finding per rule and entity: a scan run again finds it again, not twice.
-- `merchant_id` is empty for a finding of the platform itself (R6: a profile shared).
CREATE TABLE findings (
    finding_id TEXT NOT NULL PRIMARY KEY,
    merchant_id TEXT NOT NULL,
    rule_id TEXT NOT NULL,
    article TEXT NOT NULL,
    severity TEXT NOT NULL,
    entity_type TEXT NOT NULL,
    entity_id TEXT NOT NULL,
    evidence TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('open', 'acknowledged', 'resolved')),
    found_at_ms BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL
);
CREATE UNIQUE INDEX findings_once ON findings (rule_id, entity_type, entity_id);
CREATE INDEX findings_by_merchant ON findings (merchant_id, finding_id);
