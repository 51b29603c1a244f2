//! `jembatan seed`: the deterministic generator of a realistic legacy social shop (DESIGN.md §5),
//! streamed in batches into a [`LegacyStore`].
//!
//! - **Deterministic.** Every merchant is generated from its own sub-seed of `(seed, merchant
//!   index)` by a PRNG written here (xoshiro256**, seeded by splitmix64), and every distribution
//!   uses only IEEE-exact arithmetic (no `ln`/`exp` of the platform's libm, whose last bits may
//!   differ): the same `(merchants, seed, defect rate)` gives byte-identical rows on any machine.
//!   Times are spread over the two years before [`HISTORY_END_S`], never read from the clock.
//! - **Ids** are digits from counters, with a distinct two-digit prefix per kind and fixed
//!   widths, so they never collide and sort (as text) in the order they are generated: every
//!   insert appends to the end of its B-trees.
//! - **Defects** come from a second PRNG stream per merchant, so changing the defect rate
//!   changes only the defective rows; each kind is drawn per eligible row and counted.
//! - **Streaming.** Batches of [`BATCH_MERCHANTS_DEFAULT`] merchants are generated on threads
//!   of their own (each batch from its merchants' sub-seeds, so the threads need no
//!   coordination) and handed over a bounded channel to the writer, in order: memory stays flat
//!   whatever the number of merchants.
//!
//! Floats here only shape random distributions (how many products, a price's spread); every
//! price becomes whole rupiah, rounded to Rp100/Rp500/Rp1000, before it is written.

mod words;

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jembatan_store::legacy::{
    Batch, LegacyBuyer, LegacyItem, LegacyOrder, LegacyProduct, LegacyShop, LegacySku, LegacyStore,
    PRODUCT_DELETED, PRODUCT_LIVE,
};
use words::{CATEGORIES, CategorySpec, PROVINCES, ProvinceSpec};

pub const SEED_DEFAULT: u64 = 42;
pub const DEFECT_RATE_DEFAULT: f64 = 0.01;
pub const MERCHANTS_MAX: u64 = 10_000_000;
/// Merchants per batch (one transaction); about 18,000 rows.
pub const BATCH_MERCHANTS_DEFAULT: u64 = 500;
pub const BATCH_MERCHANTS_MAX: u64 = 10_000;
pub const GENERATOR_THREADS_MAX: usize = 16;
pub const PRODUCTS_PER_MERCHANT_MAX: u64 = 2_000;
pub const ORDERS_PER_MERCHANT_MAX: u64 = 5_000;
pub const BUYERS_PER_MERCHANT: u64 = 10;
pub const SKUS_PER_PRODUCT_MAX: usize = 5;
pub const ITEMS_PER_ORDER_MAX: usize = 3;
pub const STOCK_MAX: i64 = 500;
/// The end of the generated history: 2026-12-01T00:00:00Z. Fixed, so that data does not depend
/// on the day it was generated.
pub const HISTORY_END_S: i64 = 1_796_083_200;
pub const HISTORY_DAYS: i64 = 730;
/// A delisted product (hidden by its seller, not deleted).
pub const PRODUCT_DELISTED: i64 = 2;

const DAY_S: i64 = 86_400;
/// A shop lists its catalogue in its first month, and sells after it.
const LISTING_DAYS: i64 = 30;
const PRICE_RUPIAH_MIN: i64 = 1_000;
const PRICE_RUPIAH_MAX: i64 = 100_000_000;
/// Median products per merchant and the spread: a log-normal with mean ≈ 20, most shops small.
const PRODUCTS_MEDIAN: f64 = 11.0;
const PRODUCTS_SIGMA: f64 = 1.1;
/// Orders per product listed, on average, and the spread around it.
const ORDERS_PER_PRODUCT: f64 = 2.6;
const ORDERS_SIGMA: f64 = 0.5;
/// Share of cross-border sellers.
const CROSS_BORDER_RATE: f64 = 0.07;

/// How batches reach the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadPath {
    /// The store's bulk loader (prepared multi-row inserts on SQLite, `COPY` on PostgreSQL).
    Bulk,
    /// [`LegacyStore::load`]: the store's generic connection layer, one unit per batch (the
    /// baseline the bulk path is measured against).
    Generic,
    /// Generate and drop: the generator's own speed.
    GenerateOnly,
}

impl LoadPath {
    pub fn parse(raw: &str) -> anyhow::Result<LoadPath> {
        match raw {
            "bulk" => Ok(LoadPath::Bulk),
            "generic" => Ok(LoadPath::Generic),
            "generate-only" => Ok(LoadPath::GenerateOnly),
            _ => anyhow::bail!("the load path must be `bulk`, `generic` or `generate-only`"),
        }
    }
}

