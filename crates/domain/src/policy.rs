//! The compliance rules as data (issue 6, DESIGN.md §10), from Minister of Trade Regulation
//! No. 31 of 2023: a [`Policy`] (loaded from the reviewable policy file, `policy/rules.toml`,
//! by `jembatan_core::policy`) and the checks of a listing and of an order against it. Pure: no
//! clock (the day is given), no I/O, integer money only.

use std::collections::{BTreeMap, HashMap};

use crate::MerchantId;
use crate::merchant::Origin;
use crate::money::Money;
use crate::product::Category;

/// What a violation does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// Flagged for a person to review; nothing is refused.
    Review,
    /// Recorded as a finding against the merchant; nothing is refused.
    Finding,
    /// Refused inline (listing, checkout), and a finding when met in history.
    Blocking,
}

impl Severity {
    pub fn parse(raw: &str) -> Result<Severity, String> {
        match raw {
            "review" => Ok(Severity::Review),
            "finding" => Ok(Severity::Finding),
            "blocking" => Ok(Severity::Blocking),
            other => Err(format!("severity `{other}` is not one of review, finding, blocking")),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Review => "review",
            Severity::Finding => "finding",
            Severity::Blocking => "blocking",
        }
    }
}

/// One rule: its id (`R1`…), the article it comes from, its severity and what it checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub id: String,
    pub article: String,
    pub severity: Severity,
    pub title: String,
    pub checks: String,
}

/// IDR per USD from a day on, in hundredths of a rupiah (15,234.56 → 1_523_456), as the
/// Minister of Finance publishes them (KMK exchange rates, weekly).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsdRate {
    pub from: time::Date,
    pub idr_per_usd_hundredths: i64,
}

/// An entry of the positive list (art. 19(4)): goods by HS code prefix, from a day, until a day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PositiveEntry {
    pub hs_prefix: String,
    pub goods: String,
    pub from: time::Date,
    pub until: Option<time::Date>,
}

/// What a category needs before a listing of it is published (R4).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Requirements {
    pub bpom: bool,
    pub halal: bool,
    pub sni: bool,
}

/// The price watch (R7): a listing more than `percent_below` under its category's reference
/// price is flagged. The regulation sets no number: the threshold is the platform's choice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriceWatch {
    pub percent_below: u32,
    pub reference: HashMap<Category, Money>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub rules: BTreeMap<String, Rule>,
    /// The R2 floor per unit, in US cents (USD 100.00 → 10_000).
    pub cross_border_floor_usd_cents: i64,
    /// Sorted by day.
    pub usd_rates: Vec<UsdRate>,
    pub positive_list: Vec<PositiveEntry>,
    pub requirements: HashMap<Category, Requirements>,
    pub price_watch: PriceWatch,
    /// Merchants the platform controls (R5).
    pub platform_merchants: Vec<MerchantId>,
}

/// A listing as the rules see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing {
    pub merchant_id: MerchantId,
    pub origin: Origin,
    pub category: Category,
    /// The unit price the buyer pays.
    pub unit_price: Money,
    /// The declared FOB price per unit in US cents, for goods sold directly from abroad; the
    /// unit price converted at the day's rate when none is declared.
    pub fob_usd_cents: Option<i64>,
    pub hs_code: Option<String>,
    pub bpom_number: Option<String>,
    pub halal_certificate: Option<String>,
    pub sni_mark: Option<String>,
    /// Goods the merchant produces itself (R5 matters only for the platform's own merchants).
    pub own_produce: bool,
}

/// A rule a listing or an order breaks, with what shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub rule: String,
    pub article: String,
    pub severity: Severity,
    pub detail: String,
}

impl Policy {
    fn violation(&self, id: &str, detail: String) -> Option<Violation> {
        // A rule the policy file leaves out is not checked.
        self.rules.get(id).map(|r| Violation {
            rule: r.id.clone(),
            article: r.article.clone(),
            severity: r.severity,
            detail,
        })
    }

    /// The IDR/USD rate in force on `day`.
    pub fn usd_rate(&self, day: time::Date) -> Option<&UsdRate> {
        self.usd_rates.iter().rev().find(|r| r.from <= day)
    }

