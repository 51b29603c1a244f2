-- The social shop's own database, as it was before the integration (DESIGN.md §5). Deliberately
-- not the core's model: string ids of digits, prices as decimal strings (some written the
-- Indonesian way), numeric order status codes, unix-second timestamps, phone numbers as
-- written, SKUs embedded as JSON in the product row. Constraints are as loose as the legacy
-- system's were: the generator's defects (duplicate SKU codes, negative stock, empty titles,
-- orders of deleted products, ambiguous prices) must be storable here.

CREATE TABLE shops (
    shop_id TEXT NOT NULL PRIMARY KEY,
    shop_name TEXT NOT NULL,
    seller_type TEXT NOT NULL,
    province TEXT NOT NULL,
    city TEXT NOT NULL,
    contact_phone TEXT NOT NULL,
    -- Nomor Induk Berusaha (13 digits) as the seller registered it; empty if never given.
    nib TEXT NOT NULL,
    create_time BIGINT NOT NULL,
    update_time BIGINT NOT NULL
);

-- status: 1 live, 2 delisted by the seller, 3 deleted (the row stays; orders may point at it).
-- skus: [{"sku_id":"…","seller_sku":"…","name":"…","price":"149.000","stock":12}]
CREATE TABLE products (
    shop_id TEXT NOT NULL,
    product_id TEXT NOT NULL,
    title TEXT NOT NULL,
    category TEXT NOT NULL,
    description TEXT NOT NULL,
    skus TEXT NOT NULL,
    status BIGINT NOT NULL,
    create_time BIGINT NOT NULL,
    update_time BIGINT NOT NULL,
    PRIMARY KEY (shop_id, product_id)
);
CREATE INDEX products_by_product_id ON products (product_id);

-- The social app's user profiles. They never leave the social side (compliance rule R6)
-- except with a recorded consent.
CREATE TABLE buyers (
    buyer_id TEXT NOT NULL PRIMARY KEY,
    nickname TEXT NOT NULL,
    phone TEXT NOT NULL,
    email TEXT NOT NULL,
    birth_date TEXT NOT NULL,
    gender TEXT NOT NULL,
    follower_count BIGINT NOT NULL,
    create_time BIGINT NOT NULL
);

-- status: 100 unpaid, 111 awaiting shipment, 112 awaiting collection, 121 in transit,
-- 122 delivered, 130 completed, 140 cancelled. payment_method: VA, QRIS, EWALLET, COD.
CREATE TABLE orders (
    shop_id TEXT NOT NULL,
    order_id TEXT NOT NULL,
    buyer_id TEXT NOT NULL,
    status BIGINT NOT NULL,
    payment_method TEXT NOT NULL,
    total_amount TEXT NOT NULL,
    recipient_name TEXT NOT NULL,
    recipient_phone TEXT NOT NULL,
    address_detail TEXT NOT NULL,
    city TEXT NOT NULL,
    province TEXT NOT NULL,
    postal_code TEXT NOT NULL,
    create_time BIGINT NOT NULL,
    update_time BIGINT NOT NULL,
    PRIMARY KEY (shop_id, order_id)
);
CREATE INDEX orders_by_order_id ON orders (order_id);
CREATE INDEX orders_by_status ON orders (shop_id, status, order_id);

CREATE TABLE order_items (
    shop_id TEXT NOT NULL,
    order_id TEXT NOT NULL,
    item_no BIGINT NOT NULL,
    product_id TEXT NOT NULL,
    sku_id TEXT NOT NULL,
    product_title TEXT NOT NULL,
    quantity BIGINT NOT NULL,
    unit_price TEXT NOT NULL,
    PRIMARY KEY (shop_id, order_id, item_no)
);

-- The write fence of a shop being moved (DESIGN.md §6): while a row is here, every write to
-- that shop's rows is refused inside its own transaction by the capture triggers.
CREATE TABLE shop_fences (
    shop_id TEXT NOT NULL PRIMARY KEY,
    fenced_at_ms BIGINT NOT NULL,
    reason TEXT NOT NULL
)
