//! `migrate run`: the live move of one merchant at a time from the legacy store to the core,
//! while both storefronts keep selling (DESIGN.md §6, issue 5).
//!
//! Per merchant, from its stored state (so a crash resumes where it stopped):
//! 1. **legacy → copying**: the shop's changelog head is recorded as the snapshot position.
//! 2. **copying**: products, then orders, are read in key order, transformed, and written in
//!    batches; each batch commits with its checkpoint (the last legacy key it covers) in one
//!    unit, so the checkpoint never runs ahead of the core. A row the core cannot take is
//!    quarantined with its reason and raw value in the same unit. Every write is an upsert
//!    keyed by the legacy row: a batch replayed after a crash changes nothing more.
//! 3. **catching_up**: the shop's own change numbers after the snapshot are tailed; each
//!    changed row is read again whole and upserted (idempotent: applying the current row
//!    twice is applying it once), the checkpoint moving with each batch.
//! 4. **verify**: both sides normalised per entity, counted and hashed; rows that differ are
//!    listed field by field in a stored report. Rows changed while comparing are caught up and
//!    compared again; a real difference stops the merchant (`quarantined`, with the report).
//! 5. **fenced → cut_over**: the owner goes `migrating` (the gateway holds the shop's writes,
//!    reads go on), the legacy fence goes up (on PostgreSQL it waits for writes in flight), the
//!    last changes are read, and one unit applies them, flips the owner to `core` and records
//!    the state. Over its time budget it aborts instead: owner back to `legacy`, fence down,
//!    back to catching up, tried again later. The pause is measured and stored.
//! 6. After the flip the last changes are verified again (a spot check).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::time::{Duration, Instant};

use futures::StreamExt;
use jembatan_domain::migration::MigrationState;
use jembatan_domain::social::{LegacyStatus, SocialId};
use jembatan_domain::{
    Category, Channel, CheckoutLine, CheckoutRequest, MerchantId, PricedSku, Principal, ProductId, SkuId,
    Timestamp,
};
use jembatan_store::catalogue::{SocialProductCopy, SocialProductIds};
use jembatan_store::import::{Imported, ImportedOrder};
use jembatan_store::legacy::{LegacyOrder, LegacyProduct, PRODUCT_DELETED, PRODUCT_DELISTED, PRODUCT_LIVE};
use jembatan_store::migration::MigrationMerchantRecord;
use jembatan_store::migration_run::{
    MigrationBatch, Progress, QuarantineEntity, QuarantineEntry, SPOT_CHECK_FAILED, SpotCheck,
};
use jembatan_store::social::{IdKind, Owner, SocialShop};
use jembatan_store::{StoreError, WriteCtx};

use super::transform::{Defect, OrderDraft, ProductDraft, ShopTransform};
use super::verify::{self, Verdict};
use crate::gateway::{Gateway, parse_core_id};
use crate::{Core, CoreError};

/// How the engine works.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Legacy rows per batch (one unit each).
    pub batch_rows: usize,
    /// Longest pause of a merchant's writes at its cutover; over it, the cutover aborts.
    pub cutover_budget: Duration,
    /// Changes left in a catch-up round small enough to verify and fence.
    pub catch_up_lag: usize,
    /// Catch-up rounds before a merchant that never settles is left for a later run.
    pub catch_up_rounds: u32,
    /// Cutovers tried per run before the merchant is left in catching up for a later run.
    pub cutover_tries: u32,
    /// Slows the copy while live calls are slow; `None`: full speed.
    pub throttle: Option<super::throttle::Throttle>,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            batch_rows: 500,
            cutover_budget: Duration::from_millis(500),
            catch_up_lag: 50,
            catch_up_rounds: 50,
            cutover_tries: 3,
            throttle: None,
        }
    }
}

/// Rows of one legacy page.
const PAGE: u32 = 500;
/// Changes read per catch-up step.
const CHANGES_PAGE: u32 = 1_000;
/// Verifications per merchant and run before a difference that keeps moving counts as real.
const VERIFY_TRIES: u32 = 3;

/// Where a merchant's copy or catch-up stands, as stored in its `checkpoint`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Checkpoint {
    /// Products copied up to this legacy id ("" none yet).
    Products(String),
    /// Products done; orders copied up to this legacy id.
    Orders(String),
    /// Copy done; the shop's changes applied up to this number.
    Changes(i64),
}

impl fmt::Display for Checkpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Checkpoint::Products(id) => write!(f, "products:{id}"),
            Checkpoint::Orders(id) => write!(f, "orders:{id}"),
            Checkpoint::Changes(seq) => write!(f, "changes:{seq}"),
        }
    }
}

impl Checkpoint {
    pub fn parse(raw: &str) -> Option<Checkpoint> {
        let (kind, value) = raw.split_once(':')?;
        match kind {
            "products" => Some(Checkpoint::Products(value.to_owned())),
            "orders" => Some(Checkpoint::Orders(value.to_owned())),
            "changes" => value.parse().ok().map(Checkpoint::Changes),
            _ => None,
        }
    }
}

/// What one run did to one merchant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MerchantRun {
    pub merchant_id: MerchantId,
    pub shop_id: String,
    pub state: MigrationState,
    pub rows: u64,
    pub quarantined: u64,
    pub cutover_pause_us: Option<i64>,
    /// Why it stopped short of `cut_over`, if it did.
    pub note: Option<String>,
    /// Wall time spent in each phase by this run: start, copy, catch-up and verify, cutover.
    pub phase_us: [u64; 4],
}

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunReport {
    pub merchants: Vec<MerchantRun>,
    /// (merchant, error) of merchants whose run failed; their stored state is where it stopped.
    pub failed: Vec<(MerchantId, String)>,
}

