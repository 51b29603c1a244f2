//! `/v1/oversight`: the regulator's window (issue 6). So far the audit proofs: the chain
//! verified on request, the signed daily digests and the public key to check them with.
//! Regulator and operator only; read-only for everyone (every route is a GET).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use jembatan_core::audit::{may_read_proofs, verify_chain};
use jembatan_store::audit::DigestRecord;
use serde::Serialize;
use utoipa::ToSchema;

use crate::AppState;
use crate::extract::Caller;
use crate::problem::Problem;
use crate::routes::ok;

type Answer = Result<axum::response::Response, Problem>;

/// What recomputing the audit chain found.
#[derive(Serialize, ToSchema)]
pub struct ChainWire {
    /// Entries verified, from the first on.
    pub verified: i64,
    /// SHA-256 (hex) of the last verified entry.
    pub head_hash: String,
    /// Entries written but not sealed onto the chain yet (sealed every second).
    pub unsealed: i64,
    /// The first entry that does not verify (edited, deleted or reordered), if any.
    pub first_break: Option<BreakWire>,
}

#[derive(Serialize, ToSchema)]
pub struct BreakWire {
    pub seq: i64,
    pub problem: String,
}

/// A day's digest: the chain's head, signed with the platform's Ed25519 key. The signed bytes
/// are `jembatan-audit-digest/v1\nday=…\nlast_seq=…\nlast_hash=…\nentries=…\n`.
#[derive(Serialize, ToSchema)]
pub struct DigestWire {
    pub day: String,
    pub last_seq: i64,
    pub last_hash: String,
    pub entries: i64,
    /// Hex of the Ed25519 public key that signed it (check it against the one you hold).
    pub public_key: String,
    /// Hex of the Ed25519 signature.
    pub signature: String,
    pub signed_at_ms: i64,
}

impl From<&DigestRecord> for DigestWire {
    fn from(d: &DigestRecord) -> Self {
        DigestWire {
            day: d.body.day.clone(),
            last_seq: d.body.last_seq,
            last_hash: d.body.last_hash.clone(),
            entries: d.body.entries,
            public_key: d.public_key.clone(),
            signature: d.signature.clone(),
            signed_at_ms: d.signed_at_ms,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct DigestList {
    /// Newest day first (at most 366).
    pub digests: Vec<DigestWire>,
}

#[derive(Serialize, ToSchema)]
pub struct PublicKeyWire {
    pub algorithm: String,
    /// Hex of the 32-byte Ed25519 public key.
    pub public_key: String,
}

#[utoipa::path(get, path = "/v1/oversight/audit/chain", tag = "oversight",
    responses((status = 200, body = ChainWire), (status = 403, body = Problem)),
    security(("bearer" = [])))]
/// Recomputes the audit chain from its first entry and names the first entry that does not
/// match. Regulator and operator.
pub async fn get_chain(State(state): State<AppState>, Caller(who): Caller) -> Answer {
    may_read_proofs(&who)?;
    let report = verify_chain(state.core.store(), None).await?;
    ok(
        StatusCode::OK,
        &ChainWire {
            verified: report.verified,
            head_hash: report.head_hash,
            unsealed: report.unsealed,
            first_break: report.first_break.map(|b| BreakWire { seq: b.seq(), problem: b.describe() }),
        },
    )
}

#[utoipa::path(get, path = "/v1/oversight/audit/digests", tag = "oversight",
    responses((status = 200, body = DigestList), (status = 403, body = Problem)),
    security(("bearer" = [])))]
/// The signed daily digests, newest first. Verify one with `jembatan audit verify-digest
/// --digest FILE --public-key KEY` or any Ed25519 library. Regulator and operator.
pub async fn list_digests(State(state): State<AppState>, Caller(who): Caller) -> Answer {
    may_read_proofs(&who)?;
    let digests = state.core.store().audit_digests(366).await?;
    ok(StatusCode::OK, &DigestList { digests: digests.iter().map(DigestWire::from).collect() })
}

#[utoipa::path(get, path = "/v1/oversight/audit/digests/{day}", tag = "oversight",
    params(("day" = String, Path, description = "UTC day, YYYY-MM-DD")),
    responses((status = 200, body = DigestWire), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
/// One day's signed digest. Regulator and operator.
pub async fn get_digest(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(day): Path<String>,
) -> Answer {
    may_read_proofs(&who)?;
    match state.core.store().audit_digest(&day).await? {
        Some(d) => ok(StatusCode::OK, &DigestWire::from(&d)),
        None => Err(Problem::not_found(&format!(
            "the digest of `{day}` (days are YYYY-MM-DD; a day is signed after it ends)"
        ))),
    }
}

#[utoipa::path(get, path = "/v1/oversight/audit/public-key", tag = "oversight",
    responses((status = 200, body = PublicKeyWire), (status = 403, body = Problem), (status = 503, body = Problem)),
    security(("bearer" = [])))]
