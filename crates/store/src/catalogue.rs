//! Products, SKUs and stock levels.

use std::collections::HashSet;

use crate::db::{Conn, Row, q};
use jembatan_domain::{
    Category, DomainError, MerchantId, NewSku, Price, ProductId, ProductTitle, SkuCode, SkuId, StockLevel,
    Timestamp,
};

use crate::error::StoreError;
use crate::exec::{Idem, Store, WriteCtx};
use crate::journal::{self, Change};
use crate::{new_id, rows};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewProduct {
    pub merchant_id: MerchantId,
    pub title: ProductTitle,
    pub category: Category,
    pub skus: Vec<NewSku>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkuRecord {
    pub id: SkuId,
    pub merchant_id: MerchantId,
    pub product_id: ProductId,
    pub code: SkuCode,
    pub price: Price,
    pub stock: StockLevel,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductRecord {
    pub id: ProductId,
    pub merchant_id: MerchantId,
    pub title: ProductTitle,
    pub category: Category,
    pub created_at: Timestamp,
    /// On sale. Only a social shop's delisted product, moved to the core, is not.
    pub listed: bool,
    pub skus: Vec<SkuRecord>,
}

const SKU_COLUMNS: &str = "merchant_id, sku_id, product_id, code, price_idr, stock_on_hand, stock_reserved";

impl Store {
    pub async fn create_product(
        &self,
        ctx: WriteCtx,
        product: NewProduct,
        idem: Option<Idem<ProductRecord>>,
    ) -> Result<ProductRecord, StoreError> {
        let mut codes = HashSet::new();
        for sku in &product.skus {
            if !codes.insert(sku.code.clone()) {
                return Err(DomainError::invalid(
                    "skus.code",
                    format!("`{}` appears twice", sku.code.as_str()),
                )
                .into());
            }
        }
        self.write(idem, move |conn| {
            Box::pin(async move {
                crate::social::ensure_core_owned(conn, product.merchant_id).await?;
                insert_product(conn, ctx, product, None).await
            })
        })
        .await
    }

    /// Writes a social shop's products as the legacy store has them, in one unit: a product
    /// or SKU already in the core (by its mapped id) is brought up to the copy — title,
    /// category, listing, codes, prices, units available — and a SKU the copy no longer has is
    /// removed (none of a legacy-owned shop's units are reserved in the core); new ones are
    /// inserted and their social ids mapped. Copying the same rows twice changes nothing more.
    pub async fn put_social_products(
        &self,
        ctx: WriteCtx,
        copies: Vec<SocialProductCopy>,
    ) -> Result<u64, StoreError> {
        for copy in &copies {
            let ids = &copy.ids;
            if ids.sku_ids.len() != copy.product.skus.len()
                || ids.social_sku_ids.len() != copy.product.skus.len()
            {
                return Err(StoreError::Conflict("one id per SKU is needed".to_owned()));
            }
        }
        self.write(None, move |conn| {
            Box::pin(async move {
                let mut written = 0;
                for copy in copies {
                    put_social_product(conn, &ctx, copy).await?;
                    written += 1;
                }
                Ok(written)
            })
        })
        .await
    }

    /// A merchant's products in id order after `after` (exclusive; `None` from the start).
    pub async fn products_of_merchant(
        &self,
        merchant_id: MerchantId,
        after: Option<ProductId>,
        limit: u32,
    ) -> Result<Vec<ProductRecord>, StoreError> {
        let after = after.map(|a| a.to_string()).unwrap_or_default();
        self.read(move |conn| {
            Box::pin(async move {
                let rows = q("SELECT product_id FROM products WHERE merchant_id = $1 AND product_id > $2 ORDER BY product_id LIMIT $3")
                    .bind(merchant_id.to_string())
                    .bind(after)
                    .bind(i64::from(limit))
                    .fetch_all(&mut *conn)
                    .await?;
                let mut out = Vec::with_capacity(rows.len());
                for row in rows {
                    if let Some(product) = load_product(conn, rows::id(&row, "product_id")?).await? {
                        out.push(product);
                    }
                }
                Ok(out)
            })
        })
        .await
    }

    /// Changes a product's title and its SKUs' prices. Orders already placed keep the price
    /// they were sold at (their lines hold it).
    pub async fn edit_product(
        &self,
        ctx: WriteCtx,
        product_id: ProductId,
        title: Option<ProductTitle>,
        prices: Vec<(SkuId, Price)>,
    ) -> Result<ProductRecord, StoreError> {
        self.write(None, move |conn| {
            Box::pin(async move {
                let product =
                    load_product(conn, product_id).await?.ok_or_else(|| StoreError::not_found("product", product_id))?;
                crate::social::ensure_core_owned(conn, product.merchant_id).await?;
                if let Some(title) = &title {
                    q("UPDATE products SET title = $3 WHERE merchant_id = $1 AND product_id = $2")
                        .bind(product.merchant_id.to_string())
                        .bind(product_id.to_string())
                        .bind(title.as_str())
                        .execute(&mut *conn)
                        .await?;
                }
                for (sku_id, price) in &prices {
                    let changed = q("UPDATE skus SET price_idr = $4 WHERE merchant_id = $1 AND product_id = $2 AND sku_id = $3")
                        .bind(product.merchant_id.to_string())
                        .bind(product_id.to_string())
                        .bind(sku_id.to_string())
                        .bind(price.money().rupiah())
                        .execute(&mut *conn)
                        .await?;
                    if changed != 1 {
                        return Err(StoreError::not_found("sku", sku_id));
                    }
                }
                let change = Change {
                    event_type: "product.updated",
                    action: "product.update",
                    entity_type: "product",
                    entity_id: product_id.to_string(),
                    merchant_id: Some(product.merchant_id),
                    channel: None,
                    payload: serde_json::json!({
                        "product_id": product_id.to_string(),
                        "title_changed": title.is_some(),
                        "prices": prices.iter().map(|(s, p)| serde_json::json!({"sku_id": s.to_string(), "price": p.money().rupiah()})).collect::<Vec<_>>(),
                    }),
                };
                journal::record(conn, &ctx, change).await?;
                load_product(conn, product_id).await?.ok_or_else(|| StoreError::not_found("product", product_id))
            })
        })
        .await
    }

    pub async fn sku(&self, id: SkuId) -> Result<Option<SkuRecord>, StoreError> {
        self.read(move |conn| {
            Box::pin(async move {
                let sql = format!("SELECT {SKU_COLUMNS} FROM skus WHERE sku_id = $1");
                let row = q(sql).bind(id.to_string()).fetch_optional(conn).await?;
                row.map(|r| decode_sku(&r)).transpose()
            })
        })
        .await
    }

    pub async fn product(&self, id: ProductId) -> Result<Option<ProductRecord>, StoreError> {
        self.read(move |conn| Box::pin(load_product(conn, id))).await
    }

    /// Sets the units on hand of a merchant's SKU. A single conditional update: it cannot drop
    /// below what open orders have reserved, whatever runs concurrently.
    pub async fn set_stock(
        &self,
        ctx: WriteCtx,
        merchant_id: MerchantId,
        sku_id: SkuId,
        on_hand: StockLevel,
        idem: Option<Idem<SkuRecord>>,
    ) -> Result<SkuRecord, StoreError> {
        self.write(idem, move |conn| {
            Box::pin(set_stock_unit(conn, ctx, merchant_id, sku_id, StockTarget::OnHand(on_hand)))
        })
        .await
    }

    /// Sets the units of a SKU *available* to buyers (the social contract's stock): on hand
    /// becomes what open orders reserve plus `available`, in the same statement, so a shipment
    /// or a checkout between reading and writing cannot skew it.
    pub async fn set_stock_available(
        &self,
        ctx: WriteCtx,
        merchant_id: MerchantId,
        sku_id: SkuId,
        available: StockLevel,
    ) -> Result<SkuRecord, StoreError> {
        self.write(None, move |conn| {
            Box::pin(set_stock_unit(conn, ctx, merchant_id, sku_id, StockTarget::Available(available)))
        })
        .await
    }
}

/// What a stock write sets.
#[derive(Debug, Clone, Copy)]
enum StockTarget {
    OnHand(StockLevel),
    Available(StockLevel),
}

async fn set_stock_unit(
    conn: &mut dyn Conn,
    ctx: WriteCtx,
    merchant_id: MerchantId,
    sku_id: SkuId,
    target: StockTarget,
) -> Result<SkuRecord, StoreError> {
    crate::social::ensure_core_owned(conn, merchant_id).await?;
    let (set, units) = match target {
        StockTarget::OnHand(level) => ("$3", level.units_on_hand()),
        StockTarget::Available(level) => ("stock_reserved + $3", level.units_on_hand()),
    };
    let sql = format!(
        "UPDATE skus SET stock_on_hand = {set}
         WHERE merchant_id = $1 AND sku_id = $2 AND stock_reserved <= {set} AND {set} <= $4
         RETURNING {SKU_COLUMNS}"
    );
    let row = q(sql)
        .bind(merchant_id.to_string())
        .bind(sku_id.to_string())
        .bind(i64::from(units))
        .bind(i64::from(jembatan_domain::limits::STOCK_UNITS_MAX))
        .fetch_optional(&mut *conn)
        .await?;
    let Some(row) = row else {
        let reserved: Option<i64> =
            q("SELECT stock_reserved FROM skus WHERE merchant_id = $1 AND sku_id = $2")
                .bind(merchant_id.to_string())
                .bind(sku_id.to_string())
                .fetch_optional(&mut *conn)
                .await?
                .map(|r| r.int("stock_reserved"))
                .transpose()?;
        return Err(match (reserved, target) {
            (None, _) => StoreError::not_found("sku", sku_id),
            (Some(_), StockTarget::Available(_)) => DomainError::invalid(
                "stock",
                format!(
                    "with the units open orders hold, more than {} units would be on hand",
                    jembatan_domain::limits::STOCK_UNITS_MAX
                ),
            )
            .into(),
            (Some(reserved), StockTarget::OnHand(_)) => {
                DomainError::StockBelowReserved { reserved: reserved as u32 }.into()
            }
        });
    };
    let sku = decode_sku(&row)?;
    let change = Change {
        event_type: "sku.stock_set",
        action: "sku.set_stock",
        entity_type: "sku",
        entity_id: sku_id.to_string(),
        merchant_id: Some(merchant_id),
        channel: None,
        payload: serde_json::json!({
            "sku_id": sku_id.to_string(),
            "stock_on_hand": sku.stock.units_on_hand(),
            "stock_reserved": sku.stock.units_reserved(),
        }),
    };
    journal::record(conn, &ctx, change).await?;
    Ok(sku)
}

/// A social shop's product as it enters (or is brought up to date in) the core.
#[derive(Debug, Clone)]
pub struct SocialProductCopy {
    pub product: NewProduct,
    pub ids: SocialProductIds,
    pub listed: bool,
}

/// [`put_social_product`] for many products of one unit: those the core does not hold yet go
/// in with multi-row statements (products, SKUs, id map, journal), the others one by one.
pub(crate) async fn put_social_products(
    conn: &mut dyn Conn,
    ctx: &WriteCtx,
    copies: Vec<SocialProductCopy>,
) -> Result<(), StoreError> {
    use crate::db::insert_many;
    use crate::social::IdKind;
    let Some(first) = copies.first() else { return Ok(()) };
    let merchant_id = first.product.merchant_id;
    let ids: Vec<String> = copies.iter().map(|c| c.ids.product_id.to_string()).collect();
    let mut held = HashSet::new();
    for chunk in ids.chunks(500) {
        let list: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 2)).collect();
        let mut query = q(format!(
            "SELECT product_id FROM products WHERE merchant_id = $1 AND product_id IN ({})",
            list.join(", ")
        ))
        .bind(merchant_id.to_string());
        for id in chunk {
            query = query.bind(id.clone());
        }
        for row in query.fetch_all(&mut *conn).await? {
            held.insert(rows::text(&row, "product_id")?);
        }
    }
    // A product the core holds, or one a batch carries twice, goes the row-by-row way, after
    // the new ones (so its second version updates the first).
    let (mut later, mut new) = (Vec::new(), Vec::new());
    for copy in copies {
        let id = copy.ids.product_id.to_string();
        if copy.product.merchant_id != merchant_id || held.contains(&id) {
            later.push(copy);
        } else {
            held.insert(id);
            new.push(copy);
        }
    }
    let (mut products, mut skus, mut mapped, mut changes) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for SocialProductCopy { product, ids, listed } in new {
        let merchant = product.merchant_id.to_string();
        let product_id = ids.product_id.to_string();
        let listed = i64::from(listed);
        products.push(vec![
            merchant.clone().into(),
            product_id.clone().into(),
            product.title.as_str().into(),
            product.category.as_str().into(),
            ctx.now.unix_ms().into(),
            listed.into(),
        ]);
        for (sku, sku_id) in product.skus.iter().zip(&ids.sku_ids) {
            skus.push(vec![
                merchant.clone().into(),
                sku_id.to_string().into(),
                product_id.clone().into(),
                sku.code.as_str().into(),
                sku.price.money().rupiah().into(),
                i64::from(sku.stock.units_on_hand()).into(),
                0i64.into(),
                product.category.as_str().into(),
                listed.into(),
            ]);
        }
        mapped.push((IdKind::Product, ids.social_product_id.clone(), product_id.clone()));
        for (social, core) in ids.social_sku_ids.iter().zip(&ids.sku_ids) {
            mapped.push((IdKind::Sku, social.clone(), core.to_string()));
        }
        changes.push(imported_change(product.merchant_id, &product_id, &ids, listed != 0));
    }
    insert_many(
        conn,
        "INSERT INTO products (merchant_id, product_id, title, category, created_at_ms, listed)",
        6,
        products,
        "",
    )
    .await?;
    let wanted = skus.len() as u64;
    let inserted = insert_many(
        conn,
        "INSERT INTO skus (merchant_id, sku_id, product_id, code, price_idr, stock_on_hand, stock_reserved, category, listed)",
        9,
        skus,
        " ON CONFLICT (merchant_id, code) DO NOTHING",
    )
    .await?;
    if inserted != wanted {
        return Err(StoreError::Conflict(format!(
            "{} sku codes of merchant {merchant_id} are already used by other SKUs",
            wanted - inserted
        )));
    }
    crate::social::insert_ids_once(conn, merchant_id, mapped).await?;
    journal::record_many(conn, ctx, changes).await?;
    for copy in later {
        put_social_product(conn, ctx, copy).await?;
    }
    Ok(())
}

