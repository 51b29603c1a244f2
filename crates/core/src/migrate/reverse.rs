//! The way back (DESIGN.md §6 step 7): after its cutover a merchant's core writes flow back to
//! the legacy store (the reverse sync) until it is finalized, so that `migrate rollback` can
//! give the shop back to the legacy store with nothing lost.
//!
//! - **Reverse sync.** The core's version of the merchant's products (title, category,
//!   listing, prices, units available) and of its social orders changed since the last sync
//!   (status; orders placed on the core after the cutover are inserted with their items) is
//!   written into the fenced legacy shop by one legacy transaction that alone passes the fence.
//! - **Rollback.** The gateway holds the shop's writes (owner `migrating`), a last full reverse
//!   sync runs, then one core unit gives the shop back (`legacy`) and marks the merchant
//!   `rolled_back`; the legacy fence comes down last. A crash in between leaves the shop held
//!   and the merchant `cut_over`: rolling back again finishes it.
//! - **Finalize.** Ends the reverse sync; refused while quarantined rows are open.
//!
//! Products created on the core after the cutover (through `/v1`) have no social id and are
//! not written back; the rollback report counts them.

use jembatan_domain::migration::MigrationState;
use jembatan_domain::social::{LegacyStatus, format_price, payment_method_name};
use jembatan_domain::{MerchantId, Money, OrderStatus, PaymentMethod, Principal};
use jembatan_store::StoreError;
use jembatan_store::legacy::{
    LegacyItem, LegacyOrder, LegacyProduct, LegacySku, PRODUCT_DELISTED, PRODUCT_LIVE,
};
use jembatan_store::migration::MigrationMerchantRecord;
use jembatan_store::social::Owner;

use super::engine::Engine;
use crate::CoreError;

/// Orders changed this long before the last sync are read again (clock skew between writers).
const OVERLAP_MS: i64 = 5_000;

/// What one reverse sync wrote to the legacy store.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReverseSync {
    pub products: u64,
    pub orders_inserted: u64,
    pub orders_updated: u64,
}

impl Engine {
    /// Writes one cut-over merchant's core changes back to its legacy shop.
    pub async fn reverse_sync(
        &self,
        record: &MigrationMerchantRecord,
        full: bool,
    ) -> Result<ReverseSync, CoreError> {
        let store = self.core().store();
        let legacy = self.gateway().legacy();
        let started = self.core().clock().now().unix_ms();
        let since = if full { 0 } else { (record.reverse_synced_at_ms - OVERLAP_MS).max(0) };
        let (products, orders) = store.reverse_view(record.merchant_id, since).await?;
        let products: Vec<LegacyProduct> = products
            .into_iter()
            .map(|p| LegacyProduct {
                shop_id: record.shop_id.clone(),
                product_id: p.social_product_id,
                title: p.title,
                category: p.category,
                description: String::new(),
                skus: p
                    .skus
                    .into_iter()
                    .map(|(sku_id, code, price, available)| LegacySku {
                        sku_id,
                        seller_sku: code,
                        name: String::new(),
                        price: Money::from_rupiah(price)
                            .map(format_price)
                            .unwrap_or_else(|_| price.to_string()),
                        stock: available,
                    })
                    .collect(),
                skus_problem: None,
                status: if p.listed { PRODUCT_LIVE } else { PRODUCT_DELISTED },
                create_time: 0,
                update_time: 0,
            })
            .collect();
        let mut legacy_orders = Vec::with_capacity(orders.len());
        for o in orders {
            let status = OrderStatus::parse(&o.status)?;
            let method = PaymentMethod::parse(&o.payment_method)?;
            let buyer_id = legacy.buyer_of_ref(&o.buyer_ref).await?.unwrap_or_else(|| o.buyer_ref.clone());
            legacy_orders.push(LegacyOrder {
                shop_id: record.shop_id.clone(),
                order_id: o.social_order_id,
                buyer_id,
                status: LegacyStatus::from_core(status).code(),
                payment_method: payment_method_name(method).to_owned(),
                total_amount: format_price(Money::from_rupiah(o.total_idr)?),
                recipient_name: o.recipient_name,
                recipient_phone: o.recipient_phone,
                address_detail: o.street,
                city: o.city,
                province: o.province,
                postal_code: o.postal_code,
                create_time: o.created_at_ms / 1000,
                update_time: o.updated_at_ms / 1000,
                items: o
                    .lines
                    .into_iter()
                    .enumerate()
                    .map(|(n, (product_id, sku_id, product_title, quantity, price))| LegacyItem {
                        item_no: n as i64 + 1,
                        product_id,
                        sku_id,
                        product_title,
                        quantity,
                        unit_price: Money::from_rupiah(price)
                            .map(format_price)
                            .unwrap_or_else(|_| price.to_string()),
                    })
                    .collect(),
            });
        }
        let (products, orders_inserted, orders_updated) =
            legacy.reverse_apply(&record.shop_id, products, legacy_orders, started / 1000).await?;
        store.set_reverse_synced(record.merchant_id, started).await?;
        Ok(ReverseSync { products, orders_inserted, orders_updated })
    }