    /// The positive-list entry a HS code falls under on `day`.
    pub fn positive_entry(&self, hs_code: &str, day: time::Date) -> Option<&PositiveEntry> {
        self.positive_list.iter().find(|e| {
            hs_code.starts_with(&e.hs_prefix) && e.from <= day && e.until.is_none_or(|until| day <= until)
        })
    }

    /// Every rule a listing breaks on `day`.
    pub fn check_listing(&self, listing: &Listing, day: time::Date) -> Vec<Violation> {
        let mut out = Vec::new();
        if listing.origin == Origin::CrossBorder {
            out.extend(self.check_cross_border(listing, day));
        }
        let needs = self.requirements.get(&listing.category).copied().unwrap_or_default();
        let missing: Vec<&str> = [
            (needs.bpom, &listing.bpom_number, "a BPOM registration number"),
            (needs.halal, &listing.halal_certificate, "halal certification data"),
            (needs.sni, &listing.sni_mark, "an SNI mark"),
        ]
        .into_iter()
        .filter(|(needed, value, _)| *needed && value.as_deref().is_none_or(|v| v.trim().is_empty()))
        .map(|(_, _, what)| what)
        .collect();
        if !missing.is_empty() {
            out.extend(self.violation(
                "R4",
                format!(
                    "a {} listing needs {} before it is published",
                    listing.category.as_str(),
                    missing.join(" and ")
                ),
            ));
        }
        if listing.own_produce && self.platform_merchants.contains(&listing.merchant_id) {
            out.extend(
                self.violation("R5", "the platform's own merchant lists goods it produces itself".to_owned()),
            );
        }
        if let Some(reference) = self.price_watch.reference.get(&listing.category) {
            // price < reference × (100 − p) / 100, in integers.
            let floor =
                i128::from(reference.rupiah()) * i128::from(100 - self.price_watch.percent_below.min(100));
            if i128::from(listing.unit_price.rupiah()) * 100 < floor {
                out.extend(self.violation(
                    "R7",
                    format!(
                        "Rp{} is more than {}% below the {} reference price Rp{}: review for price manipulation",
                        listing.unit_price.rupiah(),
                        self.price_watch.percent_below,
                        listing.category.as_str(),
                        reference.rupiah()
                    ),
                ));
            }
        }
        out
    }

    /// R2 with R3's exemption.
    fn check_cross_border(&self, listing: &Listing, day: time::Date) -> Option<Violation> {
        // On the positive list that day: no floor (R3).
        if listing.hs_code.as_deref().and_then(|hs| self.positive_entry(hs, day)).is_some() {
            return None;
        }
        let usd_cents = match listing.fob_usd_cents {
            Some(cents) => cents,
            None => {
                let Some(rate) = self.usd_rate(day) else {
                    return self.violation(
                        "R2",
                        format!("no IDR/USD rate is in force on {day}: the USD 100 floor cannot be checked"),
                    );
                };
                // IDR × 100 (cents) × 100 (hundredths of the rate) / rate, rounded down.
                (i128::from(listing.unit_price.rupiah()) * 10_000 / i128::from(rate.idr_per_usd_hundredths))
                    as i64
            }
        };
        (usd_cents < self.cross_border_floor_usd_cents).then(|| {
            let on_list = match &listing.hs_code {
                Some(hs) => format!("HS {hs} is not on the positive list on {day}"),
                None => "no HS code is declared, so the positive list cannot exempt it".to_owned(),
            };
            self.violation(
                "R2",
                format!(
                    "sold directly from abroad at USD {}.{:02} per unit, under the USD {}.{:02} floor ({on_list})",
                    usd_cents / 100,
                    usd_cents % 100,
                    self.cross_border_floor_usd_cents / 100,
                    self.cross_border_floor_usd_cents % 100
                ),
            )
        })?
    }

    /// R1: a paid order of the social channel must have its payment and escrow in the core.
    pub fn check_payment_place(
        &self,
        channel_social: bool,
        paid: bool,
        payment_in_core: bool,
    ) -> Option<Violation> {
        (channel_social && paid && !payment_in_core).then(|| {
            self.violation("R1", "a paid order of the social channel has no payment in the core".to_owned())
        })?
    }