/// The platform's public key for the digests. Regulator and operator; a regulator should
/// also hold it from a channel other than this API.
pub async fn get_public_key(State(state): State<AppState>, Caller(who): Caller) -> Answer {
    may_read_proofs(&who)?;
    let key = state.audit_public_key.clone().ok_or_else(|| {
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "this server was started without the audit signing key".to_owned(),
        )
    })?;
    ok(StatusCode::OK, &PublicKeyWire { algorithm: "Ed25519".to_owned(), public_key: key })
}

/// A compliance rule of the policy in force.
#[derive(Serialize, ToSchema)]
pub struct RuleWire {
    pub id: String,
    pub article: String,
    /// `blocking`, `finding` or `review`.
    pub severity: String,
    pub title: String,
    pub checks: String,
}

#[derive(Serialize, ToSchema)]
pub struct RuleList {
    pub rules: Vec<RuleWire>,
}

#[utoipa::path(get, path = "/v1/oversight/rules", tag = "oversight",
    responses((status = 200, body = RuleList), (status = 403, body = Problem)),
    security(("bearer" = [])))]
/// The compliance rules in force, each with the article of Permendag 31/2023 it comes from.
/// Regulator and operator.
pub async fn list_rules(State(state): State<AppState>, Caller(who): Caller) -> Answer {
    may_read_proofs(&who)?;
    let rules = state
        .policy
        .rules
        .values()
        .map(|r| RuleWire {
            id: r.id.clone(),
            article: r.article.clone(),
            severity: r.severity.as_str().to_owned(),
            title: r.title.clone(),
            checks: r.checks.clone(),
        })
        .collect();
    ok(StatusCode::OK, &RuleList { rules })
}

#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
pub struct FindingsQuery {
    /// Only this merchant's findings.
    pub merchant_id: Option<String>,
    /// Only this rule's (`R1`…`R7`).
    pub rule: Option<String>,
    /// `open`, `acknowledged` or `resolved`.
    pub state: Option<String>,
    /// `json` (default) or `csv`.
    pub format: Option<String>,
    pub cursor: Option<String>,
    pub limit: Option<i64>,
}

/// A compliance finding: the rule an entity broke, with what shows it.
#[derive(Serialize, ToSchema)]
pub struct FindingWire {
    pub finding_id: String,
    pub rule: String,
    pub article: String,
    pub severity: String,
    /// Empty for a finding of the platform itself.
    pub merchant_id: String,
    pub entity_type: String,
    pub entity_id: String,
    /// What shows it (JSON); holds no personal data.
    pub evidence: serde_json::Value,
    /// `open`, `acknowledged` or `resolved`.
    pub state: String,
    pub found_at: String,
}

