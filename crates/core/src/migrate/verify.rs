//! Verification of one merchant's move: both sides normalised per entity, counted, hashed
//! (SHA-256 over the sorted rows), and compared row by row so that a difference names the row
//! and the fields (DESIGN.md §6 step 4).
//!
//! Normal form, keyed by the legacy id:
//! - product: title, category, listed, and per SKU (by SKU id) its code, price and the units
//!   available (legacy `stock`; core on hand less reserved);
//! - order: status (the core's name), total, payment method, phone (E.164) and its lines
//!   (SKU id, quantity, unit price). An order whose payment is the core's (a twin) leaves its
//!   status out: the core may be ahead of the legacy row, which the gateway brings up to it.
//!
//! Left out of the comparison: rows in the quarantine (not moved, by design), a product deleted
//! in the legacy store that the core holds unlisted, and rows changed after the comparison
//! began (compared again once caught up).

use std::collections::{BTreeMap, BTreeSet};

use jembatan_store::legacy::{LegacyStore, PRODUCT_DELETED, PRODUCT_LIVE};
use jembatan_store::migration_run::{CoreView, QuarantineEntity, VerificationRecord};
use jembatan_store::social::SocialShop;
use sha2::{Digest, Sha256};

use super::transform::{OrderDraft, ProductDraft, ShopTransform};
use crate::{Core, CoreError};

/// Differences listed in a report (all are counted).
pub const DIFFERENCES_LISTED_MAX: usize = 100;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Matched,
    /// A real difference; the summary names the first rows.
    Differs(String),
    /// Only rows that changed while comparing differ: catch up and compare again.
    Moving,
}

