//! How reads and writes reach the database.
//!
//! Every write is a *unit*: an async function that runs its statements on a connection that is
//! already inside a transaction, wrapped in a savepoint so that a failing unit leaves no trace.
//! The idempotency record of the request (if any) is completed inside the same unit, so a
//! response is stored if and only if its effects are.
//!
//! - **SQLite** allows one writer at a time. One writer thread owns the only write connection
//!   and commits units in groups: it takes every unit waiting in its queue (up to
//!   `group_commit_units_max`), runs them in one `BEGIN IMMEDIATE … COMMIT`, and answers each
//!   caller only after that commit. One fsync pays for the whole group (group commit), which is
//!   what makes `synchronous=FULL` affordable. See [`crate::db`] for why these are threads.
//! - **PostgreSQL** runs many writers; each unit is its own transaction on the pool, and row-level
//!   conditional updates keep concurrent units correct.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use jembatan_domain::{Principal, Timestamp};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use tokio::sync::{mpsc, oneshot};

use crate::db::sqlite::{Readers, SqliteConn};
use crate::db::{Conn, DbError, q};
use crate::error::StoreError;
use crate::{idempotency, schema};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// How to open a store. `url` is `sqlite://PATH` or `postgres://…`.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    pub url: String,
    /// SQLite reader threads.
    pub read_connections_max: u32,
    /// PostgreSQL pool size.
    pub write_connections_max: u32,
    /// Units committed together by the SQLite writer at most.
    pub group_commit_units_max: usize,
    /// Units waiting for the SQLite writer at most; callers wait beyond it (backpressure).
    pub write_queue_units_max: usize,
    /// The core's database, or the social shop's legacy one.
    pub schema: schema::Schema,
}

impl StoreOptions {
    pub fn new(url: impl Into<String>) -> StoreOptions {
        StoreOptions {
            url: url.into(),
            read_connections_max: 4,
            write_connections_max: 16,
            group_commit_units_max: 256,
            write_queue_units_max: 4096,
            schema: schema::Schema::Core,
        }
    }

    /// The social shop's legacy database under a data directory (DESIGN.md §5).
    pub fn legacy_sqlite_in(data_dir: &std::path::Path) -> StoreOptions {
        StoreOptions::new(format!("sqlite://{}", data_dir.join("legacy.sqlite").display()))
            .with_schema(schema::Schema::Legacy)
    }

    pub fn with_schema(mut self, schema: schema::Schema) -> StoreOptions {
        self.schema = schema;
        self
    }

    /// The embedded default: the core's SQLite file under a data directory.
    pub fn sqlite_in(data_dir: &std::path::Path) -> StoreOptions {
        StoreOptions::new(format!("sqlite://{}", data_dir.join("core.sqlite").display()))
    }
}

/// Who writes and when: every unit's audit entry and events carry this.
#[derive(Debug, Clone)]
pub struct WriteCtx {
    pub actor: Principal,
    pub now: Timestamp,
}

/// A response stored with an idempotency key, returned byte for byte on replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    pub status: u16,
    pub body: String,
}

type Render<T> = Box<dyn FnOnce(Result<&T, &StoreError>) -> Option<StoredResponse> + Send>;

/// The idempotency key a unit completes. `render` turns the unit's outcome into the response to
/// store; `None` (a server-side failure) leaves the key to be released so the client may retry.
pub struct Idem<T> {
    pub scope: String,
    pub key: String,
    /// SHA-256 of the request, stored with the response.
    pub fingerprint: String,
    pub now: Timestamp,
    pub render: Render<T>,
}

/// The body of a unit or a read: an async function of a connection.
pub trait Op<T>:
    for<'c> FnOnce(&'c mut dyn Conn) -> BoxFuture<'c, Result<T, StoreError>> + Send + 'static
{
}
impl<T, F> Op<T> for F where
    F: for<'c> FnOnce(&'c mut dyn Conn) -> BoxFuture<'c, Result<T, StoreError>> + Send + 'static
{
}

/// Called after the group's commit with its outcome.
type Finish = Box<dyn FnOnce(Result<(), String>) + Send>;
/// A unit for the writer thread: runs and says whether it broke the transaction.
type Job = Box<dyn FnOnce(&mut SqliteConn) -> (Finish, bool) + Send>;
/// (scope, key) → request fingerprint of the claims held in this process.
pub(crate) type MemoryClaims = std::sync::Mutex<std::collections::HashMap<(String, String), String>>;

#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

enum Inner {
    Sqlite {
        path: PathBuf,
        writer: mpsc::Sender<Job>,
        readers: Readers,
        /// The checkpointer runs while this lives.
        _alive: Arc<()>,
        /// Idempotency keys claimed by requests in progress (see `idempotency`).
        claims: MemoryClaims,
    },
    Postgres {
        pool: PgPool,
    },
}

