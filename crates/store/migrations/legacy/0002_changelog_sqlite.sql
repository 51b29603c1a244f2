-- Change capture on SQLite: every insert, update and delete of a shop's rows appends its key to
-- the changelog, in the same transaction. Positions come from AUTOINCREMENT: SQLite has one
-- writer, so positions are handed out in commit order and a reader never skips a row.
-- The same triggers refuse writes to a fenced shop.
CREATE TABLE changelog (
    position INTEGER PRIMARY KEY AUTOINCREMENT,
    shop_id TEXT NOT NULL,
    table_name TEXT NOT NULL,
    row_key TEXT NOT NULL,
    op TEXT NOT NULL,
    changed_at_ms BIGINT NOT NULL,
    xact BIGINT NOT NULL
);
CREATE INDEX changelog_by_shop ON changelog (shop_id, position);
