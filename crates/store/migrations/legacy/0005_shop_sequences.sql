-- A change sequence per shop, in commit order. The changelog's global position comes from an
-- identity on PostgreSQL, handed out before commit: a reader that checkpoints positions can
-- step past a change whose transaction commits later, and never see it. The capture trigger
-- therefore also takes the shop's next `seq` by an upsert on its row here; the row stays
-- locked until the writing transaction ends, so the next writer of that shop waits and takes
-- a higher number: for one shop, numbers are handed out in commit order, and a reader that
-- has seen `seq` N has seen every change numbered below it. (SQLite has one writer; the same
-- holds trivially.) The migration engine tails one shop at a time by this number.
CREATE TABLE shop_sequences (
    shop_id TEXT NOT NULL PRIMARY KEY,
    seq BIGINT NOT NULL
);
ALTER TABLE changelog ADD COLUMN shop_seq BIGINT NOT NULL DEFAULT 0;
CREATE INDEX changelog_by_shop_seq ON changelog (shop_id, shop_seq);