/// What to generate.
#[derive(Debug, Clone)]
pub struct SeedOptions {
    pub merchants: u64,
    pub seed: u64,
    /// Probability of each kind of defect per eligible row, 0 to 1.
    pub defect_rate: f64,
    pub batch_merchants: u64,
    pub generator_threads: usize,
    pub load_path: LoadPath,
}

impl SeedOptions {
    pub fn new(merchants: u64, seed: u64, defect_rate: f64) -> SeedOptions {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(GENERATOR_THREADS_MAX);
        SeedOptions {
            merchants,
            seed,
            defect_rate,
            batch_merchants: BATCH_MERCHANTS_DEFAULT,
            generator_threads: threads,
            load_path: LoadPath::Bulk,
        }
    }

    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            (1..=MERCHANTS_MAX).contains(&self.merchants),
            "--merchants must be between 1 and {MERCHANTS_MAX}, not {}",
            self.merchants
        );
        anyhow::ensure!(
            (0.0..=1.0).contains(&self.defect_rate),
            "--defect-rate must be between 0 and 1 (a probability per eligible row), not {}",
            self.defect_rate
        );
        anyhow::ensure!(
            (1..=BATCH_MERCHANTS_MAX).contains(&self.batch_merchants),
            "merchants per batch must be between 1 and {BATCH_MERCHANTS_MAX}"
        );
        anyhow::ensure!(
            (1..=GENERATOR_THREADS_MAX).contains(&self.generator_threads),
            "generator threads must be between 1 and {GENERATOR_THREADS_MAX}"
        );
        Ok(())
    }

    fn buyers_total(&self) -> u64 {
        self.merchants * BUYERS_PER_MERCHANT
    }
}

/// How many defective rows of each kind were generated.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Defects {
    /// SKUs whose seller code repeats an earlier SKU's code in the same shop.
    pub duplicate_sku_code: u64,
    /// SKUs with stock below zero.
    pub negative_stock: u64,
    /// Products with an empty title.
    pub empty_title: u64,
    /// Orders with an item of a deleted product.
    pub order_of_deleted_product: u64,
    /// Orders with an item whose SKU id is not among its product's SKUs.
    pub order_of_missing_sku: u64,
    /// SKU prices such as `1.500` (thousands or decimals?).
    pub ambiguous_price: u64,
    /// SKU prices that read as no number (`149rb`, `Rp149.000`).
    pub unparseable_price: u64,
}

impl Defects {
    pub fn kinds(&self) -> [(&'static str, u64); 7] {
        [
            ("duplicate SKU codes", self.duplicate_sku_code),
            ("negative stock", self.negative_stock),
            ("empty titles", self.empty_title),
            ("orders of deleted products", self.order_of_deleted_product),
            ("orders of missing SKUs", self.order_of_missing_sku),
            ("ambiguous prices", self.ambiguous_price),
            ("unparseable prices", self.unparseable_price),
        ]
    }

    pub fn total(&self) -> u64 {
        self.kinds().iter().map(|(_, n)| n).sum()
    }

    fn add(&mut self, other: &Defects) {
        self.duplicate_sku_code += other.duplicate_sku_code;
        self.negative_stock += other.negative_stock;
        self.empty_title += other.empty_title;
        self.order_of_deleted_product += other.order_of_deleted_product;
        self.order_of_missing_sku += other.order_of_missing_sku;
        self.ambiguous_price += other.ambiguous_price;
        self.unparseable_price += other.unparseable_price;
    }
}

/// Rows generated, per table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub shops: u64,
    pub products: u64,
    pub skus: u64,
    pub buyers: u64,
    pub orders: u64,
    pub order_items: u64,
}

impl Tally {
    /// Rows of the tables (SKUs live inside product rows).
    pub fn rows(&self) -> u64 {
        self.shops + self.products + self.buyers + self.orders + self.order_items
    }

    fn add(&mut self, batch: &Batch) {
        self.shops += batch.shops.len() as u64;
        self.products += batch.products.len() as u64;
        self.skus += batch.products.iter().map(|p| p.skus.len() as u64).sum::<u64>();
        self.buyers += batch.buyers.len() as u64;
        self.orders += batch.orders.len() as u64;
        self.order_items += batch.orders.iter().map(|o| o.items.len() as u64).sum::<u64>();
    }
}

/// Where a run is, after each batch written.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    pub merchants_done: u64,
    pub rows_written: u64,
}

