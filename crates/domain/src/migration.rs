//! The pure rules of the live migration (DESIGN.md §6): the state machine of one merchant's
//! move and the selection language of `jembatan migrate plan --select EXPR`.
//!
//! Selection: `all`, or terms joined by commas, every term must hold (AND):
//! - `seller_type=LOCAL`, `seller_type=LOCAL|CROSS_BORDER`
//! - `province=Bali`, `city=Denpasar|Badung` (case-insensitive; `|` separates alternatives, OR)
//! - `shop_id=123|456`
//! - `orders<1000`, `products>=5`, `gmv>10000000` (integer rupiah) with `<`, `<=`, `>`, `>=`, `=`
//!
//! A bad term is refused with an error naming it and the known fields.

use std::fmt;

use crate::money::Money;
use crate::social::SocialId;

/// Where one merchant is in its move from the legacy store to the core.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MigrationState {
    /// Planned into a wave; nothing copied yet, the legacy store owns it.
    Legacy,
    /// The snapshot is being copied in batches.
    Copying,
    /// Changes since the snapshot position are being applied.
    CatchingUp,
    /// Both sides compared equal.
    Verified,
    /// The legacy fence is up; the last changes are being applied.
    Fenced,
    /// The core owns it; reverse sync keeps the legacy store current.
    CutOver,
    /// Done: reverse sync stopped. Final.
    Finalized,
    /// Back on the legacy store with nothing lost; may be planned again.
    RolledBack,
    /// Stopped on records the core cannot take; waits for a fix or the operator's acceptance.
    Quarantined,
}

impl MigrationState {
    pub const ALL: [MigrationState; 9] = [
        MigrationState::Legacy,
        MigrationState::Copying,
        MigrationState::CatchingUp,
        MigrationState::Verified,
        MigrationState::Fenced,
        MigrationState::CutOver,
        MigrationState::Finalized,
        MigrationState::RolledBack,
        MigrationState::Quarantined,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MigrationState::Legacy => "legacy",
            MigrationState::Copying => "copying",
            MigrationState::CatchingUp => "catching_up",
            MigrationState::Verified => "verified",
            MigrationState::Fenced => "fenced",
            MigrationState::CutOver => "cut_over",
            MigrationState::Finalized => "finalized",
            MigrationState::RolledBack => "rolled_back",
            MigrationState::Quarantined => "quarantined",
        }
    }

    pub fn parse(raw: &str) -> Result<MigrationState, crate::DomainError> {
        MigrationState::ALL.into_iter().find(|s| s.as_str() == raw).ok_or_else(|| {
            crate::DomainError::invalid(
                "state",
                "must be one of: legacy, copying, catching_up, verified, fenced, cut_over, finalized, rolled_back, quarantined",
            )
        })
    }

    /// A state the engine no longer works on: `finalized` for good, `rolled_back` until the
    /// merchant is planned again.
    pub fn is_final(self) -> bool {
        matches!(self, MigrationState::Finalized | MigrationState::RolledBack)
    }

    /// Whether a merchant in this state may be planned into a (new) wave.
    pub fn may_be_planned(self) -> bool {
        self == MigrationState::RolledBack
    }

    /// Whether the engine may move a merchant from `self` to `next`. Staying in a non-final
    /// state is allowed (a crash resumes where it stopped).
    pub fn can_move_to(self, next: MigrationState) -> bool {
        use MigrationState as S;
        if self == next {
            return !self.is_final();
        }
        match self {
            S::Legacy => matches!(next, S::Copying | S::Quarantined | S::RolledBack),
            S::Copying => matches!(next, S::CatchingUp | S::Quarantined | S::RolledBack),
            // Verification may send a merchant back to copy again.
            S::CatchingUp => matches!(next, S::Verified | S::Copying | S::Quarantined | S::RolledBack),
            // New changes after verification are caught up before the fence.
            S::Verified => matches!(next, S::Fenced | S::CatchingUp | S::Quarantined | S::RolledBack),
            // A cutover over its time budget lifts the fence and tries again later.
            S::Fenced => matches!(next, S::CutOver | S::CatchingUp | S::RolledBack),
            S::CutOver => matches!(next, S::Finalized | S::RolledBack),
            S::Finalized => false,
            // Planned again: it starts over.
            S::RolledBack => next == S::Legacy,
            // Fixed records are copied again; the operator may also give up on the merchant.
            S::Quarantined => matches!(next, S::Copying | S::RolledBack),
        }
    }
}

