-- Whether a product is on sale. Every product listed through /v1 is; a social shop's delisted
-- product (legacy status 2) moves to the core unlisted, so it keeps its ids and history but
-- cannot be bought. Kept on the SKU too (as its category is), so a checkout's reservation
-- checks it in the statement that takes the stock.
ALTER TABLE products ADD COLUMN listed BIGINT NOT NULL DEFAULT 1;
ALTER TABLE skus ADD COLUMN listed BIGINT NOT NULL DEFAULT 1;
