//! The social shop's legacy store (DESIGN.md §5): its own database with its own model, the
//! change capture the migration engine tails, and the write fence of a shop being moved.
//!
//! - **Change capture.** Triggers append `(shop_id, table, row key, op)` to `changelog` in the
//!   same transaction as every insert, update and delete of `shops`, `products`, `orders` and
//!   `order_items`. The changelog names rows, not their values: a reader re-reads the row (or
//!   finds it gone), so applying a change twice is harmless.
//! - **Fence.** The same triggers refuse any write to a shop listed in `shop_fences`, inside the
//!   writing transaction: a write either committed before the fence went up (and is in the
//!   changelog) or fails with [`StoreError::Fenced`].
//! - The legacy store never records a payment (compliance rule R1): orders carry the method
//!   the buyer chose and a status; the money is in the core.

use jembatan_domain::social::{LegacyStatus, parse_price};
use jembatan_domain::{DomainError, Money};
use serde_json::{Value as Json, json};

use crate::db::{Conn, Row, q};
use crate::error::StoreError;
use crate::exec::{Backend, Store};

/// What a fence trigger's error message starts with.
pub const FENCED_MARK: &str = "shop_fenced:";

/// The reason a fence row holds while the core's writes flow back into the fenced shop (the
/// reverse sync after a cutover, see [`LegacyStore::reverse_apply`]). It is set and restored
/// inside that one transaction, so no other writer ever sees it.
pub const REVERSE_SYNC: &str = "reverse sync";

/// Captured tables and the column that names a changed row.
const CAPTURED: [(&str, &str); 4] =
    [("shops", "shop_id"), ("products", "product_id"), ("orders", "order_id"), ("order_items", "order_id")];

/// Installs (or re-installs) the change-capture and fence triggers. Idempotent.
pub async fn install_capture(store: &Store) -> Result<(), StoreError> {
    let backend = store.backend();
    store
        .write(None, move |conn| {
            Box::pin(async move {
                for statement in capture_sql(backend) {
                    q(statement).execute(&mut *conn).await?;
                }
                Ok(())
            })
        })
        .await
}

/// Removes the triggers: only for a bulk load into a store nobody else uses yet (`seed`).
pub async fn remove_capture(store: &Store) -> Result<(), StoreError> {
    let backend = store.backend();
    store
        .write(None, move |conn| {
            Box::pin(async move {
                for (table, _) in CAPTURED {
                    let statements: Vec<String> = match backend {
                        Backend::Sqlite => ["insert", "update", "delete"]
                            .iter()
                            .map(|op| format!("DROP TRIGGER IF EXISTS capture_{table}_{op}"))
                            .collect(),
                        Backend::Postgres => vec![format!("DROP TRIGGER IF EXISTS capture ON {table}")],
                    };
                    for statement in statements {
                        q(statement).execute(&mut *conn).await?;
                    }
                }
                Ok(())
            })
        })
        .await
}

