//! What the migration planner reads from the legacy store: every shop's sizes in a few
//! `GROUP BY` queries (never a query per shop), and the rows of a set of shops page by page
//! (keyset pagination, so memory stays flat however many shops a wave holds). Product rows come
//! with their SKU JSON read strictly: a list the lenient reader of the gateway would take
//! (missing fields read as empty, a stock that is no integer as 0) is reported as unreadable
//! here, because the migration must not invent values.

use serde_json::Value as Json;

use crate::db::{Conn, Row, q};
use crate::error::StoreError;
use crate::legacy::{LegacyItem, LegacyOrder, LegacySku, LegacyStore, PRODUCT_DELETED, decode_order};

/// Most shops named in one page query (bind parameters of an `IN` list).
pub const SHOPS_PER_QUERY_MAX: usize = 500;
/// Most rows of one page.
pub const PAGE_ROWS_MAX: u32 = 5_000;

/// A shop and its sizes, as the planner selects by them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShopSizes {
    pub shop_id: String,
    pub seller_type: String,
    pub province: String,
    pub city: String,
    pub nib: String,
    pub shop_name: String,
    /// Products not deleted.
    pub products: u64,
    pub orders: u64,
    pub order_items: u64,
}

/// A product row with its SKU list read strictly: `Err` says why the JSON is unusable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductRow {
    pub shop_id: String,
    pub product_id: String,
    pub title: String,
    pub category: String,
    pub status: i64,
    pub skus: Result<Vec<LegacySku>, String>,
    /// The SKU column as stored (quarantine keeps the raw value).
    pub skus_raw: String,
}

impl ProductRow {
    pub fn is_deleted(&self) -> bool {
        self.status == PRODUCT_DELETED
    }
}

/// An order's status and total, for the GMV of every shop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderTotal {
    pub shop_id: String,
    pub order_id: String,
    pub status: i64,
    pub total_amount: String,
}

impl LegacyStore {
    /// Every shop with its counts of live-or-delisted products, orders and order items, in
    /// shop id order: three grouped counts joined to the shops.
    pub async fn shop_sizes(&self) -> Result<Vec<ShopSizes>, StoreError> {
        self.store()
            .read(|conn| {
                Box::pin(async move {
                    let rows = q(format!(
                        "SELECT s.shop_id, s.seller_type, s.province, s.city, s.nib, s.shop_name,
                                COALESCE(p.n, 0) AS products, COALESCE(o.n, 0) AS orders, COALESCE(i.n, 0) AS items
                         FROM shops s
                         LEFT JOIN (SELECT shop_id, COUNT(*) AS n FROM products WHERE status <> {PRODUCT_DELETED} GROUP BY shop_id) p
                           ON p.shop_id = s.shop_id
                         LEFT JOIN (SELECT shop_id, COUNT(*) AS n FROM orders GROUP BY shop_id) o ON o.shop_id = s.shop_id
                         LEFT JOIN (SELECT shop_id, COUNT(*) AS n FROM order_items GROUP BY shop_id) i ON i.shop_id = s.shop_id
                         ORDER BY s.shop_id"
                    ))
                    .fetch_all(conn)
                    .await?;
                    rows.iter()
                        .map(|r| {
                            Ok(ShopSizes {
                                shop_id: r.text("shop_id")?,
                                seller_type: r.text("seller_type")?,
                                province: r.text("province")?,
                                city: r.text("city")?,
                                nib: r.text("nib")?,
                                shop_name: r.text("shop_name")?,
                                products: r.int("products")?.max(0) as u64,
                                orders: r.int("orders")?.max(0) as u64,
                                order_items: r.int("items")?.max(0) as u64,
                            })
                        })
                        .collect()
                })
            })
            .await
    }

