//! Versioned schema migrations, embedded in the binary and applied on start, each in its own
//! transaction and recorded in `schema_migrations`. Every known version not yet recorded is applied
//! (not only those above the highest: branches number their migrations independently). A
//! database newer than this binary, or with a version it does not know, is refused.

use crate::db::{Conn, q};
use crate::error::StoreError;
use crate::exec::Backend;

/// Which engines run a migration's statements (every engine records its version).
#[derive(Clone, Copy, PartialEq, Eq)]
enum On {
    Both,
    SqliteOnly,
    PostgresOnly,
}

impl On {
    fn runs_on(self, backend: Backend) -> bool {
        match self {
            On::Both => true,
            On::SqliteOnly => backend == Backend::Sqlite,
            On::PostgresOnly => backend == Backend::Postgres,
        }
    }
}

/// Which database a store holds: the core's, or the social shop's legacy one (DESIGN.md §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Schema {
    #[default]
    Core,
    Legacy,
}

impl Schema {
    fn migrations(self) -> &'static [(i64, &'static str, On, &'static str)] {
        match self {
            Schema::Core => MIGRATIONS,
            Schema::Legacy => LEGACY_MIGRATIONS,
        }
    }
}

/// (version, name, engines, SQL). Append only: a released migration never changes.
const MIGRATIONS: &[(i64, &str, On, &str)] = &[
    (1, "core", On::Both, include_str!("../migrations/0001_core.sql")),
    (2, "idempotency_expiry", On::PostgresOnly, include_str!("../migrations/0002_idempotency_expiry.sql")),
    (3, "ledger", On::Both, include_str!("../migrations/0003_ledger.sql")),
    (4, "escrow", On::Both, include_str!("../migrations/0004_escrow.sql")),
    (5, "payments", On::Both, include_str!("../migrations/0005_payments.sql")),
    (6, "webhooks", On::Both, include_str!("../migrations/0006_webhooks.sql")),
    (7, "payouts", On::Both, include_str!("../migrations/0007_payouts.sql")),
    (8, "payment_fixes", On::Both, include_str!("../migrations/0008_payment_fixes.sql")),
    (9, "social", On::Both, include_str!("../migrations/0009_social.sql")),
    (10, "migration", On::Both, include_str!("../migrations/0010_migration.sql")),
    (11, "listing", On::Both, include_str!("../migrations/0011_listing.sql")),
    (12, "migration_engine", On::Both, include_str!("../migrations/0012_migration_engine.sql")),
    (13, "lookup_indexes", On::Both, include_str!("../migrations/0013_lookup_indexes.sql")),
    (14, "audit_chain", On::Both, include_str!("../migrations/0014_audit_chain.sql")),
    (15, "findings", On::Both, include_str!("../migrations/0015_findings.sql")),
    (16, "reports", On::Both, include_str!("../migrations/0016_reports.sql")),
    (17, "pdp", On::Both, include_str!("../migrations/0017_pdp.sql")),
];

/// The social shop's legacy database. Its change-capture triggers are not a migration: they
/// are installed when the store opens (see `legacy::install_capture`), so that a bulk load can
/// run without them.
const LEGACY_MIGRATIONS: &[(i64, &str, On, &str)] = &[
    (1, "social_shop", On::Both, include_str!("../migrations/legacy/0001_social_shop.sql")),
    (2, "changelog_sqlite", On::SqliteOnly, include_str!("../migrations/legacy/0002_changelog_sqlite.sql")),
    (
        3,
        "changelog_postgres",
        On::PostgresOnly,
        include_str!("../migrations/legacy/0003_changelog_postgres.sql"),
    ),
    (4, "buyer_refs", On::Both, include_str!("../migrations/legacy/0004_buyer_refs.sql")),
    (5, "shop_sequences", On::Both, include_str!("../migrations/legacy/0005_shop_sequences.sql")),
];

pub async fn migrate(conn: &mut dyn Conn, backend: Backend, schema: Schema) -> Result<(), StoreError> {
    let migrations = schema.migrations();
    q("CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT NOT NULL PRIMARY KEY, name TEXT NOT NULL, applied_at_ms BIGINT NOT NULL)")
        .execute(conn)
        .await?;
    // Every version not yet recorded, not only those above the highest: branches number their
    // migrations independently (6 webhooks, 7 payouts), so a database may have 7 before 6.
    let recorded = recorded_versions(conn).await?;
    if let Some(unknown) = recorded.iter().find(|v| !migrations.iter().any(|m| m.0 == **v)) {
        return Err(StoreError::Conflict(format!(
            "the database has schema version {unknown}, which this binary does not know: use the binary that wrote it"
        )));
    }
    for (version, name, engines, sql) in migrations.iter().filter(|m| !recorded.contains(&m.0)) {
        q(match backend {
            Backend::Sqlite => "BEGIN IMMEDIATE",
            Backend::Postgres => "BEGIN",
        })
        .execute(conn)
        .await?;
        if backend == Backend::Postgres {
            // Two servers starting at once must not both migrate.
            q("SELECT 1 AS locked FROM (SELECT pg_advisory_xact_lock(7177001)) AS lock")
                .fetch_all(conn)
                .await?;
            if recorded_versions(conn).await?.contains(version) {
                q("ROLLBACK").execute(conn).await?;
                continue;
            }
        }
        let runs_here = engines.runs_on(backend);
        for statement in statements(sql).into_iter().filter(|_| runs_here) {
            q(statement).execute(conn).await?;
        }
        q("INSERT INTO schema_migrations (version, name, applied_at_ms) VALUES ($1, $2, $3)")
            .bind(*version)
            .bind(*name)
            .bind(now_ms())
            .execute(conn)
            .await?;
        q("COMMIT").execute(conn).await?;
        tracing::info!(version, name, "schema migration applied");
    }
    Ok(())
}

async fn recorded_versions(conn: &mut dyn Conn) -> Result<std::collections::BTreeSet<i64>, StoreError> {
    let rows = q("SELECT version FROM schema_migrations").fetch_all(conn).await?;
    Ok(rows.iter().map(|r| r.int("version")).collect::<Result<_, _>>()?)
}

/// Splits SQL into statements and drops `--` comments. Our SQL holds no `;` inside literals,
/// but trigger bodies hold several statements: a `CREATE TRIGGER … BEGIN … END` (SQLite) and a
/// `$$`-quoted function body (PostgreSQL) stay whole.
pub(crate) fn statements(sql: &str) -> Vec<String> {
    let without_comments: String =
        sql.lines().map(|l| l.split("--").next().unwrap_or("")).collect::<Vec<_>>().join("\n");
    let mut out: Vec<String> = Vec::new();
    let mut pending = String::new();
    for piece in without_comments.split(';') {
        if !pending.is_empty() {
            pending.push(';');
        }
        pending.push_str(piece);
        let trimmed = pending.trim();
        let open_dollar = trimmed.matches("$$").count() % 2 == 1;
        let open_trigger = trimmed.to_ascii_uppercase().starts_with("CREATE TRIGGER")
            && trimmed.to_ascii_uppercase().contains(" BEGIN")
            && !trimmed.to_ascii_uppercase().ends_with("END");
        if open_dollar || open_trigger {
            continue;
        }
        if !trimmed.is_empty() {
            out.push(trimmed.to_owned());
        }
        pending.clear();
    }
    if !pending.trim().is_empty() {
        out.push(pending.trim().to_owned());
    }
    out
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}
