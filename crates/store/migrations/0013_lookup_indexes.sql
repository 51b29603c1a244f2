-- A product read by its id alone (`GET /v1/products/{id}`, the gateway, the migration's
-- re-reads) scanned the whole table: the primary key leads with merchant_id. Orders and SKUs
-- have had the same index since 0001.
CREATE INDEX products_by_product_id ON products (product_id);