pub struct SeedReport {
    pub generated: Tally,
    pub defects: Defects,
    /// Row counts read back from the store after the load.
    pub counts: Vec<(&'static str, i64)>,
    pub elapsed: Duration,
}

impl SeedReport {
    pub fn rows_per_s(&self) -> f64 {
        self.generated.rows() as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    pub fn render(&self, options: &SeedOptions) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "seeded {} merchants (seed {}, defect rate {}) in {:.1} s: {} rows, {:.0} rows/s",
            options.merchants,
            options.seed,
            options.defect_rate,
            self.elapsed.as_secs_f64(),
            self.generated.rows(),
            self.rows_per_s()
        );
        for (table, n) in &self.counts {
            let _ = writeln!(out, "  {table:<12} {n:>12}");
        }
        let _ = writeln!(out, "  {:<12} {:>12}  (inside products)", "skus", self.generated.skus);
        let _ = writeln!(out, "defects: {} in all", self.defects.total());
        for (kind, n) in self.defects.kinds() {
            let _ = writeln!(out, "  {kind:<28} {n:>10}");
        }
        out
    }
}

/// Seeds an empty legacy store: refuses one that holds any row; removes the change capture for
/// the load and installs it again at the end (the seeded history is the state before capture).
pub async fn seed(
    store: &LegacyStore,
    options: &SeedOptions,
    mut on_batch: impl FnMut(Progress),
) -> anyhow::Result<SeedReport> {
    options.validate()?;
    let before = store.counts().await?;
    let held: Vec<String> =
        before.iter().filter(|(_, n)| *n > 0).map(|(table, n)| format!("{n} {table}")).collect();
    anyhow::ensure!(
        held.is_empty(),
        "the legacy store is not empty ({}): seed writes only into an empty store; remove it or name another",
        held.join(", ")
    );
    let started = Instant::now();
    jembatan_store::legacy::remove_capture(store.store()).await?;
    let loaded = load_all(store, options, &mut on_batch).await;
    // Capture goes back on whatever happened, so that no later write escapes the changelog.
    let installed = jembatan_store::legacy::install_capture(store.store()).await;
    let (generated, defects) = loaded?;
    installed?;
    let elapsed = started.elapsed();
    let counts = store.counts().await?;
    Ok(SeedReport { generated, defects, counts, elapsed })
}

async fn load_all(
    store: &LegacyStore,
    options: &SeedOptions,
    on_batch: &mut impl FnMut(Progress),
) -> anyhow::Result<(Tally, Defects)> {
    let batches = options.merchants.div_ceil(options.batch_merchants);
    let threads = (options.generator_threads as u64).min(batches).max(1) as usize;
    let shared = Arc::new(options.clone());
    let mut receivers = Vec::with_capacity(threads);
    let mut handles = Vec::with_capacity(threads);
    for thread in 0..threads {
        // One batch waiting per generator: memory is bounded by the number of threads.
        let (sender, receiver) = tokio::sync::mpsc::channel::<(Batch, Defects)>(1);
        receivers.push(receiver);
        let options = shared.clone();
        let handle =
            std::thread::Builder::new().name(format!("seed-generator-{thread}")).spawn(move || {
                let mut index = thread as u64;
                while index < batches {
                    let first = index * options.batch_merchants;
                    let last = (first + options.batch_merchants).min(options.merchants);
                    if sender.blocking_send(generate_batch(&options, first..last)).is_err() {
                        return; // the writer stopped
                    }
                    index += threads as u64;
                }
            })?;
        handles.push(handle);
    }
    let mut tally = Tally::default();
    let mut defects = Defects::default();
    let mut outcome: anyhow::Result<()> = Ok(());
    let mut loader = match options.load_path {
        LoadPath::Bulk => match store.bulk_loader().await {
            Ok(loader) => Some(loader),
            Err(error) => {
                outcome = Err(error.into());
                None
            }
        },
        LoadPath::Generic | LoadPath::GenerateOnly => None,
    };
    for index in 0..batches {
        if outcome.is_err() {
            break;
        }
        let Some((batch, batch_defects)) = receivers[(index % threads as u64) as usize].recv().await else {
            outcome = Err(anyhow::anyhow!("a generator thread stopped before its batches were done"));
            break;
        };
        tally.add(&batch);
        defects.add(&batch_defects);
        let written = match (&mut loader, options.load_path) {
            (Some(loader), _) => loader.load(&batch).await.map(|_| ()),
            (None, LoadPath::Generic) => store.load(batch).await.map(|_| ()),
            (None, _) => Ok(()),
        };
        if let Err(error) = written {
            outcome = Err(error.into());
            break;
        }
        let merchants_done = ((index + 1) * options.batch_merchants).min(options.merchants);
        on_batch(Progress { merchants_done, rows_written: tally.rows() });
    }
    drop(receivers);
    for handle in handles {
        let _ = handle.join();
    }
    if let (Ok(()), Some(loader)) = (&outcome, loader) {
        outcome = loader.finish().await.map_err(Into::into);
    }
    outcome.map(|()| (tally, defects))
}