#[derive(Clone)]
pub struct Engine {
    gateway: Gateway,
    options: EngineOptions,
}

/// The rows a batch is being made of.
#[derive(Default)]
struct Pending {
    products: Vec<(LegacyProduct, ProductDraft, bool)>,
    orders: Vec<(LegacyOrder, OrderDraft)>,
    quarantine: Vec<QuarantineEntry>,
    resolved: Vec<(QuarantineEntity, String)>,
    rows: u64,
}

impl Pending {
    fn len(&self) -> usize {
        self.products.len() + self.orders.len() + self.quarantine.len()
    }
}

impl Engine {
    pub fn new(gateway: Gateway, options: EngineOptions) -> Engine {
        Engine { gateway, options }
    }

    pub(crate) fn core(&self) -> &Core {
        self.gateway.core()
    }

    pub(crate) fn gateway(&self) -> &Gateway {
        &self.gateway
    }

    fn ctx(&self) -> WriteCtx {
        self.core().ctx(&Principal::Operator)
    }

    /// Runs every merchant with work (of one wave, or all), `parallel` at a time.
    pub async fn run(
        &self,
        who: &Principal,
        wave: Option<String>,
        parallel: usize,
    ) -> Result<RunReport, CoreError> {
        self.run_with(who, wave, parallel, |_| {}).await
    }

    /// [`Engine::run`], telling `done` of each merchant as it finishes its step.
    pub async fn run_with(
        &self,
        who: &Principal,
        wave: Option<String>,
        parallel: usize,
        done: impl Fn(&Result<MerchantRun, String>) + Sync,
    ) -> Result<RunReport, CoreError> {
        if *who != Principal::Operator {
            return Err(CoreError::Forbidden("only the operator runs a migration".to_owned()));
        }
        let mut report = RunReport::default();
        let mut after = String::new();
        loop {
            let page = self.core().store().migration_work(wave.clone(), after.clone(), 200).await?;
            let Some(last) = page.last() else { break };
            after = last.merchant_id.to_string();
            let finished: Vec<(MerchantId, Result<MerchantRun, CoreError>)> = futures::stream::iter(page)
                .map(|record| {
                    let done = &done;
                    async move {
                        let outcome = self.migrate(record.clone()).await;
                        done(
                            &outcome
                                .as_ref()
                                .map(Clone::clone)
                                .map_err(|e| format!("merchant {}: {e}", record.merchant_id)),
                        );
                        (record.merchant_id, outcome)
                    }
                })
                .buffer_unordered(parallel.max(1))
                .collect()
                .await;
            for (merchant_id, outcome) in finished {
                match outcome {
                    Ok(run) => report.merchants.push(run),
                    Err(error) => {
                        tracing::warn!(%merchant_id, %error, "a merchant's migration stopped on an error");
                        report.failed.push((merchant_id, error.to_string()));
                    }
                }
            }
        }
        report.merchants.sort_by_key(|m| m.merchant_id.to_string());
        Ok(report)
    }

    /// Moves one merchant as far as it goes now, from its stored state.
    pub async fn migrate(&self, record: MigrationMerchantRecord) -> Result<MerchantRun, CoreError> {
        self.advance(record, None).await
    }

    /// Moves one merchant until it reaches `until` (or as far as it goes).
    pub async fn advance(
        &self,
        record: MigrationMerchantRecord,
        until: Option<MigrationState>,
    ) -> Result<MerchantRun, CoreError> {
        let store = self.core().store();
        let shop = store
            .social_shop(&record.shop_id)
            .await?
            .ok_or_else(|| StoreError::not_found("social shop", &record.shop_id))?;
        let mut run = MerchantRun {
            merchant_id: record.merchant_id,
            shop_id: record.shop_id.clone(),
            state: record.state,
            rows: 0,
            quarantined: 0,
            cutover_pause_us: None,
            note: None,
            phase_us: [0; 4],
        };
        let mut record = record;
        let mut transform: Option<ShopTransform> = None;
        let mut cutovers = 0;
        loop {
            run.state = record.state;
            if until == Some(record.state) {
                return Ok(run);
            }
            let phase = match record.state {
                MigrationState::Legacy => 0,
                MigrationState::Copying => 1,
                MigrationState::CatchingUp => 2,
                _ => 3,
            };
            let phase_started = Instant::now();
            record = match record.state {
                MigrationState::Legacy => {
                    let head = self.gateway.legacy().shop_head(&shop.shop_id).await?;
                    self.set_state(
                        &record,
                        MigrationState::Copying,
                        Progress {
                            snapshot_position: Some(head),
                            checkpoint: Some(Checkpoint::Products(String::new()).to_string()),
                            attempt: true,
                            started: true,
                            ..Progress::default()
                        },
                    )
                    .await?
                }
                MigrationState::Copying => {
                    let tf = self.copy(&shop, &record, &mut run).await?;
                    transform = Some(tf);
                    self.reload(record.merchant_id).await?
                }
                MigrationState::CatchingUp => {
                    let tf = match transform.take() {
                        Some(tf) => tf,
                        None => self.prime(&shop.shop_id).await?,
                    };
                    let (tf, settled) = self.catch_up(&shop, &record, tf, &mut run).await?;
                    transform = Some(tf);
                    let record = self.reload(record.merchant_id).await?;
                    if !settled {
                        run.note = Some("the shop kept changing faster than it was caught up".to_owned());
                        return Ok(run);
                    }
                    match self.verify_until_settled(&shop, &record, &mut transform, &mut run).await? {
                        Verdict::Matched => {
                            self.set_state(&record, MigrationState::Verified, Progress::default()).await?
                        }
                        Verdict::Differs(summary) => {
                            run.note = Some(summary.clone());
                            let record = self
                                .set_state(
                                    &record,
                                    MigrationState::Quarantined,
                                    Progress { last_error: Some(Some(summary)), ..Progress::default() },
                                )
                                .await?;
                            run.state = record.state;
                            return Ok(run);
                        }
                        Verdict::Moving => {
                            run.note = Some("rows kept changing while being verified".to_owned());
                            return Ok(run);
                        }
                    }
                }
                MigrationState::Verified => {
                    // Changes since verification are caught up inside the cutover.
                    cutovers += 1;
                    let tf = match transform.take() {
                        Some(tf) => tf,
                        None => self.prime(&shop.shop_id).await?,
                    };
                    let (tf, record) = self.cut_over(&shop, record, tf, &mut run).await?;
                    transform = Some(tf);
                    if record.state == MigrationState::CatchingUp && cutovers >= self.options.cutover_tries {
                        run.state = record.state;
                        run.note = record.last_error.clone();
                        return Ok(run);
                    }
                    record
                }
                MigrationState::Fenced => {
                    // A crash during a cutover: the flip and the state commit together, so the
                    // flip did not happen. Give the shop back, catch up again.
                    self.abort_cutover(&shop, &record, "the engine stopped during the cutover".to_owned())
                        .await?
                }
                MigrationState::CutOver
                | MigrationState::Finalized
                | MigrationState::RolledBack
                | MigrationState::Quarantined => {
                    run.state = record.state;
                    run.cutover_pause_us = record.cutover_pause_us;
                    return Ok(run);
                }
            };
            run.phase_us[phase] += phase_started.elapsed().as_micros() as u64;
        }
    }