impl From<&jembatan_store::findings::FindingRecord> for FindingWire {
    fn from(f: &jembatan_store::findings::FindingRecord) -> Self {
        FindingWire {
            finding_id: f.id.to_string(),
            rule: f.finding.rule_id.clone(),
            article: f.finding.article.clone(),
            severity: f.finding.severity.clone(),
            merchant_id: f.finding.merchant_id.clone(),
            entity_type: f.finding.entity_type.clone(),
            entity_id: f.finding.entity_id.clone(),
            evidence: serde_json::from_str(&f.finding.evidence).unwrap_or(serde_json::Value::Null),
            state: f.state.clone(),
            found_at: crate::wire::rfc3339(f.found_at),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct FindingPage {
    pub findings: Vec<FindingWire>,
    /// Pass as `cursor` for the next page; absent on the last.
    pub next_cursor: Option<String>,
}

#[utoipa::path(get, path = "/v1/oversight/findings", tag = "oversight",
    params(FindingsQuery),
    responses((status = 200, body = FindingPage, description = "JSON, or with `format=csv` a CSV file: finding_id,rule,article,severity,merchant_id,entity_type,entity_id,state,found_at,evidence"),
        (status = 403, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
/// Compliance findings, newest first. Regulator and operator.
pub async fn list_findings(
    State(state): State<AppState>,
    Caller(who): Caller,
    q: Result<axum::extract::Query<FindingsQuery>, axum::extract::rejection::QueryRejection>,
) -> Answer {
    may_read_proofs(&who)?;
    let q = query(q)?;
    let limit = crate::routes::page_size(&state.limits, q.limit)?;
    if let Some(s) = q.state.as_deref().filter(|s| !matches!(*s, "open" | "acknowledged" | "resolved")) {
        return Err(Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation",
            format!("state `{s}` is not one of open, acknowledged, resolved"),
        ));
    }
    let csv = wants_csv(q.format.as_deref())?;
    let found = state.core.store().findings(q.merchant_id, q.rule, q.state, q.cursor, limit).await?;
    let next_cursor = (found.len() as u32 == limit).then(|| found.last().map(|f| f.id.to_string())).flatten();
    let findings: Vec<FindingWire> = found.iter().map(FindingWire::from).collect();
    if !csv {
        return ok(StatusCode::OK, &FindingPage { findings, next_cursor });
    }
    use jembatan_domain::csv::field;
    let mut body = String::from(
        "finding_id,rule,article,severity,merchant_id,entity_type,entity_id,state,found_at,evidence\n",
    );
    for f in &findings {
        let cells = [
            &f.finding_id,
            &f.rule,
            &f.article,
            &f.severity,
            &f.merchant_id,
            &f.entity_type,
            &f.entity_id,
            &f.state,
            &f.found_at,
            &f.evidence.to_string(),
        ];
        body.push_str(&cells.iter().map(|c| field(c)).collect::<Vec<_>>().join(","));
        body.push('\n');
    }
    csv_file("findings.csv", body)
}

#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
pub struct ReportQuery {
    /// First day (WIB, YYYY-MM-DD).
    pub from: String,
    /// Last day (WIB, YYYY-MM-DD), at most 366 days after `from`.
    pub to: String,
    /// `json` (default) or `csv`.
    pub format: Option<String>,
}

/// Orders paid (or further along) and their GMV on one day, channel, merchant origin and
/// province.
#[derive(Serialize, ToSchema)]
pub struct ReportLineWire {
    /// WIB (UTC+7) day the orders were placed.
    pub day: String,
    /// `social` or `marketplace`.
    pub channel: String,
    /// `local` or `cross_border`.
    pub merchant_origin: String,
    pub province: String,
    pub orders: i64,
    /// Gross merchandise value in rupiah.
    pub gmv_idr: i64,
}

#[derive(Serialize, ToSchema)]
pub struct ReportWire {
    pub from: String,
    pub to: String,
    pub lines: Vec<ReportLineWire>,
    pub total_orders: i64,
    pub total_gmv_idr: i64,
}

fn day_param(name: &'static str, raw: &str) -> Result<time::Date, Problem> {
    Ok(jembatan_domain::time::parse_day(name, raw)?)
}

/// `format=json` (the default) or `format=csv`: whether CSV is asked for.
fn wants_csv(format: Option<&str>) -> Result<bool, Problem> {
    match format {
        None | Some("json") => Ok(false),
        Some("csv") => Ok(true),
        Some(other) => Err(Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation",
            format!("format `{other}` is not json or csv"),
        )),
    }
}

/// A CSV file as the answer, to be saved as `filename`.
fn csv_file(filename: &str, body: String) -> Answer {
    use axum::response::IntoResponse;
    Ok((
        StatusCode::OK,
        [
            (axum::http::header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (axum::http::header::CONTENT_DISPOSITION, format!("attachment; filename=\"{filename}\"")),
        ],
        body,
    )
        .into_response())
}

fn query<T>(
    q: Result<axum::extract::Query<T>, axum::extract::rejection::QueryRejection>,
) -> Result<T, Problem> {
    q.map(|axum::extract::Query(q)| q)
        .map_err(|e| Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "validation", e.body_text()))
}

#[utoipa::path(get, path = "/v1/oversight/reports/transactions", tag = "oversight",
    params(ReportQuery),
    responses((status = 200, body = ReportWire, description = "JSON, or with `format=csv` a CSV file: day,channel,merchant_origin,province,orders,gmv_idr"),
        (status = 403, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
/// Transactions and GMV per day, channel, merchant origin and province. Regulator and operator.
pub async fn transactions_report(
    State(state): State<AppState>,
    Caller(who): Caller,
    q: Result<axum::extract::Query<ReportQuery>, axum::extract::rejection::QueryRejection>,
) -> Answer {
    may_read_proofs(&who)?;
    let q = query(q)?;
    let (from, to) = (day_param("from", &q.from)?, day_param("to", &q.to)?);
    let csv = wants_csv(q.format.as_deref())?;
    let lines: Vec<ReportLineWire> = jembatan_core::oversight::transactions(&state.core, &who, from, to)
        .await?
        .into_iter()
        .map(|l| ReportLineWire {
            day: jembatan_core::oversight::day_text(l.day),
            channel: l.channel,
            merchant_origin: l.origin,
            province: l.province,
            orders: l.orders,
            gmv_idr: l.gmv_idr,
        })
        .collect();
    if csv {
        use jembatan_domain::csv::field;
        let mut body = String::from("day,channel,merchant_origin,province,orders,gmv_idr\n");
        for l in &lines {
            body.push_str(&format!(
                "{},{},{},{},{},{}\n",
                l.day,
                l.channel,
                l.merchant_origin,
                field(&l.province),
                l.orders,
                l.gmv_idr
            ));
        }
        return csv_file(&format!("transactions-{from}-{to}.csv"), body);
    }
    let (total_orders, total_gmv_idr) = lines.iter().fold((0, 0), |(o, g), l| (o + l.orders, g + l.gmv_idr));
    ok(
        StatusCode::OK,
        &ReportWire { from: from.to_string(), to: to.to_string(), lines, total_orders, total_gmv_idr },
    )
}

#[derive(Debug, serde::Deserialize, ToSchema)]
pub struct FindingNote {
    /// What was done about it (recorded in the audit log), 1 to 2,000 characters.
    pub note: String,
}

async fn move_finding(
    state: &AppState,
    who: &jembatan_domain::Principal,
    raw: &str,
    to: &'static str,
    note: String,
) -> Answer {
    let id = <jembatan_domain::FindingId as jembatan_domain::TypedId>::parse(raw)
        .map_err(|e| Problem::not_found(&format!("`{raw}` ({e})")))?;
    let record = jembatan_core::oversight::set_finding_state(&state.core, who, id, to, note).await?;
    ok(StatusCode::OK, &FindingWire::from(&record))
}

#[utoipa::path(post, path = "/v1/oversight/findings/{finding_id}/acknowledge", tag = "oversight",
    params(("finding_id" = String, Path)),
    request_body = FindingNote,
    responses((status = 200, body = FindingWire), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem, description = "`conflict`: the finding is not open"), (status = 422, body = Problem)),
    security(("bearer" = [])))]
/// The operator acknowledges an open finding, with a note. Operator only.
pub async fn acknowledge_finding(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(raw): Path<String>,
    body: crate::extract::JsonBody<FindingNote>,
) -> Answer {
    move_finding(&state, &who, &raw, "acknowledged", body.value.note).await
}

#[utoipa::path(post, path = "/v1/oversight/findings/{finding_id}/resolve", tag = "oversight",
    params(("finding_id" = String, Path)),
    request_body = FindingNote,
    responses((status = 200, body = FindingWire), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem, description = "`conflict`: the finding is resolved already"), (status = 422, body = Problem)),
    security(("bearer" = [])))]