/// Generates the merchants of `merchants` (their shops, products, buyers and orders).
pub fn generate_batch(options: &SeedOptions, merchants: std::ops::Range<u64>) -> (Batch, Defects) {
    let mut batch = Batch::default();
    let mut defects = Defects::default();
    for merchant in merchants {
        MerchantGen::new(options, merchant).generate(&mut batch, &mut defects);
    }
    (batch, defects)
}

/// Ids: a two-digit prefix per kind, then fixed-width counters.
pub fn shop_id(merchant: u64) -> String {
    format!("73{merchant:010}")
}
fn product_id(merchant: u64, product: usize) -> String {
    format!("17{merchant:010}{product:05}")
}
fn sku_id(product_id: &str, sku: usize) -> String {
    format!("27{}{sku:02}", &product_id[2..])
}
fn order_id(merchant: u64, order: u64) -> String {
    format!("58{merchant:010}{order:06}")
}
fn buyer_id(buyer: u64) -> String {
    format!("61{buyer:012}")
}

/// What an order needs to know of a product: which SKUs, at what real price, and the price as
/// written when it is defective (copied to the order items as the legacy app did).
struct Listed {
    product_id: String,
    title: String,
    skus: Vec<(String, i64, Option<String>)>,
}

struct MerchantGen<'a> {
    options: &'a SeedOptions,
    merchant: u64,
    rng: Rng,
    /// Draws for defects only, so the defect rate changes nothing else.
    defect: Rng,
}