impl fmt::Display for MigrationState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a selection is evaluated against: one legacy shop and its sizes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShopFacts {
    pub shop_id: SocialId,
    /// `LOCAL` or `CROSS_BORDER` as the legacy row writes it.
    pub seller_type: String,
    pub province: String,
    pub city: String,
    /// Orders of the shop, every status.
    pub orders: u64,
    /// Products that are not deleted.
    pub products: u64,
    /// Sum of the totals of its paid orders (not unpaid, not cancelled).
    pub gmv: Money,
    /// Rows a move copies: products, SKUs, orders and order items.
    pub rows: u64,
}

/// The fields a selection term may name.
pub const SELECTION_FIELDS: &str = "seller_type, province, city, shop_id, orders, products, gmv";

/// A numeric field of a shop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Measure {
    Orders,
    Products,
    /// Integer rupiah.
    Gmv,
}

impl Measure {
    fn as_str(self) -> &'static str {
        match self {
            Measure::Orders => "orders",
            Measure::Products => "products",
            Measure::Gmv => "gmv",
        }
    }

    fn of(self, shop: &ShopFacts) -> i64 {
        match self {
            Measure::Orders => shop.orders as i64,
            Measure::Products => shop.products as i64,
            Measure::Gmv => shop.gmv.rupiah(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Comparison {
    Less,
    LessOrEqual,
    Greater,
    GreaterOrEqual,
    Equal,
}

impl Comparison {
    fn as_str(self) -> &'static str {
        match self {
            Comparison::Less => "<",
            Comparison::LessOrEqual => "<=",
            Comparison::Greater => ">",
            Comparison::GreaterOrEqual => ">=",
            Comparison::Equal => "=",
        }
    }

    fn holds(self, left: i64, right: i64) -> bool {
        match self {
            Comparison::Less => left < right,
            Comparison::LessOrEqual => left <= right,
            Comparison::Greater => left > right,
            Comparison::GreaterOrEqual => left >= right,
            Comparison::Equal => left == right,
        }
    }
}

/// A text field of a shop, compared without regard to case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Place {
    Province,
    City,
}

impl Place {
    fn as_str(self) -> &'static str {
        match self {
            Place::Province => "province",
            Place::City => "city",
        }
    }
}

/// One term of a selection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Term {
    /// `seller_type=…`: canonical upper-case values (`LOCAL`, `CROSS_BORDER`).
    SellerType(Vec<String>),
    /// `province=…` / `city=…`: values as written, matched ignoring case.
    Place(Place, Vec<String>),
    ShopId(Vec<SocialId>),
    Compare(Measure, Comparison, i64),
}

impl Term {
    fn matches(&self, shop: &ShopFacts) -> bool {
        match self {
            Term::SellerType(values) => values.iter().any(|v| v.eq_ignore_ascii_case(&shop.seller_type)),
            Term::Place(place, values) => {
                let actual = match place {
                    Place::Province => &shop.province,
                    Place::City => &shop.city,
                };
                values.iter().any(|v| v.to_lowercase() == actual.trim().to_lowercase())
            }
            Term::ShopId(ids) => ids.contains(&shop.shop_id),
            Term::Compare(measure, comparison, value) => comparison.holds(measure.of(shop), *value),
        }
    }
}

impl fmt::Display for Term {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Term::SellerType(values) => write!(f, "seller_type={}", values.join("|")),
            Term::Place(place, values) => write!(f, "{}={}", place.as_str(), values.join("|")),
            Term::ShopId(ids) => {
                let ids: Vec<&str> = ids.iter().map(SocialId::as_str).collect();
                write!(f, "shop_id={}", ids.join("|"))
            }
            Term::Compare(measure, comparison, value) => {
                write!(f, "{}{}{value}", measure.as_str(), comparison.as_str())
            }
        }
    }
}

/// Which merchants a wave takes: every shop, or those for which every term holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    All,
    Every(Vec<Term>),
}

/// A selection that does not parse: the term at fault and what to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "selection term `{term}`: {reason} (known fields: {SELECTION_FIELDS}; e.g. `seller_type=LOCAL,province=Bali,orders<1000`)"
)]
pub struct SelectionError {
    pub term: String,
    pub reason: String,
}

impl SelectionError {
    fn new(term: &str, reason: impl Into<String>) -> SelectionError {
        SelectionError { term: term.to_owned(), reason: reason.into() }
    }
}

impl Selection {
    /// Longest selection expression accepted, in bytes.
    pub const EXPRESSION_BYTES_MAX: usize = 4_096;
    /// Most alternatives in one term (`shop_id=1|2|…`).
    pub const VALUES_MAX: usize = 1_000;