    /// Orders of every shop after `(shop_id, order_id)`, in that order: status and total only
    /// (the GMV pass when a selection reads GMV).
    pub async fn order_totals_page(
        &self,
        after: (String, String),
        limit: u32,
    ) -> Result<Vec<OrderTotal>, StoreError> {
        let limit = limit.clamp(1, PAGE_ROWS_MAX);
        self.store()
            .read(move |conn| {
                Box::pin(async move {
                    let rows = q("SELECT shop_id, order_id, status, total_amount FROM orders
                                  WHERE shop_id > $1 OR (shop_id = $1 AND order_id > $2)
                                  ORDER BY shop_id, order_id LIMIT $3")
                    .bind(after.0)
                    .bind(after.1)
                    .bind(i64::from(limit))
                    .fetch_all(conn)
                    .await?;
                    rows.iter()
                        .map(|r| {
                            Ok(OrderTotal {
                                shop_id: r.text("shop_id")?,
                                order_id: r.text("order_id")?,
                                status: r.int("status")?,
                                total_amount: r.text("total_amount")?,
                            })
                        })
                        .collect()
                })
            })
            .await
    }

    /// Products (every status) of `shops` after `(shop_id, product_id)`, in that order.
    pub async fn products_of_shops(
        &self,
        shops: Vec<String>,
        after: (String, String),
        limit: u32,
    ) -> Result<Vec<ProductRow>, StoreError> {
        check_shops(&shops)?;
        let limit = limit.clamp(1, PAGE_ROWS_MAX);
        self.store()
            .read(move |conn| {
                Box::pin(async move {
                    let sql = format!(
                        "SELECT shop_id, product_id, title, category, status, skus FROM products
                         WHERE shop_id IN ({}) AND (shop_id > $1 OR (shop_id = $1 AND product_id > $2))
                         ORDER BY shop_id, product_id LIMIT $3",
                        placeholders(4, shops.len())
                    );
                    let mut query = q(sql).bind(after.0).bind(after.1).bind(i64::from(limit));
                    for shop in shops {
                        query = query.bind(shop);
                    }
                    let rows = query.fetch_all(conn).await?;
                    rows.iter().map(decode_product_row).collect()
                })
            })
            .await
    }

    /// Orders with their items of `shops` after `(shop_id, order_id)`, in that order.
    pub async fn orders_of_shops(
        &self,
        shops: Vec<String>,
        after: (String, String),
        limit: u32,
    ) -> Result<Vec<LegacyOrder>, StoreError> {
        check_shops(&shops)?;
        let limit = limit.clamp(1, PAGE_ROWS_MAX);
        self.store()
            .read(move |conn| {
                Box::pin(async move {
                    let sql = format!(
                        "SELECT * FROM orders
                         WHERE shop_id IN ({}) AND (shop_id > $1 OR (shop_id = $1 AND order_id > $2))
                         ORDER BY shop_id, order_id LIMIT $3",
                        placeholders(4, shops.len())
                    );
                    let mut query = q(sql).bind(after.0).bind(after.1).bind(i64::from(limit));
                    for shop in &shops {
                        query = query.bind(shop.clone());
                    }
                    let rows = query.fetch_all(&mut *conn).await?;
                    let mut orders = rows.iter().map(decode_order).collect::<Result<Vec<_>, StoreError>>()?;
                    let range = match (orders.first(), orders.last()) {
                        (Some(first), Some(last)) => Some((
                            (first.shop_id.clone(), first.order_id.clone()),
                            (last.shop_id.clone(), last.order_id.clone()),
                        )),
                        _ => None,
                    };
                    if let Some((first, last)) = range {
                        attach_items(&mut *conn, &shops, first, last, &mut orders).await?;
                    }
                    Ok(orders)
                })
            })
            .await
    }
}

/// The items of the orders of one page: the same key range, handed to their orders.
async fn attach_items(
    conn: &mut dyn Conn,
    shops: &[String],
    first: (String, String),
    last: (String, String),
    orders: &mut [LegacyOrder],
) -> Result<(), StoreError> {
    let sql = format!(
        "SELECT * FROM order_items
         WHERE shop_id IN ({}) AND (shop_id > $1 OR (shop_id = $1 AND order_id >= $2))
           AND (shop_id < $3 OR (shop_id = $3 AND order_id <= $4))
         ORDER BY shop_id, order_id, item_no",
        placeholders(5, shops.len())
    );
    let mut query = q(sql).bind(first.0).bind(first.1).bind(last.0).bind(last.1);
    for shop in shops {
        query = query.bind(shop.clone());
    }
    let rows = query.fetch_all(conn).await?;
    // By key, not by position: the database's collation decides the order of the rows.
    let at: std::collections::HashMap<(String, String), usize> =
        orders.iter().enumerate().map(|(i, o)| ((o.shop_id.clone(), o.order_id.clone()), i)).collect();
    for row in &rows {
        let key = (row.text("shop_id")?, row.text("order_id")?);
        // An item whose order row is gone (legacy data is loose) belongs to no order of the page.
        if let Some(order) = at.get(&key).map(|&i| &mut orders[i]) {
            order.items.push(LegacyItem {
                item_no: row.int("item_no")?,
                product_id: row.text("product_id")?,
                sku_id: row.text("sku_id")?,
                product_title: row.text("product_title")?,
                quantity: row.int("quantity")?,
                unit_price: row.text("unit_price")?,
            });
        }
    }
    Ok(())
}

fn check_shops(shops: &[String]) -> Result<(), StoreError> {
    if shops.is_empty() || shops.len() > SHOPS_PER_QUERY_MAX {
        return Err(StoreError::Conflict(format!(
            "a page names 1 to {SHOPS_PER_QUERY_MAX} shops, not {}",
            shops.len()
        )));
    }
    Ok(())
}

/// `$from, $from+1, …` for `count` parameters.
pub(crate) fn placeholders(from: usize, count: usize) -> String {
    (from..from + count).map(|n| format!("${n}")).collect::<Vec<_>>().join(", ")
}

fn decode_product_row(r: &Row) -> Result<ProductRow, StoreError> {
    let skus_raw = r.text("skus")?;
    Ok(ProductRow {
        shop_id: r.text("shop_id")?,
        product_id: r.text("product_id")?,
        title: r.text("title")?,
        category: r.text("category")?,
        status: r.int("status")?,
        skus: read_skus_strict(&skus_raw),
        skus_raw,
    })
}

/// Reads a product's SKU JSON, refusing what the migration cannot use as it is: not JSON, not
/// a list, an entry that is not an object, a missing or non-text id, code or price, a stock
/// that is not an integer.
pub fn read_skus_strict(raw: &str) -> Result<Vec<LegacySku>, String> {
    let value: Json = serde_json::from_str(raw).map_err(|e| format!("not JSON: {e}"))?;
    let entries = value.as_array().ok_or("not a list of SKUs")?;
    let mut skus = Vec::with_capacity(entries.len());
    for (index, entry) in entries.iter().enumerate() {
        let text = |key: &str| match entry.get(key) {
            Some(Json::String(s)) => Ok(s.clone()),
            Some(Json::Number(n)) => Ok(n.to_string()),
            None | Some(Json::Null) if key == "name" => Ok(String::new()),
            None => Err(format!("SKU #{}: no `{key}`", index + 1)),
            Some(other) => Err(format!("SKU #{}: `{key}` is {other}, not text", index + 1)),
        };
        if !entry.is_object() {
            return Err(format!("SKU #{} is not an object", index + 1));
        }
        let stock = match entry.get("stock") {
            Some(Json::Number(n)) => {
                n.as_i64().ok_or_else(|| format!("SKU #{}: stock {n} is not a whole number", index + 1))?
            }
            Some(other) => return Err(format!("SKU #{}: stock is {other}, not a number", index + 1)),
            None => return Err(format!("SKU #{}: no `stock`", index + 1)),
        };
        skus.push(LegacySku {
            sku_id: text("sku_id")?,
            seller_sku: text("seller_sku")?,
            name: text("name")?,
            price: text("price")?,
            stock,
        });
    }
    Ok(skus)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sku_json_is_read_strictly() {
        let good = r#"[{"sku_id":"1","seller_sku":"A-1","name":"Merah","price":"149.000","stock":3}]"#;
        assert_eq!(read_skus_strict(good).unwrap()[0].stock, 3);
        for (raw, says) in [
            ("{", "not JSON"),
            (r#"{"sku_id":"1"}"#, "not a list"),
            ("[1]", "not an object"),
            (r#"[{"sku_id":"1","seller_sku":"A","price":"1000","stock":1.5}]"#, "whole number"),
            (r#"[{"sku_id":"1","seller_sku":"A","price":"1000","stock":"2"}]"#, "not a number"),
            (r#"[{"sku_id":"1","seller_sku":"A","price":"1000"}]"#, "no `stock`"),
            (r#"[{"sku_id":"1","price":"1000","stock":1}]"#, "no `seller_sku`"),
            (r#"[{"sku_id":"1","seller_sku":["A"],"price":"1000","stock":1}]"#, "not text"),
        ] {
            let error = read_skus_strict(raw).expect_err(raw);
            assert!(error.contains(says), "{raw}: {error}");
        }
    }
}