/// The journal entry of a product copied from the social shop.
fn imported_change(
    merchant_id: MerchantId,
    product_id: &str,
    ids: &SocialProductIds,
    listed: bool,
) -> Change {
    Change {
        event_type: "product.imported",
        action: "product.import",
        entity_type: "product",
        entity_id: product_id.to_owned(),
        merchant_id: Some(merchant_id),
        channel: None,
        payload: serde_json::json!({
            "product_id": product_id,
            "social_product_id": ids.social_product_id,
            "listed": listed,
            "sku_ids": ids.sku_ids.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        }),
    }
}

pub(crate) async fn put_social_product(
    conn: &mut dyn Conn,
    ctx: &WriteCtx,
    copy: SocialProductCopy,
) -> Result<(), StoreError> {
    use crate::social::{IdKind, insert_id_once};
    let SocialProductCopy { product, ids, listed } = copy;
    let merchant = product.merchant_id.to_string();
    let product_id = ids.product_id.to_string();
    let listed = i64::from(listed);
    let updated = q("UPDATE products SET title = $3, category = $4, listed = $5 WHERE merchant_id = $1 AND product_id = $2")
        .bind(merchant.clone())
        .bind(product_id.clone())
        .bind(product.title.as_str())
        .bind(product.category.as_str())
        .bind(listed)
        .execute(&mut *conn)
        .await?;
    if updated == 0 {
        q("INSERT INTO products (merchant_id, product_id, title, category, created_at_ms, listed)
           VALUES ($1, $2, $3, $4, $5, $6)")
        .bind(merchant.clone())
        .bind(product_id.clone())
        .bind(product.title.as_str())
        .bind(product.category.as_str())
        .bind(ctx.now.unix_ms())
        .bind(listed)
        .execute(&mut *conn)
        .await?;
    }
    let present: Vec<String> = q("SELECT sku_id FROM skus WHERE merchant_id = $1 AND product_id = $2")
        .bind(merchant.clone())
        .bind(product_id.clone())
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|r| rows::text(r, "sku_id"))
        .collect::<Result<_, _>>()?;
    let wanted: HashSet<String> = ids.sku_ids.iter().map(|s| s.to_string()).collect();
    // Removed first, so a code a removed SKU held can be taken by another.
    for gone in present.iter().filter(|p| !wanted.contains(*p)) {
        q("DELETE FROM skus WHERE merchant_id = $1 AND sku_id = $2 AND stock_reserved = 0")
            .bind(merchant.clone())
            .bind(gone.clone())
            .execute(&mut *conn)
            .await?;
    }
    for (sku, sku_id) in product.skus.iter().zip(&ids.sku_ids) {
        let sku_id = sku_id.to_string();
        let units = i64::from(sku.stock.units_on_hand());
        let changed = if present.contains(&sku_id) {
            q("UPDATE skus SET code = $3, price_idr = $4, stock_on_hand = stock_reserved + $5, category = $6, listed = $7
               WHERE merchant_id = $1 AND sku_id = $2")
            .bind(merchant.clone())
            .bind(sku_id.clone())
            .bind(sku.code.as_str())
            .bind(sku.price.money().rupiah())
            .bind(units)
            .bind(product.category.as_str())
            .bind(listed)
            .execute(&mut *conn)
            .await?
        } else {
            q("INSERT INTO skus (merchant_id, sku_id, product_id, code, price_idr, stock_on_hand, stock_reserved, category, listed)
               VALUES ($1, $2, $3, $4, $5, $6, 0, $7, $8) ON CONFLICT (merchant_id, code) DO NOTHING")
            .bind(merchant.clone())
            .bind(sku_id.clone())
            .bind(product_id.clone())
            .bind(sku.code.as_str())
            .bind(sku.price.money().rupiah())
            .bind(units)
            .bind(product.category.as_str())
            .bind(listed)
            .execute(&mut *conn)
            .await?
        };
        if changed != 1 {
            return Err(StoreError::Conflict(format!(
                "sku code `{}` is already used by another SKU of merchant {merchant}",
                sku.code.as_str()
            )));
        }
    }
    insert_id_once(conn, IdKind::Product, &ids.social_product_id, product.merchant_id, &product_id).await?;
    for (social, core) in ids.social_sku_ids.iter().zip(&ids.sku_ids) {
        insert_id_once(conn, IdKind::Sku, social, product.merchant_id, &core.to_string()).await?;
    }
    let change = imported_change(product.merchant_id, &product_id, &ids, listed != 0);
    journal::record(conn, ctx, change).await
}

/// The ids of a social shop's product as it enters the core.
#[derive(Debug, Clone)]
pub struct SocialProductIds {
    pub product_id: ProductId,
    pub social_product_id: String,
    /// In the order of the product's SKUs.
    pub sku_ids: Vec<SkuId>,
    pub social_sku_ids: Vec<String>,
}

async fn insert_product(
    conn: &mut dyn Conn,
    ctx: WriteCtx,
    product: NewProduct,
    preset: Option<(ProductId, Vec<SkuId>)>,
) -> Result<ProductRecord, StoreError> {
    let merchant_exists = q("SELECT 1 AS one FROM merchants WHERE merchant_id = $1")
        .bind(product.merchant_id.to_string())
        .fetch_optional(&mut *conn)
        .await?
        .is_some();
    if !merchant_exists {
        return Err(StoreError::not_found("merchant", product.merchant_id));
    }
    let (product_id, mut preset_skus): (ProductId, std::vec::IntoIter<SkuId>) = match preset {
        Some((product_id, skus)) => (product_id, skus.into_iter()),
        None => (new_id(), Vec::new().into_iter()),
    };
    q(
        "INSERT INTO products (merchant_id, product_id, title, category, created_at_ms) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(product.merchant_id.to_string())
    .bind(product_id.to_string())
    .bind(product.title.as_str())
    .bind(product.category.as_str())
    .bind(ctx.now.unix_ms())
    .execute(&mut *conn)
    .await?;
    let mut skus = Vec::with_capacity(product.skus.len());
    for sku in product.skus {
        let taken = q("SELECT sku_id FROM skus WHERE merchant_id = $1 AND code = $2")
            .bind(product.merchant_id.to_string())
            .bind(sku.code.as_str())
            .fetch_optional(&mut *conn)
            .await?;
        if let Some(taken) = taken {
            let other = rows::text(&taken, "sku_id")?;
            return Err(StoreError::Conflict(format!(
                "sku code `{}` is already used by {other} of this merchant",
                sku.code.as_str()
            )));
        }
        let sku_id: SkuId = preset_skus.next().unwrap_or_else(new_id);
        // ON CONFLICT: a concurrent listing (on PostgreSQL) may have taken the code since the
        // check above; that is a conflict for the client, not a server error.
        let inserted = q("INSERT INTO skus (merchant_id, sku_id, product_id, code, price_idr, stock_on_hand, stock_reserved, category)
             VALUES ($1, $2, $3, $4, $5, $6, 0, $7) ON CONFLICT (merchant_id, code) DO NOTHING")
        .bind(product.merchant_id.to_string())
        .bind(sku_id.to_string())
        .bind(product_id.to_string())
        .bind(sku.code.as_str())
        .bind(sku.price.money().rupiah())
        .bind(i64::from(sku.stock.units_on_hand()))
        .bind(product.category.as_str())
        .execute(&mut *conn)
        .await?;
        if inserted != 1 {
            return Err(StoreError::Conflict(format!(
                "sku code `{}` is already used by another SKU of this merchant",
                sku.code.as_str()
            )));
        }
        skus.push(SkuRecord {
            id: sku_id,
            merchant_id: product.merchant_id,
            product_id,
            code: sku.code,
            price: sku.price,
            stock: StockLevel::from_stored(i64::from(sku.stock.units_on_hand()), 0),
        });
    }
    skus.sort_by_key(|s| s.id);
    let change = Change {
        event_type: "product.created",
        action: "product.create",
        entity_type: "product",
        entity_id: product_id.to_string(),
        merchant_id: Some(product.merchant_id),
        channel: None,
        payload: serde_json::json!({
            "product_id": product_id.to_string(),
            "category": product.category.as_str(),
            "sku_ids": skus.iter().map(|s| s.id.to_string()).collect::<Vec<_>>(),
        }),
    };
    journal::record(conn, &ctx, change).await?;
    Ok(ProductRecord {
        id: product_id,
        merchant_id: product.merchant_id,
        title: product.title,
        category: product.category,
        created_at: ctx.now,
        listed: true,
        skus,
    })
}

async fn load_product(conn: &mut dyn Conn, id: ProductId) -> Result<Option<ProductRecord>, StoreError> {
    let row = q(
        "SELECT merchant_id, product_id, title, category, created_at_ms, listed FROM products WHERE product_id = $1",
    )
    .bind(id.to_string())
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let merchant_id: MerchantId = rows::id(&row, "merchant_id")?;
    let sql =
        format!("SELECT {SKU_COLUMNS} FROM skus WHERE merchant_id = $1 AND product_id = $2 ORDER BY sku_id");
    let skus = q(sql).bind(merchant_id.to_string()).bind(id.to_string()).fetch_all(conn).await?;
    Ok(Some(ProductRecord {
        id,
        merchant_id,
        title: rows::parsed("title", ProductTitle::parse(&rows::text(&row, "title")?))?,
        category: rows::parsed("category", Category::parse(&rows::text(&row, "category")?))?,
        created_at: Timestamp::from_unix_ms(rows::int(&row, "created_at_ms")?),
        listed: rows::int(&row, "listed")? != 0,
        skus: skus.iter().map(decode_sku).collect::<Result<_, _>>()?,
    }))
}

pub(crate) fn decode_sku(row: &Row) -> Result<SkuRecord, StoreError> {
    let on_hand = rows::int(row, "stock_on_hand")?;
    let reserved = rows::int(row, "stock_reserved")?;
    if reserved < 0 || reserved > on_hand {
        return rows::parsed("stock", Err(DomainError::invalid("stock", "reserved exceeds on hand")));
    }
    Ok(SkuRecord {
        id: rows::id(row, "sku_id")?,
        merchant_id: rows::id(row, "merchant_id")?,
        product_id: rows::id(row, "product_id")?,
        code: rows::parsed("code", SkuCode::parse(&rows::text(row, "code")?))?,
        price: rows::parsed("price_idr", Price::from_rupiah(rows::int(row, "price_idr")?))?,
        stock: StockLevel::from_stored(on_hand, reserved),
    })
}
