//! `migrate plan`: choose merchants into a wave and say what moving them means — merchants,
//! rows, GMV and the defects the copy will meet — before anything moves (DESIGN.md §6 step 1).
//!
//! 1. Every shop's sizes come from grouped counts in the legacy store (no query per shop); GMV
//!    needs the order totals parsed, so all orders are read (page by page) only when the
//!    selection compares GMV.
//! 2. The selection picks shops in shop id order; a shop already owned by the core, being
//!    moved, or in a wave (not rolled back) is skipped with the reason, as is one whose merchant
//!    the core cannot take (no NIB, no province). The limit counts the wave's merchants.
//! 3. The selected shops' products and orders are read page by page, a bounded chunk of shops
//!    at a time, through the migration's [`transform`](super::transform): what it refuses is the
//!    expected defects. Memory holds one chunk, however large the wave.
//! 4. Unless a dry run: each shop is enrolled (its core merchant), and the wave with its
//!    merchants is written in units of at most 500 merchants, each with its journal. A dry run
//!    writes nothing to either store.

use std::collections::{BTreeMap, HashMap};

use futures::StreamExt;
use jembatan_domain::migration::{Selection, ShopFacts};
use jembatan_domain::social::{SocialId, parse_price};
use jembatan_domain::{DomainError, MerchantId, Money, Principal};
use jembatan_store::LegacyStore;
use jembatan_store::legacy_facts::{PAGE_ROWS_MAX, SHOPS_PER_QUERY_MAX, ShopSizes};
use jembatan_store::migration::{LOOKUP_SHOPS_MAX, NewWave, PLAN_UNIT_MERCHANTS_MAX, PlannedMerchant};
use jembatan_store::social::Owner;

use super::transform::{self, Defect, DefectKind, Entity, ShopTransform};
use crate::authz::{self, Access};
use crate::{Core, CoreError};

/// Rows of one page read from the legacy store.
pub const PAGE_ROWS: u32 = 2_000;
/// Rows (by the grouped counts) of the shops transformed together.
pub const CHUNK_ROWS_MAX: u64 = 50_000;
/// Shops enrolled at once (their units share the SQLite writer's groups).
pub const ENROL_CONCURRENCY: usize = 16;
/// Defects listed in the report as examples (all are counted).
pub const DEFECT_EXAMPLES_MAX: usize = 20;
/// Skipped shops listed in the report (all are counted by reason).
pub const SKIPPED_LISTED_MAX: usize = 100;
/// Longest wave name, in bytes.
pub const WAVE_NAME_BYTES_MAX: usize = 64;
/// Largest merchant limit of a wave (the stored limit is a signed 64-bit integer).
pub const WAVE_MERCHANTS_LIMIT_MAX: u64 = 100_000_000;

/// What the operator asks for.
#[derive(Debug, Clone)]
pub struct PlanRequest {
    pub wave: String,
    pub selection: Selection,
    pub merchants_limit: Option<u64>,
    pub dry_run: bool,
}

/// Why a selected shop is not planned. `code` is stable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub shop_id: String,
    /// `core-owned`, `being-moved`, `in-wave`, `cannot-enrol`.
    pub code: &'static str,
    pub reason: String,
}

/// One shop of the plan with what it counted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedShop {
    pub shop_id: String,
    /// `None` in a dry run for a shop not enrolled yet.
    pub merchant_id: Option<MerchantId>,
    pub products: u64,
    pub skus: u64,
    pub orders: u64,
    pub order_items: u64,
    pub gmv: Money,
    pub defects: u64,
}

