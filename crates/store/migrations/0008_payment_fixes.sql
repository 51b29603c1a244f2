-- What a payment actually collected: the checkout total when paid in advance, the orders not
-- cancelled for cash on delivery. Settlement reports are matched against it.
ALTER TABLE payments ADD COLUMN collected_idr BIGINT;
UPDATE payments SET collected_idr = amount_idr WHERE status = 'paid';
-- A bank routes a transfer by its VA number: two open payments may never share one.
CREATE UNIQUE INDEX payments_open_va ON payments (va_number) WHERE status = 'pending' AND va_number IS NOT NULL