    /// Sends a merchant stopped for the operator (quarantined rows fixed at the source, or a
    /// verification difference repaired) back to copy: the whole shop is copied again from a
    /// new snapshot (upserts: what is already right stays as it is). Operator only.
    pub async fn retry(
        &self,
        who: &Principal,
        merchant_id: MerchantId,
    ) -> Result<MigrationMerchantRecord, CoreError> {
        if *who != Principal::Operator {
            return Err(CoreError::Forbidden("only the operator retries a migration".to_owned()));
        }
        let record = self.reload(merchant_id).await?;
        let head = self.gateway.legacy().shop_head(&record.shop_id).await?;
        self.set_state(
            &record,
            MigrationState::Copying,
            Progress {
                snapshot_position: Some(head),
                checkpoint: Some(Checkpoint::Products(String::new()).to_string()),
                last_error: Some(None),
                attempt: true,
                ..Progress::default()
            },
        )
        .await
    }

    async fn reload(&self, merchant_id: MerchantId) -> Result<MigrationMerchantRecord, CoreError> {
        Ok(self
            .core()
            .store()
            .migration_merchant(merchant_id)
            .await?
            .ok_or_else(|| StoreError::not_found("migration merchant", merchant_id))?)
    }

    async fn set_state(
        &self,
        record: &MigrationMerchantRecord,
        to: MigrationState,
        progress: Progress,
    ) -> Result<MigrationMerchantRecord, CoreError> {
        Ok(self
            .core()
            .store()
            .set_migration_state(self.ctx(), record.merchant_id, record.state, to, progress)
            .await?)
    }

    // ---- copy -------------------------------------------------------------------------------

    /// Every product of the shop through a fresh transform, writing nothing: what a resumed
    /// run needs to know of the products before it goes on.
    async fn prime(&self, shop_id: &str) -> Result<ShopTransform, CoreError> {
        let mut tf = ShopTransform::new(shop_id);
        let mut after = String::new();
        loop {
            let page = self.gateway.legacy().products(shop_id, &after, PAGE).await?;
            for p in &page {
                if p.status == PRODUCT_DELETED {
                    tf.deleted(&p.product_id);
                } else {
                    let _ = tf.product(p);
                }
            }
            match page.last() {
                Some(last) if page.len() as u32 == PAGE => after = last.product_id.clone(),
                _ => return Ok(tf),
            }
        }
    }