impl<'a> MerchantGen<'a> {
    fn new(options: &'a SeedOptions, merchant: u64) -> MerchantGen<'a> {
        MerchantGen {
            options,
            merchant,
            rng: Rng::new(options.seed, merchant.wrapping_mul(2)),
            defect: Rng::new(options.seed, merchant.wrapping_mul(2) + 1),
        }
    }

    fn defective(&mut self) -> bool {
        self.options.defect_rate > 0.0 && self.defect.chance(self.options.defect_rate)
    }

    fn generate(mut self, batch: &mut Batch, defects: &mut Defects) {
        let shop = self.shop();
        let (live, deleted) = self.products(&shop, batch, defects);
        self.buyers(batch);
        self.orders(&shop, &live, &deleted, batch, defects);
        batch.shops.push(shop);
    }

    fn shop(&mut self) -> LegacyShop {
        let rng = &mut self.rng;
        let cross_border = rng.chance(CROSS_BORDER_RATE);
        let (province, city, shop_name, contact_phone) = if cross_border {
            let city = *rng.pick(words::OVERSEAS_CITIES);
            let name = format!(
                "{} {} {}",
                city.split(' ').next().unwrap_or(city),
                rng.pick(words::CROSS_BORDER_WORDS),
                rng.pick(words::CROSS_BORDER_SUFFIXES)
            );
            let phone = format!("+861{}{:09}", 3 + rng.below(6), rng.below(1_000_000_000));
            (words::OVERSEAS_PROVINCE, city, name, phone)
        } else {
            let spec = pick_province(rng);
            let city = rng.pick(spec.cities).0;
            let core = rng.pick(words::SHOP_CORES);
            let name = match rng.below(4) {
                0 => format!("{} {core}", rng.pick(words::SHOP_PREFIXES)),
                1 => format!("{core} {}", rng.pick(words::SHOP_SUFFIXES)),
                2 => format!("{} {core} {city}", rng.pick(words::SHOP_PREFIXES)),
                _ => format!("{} {core} {}", rng.pick(words::SHOP_PREFIXES), rng.pick(words::SHOP_SUFFIXES)),
            };
            (spec.province, city, name, phone(rng))
        };
        let first_s = HISTORY_END_S - HISTORY_DAYS * DAY_S;
        let create_time = first_s + rng.below_i64((HISTORY_DAYS - 2 * LISTING_DAYS) * DAY_S);
        let update_time = create_time + rng.below_i64(HISTORY_END_S - create_time);
        LegacyShop {
            shop_id: shop_id(self.merchant),
            shop_name,
            seller_type: if cross_border { "CROSS_BORDER" } else { "LOCAL" }.to_owned(),
            province: province.to_owned(),
            city: city.to_owned(),
            contact_phone,
            // Local sellers registered their 13-digit business number (NIB); sellers abroad have none.
            nib: if cross_border { String::new() } else { format!("91{:011}", self.merchant) },
            create_time,
            update_time,
        }
    }

    /// The shop's catalogue; returns what orders may point at: live products, and deleted ones
    /// (for the defect).
    fn products(
        &mut self,
        shop: &LegacyShop,
        batch: &mut Batch,
        defects: &mut Defects,
    ) -> (Vec<Listed>, Vec<Listed>) {
        let count = self
            .rng
            .log_normal(PRODUCTS_MEDIAN, PRODUCTS_SIGMA)
            .round()
            .clamp(1.0, PRODUCTS_PER_MERCHANT_MAX as f64) as usize;
        let mut codes: Vec<String> = Vec::new();
        let (mut live, mut deleted) = (Vec::new(), Vec::new());
        for index in 0..count {
            let spec = pick_category(&mut self.rng);
            let product_id = product_id(self.merchant, index + 1);
            let mut title = title(&mut self.rng, spec);
            let description = format!("{title}. Kondisi baru, dikirim dari {}.", shop.city);
            if self.defective() {
                title.clear();
                defects.empty_title += 1;
            }
            // The first product stays live, so that every shop has something to sell.
            let status = match (index, self.rng.below(100)) {
                (0, _) | (_, 0..88) => PRODUCT_LIVE,
                (_, 88..96) => PRODUCT_DELISTED,
                _ => PRODUCT_DELETED,
            };
            let sku_count = 1 + self.rng.weighted(&[45, 20, 20, 10, 5]);
            debug_assert!(sku_count <= SKUS_PER_PRODUCT_MAX);
            let base = round_price(self.rng.log_normal(spec.median_price_rupiah as f64, spec.price_sigma));
            let first_variant = self.rng.below(spec.variants.len() as u64) as usize;
            let mut skus = Vec::with_capacity(sku_count);
            let mut listed = Vec::with_capacity(sku_count);
            for s in 0..sku_count {
                let sku_id = sku_id(&product_id, s + 1);
                let mut seller_sku = format!("{}-{:04}-{}", spec.code, index + 1, s + 1);
                if !codes.is_empty() && self.defective() {
                    seller_sku = codes[self.defect.below(codes.len() as u64) as usize].clone();
                    defects.duplicate_sku_code += 1;
                }
                codes.push(seller_sku.clone());
                let price =
                    round_price(base as f64 * (1.0 + 0.05 * self.rng.below(3) as f64 * (s > 0) as u8 as f64));
                let mut stock = if self.rng.chance(0.08) { 0 } else { 1 + self.rng.below_i64(STOCK_MAX) };
                if self.defective() {
                    stock = -1 - self.defect.below_i64(20);
                    defects.negative_stock += 1;
                }
                let (written, broken) = if self.defective() {
                    defects.ambiguous_price += 1;
                    let thousands = (price / 1000).clamp(1, 999);
                    let written = format!("{thousands}.{:03}", 100 * (1 + self.defect.below(9)));
                    (written.clone(), Some(written))
                } else if self.defective() {
                    defects.unparseable_price += 1;
                    let written = (*self.defect.pick(words::UNPARSEABLE_PRICES)).to_owned();
                    (written.clone(), Some(written))
                } else {
                    (write_price(&mut self.rng, price), None)
                };
                listed.push((sku_id.clone(), price, broken));
                skus.push(LegacySku {
                    sku_id,
                    seller_sku,
                    name: spec.variants[(first_variant + s) % spec.variants.len()].to_owned(),
                    price: written,
                    stock,
                });
            }
            let create_time = shop.create_time + self.rng.below_i64(LISTING_DAYS * DAY_S);
            let update_time = create_time + self.rng.below_i64(HISTORY_END_S - create_time);
            let entry = Listed { product_id: product_id.clone(), title: title.clone(), skus: listed };
            match status {
                PRODUCT_LIVE => live.push(entry),
                PRODUCT_DELETED => deleted.push(entry),
                _ => {}
            }
            batch.products.push(LegacyProduct {
                skus_problem: None,
                shop_id: shop.shop_id.clone(),
                product_id,
                title,
                category: spec.category.to_owned(),
                description,
                skus,
                status,
                create_time,
                update_time,
            });
        }
        debug_assert!(!live.is_empty());
        (live, deleted)
    }

    fn buyers(&mut self, batch: &mut Batch) {
        let rng = &mut self.rng;
        let first = self.merchant * BUYERS_PER_MERCHANT;
        for buyer in first..first + BUYERS_PER_MERCHANT {
            let female = rng.chance(0.55);
            let given = *rng.pick(if female { words::FEMALE_NAMES } else { words::MALE_NAMES });
            let family = *rng.pick(words::FAMILY_NAMES);
            let (given_lower, family_lower) = (given.to_ascii_lowercase(), family.to_ascii_lowercase());
            let nickname = match rng.below(4) {
                0 => format!("{given_lower}_{}{}", rng.pick(words::NICKNAME_WORDS), rng.below(100)),
                1 => format!("{given_lower}.{family_lower}"),
                2 => format!("{given_lower}{}", 1960 + rng.below(50)),
                _ => format!("{}{given_lower}", rng.pick(words::NICKNAME_WORDS)),
            };
            let phone = phone(rng);
            let email = if rng.chance(0.1) {
                String::new()
            } else {
                let domains: Vec<u32> = words::EMAIL_DOMAINS.iter().map(|(_, w)| *w).collect();
                let domain = words::EMAIL_DOMAINS[rng.weighted(&domains)].0;
                format!("{given_lower}.{family_lower}{}@{domain}", rng.below(100))
            };
            let birth_date = if rng.chance(0.05) {
                String::new()
            } else {
                format!("{}-{:02}-{:02}", 1965 + rng.below(44), 1 + rng.below(12), 1 + rng.below(28))
            };
            let gender = match (rng.chance(0.04), female) {
                (true, _) => "",
                (false, true) => "F",
                (false, false) => "M",
            };
            batch.buyers.push(LegacyBuyer {
                buyer_id: buyer_id(buyer),
                nickname,
                phone,
                email,
                birth_date,
                gender: gender.to_owned(),
                follower_count: rng.log_normal(120.0, 1.8).min(50_000_000.0) as i64,
                create_time: HISTORY_END_S - rng.below_i64(4 * 365 * DAY_S),
            });
        }
    }

    fn orders(
        &mut self,
        shop: &LegacyShop,
        live: &[Listed],
        deleted: &[Listed],
        batch: &mut Batch,
        defects: &mut Defects,
    ) {
        let listed = batch.products.iter().rev().take_while(|p| p.shop_id == shop.shop_id).count();
        let expected = listed as f64 * ORDERS_PER_PRODUCT;
        let count =
            (self.rng.log_normal(expected * (-ORDERS_SIGMA * ORDERS_SIGMA / 2.0).exp_exact(), ORDERS_SIGMA))
                .round()
                .clamp(0.0, ORDERS_PER_MERCHANT_MAX as f64) as u64;
        let window_start_s = shop.create_time + LISTING_DAYS * DAY_S;
        for index in 0..count {
            let rng = &mut self.rng;
            // 100 unpaid, 111 awaiting shipment, 112 awaiting collection, 121 in transit,
            // 122 delivered, 130 completed, 140 cancelled.
            const STATUSES: [(i64, u32); 7] =
                [(100, 4), (111, 4), (112, 3), (121, 6), (122, 5), (130, 68), (140, 10)];
            let status = STATUSES[rng.weighted(&STATUSES.map(|(_, w)| w))].0;
            // Orders still moving are recent; finished ones spread over the shop's life.
            let (recent_s, delay_s) = match status {
                100 => (DAY_S, 0),
                111 => (3 * DAY_S, rng.below_i64(2 * 3600)),
                112 => (3 * DAY_S, DAY_S + rng.below_i64(DAY_S)),
                121 => (7 * DAY_S, DAY_S + rng.below_i64(2 * DAY_S)),
                122 => (10 * DAY_S, 3 * DAY_S + rng.below_i64(3 * DAY_S)),
                130 => (HISTORY_END_S - window_start_s, 5 * DAY_S + rng.below_i64(9 * DAY_S)),
                _ => (HISTORY_END_S - window_start_s, rng.below_i64(2 * DAY_S)),
            };
            let earliest_s = (HISTORY_END_S - recent_s).max(window_start_s);
            let create_time = earliest_s + rng.below_i64(HISTORY_END_S - earliest_s);
            let update_time = (create_time + delay_s).min(HISTORY_END_S);
            let mut payment_method = ["VA", "QRIS", "EWALLET", "COD"][rng.weighted(&[30, 25, 30, 15])];
            if status == 100 && payment_method == "COD" {
                payment_method = "VA"; // cash on delivery is never waiting for payment
            }
            let item_count = 1 + rng.weighted(&[60, 28, 12]);
            debug_assert!(item_count <= ITEMS_PER_ORDER_MAX);
            let deleted_item = !deleted.is_empty() && self.defective();
            let missing_sku = self.defective();
            let rng = &mut self.rng;
            let mut items = Vec::with_capacity(item_count);
            let mut total: i64 = 0;
            for item in 0..item_count {
                let product = if item == 0 && deleted_item {
                    &deleted[self.defect.below(deleted.len() as u64) as usize]
                } else {
                    &live[rng.below(live.len() as u64) as usize]
                };
                let (sku_id, price, broken) = &product.skus[rng.below(product.skus.len() as u64) as usize];
                let quantity = match rng.below(10) {
                    0..7 => 1,
                    7 | 8 => 2,
                    _ => 3 + rng.below_i64(3),
                };
                total += price * quantity;
                let unit_price = broken.clone().unwrap_or_else(|| write_price(rng, *price));
                let sku_id = if missing_sku && item + 1 == item_count {
                    format!("{}99", &sku_id[..sku_id.len() - 2])
                } else {
                    sku_id.clone()
                };
                items.push(LegacyItem {
                    item_no: item as i64 + 1,
                    product_id: product.product_id.clone(),
                    sku_id,
                    product_title: product.title.clone(),
                    quantity,
                    unit_price,
                });
            }
            defects.order_of_deleted_product += u64::from(deleted_item);
            defects.order_of_missing_sku += u64::from(missing_sku);
            let buyer = rng.below(self.options.buyers_total());
            let spec = pick_province(rng);
            let (city, postal) = *rng.pick(spec.cities);
            let names = if rng.chance(0.55) { words::FEMALE_NAMES } else { words::MALE_NAMES };
            let given = *rng.pick(names);
            let recipient_name = format!("{given} {}", rng.pick(words::FAMILY_NAMES));
            let address_detail = format!(
                "{} No. {}, RT {:03}/RW {:03}",
                rng.pick(words::STREETS),
                1 + rng.below(150),
                1 + rng.below(15),
                1 + rng.below(12)
            );
            batch.orders.push(LegacyOrder {
                shop_id: shop.shop_id.clone(),
                order_id: order_id(self.merchant, index + 1),
                buyer_id: buyer_id(buyer),
                status,
                payment_method: payment_method.to_owned(),
                total_amount: write_price(rng, total),
                recipient_name,
                recipient_phone: phone(rng),
                address_detail,
                city: city.to_owned(),
                province: spec.province.to_owned(),
                postal_code: format!("{postal}{:03}", rng.below(1000)),
                create_time,
                update_time,
                items,
            });
        }
    }
}

fn pick_province(rng: &mut Rng) -> &'static ProvinceSpec {
    static WEIGHTS: std::sync::OnceLock<Vec<u32>> = std::sync::OnceLock::new();
    let weights = WEIGHTS.get_or_init(|| PROVINCES.iter().map(|p| p.weight).collect());
    &PROVINCES[rng.weighted(weights)]
}