    /// R6: social-app profile data shared with the marketplace needs the buyer's consent.
    pub fn check_profile_share(&self, consented: bool) -> Option<Violation> {
        (!consented).then(|| {
            self.violation("R6", "social-app profile data reached the marketplace without consent".to_owned())
        })?
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    fn policy() -> Policy {
        let rule = |id: &str, severity| Rule {
            id: id.into(),
            article: format!("art of {id}"),
            severity,
            title: id.into(),
            checks: id.into(),
        };
        Policy {
            rules: [
                rule("R1", Severity::Blocking),
                rule("R2", Severity::Blocking),
                rule("R4", Severity::Blocking),
                rule("R5", Severity::Blocking),
                rule("R6", Severity::Blocking),
                rule("R7", Severity::Review),
            ]
            .into_iter()
            .map(|r| (r.id.clone(), r))
            .collect(),
            cross_border_floor_usd_cents: 10_000,
            usd_rates: vec![
                UsdRate { from: date!(2024 - 01 - 01), idr_per_usd_hundredths: 1_500_000 },
                UsdRate { from: date!(2024 - 06 - 01), idr_per_usd_hundredths: 1_623_450 },
            ],
            positive_list: vec![PositiveEntry {
                hs_prefix: "4901".into(),
                goods: "printed books".into(),
                from: date!(2023 - 10 - 01),
                until: Some(date!(2025 - 12 - 31)),
            }],
            requirements: [(Category::Food, Requirements { bpom: true, halal: true, sni: false })].into(),
            price_watch: PriceWatch {
                percent_below: 50,
                reference: [(Category::Electronics, Money::from_rupiah(1_000_000).unwrap())].into(),
            },
            platform_merchants: vec![MerchantId::from_uuid(uuid::Uuid::from_u128(1))],
        }
    }

    fn listing(origin: Origin, category: Category, price: i64) -> Listing {
        Listing {
            merchant_id: MerchantId::from_uuid(uuid::Uuid::from_u128(2)),
            origin,
            category,
            unit_price: Money::from_rupiah(price).unwrap(),
            fob_usd_cents: None,
            hs_code: None,
            bpom_number: None,
            halal_certificate: None,
            sni_mark: None,
            own_produce: false,
        }
    }

    fn rules(v: &[Violation]) -> Vec<&str> {
        v.iter().map(|v| v.rule.as_str()).collect()
    }

    use crate::TypedId;

    #[test]
    fn r2_the_usd_100_floor_at_the_days_rate() {
        let p = policy();
        let day = date!(2024 - 03 - 01); // Rp15,000.00 per USD
        let at = |price| {
            rules(&p.check_listing(&listing(Origin::CrossBorder, Category::Toys, price), day)).join(",")
        };
        assert_eq!(at(1_500_000), "", "USD 100.00 passes");
        assert_eq!(at(1_499_850), "R2", "USD 99.99 fails");
        assert_eq!(at(1_499_999), "R2", "USD 99.99999 rounds down and fails");
        // A declared FOB price is taken as it is.
        let mut declared = listing(Origin::CrossBorder, Category::Toys, 10);
        declared.fob_usd_cents = Some(10_000);
        assert!(p.check_listing(&declared, day).is_empty());
        declared.fob_usd_cents = Some(9_999);
        let v = p.check_listing(&declared, day);
        assert!(v[0].detail.contains("USD 99.99"), "{v:?}");
        // The rate is the one in force that day: Rp16,234.50 from June.
        assert_eq!(
            rules(&p.check_listing(
                &listing(Origin::CrossBorder, Category::Toys, 1_600_000),
                date!(2024 - 06 - 01)
            )),
            ["R2"]
        );
        assert!(
            p.check_listing(&listing(Origin::CrossBorder, Category::Toys, 1_623_450), date!(2024 - 06 - 01))
                .is_empty()
        );
        // Before any rate: cannot be checked, which is itself a finding.
        let v =
            p.check_listing(&listing(Origin::CrossBorder, Category::Toys, 9_000_000), date!(2023 - 01 - 01));
        assert!(v[0].detail.contains("no IDR/USD rate"), "{v:?}");
        // Local goods have no floor.
        assert!(p.check_listing(&listing(Origin::Local, Category::Toys, 1_000), day).is_empty());
    }

    #[test]
    fn r3_the_positive_list_exempts_by_hs_code_while_it_is_in_force() {
        let p = policy();
        let mut book = listing(Origin::CrossBorder, Category::Books, 50_000);
        book.hs_code = Some("490199".into());
        assert!(p.check_listing(&book, date!(2024 - 03 - 01)).is_empty(), "a book under the floor is exempt");
        assert!(p.check_listing(&book, date!(2025 - 12 - 31)).is_empty(), "through its last day");
        let v = p.check_listing(&book, date!(2026 - 01 - 01));
        assert_eq!(rules(&v), ["R2"], "not once the entry ended");
        assert!(v[0].detail.contains("HS 490199 is not on the positive list"), "{v:?}");
        assert_eq!(rules(&p.check_listing(&book, date!(2023 - 09 - 30))), ["R2"], "nor before it began");
        let mut toy = listing(Origin::CrossBorder, Category::Toys, 50_000);
        toy.hs_code = Some("950300".into());
        assert_eq!(
            rules(&p.check_listing(&toy, date!(2024 - 03 - 01))),
            ["R2"],
            "other goods are not exempt"
        );
    }

    #[test]
    fn r4_category_requirements_before_publishing() {
        let p = policy();
        let day = date!(2024 - 03 - 01);
        let mut food = listing(Origin::Local, Category::Food, 25_000);
        let v = p.check_listing(&food, day);
        assert_eq!(rules(&v), ["R4"]);
        assert!(v[0].detail.contains("BPOM") && v[0].detail.contains("halal"), "{v:?}");
        food.bpom_number = Some("MD 224510001234".into());
        food.halal_certificate = Some("  ".into());
        assert!(p.check_listing(&food, day)[0].detail.contains("halal"), "blank is missing");
        food.halal_certificate = Some("ID00110000123450223".into());
        assert!(p.check_listing(&food, day).is_empty());
        assert!(p.check_listing(&listing(Origin::Local, Category::Fashion, 25_000), day).is_empty());
    }

    #[test]
    fn r5_the_platforms_own_merchants_may_not_sell_their_own_produce() {
        let p = policy();
        let day = date!(2024 - 03 - 01);
        let mut own = listing(Origin::Local, Category::Home, 25_000);
        own.own_produce = true;
        assert!(p.check_listing(&own, day).is_empty(), "an independent merchant may");
        own.merchant_id = p.platform_merchants[0];
        assert_eq!(rules(&p.check_listing(&own, day)), ["R5"]);
        own.own_produce = false;
        assert!(p.check_listing(&own, day).is_empty(), "the platform's merchant may resell others' goods");
    }

    #[test]
    fn r7_far_below_the_reference_is_flagged_for_review_only() {
        let p = policy();
        let day = date!(2024 - 03 - 01);
        let at = |price| p.check_listing(&listing(Origin::Local, Category::Electronics, price), day);
        assert!(at(500_000).is_empty(), "exactly 50% below is not *more* than 50%");
        let v = at(499_999);
        assert_eq!(rules(&v), ["R7"]);
        assert_eq!(v[0].severity, Severity::Review);
        assert!(at(2_000_000).is_empty());
        assert!(
            p.check_listing(&listing(Origin::Local, Category::Toys, 1), day).is_empty(),
            "no reference, no flag"
        );
    }

    #[test]
    fn r1_and_r6_from_the_facts_of_an_order() {
        let p = policy();
        assert_eq!(p.check_payment_place(true, true, false).map(|v| v.rule), Some("R1".into()));
        assert_eq!(p.check_payment_place(true, true, true), None);
        assert_eq!(p.check_payment_place(false, true, false), None, "the marketplace's own channel");
        assert_eq!(p.check_payment_place(true, false, false), None, "not paid");
        assert_eq!(p.check_profile_share(false).map(|v| v.rule), Some("R6".into()));
        assert_eq!(p.check_profile_share(true), None);
        let mut without = policy();
        without.rules.remove("R6");
        assert_eq!(without.check_profile_share(false), None, "a rule left out of the policy is not checked");
    }
}