    /// The snapshot copy, from the stored checkpoint on.
    async fn copy(
        &self,
        shop: &SocialShop,
        record: &MigrationMerchantRecord,
        run: &mut MerchantRun,
    ) -> Result<ShopTransform, CoreError> {
        let checkpoint = record
            .checkpoint
            .as_deref()
            .and_then(Checkpoint::parse)
            .unwrap_or(Checkpoint::Products(String::new()));
        let mut tf = ShopTransform::new(&shop.shop_id);
        let legacy = self.gateway.legacy();
        // Products, all through the transform; written only past the checkpoint.
        let (products_done_to, orders_from) = match &checkpoint {
            Checkpoint::Products(id) => (Some(id.clone()), String::new()),
            Checkpoint::Orders(id) => (None, id.clone()),
            Checkpoint::Changes(_) => (None, String::new()),
        };
        let mut pending = Pending::default();
        let mut after = String::new();
        loop {
            let page = legacy.products(&shop.shop_id, &after, PAGE).await?;
            for p in &page {
                let write =
                    products_done_to.as_ref().is_some_and(|done| p.product_id.as_str() > done.as_str());
                if p.status == PRODUCT_DELETED {
                    tf.deleted(&p.product_id);
                    continue;
                }
                let drafted = tf.product(p);
                if write {
                    pending.rows += 1 + p.skus.len() as u64;
                    stage_product(&mut pending, p, drafted);
                    if pending.len() >= self.options.batch_rows {
                        let checkpoint = Checkpoint::Products(p.product_id.clone());
                        self.flush(shop, MigrationState::Copying, &mut pending, checkpoint, run).await?;
                    }
                }
            }
            match page.last() {
                Some(last) if page.len() as u32 == PAGE => after = last.product_id.clone(),
                _ => break,
            }
        }
        if products_done_to.is_some() {
            self.flush(shop, MigrationState::Copying, &mut pending, Checkpoint::Orders(String::new()), run)
                .await?;
        }
        // Orders, in id order past the checkpoint.
        let mut after = (shop.shop_id.clone(), orders_from);
        loop {
            let page = legacy.orders_of_shops(vec![shop.shop_id.clone()], after.clone(), PAGE).await?;
            for o in &page {
                pending.rows += 1 + o.items.len() as u64;
                self.stage_order(shop, &tf, &mut pending, o).await?;
                if pending.len() >= self.options.batch_rows {
                    let checkpoint = Checkpoint::Orders(o.order_id.clone());
                    self.flush(shop, MigrationState::Copying, &mut pending, checkpoint, run).await?;
                }
            }
            match page.last() {
                Some(last) if page.len() as u32 == PAGE => {
                    after = (last.shop_id.clone(), last.order_id.clone())
                }
                _ => break,
            }
        }
        // The last batch and the start of the catch-up commit together.
        let snapshot = record.snapshot_position.unwrap_or(0);
        let then = (
            MigrationState::CatchingUp,
            Progress { checkpoint: Some(Checkpoint::Changes(snapshot).to_string()), ..Progress::default() },
        );
        self.flush_then(
            shop,
            MigrationState::Copying,
            &mut pending,
            Checkpoint::Orders(after.1),
            run,
            Some(then),
        )
        .await?;
        Ok(tf)
    }

    /// Stages an order: a draft to import, a twin to keep (an unpaid order's payment is the
    /// core's; one without a twin yet gets it now), or a quarantined row.
    async fn stage_order(
        &self,
        shop: &SocialShop,
        tf: &ShopTransform,
        pending: &mut Pending,
        o: &LegacyOrder,
    ) -> Result<(), CoreError> {
        match tf.order(o) {
            Err(defects) => pending.quarantine.push(quarantine_order(o, &defects)),
            Ok(draft) if draft.legacy_status == LegacyStatus::Unpaid => {
                match self.gateway.ensure_twin(&Principal::Operator, shop, o).await {
                    Ok(()) => pending.resolved.push((QuarantineEntity::Order, o.order_id.clone())),
                    Err(CoreError::Store(StoreError::Domain(error))) => {
                        pending.quarantine.push(QuarantineEntry {
                            entity: QuarantineEntity::Order,
                            legacy_key: o.order_id.clone(),
                            kinds: "core-refused".to_owned(),
                            reason: format!("its payment could not be opened in the core: {error}"),
                            raw: order_json(o),
                        });
                    }
                    Err(other) => return Err(other),
                }
            }
            Ok(draft) => pending.orders.push((o.clone(), draft)),
        }
        Ok(())
    }

    /// Writes what is pending with the checkpoint, in one unit. A product the core refuses
    /// (its SKU code taken by another product in the core) is quarantined alone and the rest
    /// written again.
    async fn flush(
        &self,
        shop: &SocialShop,
        state: MigrationState,
        pending: &mut Pending,
        checkpoint: Checkpoint,
        run: &mut MerchantRun,
    ) -> Result<Vec<Imported>, CoreError> {
        self.flush_then(shop, state, pending, checkpoint, run, None).await
    }

    /// [`Engine::flush`], moving the merchant on to `then` in the same unit.
    async fn flush_then(
        &self,
        shop: &SocialShop,
        state: MigrationState,
        pending: &mut Pending,
        checkpoint: Checkpoint,
        run: &mut MerchantRun,
        then: Option<(MigrationState, Progress)>,
    ) -> Result<Vec<Imported>, CoreError> {
        if let Some(throttle) = &self.options.throttle {
            throttle.pace().await;
        }
        let taken = std::mem::take(pending);
        let quarantined = taken.quarantine.len() as u64;
        let rows = taken.rows;
        let mut batch = self.batch(shop, taken, checkpoint.to_string()).await?;
        let store = self.core().store();
        let outcomes = match store
            .apply_migration_batch_then(self.ctx(), shop.merchant_id, state, batch.clone(), then.clone())
            .await
        {
            Err(StoreError::Conflict(_)) if !batch.products.is_empty() => {
                // One by one, to find the product the core refuses.
                let products = std::mem::take(&mut batch.products);
                for copy in products {
                    let one = MigrationBatch {
                        products: vec![copy.clone()],
                        checkpoint: record_checkpoint_unchanged(store, shop.merchant_id).await?,
                        ..MigrationBatch::default()
                    };
                    if let Err(StoreError::Conflict(reason)) =
                        store.apply_migration_batch(self.ctx(), shop.merchant_id, state, one).await
                    {
                        let social = copy.ids.social_product_id.clone();
                        batch.resolved.retain(|(e, k)| !(*e == QuarantineEntity::Product && *k == social));
                        batch.quarantine.push(QuarantineEntry {
                            entity: QuarantineEntity::Product,
                            legacy_key: social.clone(),
                            kinds: "core-refused".to_owned(),
                            reason,
                            raw: serde_json::json!({"product_id": social}).to_string(),
                        });
                    }
                }
                store
                    .apply_migration_batch_then(self.ctx(), shop.merchant_id, state, batch.clone(), then)
                    .await?
            }
            other => other?,
        };
        if let Some(throttle) = self.options.throttle.as_ref().filter(|t| t.probe) {
            // No server feeds the window: time the live read path now.
            let started = Instant::now();
            store.social_shop(&shop.shop_id).await?;
            self.gateway.legacy().shop_head(&shop.shop_id).await?;
            throttle.window.record(started.elapsed());
        }
        let refused = outcomes.iter().filter(|o| matches!(o, Imported::Refused(_))).count() as u64;
        run.rows += rows;
        run.quarantined += quarantined + refused;
        Ok(outcomes)
    }

