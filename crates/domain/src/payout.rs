//! Payouts (DESIGN.md §4, settlement): a merchant withdraws from its balance to its bank
//! account. The money is held (merchant balance → payout clearing, pending) when the merchant
//! asks, exported to the bank in a batch file, and either posted on to provider clearing when
//! the bank reports it paid, or voided back to the balance when the bank reports it failed.
//!
//! ```text
//! requested ─export─► exported ─paid─► paid
//!     │                   │
//!     └──────failed───────┴──► failed        (the hold is voided: the money returns)
//! ```

use crate::csv;
use crate::error::DomainError;
use crate::id::{PayoutBatchId, PayoutId, TypedId};
use crate::money::Money;
use crate::text::bounded_text;

/// The largest single payout, in rupiah (a bank transfer above it goes through the bank's own
/// high-value process, not a batch file).
pub const PAYOUT_RUPIAH_MAX: i64 = 10_000_000_000;
/// Lines of a bank result file at most.
pub const RESULT_LINES_MAX: usize = 10_000;
/// Payouts in one batch file at most; the rest wait for the next batch.
pub const BATCH_PAYOUTS_MAX: usize = 10_000;
const HOLDER_CHARS_MAX: usize = 100;
const REASON_CHARS_MAX: usize = 200;

/// An Indonesian bank's three-digit clearing code (014 BCA, 008 Mandiri, 009 BNI, 002 BRI…).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BankCode(String);

