//! How writes reach the database.
//!
//! Every write is a *unit*: a closure that runs its statements on a connection that is already
//! inside a transaction, wrapped in a savepoint so that a failing unit leaves no trace. The
//! idempotency record of the request (if any) is completed inside the same unit, so a response
//! is stored if and only if its effects are.
//!
//! - **SQLite** allows one writer at a time. Instead of many connections queueing on the file
//!   lock, one writer task owns the only write connection and commits units in groups: it takes
//!   every unit waiting in its queue (up to `group_commit_units_max`), runs them in one
//!   `BEGIN IMMEDIATE … COMMIT`, and answers each caller only after that commit. One fsync then
//!   pays for the whole group (group commit), which is what makes `synchronous=FULL` affordable.
//! - **PostgreSQL** runs many writers; each unit is its own transaction on the pool, and row-level
//!   conditional updates keep concurrent units correct.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use jembatan_domain::{Principal, Timestamp};
use sqlx::AnyPool;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyConnection, ConnectOptions};
use tokio::sync::{mpsc, oneshot};

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
    pub read_connections_max: u32,
    pub write_connections_max: u32,
    /// Units committed together by the SQLite writer at most.
    pub group_commit_units_max: usize,
    /// Units waiting for the SQLite writer at most; callers wait beyond it (backpressure).
    pub write_queue_units_max: usize,
}

impl StoreOptions {
    pub fn new(url: impl Into<String>) -> StoreOptions {
        StoreOptions {
            url: url.into(),
            read_connections_max: 8,
            write_connections_max: 16,
            group_commit_units_max: 256,
            write_queue_units_max: 4096,
        }
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
/// store; `None` (a server-side failure) releases the key so the client may retry.
pub struct Idem<T> {
    pub scope: String,
    pub key: String,
    pub render: Render<T>,
}

impl<T> Idem<T> {
    fn scope_key(&self) -> (String, String) {
        (self.scope.clone(), self.key.clone())
    }
}

type Finish = Box<dyn FnOnce(Result<(), String>) + Send>;
type Job = Box<dyn for<'c> FnOnce(&'c mut AnyConnection) -> BoxFuture<'c, (Finish, bool)> + Send>;

#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    backend: Backend,
    pool: AnyPool,
    writer: Option<mpsc::Sender<Job>>,
}

impl Store {
    /// Opens (creating if needed) the store and brings its schema up to date.
    pub async fn open(options: StoreOptions) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = if options.url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if options.url.starts_with("postgres:") || options.url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            return Err(StoreError::Conflict(format!(
                "unsupported database url `{}`: use sqlite://PATH or postgres://…",
                options.url
            )));
        };
        match backend {
            Backend::Sqlite => Self::open_sqlite(options).await,
            Backend::Postgres => {
                let pool = AnyPoolOptions::new()
                    .max_connections(options.write_connections_max)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect(&options.url)
                    .await?;
                let mut conn = pool.acquire().await?;
                schema::migrate(&mut conn, backend).await?;
                drop(conn);
                Ok(Store { inner: Arc::new(Inner { backend, pool, writer: None }) })
            }
        }
    }

    async fn open_sqlite(options: StoreOptions) -> Result<Store, StoreError> {
        let url =
            if options.url.contains('?') { options.url.clone() } else { format!("{}?mode=rwc", options.url) };
        let connect: AnyConnectOptions = url.parse()?;
        let mut writer = connect.connect().await?;
        for pragma in [
            "PRAGMA journal_mode = WAL",
            // Durable on power loss too; group commit amortises the fsync.
            "PRAGMA synchronous = FULL",
            "PRAGMA busy_timeout = 5000",
        ] {
            sqlx::query(pragma).execute(&mut writer).await?;
        }
        schema::migrate(&mut writer, Backend::Sqlite).await?;
        let pool = AnyPoolOptions::new()
            .max_connections(options.read_connections_max)
            .after_connect(|conn, _| {
                Box::pin(async move {
                    sqlx::query("PRAGMA busy_timeout = 5000").execute(&mut *conn).await?;
                    // Readers cannot write: every write must go through the writer task.
                    sqlx::query("PRAGMA query_only = ON").execute(&mut *conn).await?;
                    Ok(())
                })
            })
            .connect_with(connect)
            .await?;
        let (sender, receiver) = mpsc::channel(options.write_queue_units_max);
        tokio::spawn(writer_loop(writer, receiver, options.group_commit_units_max));
        Ok(Store { inner: Arc::new(Inner { backend: Backend::Sqlite, pool, writer: Some(sender) }) })
    }

    pub fn backend(&self) -> Backend {
        self.inner.backend
    }

    /// The pool for reads. On SQLite its connections are read-only.
    pub fn pool(&self) -> &AnyPool {
        &self.inner.pool
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.inner.pool).await?;
        Ok(())
    }

    /// Runs `op` as one unit (see the module docs) and returns its outcome once committed.
    pub async fn write<T, F>(&self, idem: Option<Idem<T>>, op: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut AnyConnection) -> BoxFuture<'c, Result<T, StoreError>> + Send + 'static,
    {
        let started = std::time::Instant::now();
        let outcome = match &self.inner.writer {
            Some(writer) => {
                let (reply, answer) = oneshot::channel();
                let job: Job = Box::new(move |conn| {
                    Box::pin(async move {
                        let (outcome, poisoned) = match run_unit(conn, idem, op).await {
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
                    })
                });
                writer.send(job).await.map_err(|_| StoreError::Unavailable)?;
                answer.await.map_err(|_| StoreError::Unavailable)?
            }
            None => {
                let mut tx = self.inner.pool.begin().await?;
                let outcome = run_unit(&mut tx, idem, op).await?;
                tx.commit().await?;
                outcome
            }
        };
        metrics::histogram!("jembatan_store_write_seconds").record(started.elapsed().as_secs_f64());
        outcome
    }
}