impl PlannedShop {
    /// Rows a move copies: products, SKUs, orders and items.
    pub fn rows(&self) -> u64 {
        self.products + self.skus + self.orders + self.order_items
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefectCount {
    pub entity: Entity,
    pub kind: DefectKind,
    pub count: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanReport {
    pub wave: String,
    pub selection: String,
    pub merchants_limit: Option<u64>,
    pub dry_run: bool,
    /// Shops the selection matched (before skips and the limit).
    pub matched: u64,
    pub shops: Vec<PlannedShop>,
    pub merchants: u64,
    pub products: u64,
    pub skus: u64,
    pub orders: u64,
    pub order_items: u64,
    pub rows: u64,
    pub gmv: Money,
    pub defects_total: u64,
    pub defects: Vec<DefectCount>,
    pub defect_examples: Vec<Defect>,
    pub skipped_total: u64,
    /// (code, shops) of every skip.
    pub skipped_by_code: Vec<(&'static str, u64)>,
    pub skipped: Vec<Skipped>,
}

/// Plans (or, with `dry_run`, previews) a wave. Operator only.
pub async fn plan(
    core: &Core,
    legacy: &LegacyStore,
    who: &Principal,
    request: PlanRequest,
) -> Result<PlanReport, CoreError> {
    authz::check(who, Access::PlanMigration)?;
    check_wave_name(&request.wave)?;
    check_limit(request.merchants_limit)?;
    let selection_text = request.selection.to_string();
    let store = core.store();
    let existing = store.wave(&request.wave).await?;
    if let Some(wave) = &existing
        && (wave.selection != selection_text || wave.merchants_limit != request.merchants_limit)
    {
        return Err(CoreError::Store(jembatan_store::StoreError::Conflict(format!(
            "wave `{}` exists with selection `{}` and limit {}: choose another name, or repeat its selection and limit to add to it",
            wave.name,
            wave.selection,
            wave.merchants_limit.map_or_else(|| "none".to_owned(), |n| n.to_string())
        ))));
    }
    let room =
        request.merchants_limit.map(|n| n.saturating_sub(existing.as_ref().map_or(0, |w| w.merchants)));

    let sizes = legacy.shop_sizes().await?;
    let gmv_of = if request.selection.reads_gmv() { Some(gmv_of_every_shop(legacy).await?) } else { None };
    let matched: Vec<&ShopSizes> = sizes
        .iter()
        .filter(|s| {
            let gmv = gmv_of.as_ref().and_then(|g| g.get(&s.shop_id)).copied().unwrap_or(Money::ZERO);
            facts(s, gmv).is_some_and(|f| request.selection.matches(&f))
        })
        .collect();

    let now = core.clock().now();
    let mut skipped = Vec::new();
    let mut chosen: Vec<(&ShopSizes, Option<MerchantId>)> = Vec::new();
    'shops: for group in matched.chunks(LOOKUP_SHOPS_MAX) {
        let ids: Vec<String> = group.iter().map(|s| s.shop_id.clone()).collect();
        let owners: HashMap<String, _> =
            store.shop_owners(ids.clone()).await?.into_iter().map(|o| (o.shop_id.clone(), o)).collect();
        let rows: HashMap<String, _> = store
            .migration_merchants_of_shops(ids)
            .await?
            .into_iter()
            .map(|m| (m.shop_id.clone(), m))
            .collect();
        for shop in group {
            if room.is_some_and(|room| chosen.len() as u64 >= room) {
                break 'shops;
            }
            let skip = |code, reason: String| Skipped { shop_id: shop.shop_id.clone(), code, reason };
            let owner = owners.get(&shop.shop_id);
            if let Some(row) = rows.get(&shop.shop_id).filter(|r| !r.state.may_be_planned()) {
                skipped.push(skip("in-wave", format!("already in wave `{}` ({})", row.wave, row.state)));
            } else if owner.is_some_and(|o| o.owner == Owner::Core) {
                skipped.push(skip("core-owned", "the core owns it already".to_owned()));
            } else if owner.is_some_and(|o| o.owner == Owner::Migrating) {
                skipped.push(skip("being-moved", "a move is under way (`migrating`)".to_owned()));
            } else if let Some(owner) = owner {
                chosen.push((shop, Some(owner.merchant_id)));
            } else {
                match transform::merchant((*shop).into(), jembatan_store::new_id(), now) {
                    Ok(_) => chosen.push((shop, None)),
                    Err(defects) => {
                        let reasons: Vec<String> = defects
                            .iter()
                            .map(|d| format!("{} `{}`: {}", d.field, d.raw, d.reason))
                            .collect();
                        skipped.push(skip(
                            "cannot-enrol",
                            format!("its merchant cannot be made: {}", reasons.join("; ")),
                        ));
                    }
                }
            }
        }
    }

    let mut tally = Tally::default();
    let mut shops: Vec<PlannedShop> = Vec::with_capacity(chosen.len());
    for chunk in chunks(&chosen) {
        shops.extend(scan_chunk(legacy, chunk, &mut tally).await?);
    }

    if !request.dry_run {
        enrol_and_record(core, legacy, who, &request, &selection_text, &mut shops, &mut skipped).await?;
    }
    Ok(report(request, selection_text, matched.len() as u64, shops, tally, skipped))
}

fn check_wave_name(name: &str) -> Result<(), DomainError> {
    let ok = !name.is_empty()
        && name.len() <= WAVE_NAME_BYTES_MAX
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(DomainError::invalid(
            "name",
            "a wave name is 1 to 64 characters of A-Z, a-z, 0-9, `-`, `_` or `.`",
        ))
    }
}

fn check_limit(limit: Option<u64>) -> Result<(), DomainError> {
    match limit {
        Some(n) if !(1..=WAVE_MERCHANTS_LIMIT_MAX).contains(&n) => Err(DomainError::invalid(
            "limit",
            format!("a wave's merchant limit is 1 to {WAVE_MERCHANTS_LIMIT_MAX}; leave it out for no limit"),
        )),
        _ => Ok(()),
    }
}

/// The facts a selection reads; `None` for a shop whose id is not a social id (never selected).
fn facts(s: &ShopSizes, gmv: Money) -> Option<ShopFacts> {
    Some(ShopFacts {
        shop_id: SocialId::parse("shop_id", &s.shop_id).ok()?,
        seller_type: s.seller_type.clone(),
        province: s.province.clone(),
        city: s.city.clone(),
        orders: s.orders,
        products: s.products,
        gmv,
        rows: s.products + s.orders + s.order_items,
    })
}

/// GMV of every shop: one pass over all orders, page by page.
async fn gmv_of_every_shop(legacy: &LegacyStore) -> Result<HashMap<String, Money>, CoreError> {
    let mut gmv: HashMap<String, Money> = HashMap::new();
    let mut after = (String::new(), String::new());
    loop {
        let page = legacy.order_totals_page(after.clone(), PAGE_ROWS_MAX).await?;
        for order in &page {
            if let (true, Ok(total)) =
                (transform::counts_toward_gmv(order.status), parse_price(&order.total_amount))
            {
                let sum = gmv.entry(order.shop_id.clone()).or_insert(Money::ZERO);
                *sum = sum.checked_add(total)?;
            }
        }
        match page.last() {
            Some(last) if page.len() as u32 == PAGE_ROWS_MAX => {
                after = (last.shop_id.clone(), last.order_id.clone())
            }
            _ => return Ok(gmv),
        }
    }
}

/// Groups of chosen shops small enough to transform together.
fn chunks<'a>(
    chosen: &'a [(&'a ShopSizes, Option<MerchantId>)],
) -> Vec<&'a [(&'a ShopSizes, Option<MerchantId>)]> {
    let mut out = Vec::new();
    let (mut start, mut rows) = (0, 0);
    for (index, (shop, _)) in chosen.iter().enumerate() {
        let shop_rows = shop.products + shop.orders + shop.order_items;
        if index > start && (index - start >= SHOPS_PER_QUERY_MAX || rows + shop_rows > CHUNK_ROWS_MAX) {
            out.push(&chosen[start..index]);
            (start, rows) = (index, 0);
        }
        rows += shop_rows;
    }
    if start < chosen.len() {
        out.push(&chosen[start..]);
    }
    out
}

