//! Reconciliation (DESIGN.md §3, issue 3): a payment provider's settlement report matched
//! against what our ledger says was paid, refunded and paid out. Pure: the store hands in the
//! report's lines and our side's entries, [`reconcile`] says what matches and what does not.
//!
//! The report is CSV `provider_ref,type,amount,settled_at`; `amount` is integer rupiah (a
//! decimal point or a thousands separator is refused, naming the line, rather than guessed at);
//! `settled_at` is RFC 3339 or a date (the whole day, UTC).

use std::collections::{BTreeMap, BTreeSet};

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::csv;
use crate::error::DomainError;
use crate::money::Money;
use crate::time::Timestamp;

/// Lines of a report at most.
pub const REPORT_LINES_MAX: usize = 20_000;
const REFERENCE_CHARS_MAX: usize = 100;
const DAY_MS: i64 = 86_400_000;

/// What moved money, on either side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EntryKind {
    Payment,
    Refund,
    Payout,
}

impl EntryKind {
    pub const ALL: [EntryKind; 3] = [EntryKind::Payment, EntryKind::Refund, EntryKind::Payout];

    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::Payment => "payment",
            EntryKind::Refund => "refund",
            EntryKind::Payout => "payout",
        }
    }

    pub fn parse(raw: &str) -> Result<EntryKind, DomainError> {
        EntryKind::ALL
            .into_iter()
            .find(|k| k.as_str() == raw)
            .ok_or_else(|| DomainError::invalid("type", "must be payment, refund or payout"))
    }
}

/// One line of the provider's report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportLine {
    pub line_no: usize,
    pub kind: EntryKind,
    /// The provider's reference: a payment's `provider_ref`, a refund's or a payout's id.
    pub reference: String,
    pub amount: Money,
    /// When it settled: an instant, or for a date the first millisecond of that day.
    pub settled_from: Timestamp,
    /// The last millisecond it may have settled (the same instant, or the end of the day).
    pub settled_to: Timestamp,
}

/// One money movement on our side, as the ledger's owners record it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerEntry {
    pub kind: EntryKind,
    pub reference: String,
    pub amount: Money,
    /// When it was paid, refunded or paid out.
    pub at: Timestamp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Outcome {
    Matched,
    MissingInLedger,
    MissingInReport,
    AmountMismatch,
    DuplicateInReport,
}

impl Outcome {
    pub const ALL: [Outcome; 5] = [
        Outcome::Matched,
        Outcome::MissingInLedger,
        Outcome::MissingInReport,
        Outcome::AmountMismatch,
        Outcome::DuplicateInReport,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Matched => "matched",
            Outcome::MissingInLedger => "missing_in_ledger",
            Outcome::MissingInReport => "missing_in_report",
            Outcome::AmountMismatch => "amount_mismatch",
            Outcome::DuplicateInReport => "duplicate_in_report",
        }
    }

    pub fn parse(raw: &str) -> Result<Outcome, DomainError> {
        Outcome::ALL.into_iter().find(|o| o.as_str() == raw).ok_or_else(|| {
            DomainError::invalid(
                "outcome",
                "must be matched, missing_in_ledger, missing_in_report, amount_mismatch or duplicate_in_report",
            )
        })
    }
}

/// One finding of a reconciliation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub outcome: Outcome,
    pub kind: EntryKind,
    pub reference: String,
    pub report_amount: Option<Money>,
    pub ledger_amount: Option<Money>,
    /// The report's line, when the item comes from one.
    pub line_no: Option<usize>,
}

/// A parsed report: its lines and the period they cover.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub lines: Vec<ReportLine>,
    /// [earliest settled_from, latest settled_to]; our entries in it must be in the report.
    pub period: (Timestamp, Timestamp),
}

pub const REPORT_HEADER: [&str; 4] = ["provider_ref", "type", "amount", "settled_at"];

/// Parses a settlement report; any bad line refuses the whole report, naming the line.
pub fn parse_report(text: &str) -> Result<Report, DomainError> {
    let records = csv::parse("report", text, REPORT_LINES_MAX + 1)?;
    csv::expect_header("report", &records, &REPORT_HEADER)?;
    let mut lines = Vec::with_capacity(records.len());
    for record in &records[1..] {
        let at_line =
            |reason: String| DomainError::invalid("report", format!("line {}: {reason}", record.line_no));
        let [reference, kind, amount, settled_at] = record.fields.as_slice() else {
            return Err(at_line(format!(
                "expected 4 fields ({}), got {}",
                REPORT_HEADER.join(","),
                record.fields.len()
            )));
        };
        let reference = reference.trim();
        if reference.is_empty()
            || reference.chars().count() > REFERENCE_CHARS_MAX
            || reference.chars().any(char::is_control)
        {
            return Err(at_line(format!("provider_ref must be 1 to {REFERENCE_CHARS_MAX} characters")));
        }
        let kind = EntryKind::parse(kind.trim()).map_err(|e| at_line(e.to_string()))?;
        let amount = parse_amount(amount).map_err(at_line)?;
        let (settled_from, settled_to) = parse_settled_at(settled_at.trim()).map_err(at_line)?;
        lines.push(ReportLine {
            line_no: record.line_no,
            kind,
            reference: reference.to_owned(),
            amount,
            settled_from,
            settled_to,
        });
    }
    let from = lines.iter().map(|l| l.settled_from).min();
    let to = lines.iter().map(|l| l.settled_to).max();
    let (Some(from), Some(to)) = (from, to) else {
        return Err(DomainError::invalid("report", "holds no lines after the header"));
    };
    Ok(Report { lines, period: (from, to) })
}