/// One row in normal form: (field name, value) in a fixed order.
pub type Fields = Vec<(&'static str, String)>;
/// Normalised rows of one entity on one side, by legacy key.
pub type Side = BTreeMap<String, Fields>;

/// A legacy product as the core should hold it.
pub fn normal_product(draft: &ProductDraft, listed: bool) -> Fields {
    let mut skus: Vec<String> = draft
        .skus
        .iter()
        .map(|(id, sku)| {
            format!("{id}:{}:{}:{}", sku.code.as_str(), sku.price.money().rupiah(), sku.stock.units_on_hand())
        })
        .collect();
    skus.sort();
    vec![
        ("title", draft.title.as_str().to_owned()),
        ("category", draft.category.as_str().to_owned()),
        ("listed", listed.to_string()),
        ("skus", skus.join(",")),
    ]
}

/// A legacy order as the core should hold it.
pub fn normal_order(draft: &OrderDraft) -> Fields {
    let lines =
        normal_lines(draft.lines.iter().map(|l| {
            (l.social_sku_id.clone(), i64::from(l.quantity.units()), l.unit_price.money().rupiah())
        }));
    vec![
        ("status", draft.status.as_str().to_owned()),
        ("total", draft.total.rupiah().to_string()),
        ("payment_method", draft.payment_method.as_str().to_owned()),
        ("phone", draft.address.phone.as_str().to_owned()),
        ("lines", lines),
    ]
}

/// The cutover's spot check, run inside its unit after the last rows are applied: each of these
/// rows must read back from the core as expected. `None` if they do, else the differences as
/// JSON text (the unit then rolls back).
pub fn spot_check(
    expected_products: Side,
    expected_orders: Side,
) -> impl Fn(&CoreView) -> Option<String> + Send + Sync {
    move |view: &CoreView| {
        let (products, orders, twins) = core_side(view);
        let mut differences = Vec::new();
        for (entity, expected, actual) in
            [("product", &expected_products, &products), ("order", &expected_orders, &orders)]
        {
            for (key, fields) in expected {
                let strip = |f: &Fields| -> Fields {
                    f.iter()
                        .filter(|(name, _)| !(entity == "order" && *name == "status" && twins.contains(key)))
                        .cloned()
                        .collect()
                };
                match actual.get(key) {
                    None => differences.push(
                        serde_json::json!({"entity": entity, "key": key, "problem": "missing in the core"}),
                    ),
                    Some(core) if strip(core) != strip(fields) => differences.push(serde_json::json!({
                        "entity": entity, "key": key, "problem": "fields differ",
                        "fields": field_differences(&strip(fields), &strip(core)),
                    })),
                    Some(_) => {}
                }
            }
        }
        (!differences.is_empty()).then(|| serde_json::Value::Array(differences).to_string())
    }
}

fn field_differences(legacy: &Fields, core: &Fields) -> Vec<serde_json::Value> {
    legacy
        .iter()
        .zip(core.iter())
        .filter(|(a, b)| a != b)
        .map(|((name, legacy), (_, core))| serde_json::json!({"field": name, "legacy": legacy, "core": core}))
        .collect()
}

/// Compares the merchant's rows on both sides (all, or only `keys`: products, orders) and
/// stores the verification. `caught_up` is the shop's change number the core has applied: a
/// row changed after it may differ without being wrong.
pub async fn verify(
    core: &Core,
    legacy: &LegacyStore,
    shop: &SocialShop,
    keys: Option<&(BTreeSet<String>, BTreeSet<String>)>,
    caught_up: i64,
    phase: &str,
) -> Result<Verdict, CoreError> {
    let store = core.store();
    let head = caught_up;
    let excluded = quarantined_keys(core, shop).await?;
    let (legacy_products, legacy_orders, deleted) = legacy_side(legacy, &shop.shop_id).await?;
    let view = store.migration_core_view(shop.merchant_id).await?;
    let (core_products, core_orders, twins) = core_side(&view);

    let wanted = |entity: QuarantineEntity, key: &str| {
        !excluded.contains(&(entity, key.to_owned()))
            && keys.is_none_or(|(products, orders)| match entity {
                QuarantineEntity::Product => products.contains(key),
                QuarantineEntity::Order => orders.contains(key),
            })
    };
    let mut differences: Vec<serde_json::Value> = Vec::new();
    let mut differing: BTreeSet<(QuarantineEntity, String)> = BTreeSet::new();
    let mut sides = serde_json::Map::new();
    let (mut legacy_rows, mut core_rows) = (0u64, 0u64);
    for (entity, left, right) in [
        (QuarantineEntity::Product, &legacy_products, &core_products),
        (QuarantineEntity::Order, &legacy_orders, &core_orders),
    ] {
        let left: Side =
            left.iter().filter(|(k, _)| wanted(entity, k)).map(|(k, v)| (k.clone(), v.clone())).collect();
        let mut right: Side =
            right.iter().filter(|(k, _)| wanted(entity, k)).map(|(k, v)| (k.clone(), v.clone())).collect();
        if entity == QuarantineEntity::Product {
            // Deleted in the legacy store after it was copied: the core keeps it unlisted.
            right.retain(|key, fields| {
                !(deleted.contains(key) && fields.iter().any(|(f, v)| *f == "listed" && v == "false"))
            });
        }
        let mut left_for_hash = left.clone();
        if entity == QuarantineEntity::Order {
            // A twin's status is the core's to lead.
            for (key, fields) in left_for_hash.iter_mut() {
                if twins.contains(key) {
                    fields.retain(|(f, _)| *f != "status");
                }
            }
            for (key, fields) in right.iter_mut() {
                if twins.contains(key) {
                    fields.retain(|(f, _)| *f != "status");
                }
            }
        }
        legacy_rows += left_for_hash.len() as u64;
        core_rows += right.len() as u64;
        sides.insert(
            entity.as_str().to_owned(),
            serde_json::json!({
                "legacy_rows": left_for_hash.len(), "core_rows": right.len(),
                "legacy_sha256": digest(&left_for_hash), "core_sha256": digest(&right),
            }),
        );
        let all: BTreeSet<&String> = left_for_hash.keys().chain(right.keys()).collect();
        for key in all {
            let difference = match (left_for_hash.get(key), right.get(key)) {
                (Some(_), None) => Some(
                    serde_json::json!({"entity": entity.as_str(), "key": key, "problem": "missing in the core"}),
                ),
                (None, Some(_)) => Some(
                    serde_json::json!({"entity": entity.as_str(), "key": key, "problem": "in the core only"}),
                ),
                (Some(l), Some(r)) if l != r => {
                    let fields = field_differences(l, r);
                    Some(
                        serde_json::json!({"entity": entity.as_str(), "key": key, "problem": "fields differ", "fields": fields}),
                    )
                }
                _ => None,
            };
            if let Some(difference) = difference {
                differing.insert((entity, key.clone()));
                differences.push(difference);
            }
        }
    }
    // Rows changed since the comparison began are not differences yet.
    let mut moving: BTreeSet<(QuarantineEntity, String)> = BTreeSet::new();
    if !differing.is_empty() {
        let mut after = head;
        loop {
            let changes = legacy.shop_changes(&shop.shop_id, after, 1_000).await?;
            for change in &changes {
                let entity = match change.table_name.as_str() {
                    "products" => QuarantineEntity::Product,
                    "orders" | "order_items" => QuarantineEntity::Order,
                    _ => continue,
                };
                moving.insert((entity, change.row_key.clone()));
            }
            match changes.last() {
                Some(last) if changes.len() == 1_000 => after = last.shop_seq,
                _ => break,
            }
        }
    }
    let real: Vec<&(QuarantineEntity, String)> = differing.iter().filter(|d| !moving.contains(*d)).collect();
    let verdict = if differing.is_empty() {
        Verdict::Matched
    } else if real.is_empty() {
        Verdict::Moving
    } else {
        let named: Vec<String> = real.iter().take(5).map(|(e, k)| format!("{} {k}", e.as_str())).collect();
        Verdict::Differs(format!(
            "verification found {} row(s) that differ between the legacy store and the core (first: {}); see the verification report",
            real.len(),
            named.join(", ")
        ))
    };
    let count = differences.len() as u64;
    differences.truncate(DIFFERENCES_LISTED_MAX);
    let report = serde_json::json!({
        "shop_id": shop.shop_id,
        "caught_up_to": head,
        "entities": sides,
        "excluded_quarantined": excluded.len(),
        "changed_while_comparing": moving.len(),
        "differences": differences,
    });
    if verdict != Verdict::Moving {
        store
            .record_verification(
                core.ctx(&jembatan_domain::Principal::Operator),
                VerificationRecord {
                    merchant_id: shop.merchant_id,
                    verification_id: uuid::Uuid::now_v7().to_string(),
                    phase: phase.to_owned(),
                    matched: verdict == Verdict::Matched,
                    legacy_rows,
                    core_rows,
                    differences: count,
                    report,
                    created_at_ms: core.clock().now().unix_ms(),
                },
            )
            .await?;
    }
    Ok(verdict)
}

/// Keys of the merchant's rows in the quarantine (not resolved).
async fn quarantined_keys(
    core: &Core,
    shop: &SocialShop,
) -> Result<BTreeSet<(QuarantineEntity, String)>, CoreError> {
    let mut out = BTreeSet::new();
    let mut after = (String::new(), String::new(), String::new());
    loop {
        let page = core.store().quarantined(Some(shop.merchant_id), None, after.clone(), 1_000).await?;
        for row in &page {
            if row.state != "resolved" {
                out.insert((row.entity, row.legacy_key.clone()));
            }
        }
        match page.last() {
            Some(last) if page.len() == 1_000 => {
                after =
                    (last.merchant_id.to_string(), last.entity.as_str().to_owned(), last.legacy_key.clone())
            }
            _ => return Ok(out),
        }
    }
}

/// The legacy side: products and orders in normal form (rows the transform refuses are left
/// out: they are the quarantine's), and the ids of deleted products.
async fn legacy_side(
    legacy: &LegacyStore,
    shop_id: &str,
) -> Result<(Side, Side, BTreeSet<String>), CoreError> {
    let mut tf = ShopTransform::new(shop_id);
    let mut products = Side::new();
    let mut deleted = BTreeSet::new();
    let mut after = String::new();
    loop {
        let page = legacy.products(shop_id, &after, 500).await?;
        for p in &page {
            if p.status == PRODUCT_DELETED {
                tf.deleted(&p.product_id);
                deleted.insert(p.product_id.clone());
                continue;
            }
            if let Ok(draft) = tf.product(p) {
                products.insert(p.product_id.clone(), normal_product(&draft, p.status == PRODUCT_LIVE));
            }
        }
        match page.last() {
            Some(last) if page.len() == 500 => after = last.product_id.clone(),
            _ => break,
        }
    }
    let mut orders = Side::new();
    let mut after = (shop_id.to_owned(), String::new());
    loop {
        let page = legacy.orders_of_shops(vec![shop_id.to_owned()], after.clone(), 500).await?;
        for o in &page {
            if let Ok(draft) = tf.order(o) {
                orders.insert(o.order_id.clone(), normal_order(&draft));
            }
        }
        match page.last() {
            Some(last) if page.len() == 500 => after = (last.shop_id.clone(), last.order_id.clone()),
            _ => break,
        }
    }
    Ok((products, orders, deleted))
}

/// The core side in the same normal form, and the orders that are twins.
fn core_side(view: &CoreView) -> (Side, Side, BTreeSet<String>) {
    let mut products = Side::new();
    for p in &view.products {
        let mut skus: Vec<String> = p
            .skus
            .iter()
            .map(|(id, code, price, available)| format!("{id}:{code}:{price}:{available}"))
            .collect();
        skus.sort();
        products.insert(
            p.social_product_id.clone(),
            vec![
                ("title", p.title.clone()),
                ("category", p.category.clone()),
                ("listed", p.listed.to_string()),
                ("skus", skus.join(",")),
            ],
        );
    }
    let mut orders = Side::new();
    let mut twins = BTreeSet::new();
    for o in &view.orders {
        if o.has_payment {
            twins.insert(o.social_order_id.clone());
        }
        let lines = normal_lines(o.lines.iter().cloned());
        orders.insert(
            o.social_order_id.clone(),
            vec![
                ("status", o.status.clone()),
                ("total", o.total_idr.to_string()),
                ("payment_method", o.payment_method.clone()),
                ("phone", o.recipient_phone.clone()),
                ("lines", lines),
            ],
        );
    }
    (products, orders, twins)
}

/// Lines in normal form: quantities of the same SKU at the same price summed (the core merges
/// a cart's repeated SKU into one line), sorted by SKU.
fn normal_lines(lines: impl Iterator<Item = (String, i64, i64)>) -> String {
    let mut merged: BTreeMap<(String, i64), i64> = BTreeMap::new();
    for (sku, quantity, price) in lines {
        *merged.entry((sku, price)).or_default() += quantity;
    }
    merged
        .into_iter()
        .map(|((sku, price), quantity)| format!("{sku}:{quantity}:{price}"))
        .collect::<Vec<_>>()
        .join(",")
}

fn digest(side: &Side) -> String {
    let mut hash = Sha256::new();
    for (key, fields) in side {
        hash.update(key.as_bytes());
        for (name, value) in fields {
            hash.update(b"\x1f");
            hash.update(name.as_bytes());
            hash.update(b"=");
            hash.update(value.as_bytes());
        }
        hash.update(b"\n");
    }
    hex::encode(hash.finalize())
}