#[derive(Default)]
struct Tally {
    defects: BTreeMap<(Entity, DefectKind), u64>,
    examples: Vec<Defect>,
}

impl Tally {
    fn add(&mut self, defects: Vec<Defect>, shop: &mut PlannedShop) {
        shop.defects += defects.len() as u64;
        for defect in defects {
            *self.defects.entry((defect.entity, defect.kind)).or_default() += 1;
            if self.examples.len() < DEFECT_EXAMPLES_MAX {
                self.examples.push(defect);
            }
        }
    }
}

/// Reads a chunk's products, then its orders, page by page, through the transform.
async fn scan_chunk(
    legacy: &LegacyStore,
    chunk: &[(&ShopSizes, Option<MerchantId>)],
    tally: &mut Tally,
) -> Result<Vec<PlannedShop>, CoreError> {
    let ids: Vec<String> = chunk.iter().map(|(s, _)| s.shop_id.clone()).collect();
    let mut shops: Vec<PlannedShop> = chunk
        .iter()
        .map(|(s, merchant_id)| PlannedShop {
            shop_id: s.shop_id.clone(),
            merchant_id: *merchant_id,
            products: 0,
            skus: 0,
            orders: 0,
            order_items: 0,
            gmv: Money::ZERO,
            defects: 0,
        })
        .collect();
    let index: HashMap<String, usize> = ids.iter().enumerate().map(|(i, id)| (id.clone(), i)).collect();
    let mut transforms: Vec<ShopTransform> = ids.iter().map(|id| ShopTransform::new(id)).collect();

    let mut after = (String::new(), String::new());
    loop {
        let page = legacy.products_of_shops(ids.clone(), after.clone(), PAGE_ROWS).await?;
        for row in &page {
            let at = index[&row.shop_id];
            let shop = &mut shops[at];
            if let Some(draft) = transforms[at].product_row(row) {
                shop.products += 1;
                shop.skus += row.skus.as_ref().map_or(0, |skus| skus.len() as u64);
                if let Err(defects) = draft {
                    tally.add(defects, shop);
                }
            }
        }
        match page.last() {
            Some(last) if page.len() as u32 == PAGE_ROWS => {
                after = (last.shop_id.clone(), last.product_id.clone())
            }
            _ => break,
        }
    }
    let mut after = (String::new(), String::new());
    loop {
        let page = legacy.orders_of_shops(ids.clone(), after.clone(), PAGE_ROWS).await?;
        for order in &page {
            let at = index[&order.shop_id];
            let shop = &mut shops[at];
            shop.orders += 1;
            shop.order_items += order.items.len() as u64;
            if let (true, Ok(total)) =
                (transform::counts_toward_gmv(order.status), parse_price(&order.total_amount))
            {
                shop.gmv = shop.gmv.checked_add(total)?;
            }
            if let Err(defects) = transforms[at].order(order) {
                tally.add(defects, shop);
            }
        }
        match page.last() {
            Some(last) if page.len() as u32 == PAGE_ROWS => {
                after = (last.shop_id.clone(), last.order_id.clone())
            }
            _ => break,
        }
    }
    Ok(shops)
}