fn parse_amount(raw: &str) -> Result<Money, String> {
    let raw = raw.trim();
    let digits = !raw.is_empty() && raw.len() <= 16 && raw.bytes().all(|b| b.is_ascii_digit());
    if !digits {
        return Err(format!(
            "amount `{raw}` must be whole rupiah in digits only (no decimals, no thousands separators, not negative)"
        ));
    }
    let value: i64 = raw.parse().map_err(|_| format!("amount `{raw}` is out of range"))?;
    Money::from_rupiah(value).map_err(|e| e.to_string())
}

fn parse_settled_at(raw: &str) -> Result<(Timestamp, Timestamp), String> {
    let bad = || {
        format!("settled_at `{raw}` must be an RFC 3339 time (2026-12-01T08:30:00Z) or a date (2026-12-01)")
    };
    if let Ok(at) = OffsetDateTime::parse(raw, &Rfc3339) {
        let ms = i64::try_from(at.unix_timestamp_nanos() / 1_000_000).map_err(|_| bad())?;
        return Ok((Timestamp::from_unix_ms(ms), Timestamp::from_unix_ms(ms)));
    }
    let parts: Vec<&str> = raw.split('-').collect();
    let [year, month, day] = parts.as_slice() else { return Err(bad()) };
    if year.len() != 4 || month.len() != 2 || day.len() != 2 {
        return Err(bad());
    }
    let year: i32 = year.parse().map_err(|_| bad())?;
    let month: u8 = month.parse().map_err(|_| bad())?;
    let day: u8 = day.parse().map_err(|_| bad())?;
    let month = time::Month::try_from(month).map_err(|_| bad())?;
    let date = time::Date::from_calendar_date(year, month, day).map_err(|_| bad())?;
    let start = date.midnight().assume_utc().unix_timestamp() * 1_000;
    Ok((Timestamp::from_unix_ms(start), Timestamp::from_unix_ms(start + DAY_MS - 1)))
}