    pub fn parse(raw: &str) -> Result<Selection, SelectionError> {
        let raw = raw.trim();
        if raw.len() > Self::EXPRESSION_BYTES_MAX {
            return Err(SelectionError::new(
                &raw.chars().take(40).collect::<String>(),
                format!("the expression is longer than {} bytes", Self::EXPRESSION_BYTES_MAX),
            ));
        }
        if raw.eq_ignore_ascii_case("all") {
            return Ok(Selection::All);
        }
        if raw.is_empty() {
            return Err(SelectionError::new("", "the selection is empty: write `all` or one or more terms"));
        }
        let mut terms = Vec::new();
        for term in raw.split(',') {
            terms.push(parse_term(term.trim())?);
        }
        Ok(Selection::Every(terms))
    }

    pub fn matches(&self, shop: &ShopFacts) -> bool {
        match self {
            Selection::All => true,
            Selection::Every(terms) => terms.iter().all(|t| t.matches(shop)),
        }
    }

    /// Whether any term reads the shop's GMV (which costs a pass over its orders).
    pub fn reads_gmv(&self) -> bool {
        match self {
            Selection::All => false,
            Selection::Every(terms) => terms.iter().any(|t| matches!(t, Term::Compare(Measure::Gmv, ..))),
        }
    }
}

impl fmt::Display for Selection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Selection::All => f.write_str("all"),
            Selection::Every(terms) => {
                for (index, term) in terms.iter().enumerate() {
                    if index > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{term}")?;
                }
                Ok(())
            }
        }
    }
}