/// Enrols the chosen shops not enrolled yet, then writes the wave in units.
async fn enrol_and_record(
    core: &Core,
    legacy: &LegacyStore,
    who: &Principal,
    request: &PlanRequest,
    selection: &str,
    shops: &mut Vec<PlannedShop>,
    skipped: &mut Vec<Skipped>,
) -> Result<(), CoreError> {
    let store = core.store();
    let to_enrol: Vec<usize> = (0..shops.len()).filter(|&i| shops[i].merchant_id.is_none()).collect();
    let enrolled: Vec<(usize, Result<MerchantId, CoreError>)> = futures::stream::iter(to_enrol)
        .map(|at| {
            let shop_id = shops[at].shop_id.clone();
            async move { (at, enrol(core, legacy, who, &shop_id).await) }
        })
        .buffer_unordered(ENROL_CONCURRENCY)
        .collect()
        .await;
    for (at, merchant_id) in enrolled {
        shops[at].merchant_id = Some(merchant_id?);
    }
    let wave = NewWave {
        name: request.wave.clone(),
        selection: selection.to_owned(),
        merchants_limit: request.merchants_limit,
    };
    let mut raced: HashMap<String, String> = HashMap::new();
    let batches: Vec<&[PlannedShop]> =
        if shops.is_empty() { vec![&[]] } else { shops.chunks(PLAN_UNIT_MERCHANTS_MAX).collect() };
    for batch in batches {
        let merchants = batch
            .iter()
            .map(|s| PlannedMerchant {
                merchant_id: s.merchant_id.expect("every shop is enrolled by now"),
                shop_id: s.shop_id.clone(),
                rows: s.rows(),
                gmv: s.gmv,
                defects_expected: s.defects,
            })
            .collect();
        let outcome = store.plan_wave(core.ctx(who), wave.clone(), merchants).await?;
        raced.extend(outcome.skipped);
    }
    // Planned by someone else between our read and our unit: skipped after all.
    shops.retain(|s| match raced.remove(&s.shop_id) {
        Some(reason) => {
            skipped.push(Skipped { shop_id: s.shop_id.clone(), code: "in-wave", reason });
            false
        }
        None => true,
    });
    Ok(())
}

