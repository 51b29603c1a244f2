-- The regulator's transaction report (issue 6) reads orders by the day they were placed:
-- this index covers it (day range, then the grouped columns), so the report reads the index
-- alone, never the order rows.
CREATE INDEX orders_for_reports ON orders (created_at_ms, merchant_id, channel, status, total_idr);