fn parse_term(term: &str) -> Result<Term, SelectionError> {
    if term.is_empty() {
        return Err(SelectionError::new(term, "an empty term (two commas in a row, or a trailing comma)"));
    }
    if term.eq_ignore_ascii_case("all") {
        return Err(SelectionError::new(term, "`all` stands alone: it cannot be combined with other terms"));
    }
    let at = term.find(['<', '>', '=']).ok_or_else(|| {
        SelectionError::new(term, "a term is FIELD=VALUE or a comparison such as `orders<1000`")
    })?;
    let field = term[..at].trim().to_ascii_lowercase();
    let rest = &term[at..];
    let (comparison, value) = if let Some(v) = rest.strip_prefix("<=") {
        (Comparison::LessOrEqual, v)
    } else if let Some(v) = rest.strip_prefix(">=") {
        (Comparison::GreaterOrEqual, v)
    } else if let Some(v) = rest.strip_prefix('<') {
        (Comparison::Less, v)
    } else if let Some(v) = rest.strip_prefix('>') {
        (Comparison::Greater, v)
    } else {
        (Comparison::Equal, &rest[1..])
    };
    let value = value.trim();
    let measure = match field.as_str() {
        "orders" => Some(Measure::Orders),
        "products" => Some(Measure::Products),
        "gmv" => Some(Measure::Gmv),
        _ => None,
    };
    if let Some(measure) = measure {
        let number =
            value.parse::<i64>().ok().filter(|n| *n >= 0 && value.bytes().all(|b| b.is_ascii_digit()));
        let number = number.ok_or_else(|| {
            let unit = if measure == Measure::Gmv { " of rupiah (no dots or commas)" } else { "" };
            SelectionError::new(
                term,
                format!("`{}` needs a whole number{unit}, not `{value}`", measure.as_str()),
            )
        })?;
        return Ok(Term::Compare(measure, comparison, number));
    }
    if comparison != Comparison::Equal {
        let known = matches!(field.as_str(), "seller_type" | "province" | "city" | "shop_id");
        let reason = if known {
            format!("`{field}` takes `=` only; compare with <, <=, >, >= on orders, products or gmv")
        } else {
            format!("unknown field `{field}`")
        };
        return Err(SelectionError::new(term, reason));
    }
    let values: Vec<&str> = value.split('|').map(str::trim).collect();
    if values.iter().any(|v| v.is_empty()) {
        return Err(SelectionError::new(
            term,
            "an empty value: write values between `|`, e.g. `province=Bali|Jawa Barat`",
        ));
    }
    if values.len() > Selection::VALUES_MAX {
        return Err(SelectionError::new(term, format!("more than {} values", Selection::VALUES_MAX)));
    }
    match field.as_str() {
        "seller_type" => {
            let mut types = Vec::with_capacity(values.len());
            for v in values {
                let upper = v.to_ascii_uppercase();
                if upper != "LOCAL" && upper != "CROSS_BORDER" {
                    return Err(SelectionError::new(
                        term,
                        format!("seller_type is LOCAL or CROSS_BORDER, not `{v}`"),
                    ));
                }
                types.push(upper);
            }
            Ok(Term::SellerType(types))
        }
        "province" | "city" => {
            let place = if field == "province" { Place::Province } else { Place::City };
            Ok(Term::Place(place, values.into_iter().map(str::to_owned).collect()))
        }
        "shop_id" => {
            let mut ids = Vec::with_capacity(values.len());
            for v in values {
                ids.push(SocialId::parse("shop_id", v).map_err(|_| {
                    SelectionError::new(term, format!("a shop id is 1 to 20 digits, not `{v}`"))
                })?);
            }
            Ok(Term::ShopId(ids))
        }
        _ => Err(SelectionError::new(term, format!("unknown field `{field}`"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn shop() -> ShopFacts {
        ShopFacts {
            shop_id: SocialId::parse("shop_id", "1001").unwrap(),
            seller_type: "LOCAL".to_owned(),
            province: "Bali".to_owned(),
            city: "Denpasar".to_owned(),
            orders: 40,
            products: 12,
            gmv: Money::from_rupiah(5_000_000).unwrap(),
            rows: 200,
        }
    }

    fn check(expression: &str, expected: bool) {
        let selection = Selection::parse(expression).unwrap_or_else(|e| panic!("{expression}: {e}"));
        assert_eq!(selection.matches(&shop()), expected, "{expression}");
    }

    #[test]
    fn selections_match_what_they_say() {
        check("all", true);
        check("ALL", true);
        check("seller_type=LOCAL", true);
        check("seller_type=local", true);
        check("seller_type=CROSS_BORDER", false);
        check("seller_type=CROSS_BORDER|LOCAL", true);
        check("province=bali", true);
        check("province=Jawa Barat|BALI", true);
        check("province=Jawa Barat", false);
        check("city=Denpasar", true);
        check(" city = denpasar ", true);
        check("shop_id=1001", true);
        check("shop_id=1|2|1001", true);
        check("shop_id=1002", false);
        check("orders<41", true);
        check("orders<40", false);
        check("orders<=40", true);
        check("orders>39", true);
        check("orders>=41", false);
        check("orders=40", true);
        check("products>=12", true);
        check("gmv>4999999", true);
        check("gmv>5000000", false);
        check("seller_type=LOCAL,province=Bali,orders<1000", true);
        check("seller_type=LOCAL,province=Jawa Timur,orders<1000", false);
    }

    #[test]
    fn bad_selections_name_the_term_and_the_fields() {
        for (expression, term, says) in [
            ("", "", "empty"),
            ("colour=red", "colour=red", "unknown field `colour`"),
            ("province<Bali", "province<Bali", "`=` only"),
            ("orders<many", "orders<many", "whole number"),
            ("gmv>1.000.000", "gmv>1.000.000", "rupiah"),
            ("orders<-1", "orders<-1", "whole number"),
            ("seller_type=LOKAL", "seller_type=LOKAL", "LOCAL or CROSS_BORDER"),
            ("shop_id=12a", "shop_id=12a", "1 to 20 digits"),
            ("province=Bali,", "", "empty term"),
            ("province=Bali||Jawa", "province=Bali||Jawa", "empty value"),
            ("all,orders<5", "all", "stands alone"),
            ("bali", "bali", "FIELD=VALUE"),
        ] {
            let error = Selection::parse(expression).expect_err(expression);
            assert_eq!(error.term, term, "{expression}");
            let message = error.to_string();
            assert!(message.contains(says), "{expression}: {message}");
            assert!(message.contains(SELECTION_FIELDS), "{message}");
        }
        assert!(Selection::parse(&"a".repeat(5000)).is_err());
    }

    #[test]
    fn states_parse_and_move_by_the_table() {
        use MigrationState as S;
        for state in S::ALL {
            assert_eq!(S::parse(state.as_str()), Ok(state));
        }
        assert!(S::parse("done").is_err());
        // The happy path.
        let path = [S::Legacy, S::Copying, S::CatchingUp, S::Verified, S::Fenced, S::CutOver, S::Finalized];
        for pair in path.windows(2) {
            assert!(pair[0].can_move_to(pair[1]), "{} -> {}", pair[0], pair[1]);
            // Backwards only to copy or catch up again.
            let back =
                matches!((pair[1], pair[0]), (S::CatchingUp, S::Copying) | (S::Verified, S::CatchingUp));
            assert_eq!(pair[1].can_move_to(pair[0]), back, "{} -> {}", pair[1], pair[0]);
        }
        // A crash resumes every state that is not final.
        for state in S::ALL {
            assert_eq!(state.can_move_to(state), !state.is_final(), "{state}");
        }
        // Finalized is final; rolled back may only be planned again.
        for next in S::ALL {
            assert!(!S::Finalized.can_move_to(next), "finalized -> {next}");
            assert_eq!(S::RolledBack.can_move_to(next), next == S::Legacy, "rolled_back -> {next}");
        }
        assert!(S::CutOver.can_move_to(S::RolledBack));
        assert!(S::Fenced.can_move_to(S::CatchingUp), "a cutover over budget tries again");
        assert!(!S::Legacy.can_move_to(S::CutOver), "no skipping the copy");
        assert!(!S::Copying.can_move_to(S::Fenced), "no fence before verification");
        assert!(!S::Quarantined.can_move_to(S::Finalized), "quarantine is resolved before finalizing");
        assert!(
            S::RolledBack.may_be_planned() && !S::Finalized.may_be_planned() && !S::Copying.may_be_planned()
        );
    }

    fn value() -> impl Strategy<Value = String> {
        "[A-Za-z][A-Za-z ]{0,10}[A-Za-z]".prop_map(|s| s)
    }

    fn term() -> impl Strategy<Value = Term> {
        let comparison = prop_oneof![
            Just(Comparison::Less),
            Just(Comparison::LessOrEqual),
            Just(Comparison::Greater),
            Just(Comparison::GreaterOrEqual),
            Just(Comparison::Equal),
        ];
        let measure = prop_oneof![Just(Measure::Orders), Just(Measure::Products), Just(Measure::Gmv)];
        prop_oneof![
            proptest::sample::subsequence(vec!["LOCAL".to_owned(), "CROSS_BORDER".to_owned()], 1..=2)
                .prop_map(Term::SellerType),
            (prop_oneof![Just(Place::Province), Just(Place::City)], proptest::collection::vec(value(), 1..4))
                .prop_map(|(place, values)| Term::Place(place, values)),
            proptest::collection::vec("[0-9]{1,20}", 1..4).prop_map(|ids| Term::ShopId(
                ids.iter().map(|id| SocialId::parse("shop_id", id).unwrap()).collect()
            )),
            (measure, comparison, 0i64..=i64::MAX).prop_map(|(m, c, v)| Term::Compare(m, c, v)),
        ]
    }

    fn facts() -> impl Strategy<Value = ShopFacts> {
        (
            "[0-9]{1,20}",
            prop_oneof![Just("LOCAL"), Just("CROSS_BORDER")],
            value(),
            value(),
            0u64..100_000,
            0u64..10_000,
            0i64..1_000_000_000_000,
        )
            .prop_map(|(id, seller_type, province, city, orders, products, gmv)| ShopFacts {
                shop_id: SocialId::parse("shop_id", &id).unwrap(),
                seller_type: seller_type.to_owned(),
                province,
                city,
                orders,
                products,
                gmv: Money::from_rupiah(gmv).unwrap(),
                rows: orders + products,
            })
    }

    proptest! {
        /// What a selection displays parses back to the same selection.
        #[test]
        fn display_and_parse_round_trip(terms in proptest::collection::vec(term(), 1..6)) {
            let selection = Selection::Every(terms);
            let written = selection.to_string();
            prop_assert_eq!(Selection::parse(&written), Ok(selection), "{}", written);
        }

        /// `all` matches every shop, and a shop always matches a term naming its own values.
        #[test]
        fn all_matches_every_shop(shop in facts()) {
            prop_assert!(Selection::All.matches(&shop));
            prop_assert_eq!(Selection::parse("all").unwrap(), Selection::All);
            let own = format!(
                "seller_type={},province={},city={},shop_id={},orders={},products<={},gmv>={}",
                shop.seller_type, shop.province.to_uppercase(), shop.city.to_lowercase(), shop.shop_id,
                shop.orders, shop.products, shop.gmv.rupiah()
            );
            prop_assert!(Selection::parse(&own).unwrap().matches(&shop), "{}", own);
        }

        /// No input makes the parser panic.
        #[test]
        fn any_input_is_parsed_or_refused(raw in "[a-z_<>=|, 0-9]{0,40}") {
            let _ = Selection::parse(&raw);
        }
    }
}