/// Matches the report against our entries. `ledger` must hold every entry whose reference the
/// report names, and every entry inside the report's period; entries outside the period that
/// the report does not name are ignored (they belong to another report).
pub fn reconcile(report: &Report, ledger: &[LedgerEntry]) -> Vec<Item> {
    let ours: BTreeMap<(EntryKind, &str), &LedgerEntry> =
        ledger.iter().map(|e| ((e.kind, e.reference.as_str()), e)).collect();
    let mut seen: BTreeSet<(EntryKind, &str)> = BTreeSet::new();
    let mut items = Vec::with_capacity(report.lines.len());
    for line in &report.lines {
        let key = (line.kind, line.reference.as_str());
        let ledger_amount = ours.get(&key).map(|e| e.amount);
        let outcome = if !seen.insert(key) {
            Outcome::DuplicateInReport
        } else {
            match ledger_amount {
                None => Outcome::MissingInLedger,
                Some(amount) if amount == line.amount => Outcome::Matched,
                Some(_) => Outcome::AmountMismatch,
            }
        };
        items.push(Item {
            outcome,
            kind: line.kind,
            reference: line.reference.clone(),
            report_amount: Some(line.amount),
            ledger_amount,
            line_no: Some(line.line_no),
        });
    }
    let (from, to) = report.period;
    for (key, entry) in &ours {
        if !seen.contains(key) && entry.at >= from && entry.at <= to {
            items.push(Item {
                outcome: Outcome::MissingInReport,
                kind: entry.kind,
                reference: entry.reference.clone(),
                report_amount: None,
                ledger_amount: Some(entry.amount),
                line_no: None,
            });
        }
    }
    items
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn report_of(entries: &[LedgerEntry]) -> String {
        let mut text = String::from("provider_ref,type,amount,settled_at\n");
        for e in entries {
            let at =
                OffsetDateTime::from_unix_timestamp_nanos(i128::from(e.at.unix_ms()) * 1_000_000).unwrap();
            text.push_str(&format!(
                "{},{},{},{}\n",
                e.reference,
                e.kind.as_str(),
                e.amount.rupiah(),
                at.format(&Rfc3339).unwrap()
            ));
        }
        text
    }

    fn outcomes(items: &[Item]) -> BTreeMap<Outcome, usize> {
        let mut counts = BTreeMap::new();
        for item in items {
            *counts.entry(item.outcome).or_insert(0) += 1;
        }
        counts
    }

    /// Distinct entries at distinct, increasing times.
    fn entries() -> impl Strategy<Value = Vec<LedgerEntry>> {
        prop::collection::vec((0usize..3, 1i64..5_000_000, 1i64..3_600_000), 3..30).prop_map(|rows| {
            let mut at = 1_796_083_200_000i64;
            rows.into_iter()
                .enumerate()
                .map(|(i, (kind, amount, step))| {
                    at += step;
                    LedgerEntry {
                        kind: EntryKind::ALL[kind],
                        reference: format!("ref-{i}"),
                        amount: Money::from_rupiah(amount).unwrap(),
                        at: Timestamp::from_unix_ms(at),
                    }
                })
                .collect()
        })
    }

    #[test]
    fn refuses_decimals_separators_and_bad_dates_naming_the_line() {
        let head = "provider_ref,type,amount,settled_at\n";
        for (bad, needle) in [
            ("a,payment,150000.00,2026-12-01", "line 2"),
            ("a,payment,\"150,000\",2026-12-01", "thousands"),
            ("a,payment,150.000,2026-12-01", "decimals"),
            ("a,payment,-5,2026-12-01", "digits"),
            ("a,payment,5,01/12/2026", "settled_at"),
            ("a,payment,5,2026-02-30", "settled_at"),
            ("a,cash,5,2026-12-01", "type"),
            ("a,payment,5", "4 fields"),
        ] {
            let error = parse_report(&format!("{head}{bad}\n")).unwrap_err().to_string();
            assert!(error.contains(needle) && error.contains("line 2"), "{bad}: {error}");
        }
        let ok =
            parse_report(&format!("{head}a,payment,5,2026-12-01\nb,refund,7,2026-12-01T08:00:00+07:00\n"))
                .unwrap();
        assert_eq!(ok.period.0.unix_ms(), 1_796_083_200_000);
        assert_eq!(ok.period.1.unix_ms(), 1_796_083_200_000 + DAY_MS - 1);
        assert_eq!(ok.lines[1].settled_from.unix_ms(), 1_796_083_200_000 + 3_600_000);
        assert!(parse_report(head).is_err());
    }

    proptest! {
        /// A report written from our side matches it fully.
        #[test]
        fn a_report_of_the_ledger_matches_fully(ledger in entries()) {
            let report = parse_report(&report_of(&ledger)).unwrap();
            let items = reconcile(&report, &ledger);
            prop_assert_eq!(items.len(), ledger.len());
            prop_assert!(items.iter().all(|i| i.outcome == Outcome::Matched));
        }

        /// Removing, adding, changing or repeating one line gives exactly one finding of its kind.
        #[test]
        fn one_changed_line_gives_one_finding(ledger in entries(), pick in any::<prop::sample::Index>(), change in 0u8..4) {
            // An inner entry, so that removing it does not shrink the report's period.
            let index = 1 + pick.index(ledger.len() - 2);
            let mut reported = ledger.clone();
            let expected = match change {
                0 => { reported.remove(index); Outcome::MissingInReport }
                1 => {
                    let mut extra = reported[index].clone();
                    extra.reference = "not-ours".to_owned();
                    reported.push(extra);
                    Outcome::MissingInLedger
                }
                2 => {
                    let amount = reported[index].amount.rupiah();
                    reported[index].amount = Money::from_rupiah(amount + 1).unwrap();
                    Outcome::AmountMismatch
                }
                _ => { let copy = reported[index].clone(); reported.push(copy); Outcome::DuplicateInReport }
            };
            let report = parse_report(&report_of(&reported)).unwrap();
            let items = reconcile(&report, &ledger);
            let counts = outcomes(&items);
            let findings: Vec<&Item> = items.iter().filter(|i| i.outcome != Outcome::Matched).collect();
            prop_assert_eq!(findings.len(), 1, "{:?}", counts);
            prop_assert_eq!(findings[0].outcome, expected);
            if expected == Outcome::AmountMismatch {
                prop_assert_eq!(findings[0].ledger_amount, Some(ledger[index].amount));
                prop_assert_eq!(findings[0].report_amount, Some(reported[index].amount));
            }
        }

        /// Our entries outside the report's period are not reported missing.
        #[test]
        fn entries_outside_the_period_are_ignored(ledger in entries()) {
            let inner = &ledger[1..ledger.len() - 1];
            let report = parse_report(&report_of(inner)).unwrap();
            let items = reconcile(&report, &ledger);
            prop_assert!(items.iter().all(|i| i.outcome == Outcome::Matched));
        }
    }
}
