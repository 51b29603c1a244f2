//! The social storefront's side of the core: which system owns each social shop, the map
//! from the social shop's legacy ids to core ids, and the consents of social-app users.

use std::collections::HashMap;

use jembatan_domain::{ConsentId, DomainError, Merchant, MerchantId, OrderId, ProductId, Timestamp, TypedId};

use crate::db::{Conn, Row, q};
use crate::error::StoreError;
use crate::exec::{Store, WriteCtx};
use crate::journal::{self, Change};
use crate::orders::OrderRecord;
use crate::payments::PaymentRecord;
use crate::{new_id, rows};

/// Which system owns a social shop's catalogue, stock and orders (DESIGN.md §3, §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    Legacy,
    /// The fence is up: writes wait; the flip to `Core` (or back to `Legacy`) is next.
    Migrating,
    Core,
}

impl Owner {
    pub fn as_str(self) -> &'static str {
        match self {
            Owner::Legacy => "legacy",
            Owner::Migrating => "migrating",
            Owner::Core => "core",
        }
    }

    pub fn parse(raw: &str) -> Result<Owner, DomainError> {
        match raw {
            "legacy" => Ok(Owner::Legacy),
            "migrating" => Ok(Owner::Migrating),
            "core" => Ok(Owner::Core),
            _ => Err(DomainError::invalid("owner", "must be legacy, migrating or core")),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocialShop {
    pub shop_id: String,
    pub merchant_id: MerchantId,
    pub owner: Owner,
    /// Bumped by every change of owner.
    pub owner_version: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdKind {
    Product,
    Sku,
    Order,
}

impl IdKind {
    pub fn as_str(self) -> &'static str {
        match self {
            IdKind::Product => "product",
            IdKind::Sku => "sku",
            IdKind::Order => "order",
        }
    }
}

/// One entry of the id map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdMapping {
    pub social_id: String,
    pub merchant_id: MerchantId,
    pub core_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consent {
    pub id: ConsentId,
    pub buyer_ref: String,
    pub purpose: String,
    pub text_version: String,
    pub granted_at: Timestamp,
    pub withdrawn_at: Option<Timestamp>,
}

/// Profile fields a social-app user agreed to share (purpose `profile_sharing`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedProfile {
    pub buyer_ref: String,
    pub consent_id: ConsentId,
    pub nickname: String,
    pub email: String,
}

/// A social order's core twin: see [`Store::social_twin`].
#[derive(Debug, Clone)]
pub struct SocialTwin {
    pub mapping: IdMapping,
    /// `None` if the mapping names no order (or no valid core id).
    pub order: Option<crate::orders::OrderRecord>,
    /// The social shop of the order's merchant, if enrolled.
    pub shop: Option<SocialShop>,
}

/// The SKU of an order line with its product and the product's title (`None`: no product row).
#[derive(Debug, Clone)]
pub struct OrderLineProduct {
    pub sku_id: String,
    pub product_id: ProductId,
    pub title: Option<String>,
}

/// See [`Store::social_order_parts`]. Each list holds what is mapped (or found) only.
#[derive(Debug, Clone)]
pub struct SocialOrderParts {
    /// The social id of the order.
    pub order_ids: Vec<IdMapping>,
    /// The social ids of the lines' SKUs.
    pub skus: Vec<IdMapping>,
    /// The social ids of the SKUs' products.
    pub products: Vec<IdMapping>,
    /// Each line's SKU that exists, with its product.
    pub lines: Vec<OrderLineProduct>,
    pub payment: Option<PaymentRecord>,
}

/// The purpose under which profile fields may be shared.
pub const PROFILE_SHARING: &str = "profile_sharing";

impl Store {
    pub async fn social_shop(&self, shop_id: &str) -> Result<Option<SocialShop>, StoreError> {
        let shop_id = shop_id.to_owned();
        self.read(move |conn| Box::pin(async move { load_shop(conn, "shop_id", &shop_id).await })).await
    }

    pub async fn social_shop_of_merchant(
        &self,
        merchant_id: MerchantId,
    ) -> Result<Option<SocialShop>, StoreError> {
        self.read(move |conn| {
            Box::pin(async move { load_shop(conn, "merchant_id", &merchant_id.to_string()).await })
        })
        .await
    }

    /// Enrols a social shop with the core: its merchant (with a balance account) and its owner
    /// row (`legacy`). Idempotent: an enrolled shop is returned as it is.
    pub async fn enrol_social_shop(
        &self,
        ctx: WriteCtx,
        shop_id: String,
        merchant: Merchant,
    ) -> Result<SocialShop, StoreError> {
        if let Some(shop) = self.social_shop(&shop_id).await? {
            return Ok(shop);
        }
        let wanted = shop_id.clone();
        let enrolled = self
            .write(None, move |conn| {
                Box::pin(async move {
                    if let Some(shop) = load_shop(conn, "shop_id", &shop_id).await? {
                        return Ok(shop);
                    }
                    crate::merchants::insert_merchant(conn, &ctx, &merchant).await?;
                    q("INSERT INTO social_shops (shop_id, merchant_id, owner, owner_version, updated_at_ms)
                       VALUES ($1, $2, 'legacy', 1, $3)")
                    .bind(shop_id.clone())
                    .bind(merchant.id.to_string())
                    .bind(ctx.now.unix_ms())
                    .execute(&mut *conn)
                    .await?;
                    let change = Change {
                        event_type: "social_shop.enrolled",
                        action: "social_shop.enrol",
                        entity_type: "social_shop",
                        entity_id: shop_id.clone(),
                        merchant_id: Some(merchant.id),
                        channel: None,
                        payload: serde_json::json!({"shop_id": shop_id, "merchant_id": merchant.id.to_string(), "owner": "legacy"}),
                    };
                    journal::record(conn, &ctx, change).await?;
                    Ok(SocialShop { shop_id, merchant_id: merchant.id, owner: Owner::Legacy, owner_version: 1 })
                })
            })
            .await;
        match enrolled {
            // Two first requests raced; the other one enrolled it.
            Err(StoreError::Conflict(reason)) => {
                self.social_shop(&wanted).await?.ok_or(StoreError::Conflict(reason))
            }
            other => other,
        }
    }

    /// Changes a shop's owner if it is still `from` (a conditional update: two movers cannot
    /// both flip it). Journaled like every change.
    pub async fn set_shop_owner(
        &self,
        ctx: WriteCtx,
        shop_id: &str,
        from: Owner,
        to: Owner,
    ) -> Result<SocialShop, StoreError> {
        let shop_id = shop_id.to_owned();
        self.write(None, move |conn| Box::pin(async move { set_owner(conn, &ctx, &shop_id, from, to).await }))
            .await
    }

    /// The flip at the end of a shop's move, in one unit: the shop's stock becomes the core's.
    /// The core SKUs were copied from the frozen legacy ones; a twin the core cancelled whose
    /// legacy row is not cancelled (`legacy_cancelled` lists those that are) never gave its units
    /// back there, so they are added to the core SKU now; every other twin of the shop is
    /// marked so that a later cancellation returns its units to the core. The twins are locked
    /// first, so a cancellation running at the same time is counted once: before the flip (its
    /// units added here) or after (it returns them itself). Then the owner becomes `core`.
    pub async fn complete_shop_move(
        &self,
        ctx: WriteCtx,
        shop_id: &str,
        legacy_cancelled: Vec<String>,
    ) -> Result<SocialShop, StoreError> {
        let shop_id = shop_id.to_owned();
        self.write(None, move |conn| {
            Box::pin(async move { complete_move(conn, &ctx, &shop_id, legacy_cancelled).await })
        })
        .await
    }

    /// The core ids of these social ids (those that are mapped).
    pub async fn core_ids(
        &self,
        kind: IdKind,
        social_ids: Vec<String>,
    ) -> Result<Vec<IdMapping>, StoreError> {
        self.read(move |conn| Box::pin(async move { lookup(conn, kind, "social_id", &social_ids).await }))
            .await
    }

    /// The social ids of these core ids (those that are mapped).
    pub async fn social_ids(
        &self,
        kind: IdKind,
        core_ids: Vec<String>,
    ) -> Result<Vec<IdMapping>, StoreError> {
        self.read(move |conn| Box::pin(async move { lookup(conn, kind, "core_id", &core_ids).await })).await
    }

    /// The core twin of a social order, in one read: its mapping, the order if the mapping
    /// names a core order, and the social shop of the order's merchant (read fresh, never
    /// cached: the owner decides where writes go).
    pub async fn social_twin(&self, social_order_id: String) -> Result<Option<SocialTwin>, StoreError> {
        self.read(move |conn| {
            Box::pin(async move {
                let mapped =
                    lookup(conn, IdKind::Order, "social_id", std::slice::from_ref(&social_order_id)).await?;
                let Some(mapping) = mapped.into_iter().next() else { return Ok(None) };
                let order = match OrderId::parse(&mapping.core_id) {
                    Ok(id) => crate::orders::load_order(conn, id, false).await?,
                    // The caller reports a mapping that names no core id.
                    Err(_) => None,
                };
                let shop = match &order {
                    Some(order) => load_shop(conn, "merchant_id", &order.merchant_id.to_string()).await?,
                    None => None,
                };
                Ok(Some(SocialTwin { mapping, order, shop }))
            })
        })
        .await
    }

    /// What the social view of a core order needs besides the order, in one read (a view used
    /// to take a read per id kind and three per line).
    pub async fn social_order_parts(&self, order: &OrderRecord) -> Result<SocialOrderParts, StoreError> {
        let order_id = order.id.to_string();
        let checkout_id = order.checkout_id;
        let sku_ids: Vec<String> = order.lines.iter().map(|l| l.sku_id.to_string()).collect();
        self.read(move |conn| {
            Box::pin(async move {
                let order_ids =
                    lookup(conn, IdKind::Order, "core_id", std::slice::from_ref(&order_id)).await?;
                let social_skus = lookup(conn, IdKind::Sku, "core_id", &sku_ids).await?;
                let mut skus = Vec::with_capacity(sku_ids.len());
                for sku_id in &sku_ids {
                    let row = q("SELECT s.product_id, p.title FROM skus s LEFT JOIN products p
                                 ON p.merchant_id = s.merchant_id AND p.product_id = s.product_id
                                 WHERE s.sku_id = $1")
                    .bind(sku_id.clone())
                    .fetch_optional(&mut *conn)
                    .await?;
                    if let Some(row) = row {
                        let product_id: ProductId = rows::id(&row, "product_id")?;
                        let title = row.opt_text("title")?;
                        if !skus.iter().any(|s: &OrderLineProduct| s.sku_id == *sku_id) {
                            skus.push(OrderLineProduct { sku_id: sku_id.clone(), product_id, title });
                        }
                    }
                }
                let product_ids: Vec<String> = skus.iter().map(|s| s.product_id.to_string()).collect();
                let social_products = lookup(conn, IdKind::Product, "core_id", &product_ids).await?;
                let payment = crate::payments::load_payment_of_checkout(conn, checkout_id).await?;
                Ok(SocialOrderParts {
                    order_ids,
                    skus: social_skus,
                    products: social_products,
                    lines: skus,
                    payment,
                })
            })
        })
        .await
    }

    /// Maps social ids to core ids, keeping existing entries (a repeat maps nothing twice);
    /// returns every mapping of the given social ids as stored.
    pub async fn map_ids(
        &self,
        kind: IdKind,
        mappings: Vec<IdMapping>,
    ) -> Result<Vec<IdMapping>, StoreError> {
        self.write(None, move |conn| {
            Box::pin(async move {
                for m in &mappings {
                    q("INSERT INTO social_ids (kind, social_id, merchant_id, core_id) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING")
                        .bind(kind.as_str())
                        .bind(m.social_id.clone())
                        .bind(m.merchant_id.to_string())
                        .bind(m.core_id.clone())
                        .execute(&mut *conn)
                        .await?;
                }
                let ids: Vec<String> = mappings.iter().map(|m| m.social_id.clone()).collect();
                lookup(conn, kind, "social_id", &ids).await
            })
        })
        .await
    }

    /// Core twins of legacy orders changed at or after `since_ms` (oldest first): their social
    /// order id, core status and change time.
    /// Twins of legacy orders changed after `cursor` (change time, then core order id: a page
    /// boundary inside one millisecond loses nothing), oldest first: (social id, status, the
    /// cursor of the row).
    pub async fn legacy_twins_changed_since(
        &self,
        cursor: TwinCursor,
        limit: u32,
    ) -> Result<Vec<(String, jembatan_domain::OrderStatus, TwinCursor)>, StoreError> {
        self.read(move |conn| {
            Box::pin(async move {
                let rows = q("SELECT s.social_id, o.status, o.updated_at_ms, o.order_id FROM orders o
                              JOIN social_ids s ON s.core_id = o.order_id
                              WHERE o.origin = 'legacy'
                                AND (o.updated_at_ms > $1 OR (o.updated_at_ms = $1 AND o.order_id > $2))
                              ORDER BY o.updated_at_ms, o.order_id LIMIT $3")
                .bind(cursor.at_ms)
                .bind(cursor.order_id)
                .bind(i64::from(limit))
                .fetch_all(conn)
                .await?;
                rows.iter()
                    .map(|r| {
                        Ok((
                            rows::text(r, "social_id")?,
                            rows::parsed(
                                "status",
                                jembatan_domain::OrderStatus::parse(&rows::text(r, "status")?),
                            )?,
                            TwinCursor {
                                at_ms: rows::int(r, "updated_at_ms")?,
                                order_id: rows::text(r, "order_id")?,
                            },
                        ))
                    })
                    .collect()
            })
        })
        .await
    }

    /// Records a social-app user's consent (purpose, text version, time).
    pub async fn record_consent(
        &self,
        ctx: WriteCtx,
        buyer_ref: String,
        purpose: String,
        text_version: String,
    ) -> Result<Consent, StoreError> {
        self.write(None, move |conn| {
            Box::pin(async move {
                let consent = Consent {
                    id: new_id(),
                    buyer_ref,
                    purpose,
                    text_version,
                    granted_at: ctx.now,
                    withdrawn_at: None,
                };
                q("INSERT INTO consents (consent_id, buyer_ref, purpose, text_version, granted_at_ms) VALUES ($1, $2, $3, $4, $5)")
                    .bind(consent.id.to_string())
                    .bind(consent.buyer_ref.clone())
                    .bind(consent.purpose.clone())
                    .bind(consent.text_version.clone())
                    .bind(ctx.now.unix_ms())
                    .execute(&mut *conn)
                    .await?;
                let change = Change {
                    event_type: "consent.granted",
                    action: "consent.grant",
                    entity_type: "consent",
                    entity_id: consent.id.to_string(),
                    merchant_id: None,
                    channel: None,
                    payload: serde_json::json!({"consent_id": consent.id.to_string(), "purpose": consent.purpose, "text_version": consent.text_version}),
                };
                journal::record(conn, &ctx, change).await?;
                Ok(consent)
            })
        })
        .await
    }

    /// Withdraws every standing consent of a purpose and deletes what was shared under it.
    pub async fn withdraw_consent(
        &self,
        ctx: WriteCtx,
        buyer_ref: String,
        purpose: String,
    ) -> Result<u64, StoreError> {
        self.write(None, move |conn| {
            Box::pin(async move {
                let withdrawn = q("UPDATE consents SET withdrawn_at_ms = $3
                                   WHERE buyer_ref = $1 AND purpose = $2 AND withdrawn_at_ms IS NULL")
                .bind(buyer_ref.clone())
                .bind(purpose.clone())
                .bind(ctx.now.unix_ms())
                .execute(&mut *conn)
                .await?;
                if purpose == PROFILE_SHARING {
                    q("DELETE FROM buyer_profiles WHERE buyer_ref = $1")
                        .bind(buyer_ref.clone())
                        .execute(&mut *conn)
                        .await?;
                }
                let change = Change {
                    event_type: "consent.withdrawn",
                    action: "consent.withdraw",
                    entity_type: "consent",
                    entity_id: buyer_ref.clone(),
                    merchant_id: None,
                    channel: None,
                    payload: serde_json::json!({"purpose": purpose, "withdrawn": withdrawn}),
                };
                journal::record(conn, &ctx, change).await?;
                // A data subject's request under UU PDP, answered in this very unit.
                let detail = format!("purpose {purpose}: {withdrawn} consents withdrawn");
                crate::pdp::record_completed(conn, &ctx, &buyer_ref, "withdrawal", &detail).await?;
                Ok(withdrawn)
            })
        })
        .await
    }

    pub async fn consents(&self, buyer_ref: String) -> Result<Vec<Consent>, StoreError> {
        self.read(move |conn| {
            Box::pin(async move {
                let rows = q("SELECT * FROM consents WHERE buyer_ref = $1 ORDER BY consent_id")
                    .bind(buyer_ref)
                    .fetch_all(conn)
                    .await?;
                rows.iter().map(decode_consent).collect()
            })
        })
        .await
    }

    /// Stores profile fields shared under a standing `profile_sharing` consent; refused without one.
    pub async fn share_profile(
        &self,
        ctx: WriteCtx,
        buyer_ref: String,
        nickname: String,
        email: String,
    ) -> Result<SharedProfile, StoreError> {
        self.write(None, move |conn| {
            Box::pin(async move {
                let consent = q("SELECT consent_id FROM consents
                                 WHERE buyer_ref = $1 AND purpose = $2 AND withdrawn_at_ms IS NULL
                                 ORDER BY consent_id DESC LIMIT 1")
                .bind(buyer_ref.clone())
                .bind(PROFILE_SHARING)
                .fetch_optional(&mut *conn)
                .await?
                .ok_or_else(|| {
                    StoreError::Conflict(format!(
                        "buyer {buyer_ref} has not consented to `{PROFILE_SHARING}`: no profile data may be shared"
                    ))
                })?;
                let consent_id: ConsentId = rows::id(&consent, "consent_id")?;
                q("DELETE FROM buyer_profiles WHERE buyer_ref = $1").bind(buyer_ref.clone()).execute(&mut *conn).await?;
                q("INSERT INTO buyer_profiles (buyer_ref, consent_id, nickname, email, updated_at_ms) VALUES ($1, $2, $3, $4, $5)")
                    .bind(buyer_ref.clone())
                    .bind(consent_id.to_string())
                    .bind(nickname.clone())
                    .bind(email.clone())
                    .bind(ctx.now.unix_ms())
                    .execute(&mut *conn)
                    .await?;
                let change = Change {
                    event_type: "buyer_profile.shared",
                    action: "buyer_profile.share",
                    entity_type: "buyer_profile",
                    entity_id: buyer_ref.clone(),
                    merchant_id: None,
                    channel: None,
                    // No personal data in events: only which consent allowed it.
                    payload: serde_json::json!({"consent_id": consent_id.to_string()}),
                };
                journal::record(conn, &ctx, change).await?;
                Ok(SharedProfile { buyer_ref, consent_id, nickname, email })
            })
        })
        .await
    }

    pub async fn shared_profile(&self, buyer_ref: String) -> Result<Option<SharedProfile>, StoreError> {
        self.read(move |conn| {
            Box::pin(async move {
                let row = q("SELECT * FROM buyer_profiles WHERE buyer_ref = $1")
                    .bind(buyer_ref)
                    .fetch_optional(conn)
                    .await?;
                row.map(|r| {
                    Ok(SharedProfile {
                        buyer_ref: rows::text(&r, "buyer_ref")?,
                        consent_id: rows::id(&r, "consent_id")?,
                        nickname: rows::text(&r, "nickname")?,
                        email: rows::text(&r, "email")?,
                    })
                })
                .transpose()
            })
        })
        .await
    }
}

/// Maps one social id inside a unit (a repeat of the same mapping is a unique violation: the
/// caller's unit decides what that means).
pub(crate) async fn insert_id(
    conn: &mut dyn Conn,
    kind: IdKind,
    social_id: &str,
    merchant_id: MerchantId,
    core_id: &str,
) -> Result<(), StoreError> {
    q("INSERT INTO social_ids (kind, social_id, merchant_id, core_id) VALUES ($1, $2, $3, $4)")
        .bind(kind.as_str())
        .bind(social_id)
        .bind(merchant_id.to_string())
        .bind(core_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Maps one social id inside a unit unless it is mapped already (to the same core id: a
/// different one is a conflict).
pub(crate) async fn insert_id_once(
    conn: &mut dyn Conn,
    kind: IdKind,
    social_id: &str,
    merchant_id: MerchantId,
    core_id: &str,
) -> Result<(), StoreError> {
    insert_ids_once(conn, merchant_id, vec![(kind, social_id.to_owned(), core_id.to_owned())]).await
}

/// [`insert_id_once`] for many ids in multi-row statements: each `(kind, social id, core id)`
/// of `merchant_id` is mapped, or was already mapped to that very core id (a replay, or a
/// mapping the gateway made first); one mapped to another core id is a conflict.
pub(crate) async fn insert_ids_once(
    conn: &mut dyn Conn,
    merchant_id: MerchantId,
    ids: Vec<(IdKind, String, String)>,
) -> Result<(), StoreError> {
    let rows = ids
        .iter()
        .map(|(kind, social, core)| {
            vec![
                kind.as_str().into(),
                social.clone().into(),
                merchant_id.to_string().into(),
                core.clone().into(),
            ]
        })
        .collect();
    let inserted = crate::db::insert_many(
        conn,
        "INSERT INTO social_ids (kind, social_id, merchant_id, core_id)",
        4,
        rows,
        " ON CONFLICT DO NOTHING",
    )
    .await?;
    if inserted == ids.len() as u64 {
        return Ok(());
    }
    for kind in [IdKind::Order, IdKind::Product, IdKind::Sku] {
        let wanted: HashMap<&str, &str> =
            ids.iter().filter(|i| i.0 == kind).map(|(_, s, c)| (s.as_str(), c.as_str())).collect();
        if wanted.is_empty() {
            continue;
        }
        let socials: Vec<String> = wanted.keys().map(|s| (*s).to_owned()).collect();
        let found = lookup(conn, kind, "social_id", &socials).await?;
        let agree =
            found.iter().filter(|m| wanted.get(m.social_id.as_str()) == Some(&m.core_id.as_str())).count();
        if agree != wanted.len() {
            return Err(StoreError::Conflict(format!(
                "{} social {} ids of merchant {merchant_id} are mapped to other core ids",
                wanted.len() - agree,
                kind.as_str()
            )));
        }
    }
    Ok(())
}

pub(crate) async fn lookup(
    conn: &mut dyn Conn,
    kind: IdKind,
    by: &str,
    ids: &[String],
) -> Result<Vec<IdMapping>, StoreError> {
    let mut out = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(500) {
        let placeholders: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 2)).collect();
        // By core id (unique over every kind) the kind is checked on the rows found, not in the
        // WHERE: given `kind = $1` too, SQLite's planner walks every id of that kind as soon as
        // the list has four ids, once per batch — a cost that grew with the whole shop.
        let sql = if by == "core_id" {
            format!(
                "SELECT social_id, merchant_id, core_id FROM social_ids WHERE core_id IN ({}) AND kind || '' = $1",
                placeholders.join(", ")
            )
        } else {
            format!(
                "SELECT social_id, merchant_id, core_id FROM social_ids WHERE kind = $1 AND {by} IN ({})",
                placeholders.join(", ")
            )
        };
        let mut query = q(sql).bind(kind.as_str());
        for id in chunk {
            query = query.bind(id.clone());
        }
        for row in query.fetch_all(&mut *conn).await? {
            out.push(IdMapping {
                social_id: rows::text(&row, "social_id")?,
                merchant_id: rows::id(&row, "merchant_id")?,
                core_id: rows::text(&row, "core_id")?,
            });
        }
    }
    Ok(out)
}

/// The flip of a move, inside the caller's unit: the units of twins cancelled in the core but
/// not in the legacy store go back to their core SKUs, every legacy-origin order of the shop is
/// marked as having its stock in the core, and the owner becomes `core`. The twins are locked
/// by this unit, so a concurrent cancel is counted exactly once.
pub(crate) async fn complete_move(
    conn: &mut dyn Conn,
    ctx: &WriteCtx,
    shop_id: &str,
    legacy_cancelled: Vec<String>,
) -> Result<SocialShop, StoreError> {
    let shop_id = shop_id.to_owned();
    let shop = load_shop(conn, "shop_id", &shop_id)
        .await?
        .ok_or_else(|| StoreError::not_found("social shop", &shop_id))?;
    if shop.owner != Owner::Migrating {
        return Err(StoreError::Conflict(format!(
            "shop {shop_id} is owned by {}, not migrating: nothing changed",
            shop.owner.as_str()
        )));
    }
    let merchant = shop.merchant_id.to_string();
    let lock = crate::db::lock_clause(conn, true);
    let twins = q(format!(
        "SELECT o.order_id, o.status, s.social_id FROM orders o
         JOIN social_ids s ON s.core_id = o.order_id
         WHERE o.merchant_id = $1 AND o.origin = 'legacy' AND o.legacy_stock_moved = 0
         ORDER BY o.order_id{lock}"
    ))
    .bind(merchant.clone())
    .fetch_all(&mut *conn)
    .await?;
    let mut returned = 0i64;
    for twin in &twins {
        let cancelled = rows::text(twin, "status")? == "cancelled";
        if !cancelled || legacy_cancelled.contains(&rows::text(twin, "social_id")?) {
            continue;
        }
        let lines = q("SELECT sku_id, quantity FROM order_lines WHERE merchant_id = $1 AND order_id = $2 ORDER BY sku_id")
            .bind(merchant.clone())
            .bind(rows::text(twin, "order_id")?)
            .fetch_all(&mut *conn)
            .await?;
        for line in lines {
            returned += rows::int(&line, "quantity")?;
            q("UPDATE skus SET stock_on_hand = stock_on_hand + $3 WHERE merchant_id = $1 AND sku_id = $2")
                .bind(merchant.clone())
                .bind(rows::text(&line, "sku_id")?)
                .bind(rows::int(&line, "quantity")?)
                .execute(&mut *conn)
                .await?;
        }
    }
    q("UPDATE orders SET legacy_stock_moved = 1 WHERE merchant_id = $1 AND origin = 'legacy' AND legacy_stock_moved = 0")
        .bind(merchant.clone())
        .execute(&mut *conn)
        .await?;
    q("UPDATE social_shops SET owner = 'core', owner_version = owner_version + 1, updated_at_ms = $2
       WHERE shop_id = $1 AND owner = 'migrating'")
    .bind(shop_id.clone())
    .bind(ctx.now.unix_ms())
    .execute(&mut *conn)
    .await?;
    let change = Change {
        event_type: "social_shop.owner_changed",
        action: "social_shop.set_owner",
        entity_type: "social_shop",
        entity_id: shop_id.clone(),
        merchant_id: Some(shop.merchant_id),
        channel: None,
        payload: serde_json::json!({"shop_id": shop_id, "from": "migrating", "to": "core", "units_returned": returned}),
    };
    journal::record(conn, ctx, change).await?;
    Ok(SocialShop { owner: Owner::Core, owner_version: shop.owner_version + 1, ..shop })
}

/// Where a pass over changed twins stands: after this change time and, within it, this core
/// order id.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TwinCursor {
    pub at_ms: i64,
    pub order_id: String,
}

impl TwinCursor {
    /// Everything changed at `at_ms` or later.
    pub fn from_ms(at_ms: i64) -> TwinCursor {
        TwinCursor { at_ms, order_id: String::new() }
    }
}

/// Refuses a write for a merchant whose social shop is not (yet) owned by the core
/// (invariant 6): while the legacy backend owns it, or while it moves, only the gateway writes
/// its rows. Merchants that never were social shops have no row and pass. On PostgreSQL the
/// owner row is read `FOR SHARE`, so a flip of the owner waits for the writes that passed.
pub(crate) async fn ensure_core_owned(
    conn: &mut dyn Conn,
    merchant_id: MerchantId,
) -> Result<(), StoreError> {
    let share = if conn.is_postgres() { " FOR SHARE" } else { "" };
    let sql = format!("SELECT owner FROM social_shops WHERE merchant_id = $1{share}");
    let row = q(sql).bind(merchant_id.to_string()).fetch_optional(conn).await?;
    let Some(row) = row else { return Ok(()) };
    match rows::parsed("owner", Owner::parse(&rows::text(&row, "owner")?))? {
        Owner::Core => Ok(()),
        owner => Err(StoreError::NotOwner { merchant_id: merchant_id.to_string(), owner: owner.as_str() }),
    }
}

/// [`Store::set_shop_owner`] inside a unit: the owner from `from` to `to` (a conflict, changing
/// nothing, if it is not `from`), journaled.
pub(crate) async fn set_owner(
    conn: &mut dyn Conn,
    ctx: &WriteCtx,
    shop_id: &str,
    from: Owner,
    to: Owner,
) -> Result<SocialShop, StoreError> {
    let shop = load_shop(conn, "shop_id", shop_id)
        .await?
        .ok_or_else(|| StoreError::not_found("social shop", shop_id))?;
    let moved = q("UPDATE social_shops SET owner = $2, owner_version = owner_version + 1, updated_at_ms = $3
                   WHERE shop_id = $1 AND owner = $4")
    .bind(shop_id)
    .bind(to.as_str())
    .bind(ctx.now.unix_ms())
    .bind(from.as_str())
    .execute(&mut *conn)
    .await?;
    if moved != 1 {
        return Err(StoreError::Conflict(format!(
            "shop {shop_id} is owned by {}, not {}: nothing changed",
            shop.owner.as_str(),
            from.as_str()
        )));
    }
    let change = Change {
        event_type: "social_shop.owner_changed",
        action: "social_shop.set_owner",
        entity_type: "social_shop",
        entity_id: shop_id.to_owned(),
        merchant_id: Some(shop.merchant_id),
        channel: None,
        payload: serde_json::json!({"shop_id": shop_id, "from": from.as_str(), "to": to.as_str()}),
    };
    journal::record(conn, ctx, change).await?;
    Ok(SocialShop { owner: to, owner_version: shop.owner_version + 1, ..shop })
}

async fn load_shop(conn: &mut dyn Conn, by: &str, value: &str) -> Result<Option<SocialShop>, StoreError> {
    let sql = format!("SELECT shop_id, merchant_id, owner, owner_version FROM social_shops WHERE {by} = $1");
    let row = q(sql).bind(value).fetch_optional(conn).await?;
    row.map(|r| decode_shop(&r)).transpose()
}

fn decode_shop(r: &Row) -> Result<SocialShop, StoreError> {
    Ok(SocialShop {
        shop_id: rows::text(r, "shop_id")?,
        merchant_id: rows::id(r, "merchant_id")?,
        owner: rows::parsed("owner", Owner::parse(&rows::text(r, "owner")?))?,
        owner_version: rows::int(r, "owner_version")?,
    })
}

fn decode_consent(r: &Row) -> Result<Consent, StoreError> {
    Ok(Consent {
        id: rows::id(r, "consent_id")?,
        buyer_ref: rows::text(r, "buyer_ref")?,
        purpose: rows::text(r, "purpose")?,
        text_version: rows::text(r, "text_version")?,
        granted_at: Timestamp::from_unix_ms(rows::int(r, "granted_at_ms")?),
        withdrawn_at: r.opt_int("withdrawn_at_ms")?.map(Timestamp::from_unix_ms),
    })
}