async fn enrol(
    core: &Core,
    legacy: &LegacyStore,
    who: &Principal,
    shop_id: &str,
) -> Result<MerchantId, CoreError> {
    if let Some(shop) = core.store().social_shop(shop_id).await? {
        return Ok(shop.merchant_id);
    }
    let shop =
        legacy.shop(shop_id).await?.ok_or_else(|| jembatan_store::StoreError::not_found("shop", shop_id))?;
    let merchant = transform::merchant((&shop).into(), jembatan_store::new_id(), core.clock().now())
        .map_err(|defects| {
            let reasons: Vec<String> = defects.iter().map(|d| format!("{}: {}", d.field, d.reason)).collect();
            DomainError::invalid("shop", format!("shop {shop_id}: {}", reasons.join("; ")))
        })?;
    Ok(core.store().enrol_social_shop(core.ctx(who), shop_id.to_owned(), merchant).await?.merchant_id)
}

fn report(
    request: PlanRequest,
    selection: String,
    matched: u64,
    shops: Vec<PlannedShop>,
    tally: Tally,
    skipped: Vec<Skipped>,
) -> PlanReport {
    let sum = |f: fn(&PlannedShop) -> u64| shops.iter().map(f).sum::<u64>();
    let gmv = shops.iter().try_fold(Money::ZERO, |total, s| total.checked_add(s.gmv)).unwrap_or(Money::ZERO);
    let mut by_code: BTreeMap<&'static str, u64> = BTreeMap::new();
    for s in &skipped {
        *by_code.entry(s.code).or_default() += 1;
    }
    let defects: Vec<DefectCount> = tally
        .defects
        .into_iter()
        .map(|((entity, kind), count)| DefectCount { entity, kind, count })
        .collect();
    PlanReport {
        wave: request.wave,
        selection,
        merchants_limit: request.merchants_limit,
        dry_run: request.dry_run,
        matched,
        merchants: shops.len() as u64,
        products: sum(|s| s.products),
        skus: sum(|s| s.skus),
        orders: sum(|s| s.orders),
        order_items: sum(|s| s.order_items),
        rows: sum(PlannedShop::rows),
        gmv,
        defects_total: defects.iter().map(|d| d.count).sum(),
        defects,
        defect_examples: tally.examples,
        skipped_total: skipped.len() as u64,
        skipped_by_code: by_code.into_iter().collect(),
        skipped: skipped.into_iter().take(SKIPPED_LISTED_MAX).collect(),
        shops,
    }
}