/// One unit inside an open transaction. The outer error means the transaction itself is broken
/// and must be rolled back; the inner result is the unit's own outcome.
async fn run_unit<T, F>(
    conn: &mut AnyConnection,
    idem: Option<Idem<T>>,
    op: F,
) -> Result<Result<T, StoreError>, sqlx::Error>
where
    F: for<'c> FnOnce(&'c mut AnyConnection) -> BoxFuture<'c, Result<T, StoreError>>,
{
    sqlx::query("SAVEPOINT unit").execute(&mut *conn).await?;
    let mut outcome = op(&mut *conn).await;
    // A success is stored with its effects; if storing it fails, the unit fails.
    // Render a success now, while `outcome` is not borrowed across an await.
    let (success, idem) = match (&outcome, idem) {
        (Ok(value), Some(idem)) => {
            let (scope, key) = idem.scope_key();
            ((idem.render)(Ok(value)).map(|response| (scope, key, response)), None)
        }
        (_, idem) => (None, idem),
    };
    if let Some((scope, key, response)) = success {
        if let Err(error) = idempotency::complete(conn, &scope, &key, &response).await {
            outcome = Err(error);
        }
    }
    match outcome {
        Ok(value) => {
            sqlx::query("RELEASE SAVEPOINT unit").execute(&mut *conn).await?;
            Ok(Ok(value))
        }
        Err(error) => {
            sqlx::query("ROLLBACK TO SAVEPOINT unit").execute(&mut *conn).await?;
            sqlx::query("RELEASE SAVEPOINT unit").execute(&mut *conn).await?;
            if let Some(idem) = idem {
                match (idem.render)(Err(&error)) {
                    Some(response) => idempotency::complete(conn, &idem.scope, &idem.key, &response)
                        .await
                        .map_err(unit_error)?,
                    None => idempotency::release(conn, &idem.scope, &idem.key).await.map_err(unit_error)?,
                }
            }
            Ok(Err(error))
        }
    }
}

fn unit_error(error: StoreError) -> sqlx::Error {
    match error {
        StoreError::Database(error) => error,
        other => sqlx::Error::Protocol(other.to_string()),
    }
}

async fn writer_loop(mut conn: AnyConnection, mut queue: mpsc::Receiver<Job>, group_units_max: usize) {
    let mut group: Vec<Job> = Vec::with_capacity(group_units_max);
    while queue.recv_many(&mut group, group_units_max).await > 0 {
        metrics::histogram!("jembatan_store_group_commit_units").record(group.len() as f64);
        let mut finishes: Vec<Finish> = Vec::with_capacity(group.len());
        let begun = sqlx::query("BEGIN IMMEDIATE").execute(&mut conn).await.map_err(|e| e.to_string());
        let mut poisoned = begun.is_err();
        for job in group.drain(..) {
            if poisoned {
                // The transaction is gone; the unit is answered without running.
                let (finish, _) = job_skipped(job);
                finishes.push(finish);
                continue;
            }
            let (finish, broke) = job(&mut conn).await;
            poisoned |= broke;
            finishes.push(finish);
        }
        let commit = if poisoned {
            let _ = sqlx::query("ROLLBACK").execute(&mut conn).await;
            Err(begun.err().unwrap_or_else(|| "unit broke the transaction".to_owned()))
        } else {
            match sqlx::query("COMMIT").execute(&mut conn).await {
                Ok(_) => Ok(()),
                Err(error) => {
                    tracing::error!(%error, "group commit failed");
                    let _ = sqlx::query("ROLLBACK").execute(&mut conn).await;
                    Err(error.to_string())
                }
            }
        };
        if let Err(reason) = &commit {
            tracing::error!(%reason, units = finishes.len(), "group rolled back");
        }
        for finish in finishes {
            finish(commit.clone());
        }
    }
}

/// A job that will not run still owns its reply channel; dropping it answers the caller with
/// `Unavailable` (the receiver sees the sender dropped).
fn job_skipped(job: Job) -> (Finish, bool) {
    drop(job);
    (Box::new(|_| {}), true)
}
