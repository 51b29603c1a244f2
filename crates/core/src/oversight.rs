//! The bulk compliance scan over what the core holds (issue 6): every listed SKU against the
//! listing rules, the social channel's paid orders against R1, shared social profiles against
//! R6. Findings are recorded once per rule and entity, journaled; a scan run again adds only
//! what is new.

use std::collections::BTreeMap;

use jembatan_domain::merchant::Origin;
use jembatan_domain::policy::{Listing, Policy};
use jembatan_domain::{Category, Money, Principal};
use jembatan_store::findings::NewFinding;

use crate::{Core, CoreError};

/// Listed SKUs read per page.
const PAGE: u32 = 2_000;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScanReport {
    pub listings: u64,
    pub orders: u64,
    pub profiles: u64,
    /// Violations found by rule (new or already recorded).
    pub found: BTreeMap<String, u64>,
    /// Findings recorded by this scan (the rest were recorded before).
    pub new: u64,
    /// Rules the scan cannot check from what the core holds, and why.
    pub not_checked: Vec<(String, String)>,
}

/// Scans everything the core holds as of `day`. Operator only (it records findings).
pub async fn scan(
    core: &Core,
    who: &Principal,
    policy: &Policy,
    day: time::Date,
) -> Result<ScanReport, CoreError> {
    if *who != Principal::Operator {
        return Err(CoreError::Forbidden("only the operator runs the compliance scan".to_owned()));
    }
    let store = core.store();
    let ctx = core.ctx(who);
    let mut report = ScanReport {
        not_checked: vec![
            (
                "R4".to_owned(),
                "the catalogue does not hold BPOM numbers, halal data or SNI marks yet: checked inline once it does".to_owned(),
            ),
            ("R5".to_owned(), "the catalogue does not mark goods a merchant produces itself yet".to_owned()),
        ],
        ..ScanReport::default()
    };
    let mut after = (String::new(), String::new());
    loop {
        let page = store.listing_facts(after.clone(), PAGE).await?;
        let Some(last) = page.last() else { break };
        after = (last.merchant_id.clone(), last.sku_id.clone());
        let mut findings = Vec::new();
        for l in &page {
            report.listings += 1;
            let (Ok(merchant_id), Ok(category), Ok(price)) =
                (l.merchant_id.parse(), Category::parse(&l.category), Money::from_rupiah(l.price_idr))
            else {
                continue;
            };
            let listing = Listing {
                merchant_id,
                origin: if l.origin == "cross_border" { Origin::CrossBorder } else { Origin::Local },
                category,
                unit_price: price,
                fob_usd_cents: None,
                hs_code: None,
                bpom_number: None,
                halal_certificate: None,
                sni_mark: None,
                own_produce: false,
            };
            for v in policy.check_listing(&listing, day) {
                if report.not_checked.iter().any(|(rule, _)| *rule == v.rule) {
                    continue;
                }
                *report.found.entry(v.rule.clone()).or_default() += 1;
                findings.push(NewFinding {
                    merchant_id: l.merchant_id.clone(),
                    rule_id: v.rule,
                    article: v.article,
                    severity: v.severity.as_str().to_owned(),
                    entity_type: "sku".to_owned(),
                    entity_id: l.sku_id.clone(),
                    evidence: serde_json::json!({
                        "product_id": l.product_id, "sku_id": l.sku_id, "category": l.category,
                        "price_idr": l.price_idr, "origin": l.origin, "day": day.to_string(), "detail": v.detail,
                    })
                    .to_string(),
                });
            }
        }
        report.new += store.record_findings(ctx.clone(), findings).await?;
        if (page.len() as u32) < PAGE {
            break;
        }
    }
    let orders = store.social_orders_without_payment(100_000).await?;
    report.orders = orders.len() as u64;
    let findings: Vec<NewFinding> = orders
        .iter()
        .filter_map(|o| {
            let v = policy.check_payment_place(true, true, false)?;
            *report.found.entry(v.rule.clone()).or_default() += 1;
            Some(NewFinding {
                merchant_id: o.merchant_id.clone(),
                rule_id: v.rule,
                article: v.article,
                severity: v.severity.as_str().to_owned(),
                entity_type: "order".to_owned(),
                entity_id: o.order_id.clone(),
                evidence:
                    serde_json::json!({"order_id": o.order_id, "status": o.status, "total_idr": o.total_idr,
                                             "detail": v.detail})
                    .to_string(),
            })
        })
        .collect();
    report.new += store.record_findings(ctx.clone(), findings).await?;
    let profiles = store.profiles_without_consent(100_000).await?;
    report.profiles = profiles.len() as u64;
    let findings: Vec<NewFinding> = profiles
        .iter()
        .filter_map(|(buyer_ref, consent_id)| {
            let v = policy.check_profile_share(false)?;
            *report.found.entry(v.rule.clone()).or_default() += 1;
            Some(NewFinding {
                merchant_id: String::new(),
                rule_id: v.rule,
                article: v.article,
                severity: v.severity.as_str().to_owned(),
                entity_type: "buyer_profile".to_owned(),
                entity_id: buyer_ref.clone(),
                evidence: serde_json::json!({"consent_id": consent_id, "detail": v.detail}).to_string(),
            })
        })
        .collect();
    report.new += store.record_findings(ctx, findings).await?;
    Ok(report)
}

/// Longest range of one transaction report, in days.
pub const REPORT_DAYS_MAX: i64 = 366;

/// The transaction report (orders paid or further and GMV by WIB day, channel, merchant
/// origin and province) of the days `from..=to`. Regulator and operator. Holds no personal data.
pub async fn transactions(
    core: &Core,
    who: &Principal,
    from: time::Date,
    to: time::Date,
) -> Result<Vec<jembatan_store::findings::ReportLine>, CoreError> {
    crate::audit::may_read_proofs(who)?;
    let epoch = time::Date::from_calendar_date(1970, time::Month::January, 1).expect("a date");
    let (from, to) =
        (i64::from((from - epoch).whole_days() as i32), i64::from((to - epoch).whole_days() as i32));
    if to < from || to - from >= REPORT_DAYS_MAX {
        return Err(CoreError::Store(jembatan_store::StoreError::Domain(
            jembatan_domain::DomainError::invalid(
                "to",
                format!("must be on or after `from` and at most {REPORT_DAYS_MAX} days after it"),
            ),
        )));
    }
    Ok(core.store().transaction_report(from, to).await?)
}

/// A WIB day number (days since 1970-01-01) as YYYY-MM-DD.
pub fn day_text(day: i64) -> String {
    let epoch = time::Date::from_calendar_date(1970, time::Month::January, 1).expect("a date");
    (epoch + time::Duration::days(day)).to_string()
}

/// The operator acknowledges or resolves a finding, with a note (audited). The regulator reads
/// findings but never changes them.
pub async fn set_finding_state(
    core: &Core,
    who: &Principal,
    id: jembatan_domain::FindingId,
    to: &'static str,
    note: String,
) -> Result<jembatan_store::findings::FindingRecord, CoreError> {
    if *who != Principal::Operator {
        return Err(CoreError::Forbidden("only the operator acknowledges or resolves findings".to_owned()));
    }
    if note.trim().is_empty() || note.chars().count() > 2_000 {
        return Err(CoreError::Store(jembatan_store::StoreError::Domain(
            jembatan_domain::DomainError::invalid("note", "say what was done, in 1 to 2,000 characters"),
        )));
    }
    Ok(core.store().set_finding_state(core.ctx(who), id, to, note).await?)
}