/// The operator resolves a finding, with a note saying what was done. Operator only.
pub async fn resolve_finding(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(raw): Path<String>,
    body: crate::extract::JsonBody<FindingNote>,
) -> Answer {
    move_finding(&state, &who, &raw, "resolved", body.value.note).await
}

/// A data subject's request under UU PDP, with its deadline.
#[derive(Serialize, ToSchema)]
pub struct PdpRequestWire {
    pub request_id: String,
    /// The user's pseudonymous reference (never a name).
    pub buyer_ref: String,
    /// `export` or `withdrawal`.
    pub kind: String,
    pub detail: String,
    pub received_at: String,
    /// 3 × 24 hours after it was received.
    pub due_at: String,
    pub completed_at: Option<String>,
    /// Completed by its deadline.
    pub on_time: bool,
}

#[derive(Serialize, ToSchema)]
pub struct PdpRequestList {
    pub requests: Vec<PdpRequestWire>,
}

#[utoipa::path(get, path = "/v1/oversight/pdp-requests", tag = "oversight",
    responses((status = 200, body = PdpRequestList), (status = 403, body = Problem)),
    security(("bearer" = [])))]
/// Data subjects' requests (exports, consent withdrawals), newest first, with their deadlines
/// and whether they were met. Regulator and operator.
pub async fn list_pdp_requests(State(state): State<AppState>, Caller(who): Caller) -> Answer {
    may_read_proofs(&who)?;
    let at = |ms: i64| crate::wire::rfc3339(jembatan_domain::Timestamp::from_unix_ms(ms));
    let requests = state
        .core
        .store()
        .pdp_requests(500)
        .await?
        .into_iter()
        .map(|r| PdpRequestWire {
            on_time: r.completed_at_ms.is_some_and(|c| c <= r.due_at_ms),
            request_id: r.request_id,
            buyer_ref: r.buyer_ref,
            kind: r.kind,
            detail: r.detail,
            received_at: at(r.received_at_ms),
            due_at: at(r.due_at_ms),
            completed_at: r.completed_at_ms.map(at),
        })
        .collect();
    ok(StatusCode::OK, &PdpRequestList { requests })
}