impl Store {
    /// Opens (creating if needed) the store and brings its schema up to date.
    pub async fn open(options: StoreOptions) -> Result<Store, StoreError> {
        if let Some(path) = options.url.strip_prefix("sqlite://") {
            let path = PathBuf::from(path.split('?').next().unwrap_or(path));
            let store = Self::open_sqlite(path, &options)?;
            store.bootstrap(options.schema).await?;
            return Ok(store);
        }
        if !(options.url.starts_with("postgres://") || options.url.starts_with("postgresql://")) {
            return Err(StoreError::Conflict(format!(
                "unsupported database url `{}`: use sqlite://PATH or postgres://…",
                options.url.split('@').next_back().unwrap_or("")
            )));
        }
        let pool = PgPoolOptions::new()
            .max_connections(options.write_connections_max)
            .acquire_timeout(Duration::from_secs(10))
            .connect(&options.url)
            .await
            .map_err(DbError::from)?;
        let mut conn = pool.acquire().await.map_err(DbError::from)?;
        schema::migrate(&mut *conn, Backend::Postgres, options.schema).await?;
        drop(conn);
        let store = Store { inner: Arc::new(Inner::Postgres { pool }) };
        store.bootstrap(options.schema).await?;
        Ok(store)
    }

    /// What a freshly opened store sets up: the core's platform ledger accounts, the legacy
    /// store's change-capture triggers.
    async fn bootstrap(&self, schema: schema::Schema) -> Result<(), StoreError> {
        match schema {
            schema::Schema::Core => self.ensure_platform_accounts(system_ctx()).await,
            schema::Schema::Legacy => crate::legacy::install_capture(self).await,
        }
    }

    fn open_sqlite(path: PathBuf, options: &StoreOptions) -> Result<Store, StoreError> {
        let mut writer = SqliteConn::open(&path, false)?;
        futures::executor::block_on(schema::migrate(&mut writer, Backend::Sqlite, options.schema))?;
        let readers = Readers::start(&path, options.read_connections_max as usize)?;
        let (sender, receiver) = mpsc::channel(options.write_queue_units_max);
        let group_units_max = options.group_commit_units_max;
        std::thread::Builder::new()
            .name(format!("{}-writer", crate::db::sqlite::thread_label(&path)))
            .spawn(move || writer_loop(writer, receiver, group_units_max))
            .map_err(|e| DbError::new(format!("cannot start the writer thread: {e}")))?;
        let alive = Arc::new(());
        crate::db::sqlite::start_checkpointer(&path, Arc::downgrade(&alive))?;
        let claims = MemoryClaims::default();
        Ok(Store { inner: Arc::new(Inner::Sqlite { path, writer: sender, readers, _alive: alive, claims }) })
    }

    pub fn backend(&self) -> Backend {
        match &*self.inner {
            Inner::Sqlite { .. } => Backend::Sqlite,
            Inner::Postgres { .. } => Backend::Postgres,
        }
    }

    /// Where idempotency claims are held in memory (SQLite), if they are.
    pub(crate) fn memory_claims(&self) -> Option<&MemoryClaims> {
        match &*self.inner {
            Inner::Sqlite { claims, .. } => Some(claims),
            Inner::Postgres { .. } => None,
        }
    }

    /// The SQLite file, for tools that open it themselves.
    pub fn sqlite_path(&self) -> Option<&std::path::Path> {
        match &*self.inner {
            Inner::Sqlite { path, .. } => Some(path),
            Inner::Postgres { .. } => None,
        }
    }

    /// The PostgreSQL pool, for the bulk paths that speak to it directly (`COPY`).
    pub(crate) fn pg_pool(&self) -> Option<&PgPool> {
        match &*self.inner {
            Inner::Sqlite { .. } => None,
            Inner::Postgres { pool } => Some(pool),
        }
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.read(|conn| Box::pin(async move { Ok(q("SELECT 1 AS one").fetch_one(conn).await.map(|_| ())?) }))
            .await
    }

    /// Runs a read outside any write transaction (on SQLite, on a read-only connection).
    pub async fn read<T: Send + 'static>(&self, op: impl Op<T>) -> Result<T, StoreError> {
        match &*self.inner {
            Inner::Sqlite { readers, .. } => {
                let (reply, answer) = oneshot::channel();
                readers.submit(Box::new(move |conn: &mut SqliteConn| {
                    let _ = reply.send(futures::executor::block_on(op(conn)));
                }))?;
                answer.await.map_err(|_| StoreError::Unavailable)?
            }
            Inner::Postgres { pool } => {
                let mut conn = pool.acquire().await.map_err(DbError::from)?;
                op(&mut *conn).await
            }
        }
    }

    /// Runs `op` as one unit (see the module docs) and returns its outcome once committed.
    pub async fn write<T: Send + 'static>(
        &self,
        idem: Option<Idem<T>>,
        op: impl Op<T>,
    ) -> Result<T, StoreError> {
        let started = std::time::Instant::now();
        let outcome = match &*self.inner {
            Inner::Sqlite { writer, .. } => {
                let (reply, answer) = oneshot::channel();
                let job: Job = Box::new(move |conn: &mut SqliteConn| {
                    let (outcome, poisoned) = match futures::executor::block_on(run_unit(conn, idem, op)) {
                        Ok(outcome) => (outcome, false),
                        Err(error) => (Err(StoreError::Database(error)), true),
                    };
                    let finish: Finish = Box::new(move |commit: Result<(), String>| {
                        let delivered = match (commit, outcome) {
                            (Ok(()), outcome) => outcome,
                            // The unit's own error stands whether or not the group committed.
                            (Err(_), Err(error)) if !poisoned => Err(error),
                            (Err(_), _) => Err(StoreError::Unavailable),
                        };
                        let _ = reply.send(delivered);
                    });
                    (finish, poisoned)
                });
                writer.send(job).await.map_err(|_| StoreError::Unavailable)?;
                let waiting = writer.max_capacity() - writer.capacity();
                metrics::gauge!("jembatan_store_write_queue_units").set(waiting as f64);
                answer.await.map_err(|_| StoreError::Unavailable)?
            }
            Inner::Postgres { pool } => {
                let mut tx = pool.begin().await.map_err(DbError::from)?;
                let outcome = run_unit(&mut *tx, idem, op).await?;
                tx.commit().await.map_err(DbError::from)?;
                outcome
            }
        };
        metrics::histogram!("jembatan_store_write_seconds").record(started.elapsed().as_secs_f64());
        outcome
    }
}

