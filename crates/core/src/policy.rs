//! The policy file (`policy/rules.toml`, built in; a file of the same shape replaces it) read
//! into the domain's [`Policy`]. Everything is checked on load, so a bad file is refused at
//! start with what is wrong, never half-applied.

use std::collections::{BTreeMap, HashMap};

use jembatan_domain::policy::{Policy, PositiveEntry, PriceWatch, Requirements, Rule, Severity, UsdRate};
use jembatan_domain::{Category, MerchantId, Money, TypedId};
use serde::Deserialize;

/// The policy shipped with the binary.
pub const BUILT_IN: &str = include_str!("../../../policy/rules.toml");

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    rules: Vec<RuleFile>,
    cross_border: CrossBorderFile,
    #[serde(default)]
    requirements: BTreeMap<String, RequirementsFile>,
    price_watch: PriceWatchFile,
    #[serde(default)]
    platform: PlatformFile,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    id: String,
    article: String,
    severity: String,
    title: String,
    checks: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CrossBorderFile {
    floor_usd_cents: i64,
    #[serde(default)]
    usd_rates: Vec<RateFile>,
    #[serde(default)]
    positive_list: Vec<PositiveFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RateFile {
    from: String,
    idr_per_usd_hundredths: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PositiveFile {
    hs_prefix: String,
    goods: String,
    from: String,
    until: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RequirementsFile {
    #[serde(default)]
    bpom: bool,
    #[serde(default)]
    halal: bool,
    #[serde(default)]
    sni: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PriceWatchFile {
    percent_below: u32,
    #[serde(default)]
    reference_idr: BTreeMap<String, i64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct PlatformFile {
    #[serde(default)]
    merchants: Vec<String>,
}

fn day(raw: &str, what: &'static str) -> Result<time::Date, String> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(raw, format).map_err(|_| format!("{what}: `{raw}` is not a day as YYYY-MM-DD"))
}

fn category(raw: &str, what: &str) -> Result<Category, String> {
    Category::parse(raw).map_err(|e| format!("{what}: {e}"))
}

/// Reads and checks a policy file.
pub fn load(text: &str) -> Result<Policy, String> {
    let file: File = toml::from_str(text).map_err(|e| format!("the policy file does not parse: {e}"))?;
    let mut rules = BTreeMap::new();
    for r in file.rules {
        let severity = Severity::parse(&r.severity).map_err(|e| format!("rule {}: {e}", r.id))?;
        if r.id.trim().is_empty() || r.article.trim().is_empty() {
            return Err("every rule needs an id and the article it comes from".to_owned());
        }
        let rule = Rule { id: r.id.clone(), article: r.article, severity, title: r.title, checks: r.checks };
        if rules.insert(r.id.clone(), rule).is_some() {
            return Err(format!("rule {} is given twice", r.id));
        }
    }
    if file.cross_border.floor_usd_cents <= 0 {
        return Err("cross_border.floor_usd_cents must be positive".to_owned());
    }
    let mut usd_rates = Vec::new();
    for r in &file.cross_border.usd_rates {
        if r.idr_per_usd_hundredths <= 0 {
            return Err(format!("the IDR/USD rate from {} must be positive", r.from));
        }
        usd_rates.push(UsdRate {
            from: day(&r.from, "a rate's `from`")?,
            idr_per_usd_hundredths: r.idr_per_usd_hundredths,
        });
    }
    usd_rates.sort_by_key(|r| r.from);
    if usd_rates.windows(2).any(|w| w[0].from == w[1].from) {
        return Err("two IDR/USD rates start on the same day".to_owned());
    }
    let mut positive_list = Vec::new();
    for p in file.cross_border.positive_list {
        if p.hs_prefix.is_empty() || !p.hs_prefix.chars().all(|c| c.is_ascii_digit()) {
            return Err(format!("positive list: HS prefix `{}` is not digits", p.hs_prefix));
        }
        let from = day(&p.from, "a positive-list entry's `from`")?;
        let until = p.until.as_deref().map(|u| day(u, "a positive-list entry's `until`")).transpose()?;
        if until.is_some_and(|u| u < from) {
            return Err(format!("positive list: HS {} ends before it begins", p.hs_prefix));
        }
        positive_list.push(PositiveEntry { hs_prefix: p.hs_prefix, goods: p.goods, from, until });
    }
    let mut requirements = HashMap::new();
    for (name, r) in file.requirements {
        requirements.insert(
            category(&name, "requirements")?,
            Requirements { bpom: r.bpom, halal: r.halal, sni: r.sni },
        );
    }
    if file.price_watch.percent_below > 100 {
        return Err("price_watch.percent_below is a percentage (0 to 100)".to_owned());
    }
    let mut reference = HashMap::new();
    for (name, idr) in file.price_watch.reference_idr {
        let money = Money::from_rupiah(idr).map_err(|e| format!("price_watch.reference_idr.{name}: {e}"))?;
        reference.insert(category(&name, "price_watch.reference_idr")?, money);
    }
    let platform_merchants = file
        .platform
        .merchants
        .iter()
        .map(|m| MerchantId::parse(m).map_err(|e| format!("platform.merchants: `{m}`: {e}")))
        .collect::<Result<_, _>>()?;
    Ok(Policy {
        rules,
        cross_border_floor_usd_cents: file.cross_border.floor_usd_cents,
        usd_rates,
        positive_list,
        requirements,
        price_watch: PriceWatch { percent_below: file.price_watch.percent_below, reference },
        platform_merchants,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_policy_loads_with_its_seven_rules() {
        let policy = load(BUILT_IN).unwrap();
        assert_eq!(
            policy.rules.keys().cloned().collect::<Vec<_>>(),
            ["R1", "R2", "R3", "R4", "R5", "R6", "R7"]
        );
        assert!(policy.rules.values().all(|r| r.article.starts_with("Permendag 31/2023 art.")));
        assert_eq!(policy.cross_border_floor_usd_cents, 10_000);
        assert!(policy.requirements[&Category::Food].bpom && policy.requirements[&Category::Food].halal);
        assert_eq!(policy.rules["R7"].severity, Severity::Review);
    }

    #[test]
    fn a_bad_policy_file_is_refused_with_what_is_wrong() {
        let bad = |from: &str, to: &str| load(&BUILT_IN.replacen(from, to, 1)).unwrap_err();
        assert!(
            bad("severity = \"blocking\"", "severity = \"sometimes\"")
                .contains("rule R1: severity `sometimes`")
        );
        assert!(bad("from = \"2023-09-27\"", "from = \"27/09/2023\"").contains("YYYY-MM-DD"));
        assert!(bad("[requirements.food]", "[requirements.drinks]").contains("requirements: "));
        assert!(bad("percent_below = 70", "percent_below = 170").contains("percentage"));
        assert!(bad("hs_prefix = \"4901\"", "hs_prefix = \"49x1\"").contains("not digits"));
        assert!(
            bad("floor_usd_cents = 10000", "floor_usd_cents = 10000\nfloor_usd = 1")
                .contains("does not parse")
        );
        assert!(bad("id = \"R2\"", "id = \"R1\"").contains("given twice"));
    }
}