impl BankCode {
    pub fn parse(raw: &str) -> Result<BankCode, DomainError> {
        let raw = raw.trim();
        if raw.len() != 3 || !raw.bytes().all(|b| b.is_ascii_digit()) {
            return Err(DomainError::invalid(
                "bank_code",
                "must be the bank's 3-digit code, e.g. 014 for BCA",
            ));
        }
        Ok(BankCode(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A bank account number: 6 to 20 digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AccountNumber(String);

impl AccountNumber {
    pub fn parse(raw: &str) -> Result<AccountNumber, DomainError> {
        let raw = raw.trim();
        if !(6..=20).contains(&raw.len()) || !raw.bytes().all(|b| b.is_ascii_digit()) {
            return Err(DomainError::invalid("account_number", "must be 6 to 20 digits"));
        }
        Ok(AccountNumber(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The name on the bank account. It goes into a CSV file a person may open in a spreadsheet,
/// so it may not start like a formula.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AccountHolder(String);

impl AccountHolder {
    pub fn parse(raw: &str) -> Result<AccountHolder, DomainError> {
        let name = bounded_text("account_holder", raw, HOLDER_CHARS_MAX)?;
        if name.starts_with(['=', '+', '-', '@']) {
            return Err(DomainError::invalid("account_holder", "must not start with =, +, - or @"));
        }
        Ok(AccountHolder(name))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BankAccount {
    pub bank_code: BankCode,
    pub account_number: AccountNumber,
    pub holder: AccountHolder,
}

/// The amount of a payout: more than zero, at most [`PAYOUT_RUPIAH_MAX`].
pub fn payout_amount(rupiah: i64) -> Result<Money, DomainError> {
    if !(1..=PAYOUT_RUPIAH_MAX).contains(&rupiah) {
        return Err(DomainError::invalid(
            "amount",
            format!("must be between 1 and {PAYOUT_RUPIAH_MAX} rupiah"),
        ));
    }
    Money::from_rupiah(rupiah)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PayoutStatus {
    Requested,
    Exported,
    Paid,
    Failed,
}

impl PayoutStatus {
    pub const ALL: [PayoutStatus; 4] =
        [PayoutStatus::Requested, PayoutStatus::Exported, PayoutStatus::Paid, PayoutStatus::Failed];

    pub fn as_str(self) -> &'static str {
        match self {
            PayoutStatus::Requested => "requested",
            PayoutStatus::Exported => "exported",
            PayoutStatus::Paid => "paid",
            PayoutStatus::Failed => "failed",
        }
    }

    pub fn parse(raw: &str) -> Result<PayoutStatus, DomainError> {
        PayoutStatus::ALL
            .into_iter()
            .find(|s| s.as_str() == raw)
            .ok_or_else(|| DomainError::invalid("status", "must be requested, exported, paid or failed"))
    }

    /// What the bank's answer `outcome` does to a payout in this state.
    pub fn confirm(self, outcome: &PayoutOutcome) -> Result<Confirmation, DomainError> {
        use PayoutStatus as S;
        match (self, outcome) {
            (S::Exported, PayoutOutcome::Paid) => Ok(Confirmation::Apply(S::Paid)),
            (S::Requested | S::Exported, PayoutOutcome::Failed(_)) => Ok(Confirmation::Apply(S::Failed)),
            (S::Paid, PayoutOutcome::Paid) | (S::Failed, PayoutOutcome::Failed(_)) => {
                Ok(Confirmation::AlreadyConfirmed)
            }
            (S::Requested, PayoutOutcome::Paid) => Err(DomainError::PayoutConflict(
                "the payout was not exported to the bank yet, so it cannot have been paid".to_owned(),
            )),
            (S::Paid, PayoutOutcome::Failed(_)) => Err(DomainError::PayoutConflict(
                "the payout was already confirmed paid; it cannot fail now".to_owned(),
            )),
            (S::Failed, PayoutOutcome::Paid) => Err(DomainError::PayoutConflict(
                "the payout was already confirmed failed and its money returned; it cannot be paid now"
                    .to_owned(),
            )),
        }
    }
}

/// Why the bank could not pay a payout.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FailureReason(String);

impl FailureReason {
    pub fn parse(raw: &str) -> Result<FailureReason, DomainError> {
        Ok(FailureReason(bounded_text("reason", raw, REASON_CHARS_MAX)?))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The bank's answer about one payout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PayoutOutcome {
    Paid,
    Failed(FailureReason),
}

impl PayoutOutcome {
    /// `paid`, or `failed` with its (required) reason.
    pub fn parse(status: &str, reason: Option<&str>) -> Result<PayoutOutcome, DomainError> {
        let reason = reason.map(str::trim).filter(|r| !r.is_empty());
        match (status.trim(), reason) {
            ("paid", _) => Ok(PayoutOutcome::Paid),
            ("failed", Some(reason)) => Ok(PayoutOutcome::Failed(FailureReason::parse(reason)?)),
            ("failed", None) => {
                Err(DomainError::invalid("reason", "a failed payout needs the bank's reason"))
            }
            _ => Err(DomainError::invalid("status", "must be paid or failed")),
        }
    }

    pub fn status(&self) -> PayoutStatus {
        match self {
            PayoutOutcome::Paid => PayoutStatus::Paid,
            PayoutOutcome::Failed(_) => PayoutStatus::Failed,
        }
    }
}

/// What a confirmation does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Confirmation {
    /// The payout moves to this state (and its money with it).
    Apply(PayoutStatus),
    /// The same answer was already applied: nothing changes.
    AlreadyConfirmed,
}

/// One payout as the bank's batch file lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchLine<'a> {
    pub payout_id: PayoutId,
    pub account: &'a BankAccount,
    pub amount: Money,
}

pub const BATCH_FILE_HEADER: &str = "payout_id,bank_code,account_number,account_holder,amount,reference";

/// The CSV file of a batch for the bank: the header, then one line per payout; the reference
/// (which the bank shows on the merchant's statement) is the batch id.
pub fn batch_file(batch_id: PayoutBatchId, lines: &[BatchLine<'_>]) -> String {
    let mut file = String::with_capacity(64 * (lines.len() + 1));
    file.push_str(BATCH_FILE_HEADER);
    file.push('\n');
    for line in lines {
        let fields = [
            line.payout_id.to_string(),
            line.account.bank_code.as_str().to_owned(),
            line.account.account_number.as_str().to_owned(),
            csv::field(line.account.holder.as_str()),
            line.amount.rupiah().to_string(),
            batch_id.to_string(),
        ];
        file.push_str(&fields.join(","));
        file.push('\n');
    }
    file
}

/// One line of the bank's result file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResultLine {
    pub line_no: usize,
    pub payout_id: PayoutId,
    pub outcome: PayoutOutcome,
}

/// Parses the bank's result file `payout_id,status,reason`; any bad line refuses the whole file
/// (naming the line), so a file is applied entirely or not at all.
pub fn parse_result_file(text: &str) -> Result<Vec<ResultLine>, DomainError> {
    let records = csv::parse("file", text, RESULT_LINES_MAX + 1)?;
    csv::expect_header("file", &records, &["payout_id", "status", "reason"])?;
    let mut lines = Vec::with_capacity(records.len());
    for record in &records[1..] {
        let at_line = |e: DomainError| DomainError::invalid("file", format!("line {}: {e}", record.line_no));
        if !(2..=3).contains(&record.fields.len()) {
            return Err(at_line(DomainError::invalid("fields", "expected payout_id,status,reason")));
        }
        let payout_id = PayoutId::parse(&record.fields[0]).map_err(at_line)?;
        let outcome = PayoutOutcome::parse(&record.fields[1], record.fields.get(2).map(String::as_str))
            .map_err(at_line)?;
        lines.push(ResultLine { line_no: record.line_no, payout_id, outcome });
    }
    if lines.is_empty() {
        return Err(DomainError::invalid("file", "holds no result lines after the header"));
    }
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    #[test]
    fn bank_details_parse_or_say_why_not() {
        for good in ["014", "008", "009", "002"] {
            assert_eq!(BankCode::parse(good).unwrap().as_str(), good);
        }
        for bad in ["14", "0140", "BCA", "", "01a"] {
            assert!(BankCode::parse(bad).is_err(), "{bad}");
        }
        assert!(AccountNumber::parse("1234567890").is_ok());
        for bad in ["12345", "123456789012345678901", "12345x", "1234-5678"] {
            assert!(AccountNumber::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(AccountHolder::parse("  Siti Rahayu ").unwrap().as_str(), "Siti Rahayu");
        for bad in ["", "=HYPERLINK(\"x\")", "@SUM", "a\u{7}"] {
            assert!(AccountHolder::parse(bad).is_err(), "{bad}");
        }
        assert!(payout_amount(0).is_err() && payout_amount(-5).is_err());
        assert!(payout_amount(PAYOUT_RUPIAH_MAX + 1).is_err());
        assert_eq!(payout_amount(50_000).unwrap().rupiah(), 50_000);
    }

    /// The whole confirmation table: (state, answer) → effect.
    #[test]
    fn confirmations() {
        use Confirmation::*;
        use PayoutStatus as S;
        let failed = PayoutOutcome::Failed(FailureReason::parse("account closed").unwrap());
        let cases = [
            (S::Requested, PayoutOutcome::Paid, None),
            (S::Requested, failed.clone(), Some(Apply(S::Failed))),
            (S::Exported, PayoutOutcome::Paid, Some(Apply(S::Paid))),
            (S::Exported, failed.clone(), Some(Apply(S::Failed))),
            (S::Paid, PayoutOutcome::Paid, Some(AlreadyConfirmed)),
            (S::Paid, failed.clone(), None),
            (S::Failed, failed.clone(), Some(AlreadyConfirmed)),
            (S::Failed, PayoutOutcome::Paid, None),
        ];
        for (state, outcome, want) in cases {
            let got = state.confirm(&outcome);
            match want {
                Some(effect) => assert_eq!(got, Ok(effect), "{state:?} {outcome:?}"),
                None => assert!(matches!(got, Err(DomainError::PayoutConflict(_))), "{state:?} {outcome:?}"),
            }
        }
    }

    #[test]
    fn batch_file_lists_each_payout_and_result_file_reads_back() {
        let account = BankAccount {
            bank_code: BankCode::parse("014").unwrap(),
            account_number: AccountNumber::parse("1234567890").unwrap(),
            holder: AccountHolder::parse("Sari, Toko Batik").unwrap(),
        };
        let payout = PayoutId::from_uuid(Uuid::from_u128(7));
        let batch = PayoutBatchId::from_uuid(Uuid::from_u128(9));
        let line =
            BatchLine { payout_id: payout, account: &account, amount: Money::from_rupiah(50_000).unwrap() };
        let file = batch_file(batch, &[line]);
        let records = csv::parse("file", &file, 10).unwrap();
        assert_eq!(records[0].fields.join(","), BATCH_FILE_HEADER);
        assert_eq!(
            records[1].fields,
            vec![
                payout.to_string(),
                "014".into(),
                "1234567890".into(),
                "Sari, Toko Batik".into(),
                "50000".into(),
                batch.to_string()
            ]
        );

        let results = format!("payout_id,status,reason\n{payout},paid,\n{payout},failed,rekening ditutup\n");
        let lines = parse_result_file(&results).unwrap();
        assert_eq!(lines[0].outcome, PayoutOutcome::Paid);
        assert_eq!(lines[1].line_no, 3);
        assert!(matches!(&lines[1].outcome, PayoutOutcome::Failed(r) if r.as_str() == "rekening ditutup"));
        let missing_reason = format!("payout_id,status,reason\n{payout},paid,\n{payout},failed,\n");
        assert!(parse_result_file(&missing_reason).unwrap_err().to_string().contains("line 3"));
        assert!(parse_result_file("payout,status\n").is_err());
        assert!(parse_result_file("payout_id,status,reason\n").is_err());
    }
}