    /// Reverse-syncs every cut-over merchant (of one wave, or all).
    pub async fn reverse_sync_all(&self, wave: Option<String>) -> Result<ReverseSync, CoreError> {
        let mut total = ReverseSync::default();
        let mut after = String::new();
        loop {
            let page = self
                .core()
                .store()
                .migration_in_state(MigrationState::CutOver, wave.clone(), after.clone(), 200)
                .await?;
            let Some(last) = page.last() else { return Ok(total) };
            after = last.merchant_id.to_string();
            for record in &page {
                let done = self.reverse_sync(record, false).await?;
                total.products += done.products;
                total.orders_inserted += done.orders_inserted;
                total.orders_updated += done.orders_updated;
            }
        }
    }

    /// Runs the reverse sync every `interval` (inside `jembatan serve`).
    pub async fn run_reverse_sync(self, interval: std::time::Duration) {
        loop {
            tokio::time::sleep(interval).await;
            if let Err(error) = self.reverse_sync_all(None).await {
                tracing::warn!(%error, "reverse sync failed; it runs again");
            }
        }
    }

    /// Gives a cut-over merchant back to the legacy store with everything the core did for it
    /// in between. Operator only.
    pub async fn rollback(
        &self,
        who: &Principal,
        merchant_id: MerchantId,
        reason: &str,
    ) -> Result<(MigrationMerchantRecord, ReverseSync), CoreError> {
        if *who != Principal::Operator {
            return Err(CoreError::Forbidden("only the operator rolls a migration back".to_owned()));
        }
        let store = self.core().store();
        let record = store
            .migration_merchant(merchant_id)
            .await?
            .ok_or_else(|| StoreError::not_found("migration merchant", merchant_id))?;
        if record.state != MigrationState::CutOver {
            return Err(CoreError::Store(StoreError::Conflict(format!(
                "merchant {merchant_id} is {}: only a cut-over merchant is rolled back (one not cut over is still the legacy store's; a finalized one is for good)",
                record.state
            ))));
        }
        let ctx = self.core().ctx(who);
        // Hold the shop's writes; a rollback cut short left it held already.
        match store.set_shop_owner(ctx.clone(), &record.shop_id, Owner::Core, Owner::Migrating).await {
            Ok(_) => {}
            Err(StoreError::Conflict(_))
                if store.social_shop(&record.shop_id).await?.is_some_and(|s| s.owner == Owner::Migrating) => {
            }
            Err(error) => return Err(error.into()),
        }
        let synced = match self.reverse_sync(&record, true).await {
            Ok(synced) => synced,
            Err(error) => {
                // Not rolled back: the core keeps the shop.
                store.set_shop_owner(ctx, &record.shop_id, Owner::Migrating, Owner::Core).await?;
                return Err(error);
            }
        };
        let record = store.migration_rolled_back(ctx, merchant_id, format!("rolled back: {reason}")).await?;
        self.gateway().legacy().unfence(&record.shop_id).await?;
        Ok((record, synced))
    }

    /// Ends a merchant's migration: the core keeps it for good, the reverse sync stops.
    pub async fn finalize(
        &self,
        who: &Principal,
        merchant_id: MerchantId,
    ) -> Result<MigrationMerchantRecord, CoreError> {
        if *who != Principal::Operator {
            return Err(CoreError::Forbidden("only the operator finalizes a migration".to_owned()));
        }
        let record = self
            .core()
            .store()
            .migration_merchant(merchant_id)
            .await?
            .ok_or_else(|| StoreError::not_found("migration merchant", merchant_id))?;
        if record.state == MigrationState::CutOver {
            // The last of the core's writes reach the legacy store before it stops.
            self.reverse_sync(&record, false).await?;
        }
        Ok(self.core().store().migration_finalize(self.core().ctx(who), merchant_id).await?)
    }
}