    /// A batch with core ids: those the id map holds, new ones for rows not seen before.
    async fn batch(
        &self,
        shop: &SocialShop,
        pending: Pending,
        checkpoint: String,
    ) -> Result<MigrationBatch, CoreError> {
        let store = self.core().store();
        let mut resolved = pending.resolved;
        let product_ids: Vec<String> = pending.products.iter().map(|(p, ..)| p.product_id.clone()).collect();
        let mut sku_social: Vec<String> =
            pending.products.iter().flat_map(|(p, ..)| p.skus.iter().map(|s| s.sku_id.clone())).collect();
        sku_social
            .extend(pending.orders.iter().flat_map(|(_, d)| d.lines.iter().map(|l| l.social_sku_id.clone())));
        sku_social.sort();
        sku_social.dedup();
        let product_map: HashMap<String, String> = if product_ids.is_empty() {
            HashMap::new()
        } else {
            store
                .core_ids(IdKind::Product, product_ids)
                .await?
                .into_iter()
                .map(|m| (m.social_id, m.core_id))
                .collect()
        };
        let sku_map: HashMap<String, String> = if sku_social.is_empty() {
            HashMap::new()
        } else {
            store
                .core_ids(IdKind::Sku, sku_social)
                .await?
                .into_iter()
                .map(|m| (m.social_id, m.core_id))
                .collect()
        };
        let mut sku_new: HashMap<String, SkuId> = HashMap::new();
        let mut categories: HashMap<String, Category> = HashMap::new();
        let mut products = Vec::with_capacity(pending.products.len());
        for (p, draft, listed) in pending.products {
            let product_id = match product_map.get(&p.product_id) {
                Some(core) => parse_core_id::<ProductId>(core)?,
                None => jembatan_store::new_id(),
            };
            let mut sku_ids = Vec::with_capacity(draft.skus.len());
            let mut social_sku_ids = Vec::with_capacity(draft.skus.len());
            for (social, _) in &draft.skus {
                let id = match sku_map.get(social) {
                    Some(core) => parse_core_id::<SkuId>(core)?,
                    None => *sku_new.entry(social.clone()).or_insert_with(jembatan_store::new_id),
                };
                sku_ids.push(id);
                social_sku_ids.push(social.clone());
            }
            for (social, _) in &draft.skus {
                categories.insert(social.clone(), draft.category);
            }
            resolved.push((QuarantineEntity::Product, p.product_id.clone()));
            products.push(SocialProductCopy {
                product: draft.into_new_product(shop.merchant_id),
                ids: SocialProductIds {
                    product_id,
                    social_product_id: p.product_id.clone(),
                    sku_ids,
                    social_sku_ids,
                },
                listed,
            });
        }
        let mut quarantine = pending.quarantine;
        let mut orders = Vec::with_capacity(pending.orders.len());
        let mut buyer_refs: std::collections::BTreeMap<String, String> = std::collections::BTreeMap::new();
        'orders: for (o, draft) in pending.orders {
            let mut lines = Vec::with_capacity(draft.lines.len());
            let mut priced = Vec::with_capacity(draft.lines.len());
            for line in &draft.lines {
                let sku_id = match (sku_map.get(&line.social_sku_id), sku_new.get(&line.social_sku_id)) {
                    (Some(core), _) => parse_core_id::<SkuId>(core)?,
                    (None, Some(id)) => *id,
                    (None, None) => {
                        quarantine.push(QuarantineEntry {
                            entity: QuarantineEntity::Order,
                            legacy_key: o.order_id.clone(),
                            kinds: "product-quarantined".to_owned(),
                            reason: format!(
                                "SKU {} of product {} is not in the core (its product is quarantined)",
                                line.social_sku_id, line.social_product_id
                            ),
                            raw: order_json(&o),
                        });
                        continue 'orders;
                    }
                };
                lines.push(CheckoutLine { sku_id, quantity: line.quantity });
                priced.push(PricedSku {
                    sku_id,
                    merchant_id: shop.merchant_id,
                    price: line.unit_price,
                    category: categories.get(&line.social_sku_id).copied().unwrap_or(Category::Home),
                });
            }
            let buyer = match SocialId::parse("buyer_id", &o.buyer_id) {
                Ok(buyer) => buyer,
                Err(error) => {
                    quarantine.push(QuarantineEntry {
                        entity: QuarantineEntity::Order,
                        legacy_key: o.order_id.clone(),
                        kinds: "bad-buyer-id".to_owned(),
                        reason: error.to_string(),
                        raw: order_json(&o),
                    });
                    continue;
                }
            };
            let buyer_ref = self.gateway.buyer_ref(&buyer);
            buyer_refs.insert(buyer_ref.as_str().to_owned(), buyer.as_str().to_owned());
            let request = match CheckoutRequest::new(
                Channel::Social,
                buyer_ref,
                lines,
                draft.address.clone(),
                draft.payment_method,
            ) {
                Ok(request) => request,
                Err(error) => {
                    quarantine.push(QuarantineEntry {
                        entity: QuarantineEntity::Order,
                        legacy_key: o.order_id.clone(),
                        kinds: "core-refused".to_owned(),
                        reason: error.to_string(),
                        raw: order_json(&o),
                    });
                    continue;
                }
            };
            orders.push(ImportedOrder {
                social_order_id: o.order_id.clone(),
                request,
                priced,
                status: draft.status,
                placed_at: Timestamp::from_unix_ms(o.create_time.saturating_mul(1000)),
            });
        }
        // The social side keeps the link from each reference to its user (for the contract's
        // buyer ids once the order is the core's), one unit per batch.
        self.gateway.legacy().remember_buyer_refs(buyer_refs.into_iter().collect()).await?;
        Ok(MigrationBatch { products, orders, quarantine, resolved, rows: pending.rows, checkpoint })
    }

    // ---- catch-up ---------------------------------------------------------------------------

    /// Applies the shop's changes after the checkpoint until a round leaves few enough.
    /// Returns whether it settled.
    async fn catch_up(
        &self,
        shop: &SocialShop,
        record: &MigrationMerchantRecord,
        mut tf: ShopTransform,
        run: &mut MerchantRun,
    ) -> Result<(ShopTransform, bool), CoreError> {
        let mut seq = caught_up(record);
        for _ in 0..self.options.catch_up_rounds {
            let (applied, next) =
                self.apply_changes(shop, MigrationState::CatchingUp, &mut tf, seq, run, None).await?;
            seq = next;
            if applied < self.options.catch_up_lag {
                return Ok((tf, true));
            }
        }
        Ok((tf, false))
    }

    /// One page of the shop's changes after `seq`: the rows they name read again whole and
    /// written with the new checkpoint (or, in a cutover, returned for the cutover's unit).
    /// Returns how many changes were read and the last number.
    async fn apply_changes(
        &self,
        shop: &SocialShop,
        state: MigrationState,
        tf: &mut ShopTransform,
        seq: i64,
        run: &mut MerchantRun,
        into: Option<&mut Pending>,
    ) -> Result<(usize, i64), CoreError> {
        let legacy = self.gateway.legacy();
        let changes = legacy.shop_changes(&shop.shop_id, seq, CHANGES_PAGE).await?;
        let Some(last) = changes.last().map(|c| c.shop_seq) else {
            return Ok((0, seq));
        };
        let mut product_keys = BTreeSet::new();
        let mut order_keys = BTreeSet::new();
        for change in &changes {
            match change.table_name.as_str() {
                "products" => {
                    product_keys.insert(change.row_key.clone());
                }
                "orders" | "order_items" => {
                    order_keys.insert(change.row_key.clone());
                }
                _ => {}
            }
        }
        let mut local = Pending::default();
        let pending = match into {
            Some(pending) => pending,
            None => &mut local,
        };
        self.stage_keys(shop, tf, pending, &product_keys, &order_keys).await?;
        if state != MigrationState::Fenced {
            self.flush(shop, state, pending, Checkpoint::Changes(last), run).await?;
        }
        Ok((changes.len(), last))
    }

    /// Reads these rows again and stages them.
    async fn stage_keys(
        &self,
        shop: &SocialShop,
        tf: &mut ShopTransform,
        pending: &mut Pending,
        product_keys: &BTreeSet<String>,
        order_keys: &BTreeSet<String>,
    ) -> Result<(), CoreError> {
        let legacy = self.gateway.legacy();
        for key in product_keys {
            match legacy.product(&shop.shop_id, key).await? {
                Some(p) if p.status != PRODUCT_DELETED => {
                    let drafted = tf.product(&p);
                    pending.rows += 1 + p.skus.len() as u64;
                    stage_product(pending, &p, drafted);
                }
                Some(p) => {
                    // Deleted after it was copied: the core keeps it, unlisted (its orders
                    // still point at it).
                    let delisted = LegacyProduct { status: PRODUCT_DELISTED, ..p.clone() };
                    tf.forget(key);
                    if let Ok(draft) = ShopTransform::new(&shop.shop_id).product(&delisted) {
                        pending.rows += 1;
                        pending.products.push((p, draft, false));
                    }
                    tf.deleted(key);
                }
                None => tf.deleted(key),
            }
        }
        for key in order_keys {
            if let Some(o) = legacy.order(key).await?
                && o.shop_id == shop.shop_id
            {
                pending.rows += 1 + o.items.len() as u64;
                self.stage_order(shop, tf, pending, &o).await?;
            }
        }
        Ok(())
    }

    // ---- verify -----------------------------------------------------------------------------

    /// Verifies; rows that changed while comparing are caught up and compared again.
    async fn verify_until_settled(
        &self,
        shop: &SocialShop,
        record: &MigrationMerchantRecord,
        transform: &mut Option<ShopTransform>,
        run: &mut MerchantRun,
    ) -> Result<Verdict, CoreError> {
        for _ in 0..VERIFY_TRIES {
            let record = self.reload(record.merchant_id).await?;
            let caught_up = caught_up(&record);
            let outcome =
                verify::verify(self.core(), self.gateway.legacy(), shop, None, caught_up, "before_cutover")
                    .await?;
            match outcome {
                Verdict::Moving => {
                    let tf = match transform.take() {
                        Some(tf) => tf,
                        None => self.prime(&shop.shop_id).await?,
                    };
                    let record = self.reload(record.merchant_id).await?;
                    let (tf, _) = self.catch_up(shop, &record, tf, run).await?;
                    *transform = Some(tf);
                }
                other => return Ok(other),
            }
        }
        Ok(Verdict::Moving)
    }

    // ---- cutover ----------------------------------------------------------------------------

    /// Fence, last changes, flip — or, over budget, back to catching up.
    async fn cut_over(
        &self,
        shop: &SocialShop,
        record: MigrationMerchantRecord,
        mut tf: ShopTransform,
        run: &mut MerchantRun,
    ) -> Result<(ShopTransform, MigrationMerchantRecord), CoreError> {
        let store = self.core().store();
        let legacy = self.gateway.legacy();
        let budget = self.options.cutover_budget;
        let started = Instant::now();
        let record = store.migration_fence(self.ctx(), record.merchant_id).await?;
        legacy.fence(&shop.shop_id, "moving to the core", self.ctx().now.unix_ms()).await?;
        let mut seq = caught_up(&record);
        let mut pending = Pending::default();
        let mut keys = (BTreeSet::new(), BTreeSet::new());
        loop {
            let changes = legacy.shop_changes(&shop.shop_id, seq, CHANGES_PAGE).await?;
            for change in &changes {
                match change.table_name.as_str() {
                    "products" => keys.0.insert(change.row_key.clone()),
                    "orders" | "order_items" => keys.1.insert(change.row_key.clone()),
                    _ => false,
                };
            }
            match changes.last() {
                Some(last) => seq = last.shop_seq,
                None => break,
            }
            if started.elapsed() > budget {
                break;
            }
        }
        let outcome = async {
            self.stage_keys(shop, &mut tf, &mut pending, &keys.0, &keys.1).await?;
            let cancelled = self.cancelled_orders(&shop.shop_id).await?;
            let rows = pending.rows;
            let quarantined = pending.quarantine.len() as u64;
            let expected_products: verify::Side = pending
                .products
                .iter()
                .map(|(p, draft, listed)| (p.product_id.clone(), verify::normal_product(draft, *listed)))
                .collect();
            let expected_orders: verify::Side = pending
                .orders
                .iter()
                .map(|(o, draft)| (o.order_id.clone(), verify::normal_order(draft)))
                .collect();
            let checked = (expected_products.len() + expected_orders.len()) as u64;
            let check = SpotCheck {
                products: expected_products.keys().cloned().collect(),
                orders: expected_orders.keys().cloned().collect(),
                check: Box::new(verify::spot_check(expected_products, expected_orders)),
            };
            let batch =
                self.batch(shop, std::mem::take(&mut pending), Checkpoint::Changes(seq).to_string()).await?;
            if started.elapsed() > budget {
                return Ok::<_, CoreError>(None);
            }
            let pause = started.elapsed().as_micros() as i64;
            store.migration_cut_over(self.ctx(), shop.merchant_id, batch, cancelled, pause, check).await?;
            Ok(Some((rows, quarantined, checked)))
        }
        .await;
        match outcome {
            Ok(Some((rows, quarantined, checked))) => {
                let pause = started.elapsed().as_micros() as i64;
                run.rows += rows;
                run.quarantined += quarantined;
                run.cutover_pause_us = Some(pause);
                metrics::histogram!("jembatan_migration_cutover_pause_seconds").record(pause as f64 / 1e6);
                self.record_spot_check(shop, seq, checked, None, Some(pause)).await?;
                Ok((tf, self.reload(shop.merchant_id).await?))
            }
            Ok(None) => {
                let reason = format!(
                    "the cutover took over its budget of {} ms ({} ms): the shop went back to the legacy store and will be tried again",
                    budget.as_millis(),
                    started.elapsed().as_millis()
                );
                Ok((tf, self.abort_cutover(shop, &record, reason).await?))
            }
            Err(CoreError::Store(StoreError::Conflict(reason))) if reason.starts_with(SPOT_CHECK_FAILED) => {
                let differences: serde_json::Value =
                    serde_json::from_str(&reason[SPOT_CHECK_FAILED.len()..]).unwrap_or_default();
                self.record_spot_check(shop, seq, 0, Some(differences), None).await?;
                let record = self.abort_cutover(shop, &record, reason).await?;
                // Stopped for the operator: a row the core does not read back as written.
                let record =
                    self.set_state(&record, MigrationState::Quarantined, Progress::default()).await?;
                Ok((tf, record))
            }
            Err(error) => {
                self.abort_cutover(shop, &record, format!("the cutover failed: {error}")).await?;
                Err(error)
            }
        }
    }

    /// Stores the cutover's spot check: matched, or the differences that stopped it.
    async fn record_spot_check(
        &self,
        shop: &SocialShop,
        seq: i64,
        checked: u64,
        differences: Option<serde_json::Value>,
        pause_us: Option<i64>,
    ) -> Result<(), CoreError> {
        let count = differences.as_ref().and_then(|d| d.as_array()).map_or(0, |d| d.len() as u64);
        let record = jembatan_store::migration_run::VerificationRecord {
            merchant_id: shop.merchant_id,
            verification_id: uuid::Uuid::now_v7().to_string(),
            phase: "after_cutover".to_owned(),
            matched: differences.is_none(),
            legacy_rows: checked,
            core_rows: checked,
            differences: count,
            report: serde_json::json!({
                "shop_id": shop.shop_id,
                "spot_check": "the rows of the last changes, read back inside the cutover's transaction",
                "caught_up_to": seq,
                "rows_checked": checked,
                "differences": differences.unwrap_or_else(|| serde_json::json!([])),
            }),
            created_at_ms: self.core().clock().now().unix_ms(),
        };
        Ok(self.core().store().record_verification_and_pause(self.ctx(), record, pause_us).await?)
    }

    /// Gives a fenced shop back to the legacy store and the merchant back to catching up.
    async fn abort_cutover(
        &self,
        shop: &SocialShop,
        record: &MigrationMerchantRecord,
        reason: String,
    ) -> Result<MigrationMerchantRecord, CoreError> {
        let store = self.core().store();
        match store.set_shop_owner(self.ctx(), &shop.shop_id, Owner::Migrating, Owner::Legacy).await {
            Ok(_) | Err(StoreError::Conflict(_)) => {}
            Err(error) => return Err(error.into()),
        }
        if store.social_shop(&shop.shop_id).await?.is_some_and(|s| s.owner == Owner::Legacy) {
            self.gateway.legacy().unfence(&shop.shop_id).await?;
        }
        tracing::info!(shop_id = %shop.shop_id, %reason, "cutover aborted");
        self.set_state(
            record,
            MigrationState::CatchingUp,
            Progress { last_error: Some(Some(reason)), ..Progress::default() },
        )
        .await
    }

    /// The shop's cancelled legacy orders (their units went back to the legacy stock).
    async fn cancelled_orders(&self, shop_id: &str) -> Result<Vec<String>, CoreError> {
        let mut out: Vec<String> = Vec::new();
        loop {
            let before = out.last().cloned().unwrap_or_default();
            let page = self
                .gateway
                .legacy()
                .orders(shop_id, Some(LegacyStatus::Cancelled.code()), &before, PAGE)
                .await?;
            let done = (page.len() as u32) < PAGE;
            out.extend(page.into_iter().map(|o| o.order_id));
            if done {
                return Ok(out);
            }
        }
    }
}

