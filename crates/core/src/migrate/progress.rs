//! `migrate status`: where the migration stands, per wave and overall, computed from stored
//! state only (a restart loses nothing): merchants by state, percent done by merchants, by GMV
//! and by rows, rows/s and ETA, quarantine counts, the cutover pause percentiles, and the
//! integration view by workstream that a ministry asks for ("how far along is it?").

use std::collections::BTreeMap;

use jembatan_domain::Principal;
use jembatan_domain::migration::MigrationState;
use jembatan_store::LegacyStore;
use jembatan_store::migration_run::ProgressRow;
use serde::Serialize;

use crate::{Core, CoreError};

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct WaveProgress {
    pub wave: String,
    pub paused: bool,
    pub merchants: u64,
    /// Merchants per state (every state named, zero included).
    pub by_state: BTreeMap<String, u64>,
    /// Cut over or finalized.
    pub merchants_moved: u64,
    pub percent_by_merchants: f64,
    pub gmv_planned_idr: i64,
    pub gmv_moved_idr: i64,
    pub percent_by_gmv: f64,
    pub rows_planned: u64,
    /// Rows written to the core (copy and catch-up; a row changed again is counted again).
    pub rows_copied: u64,
    /// Planned rows of merchants that moved, plus rows copied of the others (capped at their plan).
    pub percent_by_rows: f64,
    pub rows_per_s: f64,
    pub eta_s: Option<f64>,
    pub cutover_pause_p50_ms: Option<f64>,
    pub cutover_pause_p99_ms: Option<f64>,
    pub cutover_pause_max_ms: Option<f64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Workstream {
    pub name: &'static str,
    pub percent: f64,
    pub detail: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct QuarantineCounts {
    pub open: u64,
    pub resolved: u64,
    pub accepted: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct MigrationProgress {
    pub waves: Vec<WaveProgress>,
    pub overall: WaveProgress,
    pub quarantine: QuarantineCounts,
    /// Payments through the core, user data separated, merchant operations moved.
    pub workstreams: Vec<Workstream>,
    /// The mean of the workstreams: the integration's "percent done".
    pub integration_percent: f64,
}

/// The progress report. Operator and regulator (read-only) may ask.
pub async fn progress(
    core: &Core,
    legacy: &LegacyStore,
    who: &Principal,
) -> Result<MigrationProgress, CoreError> {
    if !matches!(who, Principal::Operator | Principal::Regulator) {
        return Err(CoreError::Forbidden(
            "only the operator and the regulator read the migration's progress".to_owned(),
        ));
    }
    let store = core.store();
    let (rows, pauses) = store.migration_progress().await?;
    let mut by_wave: BTreeMap<String, Vec<&ProgressRow>> = BTreeMap::new();
    for row in &rows {
        by_wave.entry(row.wave.clone()).or_default().push(row);
    }
    let mut waves = Vec::new();
    for (wave, rows) in &by_wave {
        let wave_pauses: Vec<i64> = pauses.iter().filter(|(w, _)| w == wave).map(|(_, p)| *p).collect();
        waves.push(summarise(wave.clone(), rows, &wave_pauses));
    }
    let all_rows: Vec<&ProgressRow> = rows.iter().collect();
    let all_pauses: Vec<i64> = pauses.iter().map(|(_, p)| *p).collect();
    let overall = summarise("all".to_owned(), &all_rows, &all_pauses);
    let (open, resolved, accepted) = store.quarantine_counts(None).await?;
    let counts = store.integration_counts().await?;
    let shops =
        legacy.counts().await?.into_iter().find(|(t, _)| *t == "shops").map_or(0, |(_, n)| n.max(0) as u64);
    let workstreams = vec![
        Workstream {
            name: "payments_through_core",
            percent: 100.0,
            detail: format!(
                "every social-channel payment is the core's (rule R1): {} payments in the core; the legacy store has no payment records by design",
                counts.social_payments
            ),
        },
        Workstream {
            name: "user_data_separated",
            percent: if counts.profiles_without_consent == 0 { 100.0 } else { 0.0 },
            detail: format!(
                "{} social profiles held by the core under consent, {} without (must be 0); orders carry a pseudonymous buyer id",
                counts.profiles_with_consent, counts.profiles_without_consent
            ),
        },
        Workstream {
            name: "merchant_operations_moved",
            percent: percent(overall.merchants_moved, shops),
            detail: format!(
                "{} of the social shop's {shops} merchants run on the core",
                overall.merchants_moved
            ),
        },
    ];
    let integration_percent = workstreams.iter().map(|w| w.percent).sum::<f64>() / workstreams.len() as f64;
    Ok(MigrationProgress {
        waves,
        overall,
        quarantine: QuarantineCounts { open, resolved, accepted },
        workstreams,
        integration_percent,
    })
}

fn summarise(wave: String, rows: &[&ProgressRow], pauses_us: &[i64]) -> WaveProgress {
    let mut out = WaveProgress { wave, ..WaveProgress::default() };
    for state in MigrationState::ALL {
        out.by_state.insert(state.as_str().to_owned(), 0);
    }
    let mut rows_done = 0u64;
    let mut first_started: Option<i64> = None;
    let mut last_updated = 0i64;
    for row in rows {
        last_updated = last_updated.max(row.last_updated_at_ms);
        out.paused |= row.paused;
        out.merchants += row.merchants;
        *out.by_state.entry(row.state.as_str().to_owned()).or_default() += row.merchants;
        out.gmv_planned_idr += row.gmv_planned_idr;
        out.rows_planned += row.rows_planned;
        out.rows_copied += row.rows_copied;
        let moved = matches!(row.state, MigrationState::CutOver | MigrationState::Finalized);
        if moved {
            out.merchants_moved += row.merchants;
            out.gmv_moved_idr += row.gmv_planned_idr;
            rows_done += row.rows_planned;
        } else if row.state != MigrationState::RolledBack {
            rows_done += row.rows_copied.min(row.rows_planned);
        }
        if let Some(started) = row.first_started_at_ms {
            first_started = Some(first_started.map_or(started, |f: i64| f.min(started)));
        }
    }
    out.percent_by_merchants = percent(out.merchants_moved, out.merchants);
    out.percent_by_gmv = if out.gmv_planned_idr > 0 {
        round1(out.gmv_moved_idr as f64 * 100.0 / out.gmv_planned_idr as f64)
    } else {
        out.percent_by_merchants
    };
    out.percent_by_rows = percent(rows_done, out.rows_planned);
    if let Some(started) = first_started {
        // Over the time the merchants were worked on (from the first start to the last
        // change): a figure that stays put once the migration is over.
        let seconds = ((last_updated - started).max(1)) as f64 / 1000.0;
        out.rows_per_s = round1(out.rows_copied as f64 / seconds);
        let left = out.rows_planned.saturating_sub(rows_done);
        out.eta_s = (out.rows_per_s > 0.0).then(|| round1(left as f64 / out.rows_per_s));
    }
    let mut sorted: Vec<i64> = pauses_us.to_vec();
    sorted.sort_unstable();
    let at = |q: f64| -> Option<f64> {
        if sorted.is_empty() {
            return None;
        }
        let index = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
        Some(sorted[index] as f64 / 1000.0)
    };
    out.cutover_pause_p50_ms = at(0.50);
    out.cutover_pause_p99_ms = at(0.99);
    out.cutover_pause_max_ms = sorted.last().map(|p| *p as f64 / 1000.0);
    out
}

fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 { 0.0 } else { round1(part as f64 * 100.0 / whole as f64) }
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(state: MigrationState, merchants: u64, planned: u64, copied: u64, gmv: i64) -> ProgressRow {
        ProgressRow {
            wave: "w".into(),
            paused: false,
            state,
            merchants,
            rows_planned: planned,
            rows_copied: copied,
            gmv_planned_idr: gmv,
            first_started_at_ms: Some(0),
            last_updated_at_ms: 10_000,
        }
    }

    #[test]
    fn progress_counts_moved_merchants_gmv_and_rows() {
        let rows = [
            row(MigrationState::CutOver, 3, 300, 320, 9_000),
            row(MigrationState::Copying, 1, 100, 50, 1_000),
        ];
        let refs: Vec<&ProgressRow> = rows.iter().collect();
        let p = summarise("w".into(), &refs, &[1_000, 2_000, 40_000]);
        assert_eq!(p.merchants, 4);
        assert_eq!(p.merchants_moved, 3);
        assert_eq!(p.percent_by_merchants, 75.0, "the ministry's 75%");
        assert_eq!(p.percent_by_gmv, 90.0);
        assert_eq!(p.percent_by_rows, 87.5, "300 moved + 50 of 100 copied, of 400");
        assert_eq!(p.rows_per_s, 37.0, "370 rows in 10 s");
        assert_eq!(p.eta_s, Some(1.4), "50 rows left at 37/s");
        assert_eq!(p.cutover_pause_p50_ms, Some(2.0));
        assert_eq!(p.cutover_pause_max_ms, Some(40.0));
        assert_eq!(p.by_state["copying"], 1);
        assert_eq!(p.by_state["finalized"], 0);
    }
}