fn pick_category(rng: &mut Rng) -> &'static CategorySpec {
    static WEIGHTS: std::sync::OnceLock<Vec<u32>> = std::sync::OnceLock::new();
    let weights = WEIGHTS.get_or_init(|| CATEGORIES.iter().map(|c| c.weight).collect());
    &CATEGORIES[rng.weighted(weights)]
}

fn title(rng: &mut Rng, spec: &CategorySpec) -> String {
    let noun = rng.pick(spec.nouns);
    let qualifier = rng.pick(spec.qualifiers);
    match *rng.pick(words::TITLE_TAGS) {
        "" => format!("{noun} {qualifier}"),
        tag => format!("{noun} {qualifier} {tag}"),
    }
}

/// A mobile number in one of the three ways people write them: `08…`, `628…`, `+628…`.
fn phone(rng: &mut Rng) -> String {
    let prefix = rng.pick(words::MOBILE_PREFIXES);
    let rest = if rng.chance(0.5) {
        format!("{:07}", rng.below(10_000_000))
    } else {
        format!("{:08}", rng.below(100_000_000))
    };
    match rng.below(3) {
        0 => format!("0{prefix}{rest}"),
        1 => format!("62{prefix}{rest}"),
        _ => format!("+62{prefix}{rest}"),
    }
}