/// The checkpoint a merchant has now (a product retried alone does not move it).
async fn record_checkpoint_unchanged(
    store: &jembatan_store::Store,
    merchant_id: MerchantId,
) -> Result<String, CoreError> {
    Ok(store
        .migration_merchant(merchant_id)
        .await?
        .and_then(|r| r.checkpoint)
        .unwrap_or_else(|| Checkpoint::Products(String::new()).to_string()))
}

/// The shop's change number the core has applied for this merchant: its catch-up checkpoint,
/// or the snapshot's before the catch-up starts.
fn caught_up(record: &MigrationMerchantRecord) -> i64 {
    match record.checkpoint.as_deref().and_then(Checkpoint::parse) {
        Some(Checkpoint::Changes(seq)) => seq,
        _ => record.snapshot_position.unwrap_or(0),
    }
}

fn stage_product(pending: &mut Pending, p: &LegacyProduct, drafted: Result<ProductDraft, Vec<Defect>>) {
    match drafted {
        Ok(draft) => pending.products.push((p.clone(), draft, p.status == PRODUCT_LIVE)),
        Err(defects) => pending.quarantine.push(QuarantineEntry {
            entity: QuarantineEntity::Product,
            legacy_key: p.product_id.clone(),
            kinds: kinds(&defects),
            reason: reasons(&defects),
            raw: product_json(p),
        }),
    }
}

