-- Escrow (DESIGN.md §3–4): a paid order's money is held in escrow until the buyer confirms,
-- then goes to the merchant's balance minus the platform fee fixed at the sale.
-- The category of a SKU (copied from its product) sets the fee rate; each order line and each
-- order keep the fee computed when it was sold.
ALTER TABLE skus ADD COLUMN category TEXT NOT NULL DEFAULT '';
UPDATE skus SET category = (SELECT p.category FROM products p WHERE p.merchant_id = skus.merchant_id AND p.product_id = skus.product_id);
ALTER TABLE order_lines ADD COLUMN fee_idr BIGINT NOT NULL DEFAULT 0;
ALTER TABLE orders ADD COLUMN fee_idr BIGINT NOT NULL DEFAULT 0