/// Whole rupiah from a sampled amount: Rp100 steps under Rp10,000, Rp500 under Rp100,000,
/// Rp1,000 above.
fn round_price(sampled: f64) -> i64 {
    let raw = (sampled as i64).clamp(PRICE_RUPIAH_MIN, PRICE_RUPIAH_MAX);
    let step = match raw {
        ..10_000 => 100,
        10_000..100_000 => 500,
        _ => 1_000,
    };
    ((raw + step / 2) / step * step).clamp(PRICE_RUPIAH_MIN, PRICE_RUPIAH_MAX)
}

/// A price the way the legacy rows write them: `149000`, `149000.00` or `149.000`. The
/// Indonesian grouping is used only where it cannot be misread (`12.500` would be ambiguous).
pub fn write_price(rng: &mut Rng, rupiah: i64) -> String {
    match rng.below(4) {
        0 | 1 => rupiah.to_string(),
        2 => format!("{rupiah}.00"),
        _ if (1_000..1_000_000).contains(&rupiah) && rupiah % 1_000 != 0 => rupiah.to_string(),
        _ => jembatan_domain::money::group_digits(rupiah.unsigned_abs(), '.'),
    }
}

/// xoshiro256** (Blackman and Vigna), seeded by splitmix64: small, fast, and its output is
/// fixed by its definition, so data generated from a seed never changes with a dependency.
#[derive(Debug, Clone)]
pub struct Rng {
    state: [u64; 4],
}