fn quarantine_order(o: &LegacyOrder, defects: &[Defect]) -> QuarantineEntry {
    QuarantineEntry {
        entity: QuarantineEntity::Order,
        legacy_key: o.order_id.clone(),
        kinds: kinds(defects),
        reason: reasons(defects),
        raw: order_json(o),
    }
}

fn kinds(defects: &[Defect]) -> String {
    let kinds: BTreeSet<&str> = defects.iter().map(|d| d.kind.as_str()).collect();
    kinds.into_iter().collect::<Vec<_>>().join(",")
}

fn reasons(defects: &[Defect]) -> String {
    defects.iter().map(|d| format!("{}: {}", d.field, d.reason)).collect::<Vec<_>>().join("; ")
}

pub(crate) fn product_json(p: &LegacyProduct) -> String {
    serde_json::json!({
        "shop_id": p.shop_id, "product_id": p.product_id, "title": p.title, "category": p.category,
        "status": p.status, "skus_problem": p.skus_problem,
        "skus": p.skus.iter().map(|s| serde_json::json!({
            "sku_id": s.sku_id, "seller_sku": s.seller_sku, "name": s.name, "price": s.price, "stock": s.stock,
        })).collect::<Vec<_>>(),
    })
    .to_string()
}

pub(crate) fn order_json(o: &LegacyOrder) -> String {
    let items: Vec<BTreeMap<&str, serde_json::Value>> = o
        .items
        .iter()
        .map(|i| {
            BTreeMap::from([
                ("product_id", i.product_id.clone().into()),
                ("sku_id", i.sku_id.clone().into()),
                ("quantity", i.quantity.into()),
                ("unit_price", i.unit_price.clone().into()),
            ])
        })
        .collect();
    serde_json::json!({
        "shop_id": o.shop_id, "order_id": o.order_id, "buyer_id": o.buyer_id, "status": o.status,
        "payment_method": o.payment_method, "total_amount": o.total_amount,
        "recipient_phone": o.recipient_phone, "city": o.city, "province": o.province,
        "postal_code": o.postal_code, "create_time": o.create_time, "items": items,
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoints_read_back_what_they_wrote() {
        for checkpoint in [
            Checkpoint::Products(String::new()),
            Checkpoint::Products("123".into()),
            Checkpoint::Orders("77".into()),
            Checkpoint::Changes(42),
        ] {
            assert_eq!(Checkpoint::parse(&checkpoint.to_string()), Some(checkpoint));
        }
        assert_eq!(Checkpoint::parse("changes:x"), None);
        assert_eq!(Checkpoint::parse("nonsense"), None);
    }
}