/// The platform itself as the actor of what the store does on its own (bootstrap).
fn system_ctx() -> WriteCtx {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    WriteCtx { actor: Principal::Operator, now: Timestamp::from_unix_ms(ms) }
}

/// One unit inside an open transaction. The outer error means the transaction itself is broken
/// and must be rolled back; the inner result is the unit's own outcome.
async fn run_unit<T>(
    conn: &mut dyn Conn,
    idem: Option<Idem<T>>,
    op: impl Op<T>,
) -> Result<Result<T, StoreError>, DbError> {
    q("SAVEPOINT unit").execute(conn).await?;
    let mut outcome = op(&mut *conn).await;
    // Render a success now, while `outcome` is not borrowed across an await. A success is
    // stored with its effects; if storing it fails, the unit fails.
    let (success, idem) = match (&outcome, idem) {
        (Ok(value), Some(idem)) => {
            let Idem { scope, key, fingerprint, now, render } = idem;
            (render(Ok(value)).map(|response| (scope, key, fingerprint, now, response)), None)
        }
        (_, idem) => (None, idem),
    };
    if let Some((scope, key, fingerprint, now, response)) = success
        && let Err(error) = idempotency::complete(conn, &scope, &key, &fingerprint, now, &response).await
    {
        outcome = Err(error);
    }
    match outcome {
        Ok(value) => {
            q("RELEASE SAVEPOINT unit").execute(conn).await?;
            Ok(Ok(value))
        }
        Err(error) => {
            q("ROLLBACK TO SAVEPOINT unit").execute(conn).await?;
            q("RELEASE SAVEPOINT unit").execute(conn).await?;
            if let Some(idem) = idem
                && let Some(response) = (idem.render)(Err(&error))
            {
                idempotency::complete(conn, &idem.scope, &idem.key, &idem.fingerprint, idem.now, &response)
                    .await
                    .map_err(unit_error)?;
            }
            Ok(Err(error))
        }
    }
}

fn unit_error(error: StoreError) -> DbError {
    match error {
        StoreError::Database(error) => error,
        other => DbError::new(other.to_string()),
    }
}

fn writer_loop(mut conn: SqliteConn, mut queue: mpsc::Receiver<Job>, group_units_max: usize) {
    let mut group: Vec<Job> = Vec::with_capacity(group_units_max);
    while let Some(first) = queue.blocking_recv() {
        group.push(first);
        while group.len() < group_units_max {
            match queue.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        metrics::histogram!("jembatan_store_group_commit_units").record(group.len() as f64);
        let mut finishes: Vec<Finish> = Vec::with_capacity(group.len());
        let begun = conn.execute_now("BEGIN IMMEDIATE");
        let mut poisoned = begun.is_err();
        for job in group.drain(..) {
            if poisoned {
                // The transaction is gone; dropping the job answers its caller `Unavailable`.
                drop(job);
                continue;
            }
            // A unit that panics (a broken assertion) must not take the writer down with it:
            // its caller's reply is dropped (it sees `Unavailable`) and the group rolls back.
            match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(&mut conn))) {
                Ok((finish, broke)) => {
                    poisoned |= broke;
                    finishes.push(finish);
                }
                Err(_) => {
                    tracing::error!("a unit panicked; its group is rolled back");
                    poisoned = true;
                }
            }
        }
        let commit = if poisoned {
            let _ = conn.execute_now("ROLLBACK");
            Err(begun.err().map_or_else(|| "a unit broke the transaction".to_owned(), |e| e.to_string()))
        } else {
            conn.execute_now("COMMIT").map_err(|error| {
                let _ = conn.execute_now("ROLLBACK");
                error.to_string()
            })
        };
        if let Err(reason) = &commit {
            tracing::error!(%reason, units = finishes.len(), "group rolled back");
        }
        for finish in finishes {
            finish(commit.clone());
        }
    }
}