fn capture_sql(backend: Backend) -> Vec<String> {
    let mut out = Vec::new();
    match backend {
        Backend::Sqlite => {
            for (table, key) in CAPTURED {
                for (op, row, letter) in
                    [("insert", "NEW", "I"), ("update", "NEW", "U"), ("delete", "OLD", "D")]
                {
                    let fence_check = if op == "update" {
                        format!(
                            "SELECT RAISE(ABORT, '{FENCED_MARK}') WHERE EXISTS (SELECT 1 FROM shop_fences WHERE shop_id IN (NEW.shop_id, OLD.shop_id) AND reason <> '{REVERSE_SYNC}')"
                        )
                    } else {
                        format!(
                            "SELECT RAISE(ABORT, '{FENCED_MARK}') WHERE EXISTS (SELECT 1 FROM shop_fences WHERE shop_id = {row}.shop_id AND reason <> '{REVERSE_SYNC}')"
                        )
                    };
                    // Dropped first: a store opened by an older binary has triggers of an
                    // older shape.
                    out.push(format!("DROP TRIGGER IF EXISTS capture_{table}_{op}"));
                    out.push(format!(
                        "CREATE TRIGGER capture_{table}_{op} AFTER {op_upper} ON {table} BEGIN
                             {fence_check};
                             INSERT INTO shop_sequences (shop_id, seq) VALUES ({row}.shop_id, 1)
                                 ON CONFLICT (shop_id) DO UPDATE SET seq = seq + 1;
                             INSERT INTO changelog (shop_id, table_name, row_key, op, changed_at_ms, xact, shop_seq)
                             VALUES ({row}.shop_id, '{table}', {row}.{key}, '{letter}', CAST(unixepoch('subsec') * 1000 AS INTEGER), 0,
                                     (SELECT seq FROM shop_sequences WHERE shop_id = {row}.shop_id));
                         END",
                        op_upper = op.to_ascii_uppercase(),
                    ));
                }
            }
        }
        Backend::Postgres => {
            out.push("SELECT 1 AS locked FROM (SELECT pg_advisory_xact_lock(7177002)) AS lock".to_owned());
            out.push(format!(
                "CREATE OR REPLACE FUNCTION legacy_capture() RETURNS trigger LANGUAGE plpgsql AS $$
                 DECLARE r jsonb; s bigint;
                 BEGIN
                     IF TG_OP = 'DELETE' THEN r := to_jsonb(OLD); ELSE r := to_jsonb(NEW); END IF;
                     -- Writers of a shop share its row; `fence` takes it exclusively, so the
                     -- fence waits for writes in flight and every later write sees it.
                     IF TG_TABLE_NAME <> 'shops' THEN
                         PERFORM 1 FROM shops WHERE shop_id = r->>'shop_id' FOR KEY SHARE;
                     END IF;
                     IF EXISTS (SELECT 1 FROM shop_fences WHERE shop_id = r->>'shop_id' AND reason <> '{REVERSE_SYNC}')
                        OR (TG_OP = 'UPDATE' AND EXISTS (SELECT 1 FROM shop_fences WHERE shop_id = to_jsonb(OLD)->>'shop_id' AND reason <> '{REVERSE_SYNC}')) THEN
                         RAISE EXCEPTION '{FENCED_MARK}%: the shop is being moved', r->>'shop_id' USING ERRCODE = 'P0001';
                     END IF;
                     -- The shop's next number; its row stays locked to the end of this
                     -- transaction, so numbers of one shop follow commit order.
                     INSERT INTO shop_sequences (shop_id, seq) VALUES (r->>'shop_id', 1)
                         ON CONFLICT (shop_id) DO UPDATE SET seq = shop_sequences.seq + 1
                         RETURNING seq INTO s;
                     INSERT INTO changelog (shop_id, table_name, row_key, op, changed_at_ms, xact, shop_seq)
                     VALUES (r->>'shop_id', TG_TABLE_NAME, r->>TG_ARGV[0], left(TG_OP, 1),
                             (extract(epoch from clock_timestamp()) * 1000)::bigint, pg_current_xact_id()::text::bigint, s);
                     RETURN NULL;
                 END $$"
            ));
            for (table, key) in CAPTURED {
                out.push(format!("DROP TRIGGER IF EXISTS capture ON {table}"));
                out.push(format!(
                    "CREATE TRIGGER capture AFTER INSERT OR UPDATE OR DELETE ON {table}
                     FOR EACH ROW EXECUTE FUNCTION legacy_capture('{key}')"
                ));
            }
        }
    }
    out
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyShop {
    pub shop_id: String,
    pub shop_name: String,
    pub seller_type: String,
    pub province: String,
    pub city: String,
    pub contact_phone: String,
    /// The 13-digit business number, as registered; empty if the seller never gave one.
    pub nib: String,
    pub create_time: i64,
    pub update_time: i64,
}

/// One SKU as embedded in the product row's JSON. Values as the legacy system kept them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacySku {
    pub sku_id: String,
    pub seller_sku: String,
    pub name: String,
    pub price: String,
    pub stock: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyProduct {
    pub shop_id: String,
    pub product_id: String,
    pub title: String,
    pub category: String,
    pub description: String,
    pub skus: Vec<LegacySku>,
    /// What is wrong with the stored SKU list, if anything (not JSON, a stock that is not a
    /// whole number): the SKUs that could not be read are left out of `skus`, and the product
    /// cannot change until the row is repaired (a rewrite would drop them).
    pub skus_problem: Option<String>,
    /// 1 live, 2 delisted, 3 deleted.
    pub status: i64,
    pub create_time: i64,
    pub update_time: i64,
}

pub const PRODUCT_LIVE: i64 = 1;
pub const PRODUCT_DELISTED: i64 = 2;
pub const PRODUCT_DELETED: i64 = 3;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyBuyer {
    pub buyer_id: String,
    pub nickname: String,
    pub phone: String,
    pub email: String,
    pub birth_date: String,
    pub gender: String,
    pub follower_count: i64,
    pub create_time: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyItem {
    pub item_no: i64,
    pub product_id: String,
    pub sku_id: String,
    pub product_title: String,
    pub quantity: i64,
    pub unit_price: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyOrder {
    pub shop_id: String,
    pub order_id: String,
    pub buyer_id: String,
    pub status: i64,
    pub payment_method: String,
    pub total_amount: String,
    pub recipient_name: String,
    pub recipient_phone: String,
    pub address_detail: String,
    pub city: String,
    pub province: String,
    pub postal_code: String,
    pub create_time: i64,
    pub update_time: i64,
    pub items: Vec<LegacyItem>,
}

/// One change captured in the changelog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub position: i64,
    /// The shop's own change number, in commit order (see `0005_shop_sequences.sql`).
    pub shop_seq: i64,
    pub shop_id: String,
    pub table_name: String,
    pub row_key: String,
    pub op: String,
    pub changed_at_ms: i64,
}

/// A line of a new legacy order: which SKU of which product, how many.
#[derive(Debug, Clone)]
pub struct NewItem {
    pub product_id: String,
    pub sku_id: String,
    pub quantity: i64,
}

/// A legacy order to create; the store prices it from the product rows and takes the stock.
#[derive(Debug, Clone)]
pub struct NewLegacyOrder {
    pub shop_id: String,
    pub order_id: String,
    pub buyer_id: String,
    pub payment_method: String,
    pub recipient_name: String,
    pub recipient_phone: String,
    pub address_detail: String,
    pub city: String,
    pub province: String,
    pub postal_code: String,
    pub items: Vec<NewItem>,
    pub now_s: i64,
}

/// What may change on a product: each `Some` field is set.
#[derive(Debug, Clone, Default)]
pub struct ProductEdit {
    pub title: Option<String>,
    pub description: Option<String>,
    /// (sku_id, new price as the canonical string).
    pub prices: Vec<(String, String)>,
    /// (sku_id, new stock).
    pub stocks: Vec<(String, i64)>,
}

/// Rows for a bulk load (the generator's batches), written in one unit.
#[derive(Debug, Clone, Default)]
pub struct Batch {
    pub shops: Vec<LegacyShop>,
    pub products: Vec<LegacyProduct>,
    pub buyers: Vec<LegacyBuyer>,
    pub orders: Vec<LegacyOrder>,
}

impl Batch {
    pub fn rows(&self) -> usize {
        self.shops.len()
            + self.products.len()
            + self.buyers.len()
            + self.orders.len()
            + self.orders.iter().map(|o| o.items.len()).sum::<usize>()
    }
}

/// The legacy store: a [`Store`] opened with the legacy schema.
#[derive(Clone)]
pub struct LegacyStore {
    store: Store,
}

impl LegacyStore {
    pub async fn open(options: crate::StoreOptions) -> Result<LegacyStore, StoreError> {
        let options = options.with_schema(crate::schema::Schema::Legacy);
        Ok(LegacyStore { store: Store::open(options).await? })
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub async fn shop(&self, shop_id: &str) -> Result<Option<LegacyShop>, StoreError> {
        let shop_id = shop_id.to_owned();
        self.store
            .read(move |conn| {
                Box::pin(async move {
                    let rows =
                        q("SELECT * FROM shops WHERE shop_id = $1").bind(shop_id).fetch_all(conn).await?;
                    rows.first().map(decode_shop).transpose()
                })
            })
            .await
    }

    pub async fn buyer(&self, buyer_id: &str) -> Result<Option<LegacyBuyer>, StoreError> {
        let buyer_id = buyer_id.to_owned();
        self.store
            .read(move |conn| {
                Box::pin(async move {
                    let rows =
                        q("SELECT * FROM buyers WHERE buyer_id = $1").bind(buyer_id).fetch_all(conn).await?;
                    rows.first().map(decode_buyer).transpose()
                })
            })
            .await
    }

    /// A shop's products in id order, after `after` (exclusive; "" from the start).
    pub async fn products(
        &self,
        shop_id: &str,
        after: &str,
        limit: u32,
    ) -> Result<Vec<LegacyProduct>, StoreError> {
        let (shop_id, after) = (shop_id.to_owned(), after.to_owned());
        self.store
            .read(move |conn| {
                Box::pin(async move {
                    let rows = q("SELECT * FROM products WHERE shop_id = $1 AND product_id > $2 ORDER BY product_id LIMIT $3")
                        .bind(shop_id)
                        .bind(after)
                        .bind(i64::from(limit))
                        .fetch_all(conn)
                        .await?;
                    rows.iter().map(decode_product).collect()
                })
            })
            .await
    }

    pub async fn product(
        &self,
        shop_id: &str,
        product_id: &str,
    ) -> Result<Option<LegacyProduct>, StoreError> {
        let (shop_id, product_id) = (shop_id.to_owned(), product_id.to_owned());
        self.store
            .read(move |conn| Box::pin(async move { load_product(conn, &shop_id, &product_id, false).await }))
            .await
    }

    pub async fn create_product(&self, product: LegacyProduct) -> Result<LegacyProduct, StoreError> {
        self.store
            .write(None, move |conn| {
                Box::pin(async move {
                    insert_products(conn, std::slice::from_ref(&product)).await?;
                    Ok(product)
                })
            })
            .await
    }

    /// Edits a product: title, description, SKU prices and stock (the read-modify-write of the
    /// embedded JSON happens under the row's lock).
    pub async fn edit_product(
        &self,
        shop_id: &str,
        product_id: &str,
        edit: ProductEdit,
        now_s: i64,
    ) -> Result<LegacyProduct, StoreError> {
        let (shop_id, product_id) = (shop_id.to_owned(), product_id.to_owned());
        self.store
            .write(None, move |conn| {
                Box::pin(async move {
                    let mut product = whole(
                        load_product(conn, &shop_id, &product_id, true)
                            .await?
                            .filter(|p| p.status != PRODUCT_DELETED)
                            .ok_or_else(|| StoreError::not_found("product", &product_id))?,
                    )?;
                    if let Some(title) = edit.title {
                        product.title = title;
                    }
                    if let Some(description) = edit.description {
                        product.description = description;
                    }
                    for (sku_id, price) in edit.prices {
                        sku_mut(&mut product, &sku_id)?.price = price;
                    }
                    for (sku_id, stock) in edit.stocks {
                        sku_mut(&mut product, &sku_id)?.stock = stock;
                    }
                    product.update_time = now_s;
                    q("UPDATE products SET title = $3, description = $4, skus = $5, update_time = $6
                       WHERE shop_id = $1 AND product_id = $2")
                    .bind(shop_id)
                    .bind(product_id)
                    .bind(product.title.clone())
                    .bind(product.description.clone())
                    .bind(skus_json(&product.skus))
                    .bind(now_s)
                    .execute(&mut *conn)
                    .await?;
                    Ok(product)
                })
            })
            .await
    }

    /// A shop's orders newest first, optionally of one status code, before the cursor.
    pub async fn orders(
        &self,
        shop_id: &str,
        status: Option<i64>,
        before: &str,
        limit: u32,
    ) -> Result<Vec<LegacyOrder>, StoreError> {
        let (shop_id, before) = (shop_id.to_owned(), before.to_owned());
        self.store
            .read(move |conn| {
                Box::pin(async move {
                    let rows = q("SELECT * FROM orders WHERE shop_id = $1 AND ($2 = '' OR order_id < $2)
                                    AND ($3 = -1 OR status = $3) ORDER BY order_id DESC LIMIT $4")
                    .bind(shop_id.clone())
                    .bind(before)
                    .bind(status.unwrap_or(-1))
                    .bind(i64::from(limit))
                    .fetch_all(&mut *conn)
                    .await?;
                    let mut orders = rows.iter().map(decode_order).collect::<Result<Vec<_>, _>>()?;
                    for order in &mut orders {
                        order.items = load_items(conn, &order.shop_id, &order.order_id).await?;
                    }
                    Ok(orders)
                })
            })
            .await
    }

    /// An order by its id alone (ids are unique across shops).
    pub async fn order(&self, order_id: &str) -> Result<Option<LegacyOrder>, StoreError> {
        let order_id = order_id.to_owned();
        self.store.read(move |conn| Box::pin(async move { load_order(conn, &order_id, false).await })).await
    }

    /// Creates an unpaid order: prices each item from its SKU, takes the stock from the product
    /// rows (refused if a product is not live, a SKU unknown, a price unreadable or the stock
    /// short), writes the order and its items. All or nothing.
    pub async fn create_order(&self, order: NewLegacyOrder) -> Result<LegacyOrder, StoreError> {
        self.store.write(None, move |conn| Box::pin(create_order_unit(conn, order))).await
    }

    /// Moves an order from one of `from` to `to`; a cancellation puts the stock back.
    pub async fn set_order_status(
        &self,
        order_id: &str,
        from: Vec<LegacyStatus>,
        to: LegacyStatus,
        now_s: i64,
    ) -> Result<LegacyOrder, StoreError> {
        let order_id = order_id.to_owned();
        self.store
            .write(None, move |conn| {
                Box::pin(async move {
                    let order = load_order(conn, &order_id, true)
                        .await?
                        .ok_or_else(|| StoreError::not_found("order", &order_id))?;
                    if order.status == to.code() {
                        return Ok(order);
                    }
                    if !from.iter().any(|s| s.code() == order.status) {
                        return Err(StoreError::Conflict(format!(
                            "order {order_id} has status {}: it cannot become {}",
                            order.status,
                            to.code()
                        )));
                    }
                    let moved = q("UPDATE orders SET status = $3, update_time = $4 WHERE shop_id = $1 AND order_id = $2 AND status = $5")
                        .bind(order.shop_id.clone())
                        .bind(order_id.clone())
                        .bind(to.code())
                        .bind(now_s)
                        .bind(order.status)
                        .execute(&mut *conn)
                        .await?;
                    if moved != 1 {
                        return Err(StoreError::Conflict(format!("order {order_id} changed meanwhile: retry")));
                    }
                    if to == LegacyStatus::Cancelled {
                        restock(conn, &order, now_s).await?;
                    }
                    Ok(LegacyOrder { status: to.code(), update_time: now_s, ..order })
                })
            })
            .await
    }

    /// Puts the fence up for a shop (idempotent).
    pub async fn fence(&self, shop_id: &str, reason: &str, now_ms: i64) -> Result<(), StoreError> {
        let (shop_id, reason) = (shop_id.to_owned(), reason.to_owned());
        self.store
            .write(None, move |conn| {
                Box::pin(async move {
                    // On PostgreSQL: wait for the shop's writes in flight (they hold its row
                    // shared, see the capture trigger); SQLite has one writer anyway.
                    let lock = crate::db::lock_clause(conn, true);
                    q(format!("SELECT shop_id FROM shops WHERE shop_id = $1{lock}"))
                        .bind(shop_id.clone())
                        .fetch_all(&mut *conn)
                        .await?;
                    q("INSERT INTO shop_fences (shop_id, fenced_at_ms, reason) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
                        .bind(shop_id)
                        .bind(now_ms)
                        .bind(reason)
                        .execute(conn)
                        .await?;
                    Ok(())
                })
            })
            .await
    }

    pub async fn unfence(&self, shop_id: &str) -> Result<(), StoreError> {
        let shop_id = shop_id.to_owned();
        self.store
            .write(None, move |conn| {
                Box::pin(async move {
                    q("DELETE FROM shop_fences WHERE shop_id = $1").bind(shop_id).execute(conn).await?;
                    Ok(())
                })
            })
            .await
    }

    /// Writes the core's version of a fenced shop's rows back (the reverse sync after its
    /// cutover), in one transaction that lets only itself through the fence: products brought
    /// to the core's title, category, listing, prices and units available (SKU names kept);
    /// orders the legacy store lacks inserted with their items, the others brought to the
    /// core's status. Rows already equal are not written. Returns (products written, orders
    /// inserted, orders updated).
    pub async fn reverse_apply(
        &self,
        shop_id: &str,
        products: Vec<LegacyProduct>,
        orders: Vec<LegacyOrder>,
        now_s: i64,
    ) -> Result<(u64, u64, u64), StoreError> {
        let shop_id = shop_id.to_owned();
        self.store
            .write(None, move |conn| {
                Box::pin(async move {
                    let lock = crate::db::lock_clause(conn, true);
                    let fence = q(format!("SELECT reason FROM shop_fences WHERE shop_id = $1{lock}"))
                        .bind(shop_id.clone())
                        .fetch_optional(&mut *conn)
                        .await?;
                    let reason = fence.as_ref().map(|r| r.text("reason")).transpose()?;
                    if reason.is_some() {
                        q("UPDATE shop_fences SET reason = $2 WHERE shop_id = $1")
                            .bind(shop_id.clone())
                            .bind(REVERSE_SYNC)
                            .execute(&mut *conn)
                            .await?;
                    }
                    let mut counts = (0, 0, 0);
                    for product in products {
                        let current = q("SELECT * FROM products WHERE shop_id = $1 AND product_id = $2")
                            .bind(shop_id.clone())
                            .bind(product.product_id.clone())
                            .fetch_optional(&mut *conn)
                            .await?
                            .as_ref()
                            .map(decode_product)
                            .transpose()?;
                        let Some(current) = current else { continue };
                        let names: std::collections::HashMap<&str, &str> =
                            current.skus.iter().map(|s| (s.sku_id.as_str(), s.name.as_str())).collect();
                        let skus: Vec<LegacySku> = product
                            .skus
                            .iter()
                            .map(|s| LegacySku { name: names.get(s.sku_id.as_str()).map_or_else(String::new, |n| (*n).to_owned()), ..s.clone() })
                            .collect();
                        // A product deleted in the legacy store stays deleted while the core
                        // holds it unlisted.
                        let status = if current.status == PRODUCT_DELETED && product.status != PRODUCT_LIVE {
                            PRODUCT_DELETED
                        } else {
                            product.status
                        };
                        if current.title == product.title
                            && current.category == product.category
                            && current.status == status
                            && same_skus(&current.skus, &skus)
                            && current.skus_problem.is_none()
                        {
                            continue;
                        }
                        q("UPDATE products SET title = $3, category = $4, skus = $5, status = $6, update_time = $7
                           WHERE shop_id = $1 AND product_id = $2")
                        .bind(shop_id.clone())
                        .bind(product.product_id.clone())
                        .bind(product.title.clone())
                        .bind(product.category.clone())
                        .bind(skus_json(&skus))
                        .bind(status)
                        .bind(now_s)
                        .execute(&mut *conn)
                        .await?;
                        counts.0 += 1;
                    }
                    for order in orders {
                        let current = q("SELECT status FROM orders WHERE shop_id = $1 AND order_id = $2")
                            .bind(shop_id.clone())
                            .bind(order.order_id.clone())
                            .fetch_optional(&mut *conn)
                            .await?;
                        match current {
                            Some(row) if row.int("status")? == order.status => {}
                            Some(_) => {
                                q("UPDATE orders SET status = $3, update_time = $4 WHERE shop_id = $1 AND order_id = $2")
                                    .bind(shop_id.clone())
                                    .bind(order.order_id.clone())
                                    .bind(order.status)
                                    .bind(now_s)
                                    .execute(&mut *conn)
                                    .await?;
                                counts.2 += 1;
                            }
                            None => {
                                insert_orders(&mut *conn, std::slice::from_ref(&order)).await?;
                                counts.1 += 1;
                            }
                        }
                    }
                    if let Some(reason) = reason {
                        q("UPDATE shop_fences SET reason = $2 WHERE shop_id = $1")
                            .bind(shop_id.clone())
                            .bind(reason)
                            .execute(&mut *conn)
                            .await?;
                    }
                    Ok(counts)
                })
            })
            .await
    }

    /// Shop ids in id order after `after` ("" from the start).
    pub async fn shop_ids(&self, after: &str, limit: u32) -> Result<Vec<String>, StoreError> {
        let after = after.to_owned();
        self.store
            .read(move |conn| {
                Box::pin(async move {
                    q("SELECT shop_id FROM shops WHERE shop_id > $1 ORDER BY shop_id LIMIT $2")
                        .bind(after)
                        .bind(i64::from(limit))
                        .fetch_all(conn)
                        .await?
                        .iter()
                        .map(|r| r.text("shop_id").map_err(StoreError::from))
                        .collect()
                })
            })
            .await
    }

    /// How many rows the legacy store holds for an order id (across shops): 0 or 1, or a
    /// duplicate.
    pub async fn order_rows(&self, order_id: &str) -> Result<i64, StoreError> {
        let order_id = order_id.to_owned();
        self.store
            .read(move |conn| {
                Box::pin(async move {
                    Ok(q("SELECT COUNT(*) AS n FROM orders WHERE order_id = $1")
                        .bind(order_id)
                        .fetch_one(conn)
                        .await?
                        .int("n")?)
                })
            })
            .await
    }

    pub async fn is_fenced(&self, shop_id: &str) -> Result<bool, StoreError> {
        let shop_id = shop_id.to_owned();
        self.store
            .read(move |conn| {
                Box::pin(async move {
                    Ok(!q("SELECT 1 AS one FROM shop_fences WHERE shop_id = $1")
                        .bind(shop_id)
                        .fetch_all(conn)
                        .await?
                        .is_empty())
                })
            })
            .await
    }

    /// Changes after `position`, oldest first.
    pub async fn changes_since(&self, position: i64, limit: u32) -> Result<Vec<Change>, StoreError> {
        self.store
            .read(move |conn| {
                Box::pin(async move {
                    let rows = q("SELECT * FROM changelog WHERE position > $1 ORDER BY position LIMIT $2")
                        .bind(position)
                        .bind(i64::from(limit))
                        .fetch_all(conn)
                        .await?;
                    rows.iter().map(decode_change).collect()
                })
            })
            .await
    }

    /// One shop's changes numbered above `after` (its own sequence, in commit order), oldest
    /// first: what the migration engine tails. Nothing numbered below a change returned can
    /// appear later.
    pub async fn shop_changes(
        &self,
        shop_id: &str,
        after: i64,
        limit: u32,
    ) -> Result<Vec<Change>, StoreError> {
        let shop_id = shop_id.to_owned();
        self.store
            .read(move |conn| {
                Box::pin(async move {
                    let rows = q("SELECT * FROM changelog WHERE shop_id = $1 AND shop_seq > $2 ORDER BY shop_seq LIMIT $3")
                        .bind(shop_id)
                        .bind(after)
                        .bind(i64::from(limit))
                        .fetch_all(conn)
                        .await?;
                    rows.iter().map(decode_change).collect()
                })
            })
            .await
    }

    /// The number of the shop's last committed change (0 if none): a snapshot read after this
    /// sees every change up to it.
    pub async fn shop_head(&self, shop_id: &str) -> Result<i64, StoreError> {
        let shop_id = shop_id.to_owned();
        self.store
            .read(move |conn| {
                Box::pin(async move {
                    let row = q("SELECT seq FROM shop_sequences WHERE shop_id = $1")
                        .bind(shop_id)
                        .fetch_optional(conn)
                        .await?;
                    Ok(row.map(|r| r.int("seq")).transpose()?.unwrap_or(0))
                })
            })
            .await
    }

    /// Writes a batch of generated rows in one unit (triggers, if installed, fire as usual).
    pub async fn load(&self, batch: Batch) -> Result<usize, StoreError> {
        let rows = batch.rows();
        self.store
            .write(None, move |conn| {
                Box::pin(async move {
                    insert_shops(conn, &batch.shops).await?;
                    insert_products(conn, &batch.products).await?;
                    insert_buyers(conn, &batch.buyers).await?;
                    insert_orders(conn, &batch.orders).await?;
                    Ok(rows)
                })
            })
            .await
    }

    /// Remembers which social user a pseudonymous buyer reference stands for (idempotent).
    pub async fn remember_buyer_ref(&self, buyer_ref: &str, buyer_id: &str) -> Result<(), StoreError> {
        let (buyer_ref, buyer_id) = (buyer_ref.to_owned(), buyer_id.to_owned());
        self.store
            .write(None, move |conn| {
                Box::pin(async move {
                    q("INSERT INTO buyer_refs (buyer_ref, buyer_id) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                        .bind(buyer_ref)
                        .bind(buyer_id)
                        .execute(conn)
                        .await?;
                    Ok(())
                })
            })
            .await
    }

    /// [`LegacyStore::remember_buyer_ref`] for many buyers in one unit.
    pub async fn remember_buyer_refs(&self, refs: Vec<(String, String)>) -> Result<(), StoreError> {
        if refs.is_empty() {
            return Ok(());
        }
        self.store
            .write(None, move |conn| {
                Box::pin(async move {
                    let rows = refs.into_iter().map(|(r, b)| vec![r.into(), b.into()]).collect();
                    crate::db::insert_many(
                        conn,
                        "INSERT INTO buyer_refs (buyer_ref, buyer_id)",
                        2,
                        rows,
                        " ON CONFLICT DO NOTHING",
                    )
                    .await?;
                    Ok(())
                })
            })
            .await
    }

    /// The social user behind a pseudonymous buyer reference, if the social side knows it.
    pub async fn buyer_of_ref(&self, buyer_ref: &str) -> Result<Option<String>, StoreError> {
        let buyer_ref = buyer_ref.to_owned();
        self.store
            .read(move |conn| {
                Box::pin(async move {
                    let row = q("SELECT buyer_id FROM buyer_refs WHERE buyer_ref = $1")
                        .bind(buyer_ref)
                        .fetch_optional(conn)
                        .await?;
                    row.map(|r| r.text("buyer_id")).transpose().map_err(Into::into)
                })
            })
            .await
    }

    /// Row counts per table (for `seed`'s summary and tests).
    pub async fn counts(&self) -> Result<Vec<(&'static str, i64)>, StoreError> {
        self.store
            .read(|conn| {
                Box::pin(async move {
                    let mut out = Vec::new();
                    for table in ["shops", "products", "buyers", "orders", "order_items", "changelog"] {
                        let row =
                            q(format!("SELECT COUNT(*) AS n FROM {table}")).fetch_one(&mut *conn).await?;
                        out.push((table, row.int("n")?));
                    }
                    Ok(out)
                })
            })
            .await
    }
}

fn sku_mut<'a>(product: &'a mut LegacyProduct, sku_id: &str) -> Result<&'a mut LegacySku, StoreError> {
    let product_id = product.product_id.clone();
    product
        .skus
        .iter_mut()
        .find(|s| s.sku_id == sku_id)
        .ok_or_else(|| StoreError::not_found("sku", format!("{sku_id} of product {product_id}")))
}

async fn create_order_unit(conn: &mut dyn Conn, order: NewLegacyOrder) -> Result<LegacyOrder, StoreError> {
    let mut items = Vec::with_capacity(order.items.len());
    let mut total = Money::ZERO;
    // Lock products in id order so concurrent orders cannot deadlock on PostgreSQL.
    let mut wanted = order.items.clone();
    wanted.sort_by(|a, b| a.product_id.cmp(&b.product_id));
    let mut products: Vec<LegacyProduct> = Vec::new();
    for item in &wanted {
        if products.iter().any(|p| p.product_id == item.product_id) {
            continue;
        }
        let product = whole(
            load_product(conn, &order.shop_id, &item.product_id, true)
                .await?
                .filter(|p| p.status == PRODUCT_LIVE)
                .ok_or_else(|| StoreError::not_found("product", &item.product_id))?,
        )?;
        products.push(product);
    }
    for (index, item) in order.items.iter().enumerate() {
        let product = products
            .iter_mut()
            .find(|p| p.product_id == item.product_id)
            .ok_or_else(|| StoreError::not_found("product", &item.product_id))?;
        let title = product.title.clone();
        let sku = sku_mut(product, &item.sku_id)?;
        let price = parse_price(&sku.price).map_err(|problem| {
            DomainError::invalid("price", format!("SKU {}: {}", sku.sku_id, problem.explain(&sku.price)))
        })?;
        if sku.stock < item.quantity {
            return Err(StoreError::Domain(DomainError::InsufficientStock {
                sku: Some(sku.sku_id.clone()),
                available: sku.stock.max(0) as u32,
                requested: item.quantity as u32,
            }));
        }
        sku.stock -= item.quantity;
        let line = price.checked_mul(item.quantity as u32)?;
        total = total.checked_add(line)?;
        items.push(LegacyItem {
            item_no: index as i64 + 1,
            product_id: item.product_id.clone(),
            sku_id: item.sku_id.clone(),
            product_title: title,
            quantity: item.quantity,
            unit_price: price.rupiah().to_string(),
        });
    }
    for product in &products {
        q("UPDATE products SET skus = $3, update_time = $4 WHERE shop_id = $1 AND product_id = $2")
            .bind(product.shop_id.clone())
            .bind(product.product_id.clone())
            .bind(skus_json(&product.skus))
            .bind(order.now_s)
            .execute(&mut *conn)
            .await?;
    }
    let record = LegacyOrder {
        shop_id: order.shop_id,
        order_id: order.order_id,
        buyer_id: order.buyer_id,
        status: LegacyStatus::Unpaid.code(),
        payment_method: order.payment_method,
        total_amount: total.rupiah().to_string(),
        recipient_name: order.recipient_name,
        recipient_phone: order.recipient_phone,
        address_detail: order.address_detail,
        city: order.city,
        province: order.province,
        postal_code: order.postal_code,
        create_time: order.now_s,
        update_time: order.now_s,
        items,
    };
    insert_orders(conn, std::slice::from_ref(&record)).await?;
    Ok(record)
}

/// Gives a cancelled order's units back to its SKUs (those still there).
async fn restock(conn: &mut dyn Conn, order: &LegacyOrder, now_s: i64) -> Result<(), StoreError> {
    let mut product_ids: Vec<&str> = order.items.iter().map(|i| i.product_id.as_str()).collect();
    product_ids.sort_unstable();
    product_ids.dedup();
    for product_id in product_ids {
        let Some(mut product) = load_product(conn, &order.shop_id, product_id, true).await? else { continue };
        if product.skus_problem.is_some() {
            // A damaged row cannot be rewritten without losing the SKUs it could not read;
            // the units stay out (the migration quarantines the row with its raw value).
            tracing::warn!(product_id, "a cancelled order's units are not returned to a damaged SKU list");
            continue;
        }
        for item in order.items.iter().filter(|i| i.product_id == product_id) {
            if let Some(sku) = product.skus.iter_mut().find(|s| s.sku_id == item.sku_id) {
                sku.stock += item.quantity;
            }
        }
        q("UPDATE products SET skus = $3, update_time = $4 WHERE shop_id = $1 AND product_id = $2")
            .bind(product.shop_id.clone())
            .bind(product.product_id.clone())
            .bind(skus_json(&product.skus))
            .bind(now_s)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

async fn load_product(
    conn: &mut dyn Conn,
    shop_id: &str,
    product_id: &str,
    for_update: bool,
) -> Result<Option<LegacyProduct>, StoreError> {
    let sql = format!(
        "SELECT * FROM products WHERE shop_id = $1 AND product_id = $2{}",
        crate::db::lock_clause(conn, for_update)
    );
    let rows = q(sql).bind(shop_id).bind(product_id).fetch_all(conn).await?;
    rows.first().map(decode_product).transpose()
}

async fn load_order(
    conn: &mut dyn Conn,
    order_id: &str,
    for_update: bool,
) -> Result<Option<LegacyOrder>, StoreError> {
    let sql = format!("SELECT * FROM orders WHERE order_id = $1{}", crate::db::lock_clause(conn, for_update));
    let rows = q(sql).bind(order_id).fetch_all(&mut *conn).await?;
    let Some(row) = rows.first() else { return Ok(None) };
    let mut order = decode_order(row)?;
    order.items = load_items(conn, &order.shop_id, &order.order_id).await?;
    Ok(Some(order))
}

async fn load_items(
    conn: &mut dyn Conn,
    shop_id: &str,
    order_id: &str,
) -> Result<Vec<LegacyItem>, StoreError> {
    let rows = q("SELECT * FROM order_items WHERE shop_id = $1 AND order_id = $2 ORDER BY item_no")
        .bind(shop_id)
        .bind(order_id)
        .fetch_all(conn)
        .await?;
    rows.iter()
        .map(|r| {
            Ok(LegacyItem {
                item_no: r.int("item_no")?,
                product_id: r.text("product_id")?,
                sku_id: r.text("sku_id")?,
                product_title: r.text("product_title")?,
                quantity: r.int("quantity")?,
                unit_price: r.text("unit_price")?,
            })
        })
        .collect()
}

/// Multi-row INSERT of `rows` rows of `columns` columns each, in chunks under the parameter
/// limits of both engines.
async fn insert_rows(
    conn: &mut dyn Conn,
    table: &str,
    columns: &[&str],
    values: Vec<crate::Value>,
) -> Result<(), StoreError> {
    let width = columns.len();
    if values.is_empty() {
        return Ok(());
    }
    let per_statement = (900 / width).max(1);
    let rows: Vec<&[crate::Value]> = values.chunks(width).collect();
    for chunk in rows.chunks(per_statement) {
        let mut sql = format!("INSERT INTO {table} ({}) VALUES ", columns.join(", "));
        let mut params = Vec::with_capacity(chunk.len() * width);
        for (r, row) in chunk.iter().enumerate() {
            if r > 0 {
                sql.push_str(", ");
            }
            sql.push('(');
            for c in 0..width {
                if c > 0 {
                    sql.push_str(", ");
                }
                sql.push_str(&format!("${}", r * width + c + 1));
            }
            sql.push(')');
            params.extend(row.iter().cloned());
        }
        conn.execute(&sql, params).await?;
    }
    Ok(())
}

async fn insert_shops(conn: &mut dyn Conn, shops: &[LegacyShop]) -> Result<(), StoreError> {
    let mut values = Vec::with_capacity(shops.len() * 9);
    for s in shops {
        values.extend([
            s.shop_id.clone().into(),
            s.shop_name.clone().into(),
            s.seller_type.clone().into(),
            s.province.clone().into(),
            s.city.clone().into(),
            s.contact_phone.clone().into(),
            s.nib.clone().into(),
            s.create_time.into(),
            s.update_time.into(),
        ]);
    }
    insert_rows(
        conn,
        "shops",
        &[
            "shop_id",
            "shop_name",
            "seller_type",
            "province",
            "city",
            "contact_phone",
            "nib",
            "create_time",
            "update_time",
        ],
        values,
    )
    .await
}

async fn insert_products(conn: &mut dyn Conn, products: &[LegacyProduct]) -> Result<(), StoreError> {
    let mut values = Vec::with_capacity(products.len() * 9);
    for p in products {
        values.extend([
            p.shop_id.clone().into(),
            p.product_id.clone().into(),
            p.title.clone().into(),
            p.category.clone().into(),
            p.description.clone().into(),
            skus_json(&p.skus).into(),
            p.status.into(),
            p.create_time.into(),
            p.update_time.into(),
        ]);
    }
    insert_rows(
        conn,
        "products",
        &[
            "shop_id",
            "product_id",
            "title",
            "category",
            "description",
            "skus",
            "status",
            "create_time",
            "update_time",
        ],
        values,
    )
    .await
}

async fn insert_buyers(conn: &mut dyn Conn, buyers: &[LegacyBuyer]) -> Result<(), StoreError> {
    let mut values = Vec::with_capacity(buyers.len() * 8);
    for b in buyers {
        values.extend([
            b.buyer_id.clone().into(),
            b.nickname.clone().into(),
            b.phone.clone().into(),
            b.email.clone().into(),
            b.birth_date.clone().into(),
            b.gender.clone().into(),
            b.follower_count.into(),
            b.create_time.into(),
        ]);
    }
    insert_rows(
        conn,
        "buyers",
        &["buyer_id", "nickname", "phone", "email", "birth_date", "gender", "follower_count", "create_time"],
        values,
    )
    .await
}

async fn insert_orders(conn: &mut dyn Conn, orders: &[LegacyOrder]) -> Result<(), StoreError> {
    let mut values = Vec::with_capacity(orders.len() * 14);
    let mut items = Vec::new();
    for o in orders {
        values.extend([
            o.shop_id.clone().into(),
            o.order_id.clone().into(),
            o.buyer_id.clone().into(),
            o.status.into(),
            o.payment_method.clone().into(),
            o.total_amount.clone().into(),
            o.recipient_name.clone().into(),
            o.recipient_phone.clone().into(),
            o.address_detail.clone().into(),
            o.city.clone().into(),
            o.province.clone().into(),
            o.postal_code.clone().into(),
            o.create_time.into(),
            o.update_time.into(),
        ]);
        for i in &o.items {
            items.extend([
                o.shop_id.clone().into(),
                o.order_id.clone().into(),
                i.item_no.into(),
                i.product_id.clone().into(),
                i.sku_id.clone().into(),
                i.product_title.clone().into(),
                i.quantity.into(),
                i.unit_price.clone().into(),
            ]);
        }
    }
    insert_rows(
        conn,
        "orders",
        &[
            "shop_id",
            "order_id",
            "buyer_id",
            "status",
            "payment_method",
            "total_amount",
            "recipient_name",
            "recipient_phone",
            "address_detail",
            "city",
            "province",
            "postal_code",
            "create_time",
            "update_time",
        ],
        values,
    )
    .await?;
    insert_rows(
        conn,
        "order_items",
        &[
            "shop_id",
            "order_id",
            "item_no",
            "product_id",
            "sku_id",
            "product_title",
            "quantity",
            "unit_price",
        ],
        items,
    )
    .await
}

pub fn skus_json(skus: &[LegacySku]) -> String {
    Json::Array(
        skus.iter()
            .map(|s| {
                json!({"sku_id": s.sku_id, "seller_sku": s.seller_sku, "name": s.name, "price": s.price, "stock": s.stock})
            })
            .collect(),
    )
    .to_string()
}

/// Reads the embedded SKU JSON, refusing a list with anything [`read_skus`] reports.
pub fn parse_skus(raw: &str) -> Result<Vec<LegacySku>, StoreError> {
    match read_skus(raw) {
        (skus, None) => Ok(skus),
        (_, Some(problem)) => Err(StoreError::Conflict(problem)),
    }
}

/// Reads the embedded SKU JSON as far as it can. Missing text fields read as empty (legacy
/// rows are not uniform); a list that is not JSON, or a SKU whose stock is not a whole number,
/// is reported — such a SKU is left out rather than read as some number it is not.
pub fn read_skus(raw: &str) -> (Vec<LegacySku>, Option<String>) {
    let value: Json = match serde_json::from_str(raw) {
        Ok(value) => value,
        Err(e) => return (Vec::new(), Some(format!("the SKU list is not JSON: {e}"))),
    };
    let Some(list) = value.as_array() else {
        return (Vec::new(), Some("the SKU list is not a JSON array".to_owned()));
    };
    let text = |v: &Json, k: &str| match v.get(k) {
        Some(Json::String(s)) => s.clone(),
        Some(Json::Number(n)) => n.to_string(),
        _ => String::new(),
    };
    let mut problems = Vec::new();
    let mut skus = Vec::with_capacity(list.len());
    for s in list {
        let sku_id = text(s, "sku_id");
        let stock = match s.get("stock") {
            Some(Json::Number(n)) => n.as_i64(),
            None | Some(Json::Null) => Some(0),
            _ => None,
        };
        let Some(stock) = stock else {
            problems.push(format!(
                "SKU {sku_id}: stock `{}` is not a whole number",
                s.get("stock").map(Json::to_string).unwrap_or_default()
            ));
            continue;
        };
        skus.push(LegacySku {
            sku_id,
            seller_sku: text(s, "seller_sku"),
            name: text(s, "name"),
            price: text(s, "price"),
            stock,
        });
    }
    let problem = if problems.is_empty() { None } else { Some(problems.join("; ")) };
    (skus, problem)
}

/// A product about to be rewritten must have been read whole.
fn whole(product: LegacyProduct) -> Result<LegacyProduct, StoreError> {
    match &product.skus_problem {
        None => Ok(product),
        Some(problem) => Err(StoreError::Conflict(format!(
            "product {}'s stored SKU list is damaged ({problem}): it cannot change until the row is repaired",
            product.product_id
        ))),
    }
}

fn decode_change(r: &Row) -> Result<Change, StoreError> {
    Ok(Change {
        position: r.int("position")?,
        shop_seq: r.int("shop_seq")?,
        shop_id: r.text("shop_id")?,
        table_name: r.text("table_name")?,
        row_key: r.text("row_key")?,
        op: r.text("op")?,
        changed_at_ms: r.int("changed_at_ms")?,
    })
}

fn decode_shop(r: &Row) -> Result<LegacyShop, StoreError> {
    Ok(LegacyShop {
        shop_id: r.text("shop_id")?,
        shop_name: r.text("shop_name")?,
        seller_type: r.text("seller_type")?,
        province: r.text("province")?,
        city: r.text("city")?,
        contact_phone: r.text("contact_phone")?,
        nib: r.text("nib")?,
        create_time: r.int("create_time")?,
        update_time: r.int("update_time")?,
    })
}

fn decode_buyer(r: &Row) -> Result<LegacyBuyer, StoreError> {
    Ok(LegacyBuyer {
        buyer_id: r.text("buyer_id")?,
        nickname: r.text("nickname")?,
        phone: r.text("phone")?,
        email: r.text("email")?,
        birth_date: r.text("birth_date")?,
        gender: r.text("gender")?,
        follower_count: r.int("follower_count")?,
        create_time: r.int("create_time")?,
    })
}

fn decode_product(r: &Row) -> Result<LegacyProduct, StoreError> {
    let (skus, skus_problem) = read_skus(&r.text("skus")?);
    Ok(LegacyProduct {
        shop_id: r.text("shop_id")?,
        product_id: r.text("product_id")?,
        title: r.text("title")?,
        category: r.text("category")?,
        description: r.text("description")?,
        skus,
        skus_problem,
        status: r.int("status")?,
        create_time: r.int("create_time")?,
        update_time: r.int("update_time")?,
    })
}

pub(crate) fn decode_order(r: &Row) -> Result<LegacyOrder, StoreError> {
    Ok(LegacyOrder {
        shop_id: r.text("shop_id")?,
        order_id: r.text("order_id")?,
        buyer_id: r.text("buyer_id")?,
        status: r.int("status")?,
        payment_method: r.text("payment_method")?,
        total_amount: r.text("total_amount")?,
        recipient_name: r.text("recipient_name")?,
        recipient_phone: r.text("recipient_phone")?,
        address_detail: r.text("address_detail")?,
        city: r.text("city")?,
        province: r.text("province")?,
        postal_code: r.text("postal_code")?,
        create_time: r.int("create_time")?,
        update_time: r.int("update_time")?,
        items: Vec::new(),
    })
}

/// The same SKUs: ids, codes, names and stock equal, prices equal in value (`"85.000"` is
/// `"85000"`).
fn same_skus(a: &[LegacySku], b: &[LegacySku]) -> bool {
    let price = |raw: &str| jembatan_domain::social::parse_price(raw).ok();
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| {
            x.sku_id == y.sku_id
                && x.seller_sku == y.seller_sku
                && x.name == y.name
                && x.stock == y.stock
                && price(&x.price).is_some()
                && price(&x.price) == price(&y.price)
        })
}

/// Rows per multi-row statement of the SQLite bulk path (8 columns × 64 rows = 512 parameters,
/// under every SQLite's limit). The remainder of a table goes one row per statement.
const BULK_ROWS_PER_STATEMENT: usize = 64;
/// Page cache of the bulk loader's own SQLite connection: the indexes being appended to stay
/// in memory.
const BULK_CACHE_KIB: i64 = 256 * 1024;

const SHOP_COLUMNS: &[&str] = &[
    "shop_id",
    "shop_name",
    "seller_type",
    "province",
    "city",
    "contact_phone",
    "nib",
    "create_time",
    "update_time",
];
const PRODUCT_COLUMNS: &[&str] = &[
    "shop_id",
    "product_id",
    "title",
    "category",
    "description",
    "skus",
    "status",
    "create_time",
    "update_time",
];
const BUYER_COLUMNS: &[&str] =
    &["buyer_id", "nickname", "phone", "email", "birth_date", "gender", "follower_count", "create_time"];
const ORDER_COLUMNS: &[&str] = &[
    "shop_id",
    "order_id",
    "buyer_id",
    "status",
    "payment_method",
    "total_amount",
    "recipient_name",
    "recipient_phone",
    "address_detail",
    "city",
    "province",
    "postal_code",
    "create_time",
    "update_time",
];
const ITEM_COLUMNS: &[&str] =
    &["shop_id", "order_id", "item_no", "product_id", "sku_id", "product_title", "quantity", "unit_price"];

/// One column value of a bulk row, borrowed from the batch.
#[derive(Clone, Copy)]
enum Cell<'a> {
    Text(&'a str),
    Int(i64),
}

fn shop_cells(s: &LegacyShop) -> [Cell<'_>; 9] {
    use Cell::*;
    [
        Text(&s.shop_id),
        Text(&s.shop_name),
        Text(&s.seller_type),
        Text(&s.province),
        Text(&s.city),
        Text(&s.contact_phone),
        Text(&s.nib),
        Int(s.create_time),
        Int(s.update_time),
    ]
}

fn product_cells<'a>(p: &'a LegacyProduct, skus: &'a str) -> [Cell<'a>; 9] {
    use Cell::*;
    [
        Text(&p.shop_id),
        Text(&p.product_id),
        Text(&p.title),
        Text(&p.category),
        Text(&p.description),
        Text(skus),
        Int(p.status),
        Int(p.create_time),
        Int(p.update_time),
    ]
}

fn buyer_cells(b: &LegacyBuyer) -> [Cell<'_>; 8] {
    use Cell::*;
    [
        Text(&b.buyer_id),
        Text(&b.nickname),
        Text(&b.phone),
        Text(&b.email),
        Text(&b.birth_date),
        Text(&b.gender),
        Int(b.follower_count),
        Int(b.create_time),
    ]
}

fn order_cells(o: &LegacyOrder) -> [Cell<'_>; 14] {
    use Cell::*;
    [
        Text(&o.shop_id),
        Text(&o.order_id),
        Text(&o.buyer_id),
        Int(o.status),
        Text(&o.payment_method),
        Text(&o.total_amount),
        Text(&o.recipient_name),
        Text(&o.recipient_phone),
        Text(&o.address_detail),
        Text(&o.city),
        Text(&o.province),
        Text(&o.postal_code),
        Int(o.create_time),
        Int(o.update_time),
    ]
}

fn item_cells<'a>(o: &'a LegacyOrder, i: &'a LegacyItem) -> [Cell<'a>; 8] {
    use Cell::*;
    [
        Text(&o.shop_id),
        Text(&o.order_id),
        Int(i.item_no),
        Text(&i.product_id),
        Text(&i.sku_id),
        Text(&i.product_title),
        Int(i.quantity),
        Text(&i.unit_price),
    ]
}

/// The rows of a batch, table by table, as cells (SKU lists rendered to their JSON once).
fn for_each_table<E>(
    batch: &Batch,
    mut table: impl for<'r> FnMut(
        &'static str,
        &'static [&'static str],
        &mut dyn Iterator<Item = Vec<Cell<'r>>>,
    ) -> Result<(), E>,
) -> Result<(), E> {
    table("shops", SHOP_COLUMNS, &mut batch.shops.iter().map(|s| shop_cells(s).to_vec()))?;
    let skus: Vec<String> = batch.products.iter().map(|p| skus_json(&p.skus)).collect();
    table(
        "products",
        PRODUCT_COLUMNS,
        &mut batch.products.iter().zip(&skus).map(|(p, s)| product_cells(p, s).to_vec()),
    )?;
    table("buyers", BUYER_COLUMNS, &mut batch.buyers.iter().map(|b| buyer_cells(b).to_vec()))?;
    table("orders", ORDER_COLUMNS, &mut batch.orders.iter().map(|o| order_cells(o).to_vec()))?;
    table(
        "order_items",
        ITEM_COLUMNS,
        &mut batch.orders.iter().flat_map(|o| o.items.iter().map(move |i| item_cells(o, i).to_vec())),
    )
}

/// The fast path of a bulk load into a legacy store that nobody else writes yet (`seed`): the
/// same rows as [`LegacyStore::load`], without the generic connection layer.
///
/// - SQLite: a connection of its own to the file with `synchronous=OFF` (a crash mid-load
///   leaves a store to delete, not a store in use), multi-row prepared statements of a fixed
///   width reused for every chunk, one transaction per batch. [`BulkLoader::finish`] makes it
///   all durable (a `FULL` checkpoint with `synchronous=FULL`).
/// - PostgreSQL: `COPY … FROM STDIN` per table, one transaction per batch, commits without
///   waiting for the WAL flush (`synchronous_commit=off`); `finish` flushes with a
///   synchronous commit.
pub struct BulkLoader {
    engine: BulkEngine,
}

enum BulkEngine {
    Sqlite(rusqlite::Connection),
    Postgres(sqlx::pool::PoolConnection<sqlx::Postgres>),
}

impl LegacyStore {
    /// A bulk loader for this store (see [`BulkLoader`]). The caller guarantees that nobody
    /// else writes to the store until [`BulkLoader::finish`].
    pub async fn bulk_loader(&self) -> Result<BulkLoader, StoreError> {
        let engine = match (self.store.sqlite_path(), self.store.pg_pool()) {
            (Some(path), _) => {
                let connection = rusqlite::Connection::open(path).map_err(crate::db::DbError::from)?;
                let setup = || -> Result<(), rusqlite::Error> {
                    connection.busy_timeout(std::time::Duration::from_secs(30))?;
                    connection.pragma_update(None, "synchronous", "OFF")?;
                    connection.pragma_update(None, "temp_store", "MEMORY")?;
                    connection.pragma_update(None, "cache_size", -BULK_CACHE_KIB)?;
                    Ok(())
                };
                setup().map_err(crate::db::DbError::from)?;
                BulkEngine::Sqlite(connection)
            }
            (None, Some(pool)) => {
                let mut conn = pool.acquire().await.map_err(crate::db::DbError::from)?;
                q("SET synchronous_commit = off").execute(&mut *conn).await?;
                BulkEngine::Postgres(conn)
            }
            (None, None) => {
                return Err(StoreError::Conflict("a store is either SQLite or PostgreSQL".into()));
            }
        };
        Ok(BulkLoader { engine })
    }
}

impl BulkLoader {
    /// Writes a batch in one transaction; returns the rows written.
    pub async fn load(&mut self, batch: &Batch) -> Result<usize, StoreError> {
        match &mut self.engine {
            BulkEngine::Sqlite(connection) => {
                sqlite_bulk(connection, batch).map_err(crate::db::DbError::from)?
            }
            BulkEngine::Postgres(conn) => postgres_bulk(conn, batch).await?,
        }
        Ok(batch.rows())
    }

    /// Makes everything loaded durable and gives the connection back.
    pub async fn finish(self) -> Result<(), StoreError> {
        match self.engine {
            BulkEngine::Sqlite(connection) => {
                let flush = || -> Result<(), rusqlite::Error> {
                    connection.pragma_update(None, "synchronous", "FULL")?;
                    connection.query_row("PRAGMA wal_checkpoint(FULL)", [], |_| Ok(()))?;
                    Ok(())
                };
                flush().map_err(crate::db::DbError::from)?;
            }
            BulkEngine::Postgres(mut conn) => {
                // A synchronous commit flushes the WAL up to it, and so every commit before it.
                // It must have a transaction id to write a commit record at all.
                q("SET synchronous_commit = on").execute(&mut *conn).await?;
                q("BEGIN").execute(&mut *conn).await?;
                q("SELECT pg_current_xact_id()::text AS xact").fetch_all(&mut *conn).await?;
                q("COMMIT").execute(&mut *conn).await?;
            }
        }
        Ok(())
    }
}

fn sqlite_bulk(connection: &mut rusqlite::Connection, batch: &Batch) -> Result<(), rusqlite::Error> {
    let tx = connection.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    for_each_table(batch, |table, columns, rows| {
        let row_sql = format!("({})", vec!["?"; columns.len()].join(", "));
        let insert = format!("INSERT INTO {table} ({}) VALUES ", columns.join(", "));
        let wide_sql = format!("{insert}{}", vec![row_sql.as_str(); BULK_ROWS_PER_STATEMENT].join(", "));
        let mut wide = tx.prepare_cached(&wide_sql)?;
        let mut single = tx.prepare_cached(&format!("{insert}{row_sql}"))?;
        let mut chunk: Vec<Vec<Cell<'_>>> = Vec::with_capacity(BULK_ROWS_PER_STATEMENT);
        let bind = |statement: &mut rusqlite::CachedStatement<'_>, rows: &[Vec<Cell<'_>>]| {
            let mut index = 1;
            for row in rows {
                for cell in row {
                    match *cell {
                        Cell::Text(text) => statement.raw_bind_parameter(index, text)?,
                        Cell::Int(int) => statement.raw_bind_parameter(index, int)?,
                    }
                    index += 1;
                }
            }
            let inserted = statement.raw_execute()?;
            debug_assert_eq!(inserted, rows.len());
            Ok::<(), rusqlite::Error>(())
        };
        for row in rows {
            debug_assert_eq!(row.len(), columns.len());
            chunk.push(row);
            if chunk.len() == BULK_ROWS_PER_STATEMENT {
                bind(&mut wide, &chunk)?;
                chunk.clear();
            }
        }
        for row in chunk.chunks(1) {
            bind(&mut single, row)?;
        }
        Ok::<(), rusqlite::Error>(())
    })?;
    tx.commit()
}

async fn postgres_bulk(conn: &mut sqlx::PgConnection, batch: &Batch) -> Result<(), StoreError> {
    use crate::db::DbError;
    // Render every table first (COPY text format), then send them in one transaction.
    let mut tables: Vec<(&'static str, &'static [&'static str], Vec<u8>)> = Vec::new();
    for_each_table(batch, |table, columns, rows| {
        let mut buffer = Vec::new();
        for row in rows {
            for (c, cell) in row.iter().enumerate() {
                if c > 0 {
                    buffer.push(b'\t');
                }
                match *cell {
                    Cell::Int(int) => buffer.extend_from_slice(int.to_string().as_bytes()),
                    Cell::Text(text) => copy_escape(&mut buffer, text),
                }
            }
            buffer.push(b'\n');
        }
        tables.push((table, columns, buffer));
        Ok::<(), StoreError>(())
    })?;
    q("BEGIN").execute(&mut *conn).await?;
    let copied = async {
        for (table, columns, buffer) in tables {
            if buffer.is_empty() {
                continue;
            }
            let sql = format!("COPY {table} ({}) FROM STDIN", columns.join(", "));
            let mut copy = conn.copy_in_raw(&sql).await.map_err(DbError::from)?;
            copy.send(buffer).await.map_err(DbError::from)?;
            copy.finish().await.map_err(DbError::from)?;
        }
        Ok::<(), StoreError>(())
    }
    .await;
    match copied {
        Ok(()) => {
            q("COMMIT").execute(&mut *conn).await?;
            Ok(())
        }
        Err(error) => {
            let _ = q("ROLLBACK").execute(&mut *conn).await;
            Err(error)
        }
    }
}

/// Text of a `COPY … FROM STDIN` (text format) field: backslash, tab, newline and carriage
/// return escaped.
fn copy_escape(buffer: &mut Vec<u8>, text: &str) {
    for &byte in text.as_bytes() {
        match byte {
            b'\\' => buffer.extend_from_slice(b"\\\\"),
            b'\t' => buffer.extend_from_slice(b"\\t"),
            b'\n' => buffer.extend_from_slice(b"\\n"),
            b'\r' => buffer.extend_from_slice(b"\\r"),
            other => buffer.push(other),
        }
    }
}