impl Rng {
    pub fn new(seed: u64, stream: u64) -> Rng {
        let mut mix = seed ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(17);
        let mut state = [0; 4];
        for word in &mut state {
            *word = splitmix64(&mut mix);
        }
        Rng { state }
    }

    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.state;
        let result = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// Uniform in `0..n` (Lemire's multiply-shift; the bias is below 2⁻⁴⁰ for our ranges).
    pub fn below(&mut self, n: u64) -> u64 {
        debug_assert!(n > 0);
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    fn below_i64(&mut self, n: i64) -> i64 {
        if n <= 0 { 0 } else { self.below(n as u64) as i64 }
    }

    /// Uniform in [0, 1), from 53 random bits (exact).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    pub fn pick<'t, T>(&mut self, items: &'t [T]) -> &'t T {
        &items[self.below(items.len() as u64) as usize]
    }

    /// An index drawn with the given weights.
    pub fn weighted(&mut self, weights: &[u32]) -> usize {
        let total: u64 = weights.iter().map(|&w| u64::from(w)).sum();
        let mut draw = self.below(total);
        for (index, &weight) in weights.iter().enumerate() {
            if draw < u64::from(weight) {
                return index;
            }
            draw -= u64::from(weight);
        }
        weights.len() - 1
    }

    /// Approximately standard normal: the sum of twelve uniforms less six (Irwin–Hall), which
    /// needs no transcendental function.
    fn normal(&mut self) -> f64 {
        (0..12).map(|_| self.unit()).sum::<f64>() - 6.0
    }

    /// Log-normal around `median` with spread `sigma`.
    fn log_normal(&mut self, median: f64, sigma: f64) -> f64 {
        median * (sigma * self.normal()).exp_exact()
    }
}

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// `exp` from IEEE-exact operations only (additions, multiplications, divisions, rounding), so
/// its result is the same on every platform, unlike the libm's.
trait ExpExact {
    fn exp_exact(self) -> f64;
}

impl ExpExact for f64 {
    fn exp_exact(self) -> f64 {
        let x = self.clamp(-700.0, 700.0);
        let k = (x / std::f64::consts::LN_2).round();
        let r = x - k * std::f64::consts::LN_2;
        let (mut term, mut sum) = (1.0, 1.0);
        for n in 1..=18 {
            term *= r / f64::from(n);
            sum += term;
        }
        sum * 2f64.powi(k as i32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jembatan_domain::social::{PriceProblem, parse_price};

    #[test]
    fn tables_name_real_provinces_and_categories() {
        for spec in PROVINCES {
            assert!(jembatan_domain::merchant::PROVINCES.contains(&spec.province), "{}", spec.province);
            assert!(!spec.cities.is_empty());
        }
        assert_eq!(PROVINCES.len(), jembatan_domain::merchant::PROVINCES.len());
        for spec in CATEGORIES {
            assert!(jembatan_domain::Category::parse(spec.category).is_ok(), "{}", spec.category);
        }
    }

    #[test]
    fn exp_is_close_to_the_libm() {
        for x in [-5.0, -1.0, -0.3, 0.0, 0.1, 1.0, 2.5, 7.0] {
            let (ours, theirs) = (f64::exp_exact(x), f64::exp(x));
            assert!((ours - theirs).abs() <= theirs * 1e-14, "{x}: {ours} vs {theirs}");
        }
    }

    #[test]
    fn written_prices_read_back_and_defects_do_not() {
        let mut rng = Rng::new(1, 2);
        for _ in 0..20_000 {
            let rupiah = round_price(rng.log_normal(80_000.0, 1.2));
            let written = write_price(&mut rng, rupiah);
            assert_eq!(parse_price(&written).map(|m| m.rupiah()), Ok(rupiah), "{written}");
        }
        for raw in words::UNPARSEABLE_PRICES {
            assert_eq!(parse_price(raw), Err(PriceProblem::Unparseable), "{raw}");
        }
    }

    #[test]
    fn the_generator_is_a_pure_function_of_its_inputs() {
        let options = SeedOptions::new(30, 7, 0.05);
        let (a, da) = generate_batch(&options, 0..30);
        let (b, db) = generate_batch(&options, 0..30);
        assert_eq!(format!("{:?}", a.orders), format!("{:?}", b.orders));
        assert_eq!(da, db);
        // Batches are made of merchants: cutting the range elsewhere changes nothing.
        let (c, _) = generate_batch(&options, 0..13);
        assert_eq!(format!("{:?}", c.products), format!("{:?}", &a.products[..c.products.len()]));
    }
}
