//! SQLite through rusqlite, on threads that own their connections.
//!
//! - One **writer thread** owns the only write connection. Units arrive on a queue; the thread
//!   takes all that are waiting (up to a limit), runs them in one `BEGIN IMMEDIATE … COMMIT`
//!   (group commit: one fsync for the group) and answers each caller after the commit.
//! - A few **reader threads** each own a read-only connection and serve reads from a shared
//!   queue; WAL mode lets them read while the writer writes.
//!
//! Units are the same async functions as on PostgreSQL; here their futures never wait (every
//! call is synchronous underneath), so the threads drive them with a trivial `block_on`.

use std::path::Path;
use std::sync::{Arc, Mutex, mpsc};

use futures::future::BoxFuture;
use rusqlite::types::ValueRef;

use super::{Conn, DbError, Row, Value};

/// Prepared statements kept per connection.
const STATEMENT_CACHE_CAPACITY: usize = 256;
/// Page cache per connection. Larger is not better: each commit scans the cache to drop pages
/// past the end of the file, and at 64 MiB that scan showed up in profiles.
const CACHE_KIB: i64 = 8 * 1024;
/// How often the checkpointer copies the WAL back into the database file.
const CHECKPOINT_INTERVAL: std::time::Duration = std::time::Duration::from_millis(500);

pub struct SqliteConn {
    connection: rusqlite::Connection,
}

impl SqliteConn {
    pub fn open(path: &Path, read_only: bool) -> Result<SqliteConn, DbError> {
        use rusqlite::OpenFlags;
        let flags = if read_only {
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX
        } else {
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX
        };
        let connection = rusqlite::Connection::open_with_flags(path, flags)?;
        connection.set_prepared_statement_cache_capacity(STATEMENT_CACHE_CAPACITY);
        connection.busy_timeout(std::time::Duration::from_secs(5))?;
        // Each unit runs in a savepoint; its sub-journal stays in memory instead of a temp file
        // (profiling showed the temp-file writes at a sixth of the writer's time).
        connection.pragma_update(None, "temp_store", "MEMORY")?;
        connection.pragma_update(None, "cache_size", -CACHE_KIB)?;
        if !read_only {
            connection.pragma_update(None, "journal_mode", "WAL")?;
            // Durable on power loss too; group commit pays one fsync per group.
            connection.pragma_update(None, "synchronous", "FULL")?;
            // Checkpoints run on the checkpointer thread, not inside the writer's commits.
            connection.pragma_update(None, "wal_autocheckpoint", 0)?;
        }
        Ok(SqliteConn { connection })
    }

    /// Runs one statement without parameters, synchronously (transaction control).
    pub fn execute_now(&mut self, sql: &str) -> Result<(), DbError> {
        self.connection.execute_batch(sql)?;
        Ok(())
    }

    fn run(&mut self, sql: &str, params: Vec<Value>) -> Result<(u64, Vec<Row>), DbError> {
        let mut statement = self.connection.prepare_cached(sql)?;
        // SQLite numbers `$N` parameters by first appearance, not by N. Reading the SQL once
        // gives each slot's N (asking SQLite for each slot's name is quadratic in the number of
        // parameters: it showed up at 29% of the ledger benchmark with 8,000-id IN lists).
        let slots = parameter_order(sql);
        if slots.len() != statement.parameter_count() {
            return Err(DbError::new(format!("parameters of `{sql}` do not read as $1…$N")));
        }
        for (slot, index) in slots.into_iter().enumerate() {
            let value = params
                .get(index.wrapping_sub(1))
                .ok_or_else(|| DbError::new(format!("parameter ${index} has no value in: {sql}")))?;
            match value {
                Value::Null | Value::NullInt => {
                    statement.raw_bind_parameter(slot + 1, rusqlite::types::Null)?
                }
                Value::Int(v) => statement.raw_bind_parameter(slot + 1, v)?,
                Value::Text(v) => statement.raw_bind_parameter(slot + 1, v.as_str())?,
            }
        }
        let column_count = statement.column_count();
        if column_count == 0 {
            let changes = statement.raw_execute()?;
            return Ok((changes as u64, Vec::new()));
        }
        let mut columns: Option<Arc<[String]>> = None;
        let mut rows = Vec::new();
        let mut raw = statement.raw_query();
        while let Some(row) = raw.next()? {
            let names = columns.get_or_insert_with(|| {
                (0..column_count)
                    .map(|i| row.as_ref().column_name(i).unwrap_or_default().to_owned())
                    .collect()
            });
            let mut values = Vec::with_capacity(column_count);
            for i in 0..column_count {
                values.push(match row.get_ref(i)? {
                    ValueRef::Null => Value::Null,
                    ValueRef::Integer(v) => Value::Int(v),
                    ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
                    ValueRef::Real(_) | ValueRef::Blob(_) => {
                        return Err(DbError::new(format!(
                            "column `{}` holds a type the schema never uses",
                            names[i]
                        )));
                    }
                });
            }
            rows.push(Row::new(names.clone(), values));
        }
        drop(raw);
        Ok((self.connection.changes(), rows))
    }
}

impl Conn for SqliteConn {
    fn is_postgres(&self) -> bool {
        false
    }

    fn execute<'a>(&'a mut self, sql: &'a str, params: Vec<Value>) -> BoxFuture<'a, Result<u64, DbError>> {
        let result = self.run(sql, params).map(|(changes, _)| changes);
        Box::pin(std::future::ready(result))
    }

    fn fetch_all<'a>(
        &'a mut self,
        sql: &'a str,
        params: Vec<Value>,
    ) -> BoxFuture<'a, Result<Vec<Row>, DbError>> {
        let result = self.run(sql, params).map(|(_, rows)| rows);
        Box::pin(std::future::ready(result))
    }
}

/// The N of each distinct `$N` of `sql`, in order of first appearance: SQLite's slot order.
fn parameter_order(sql: &str) -> Vec<usize> {
    let bytes = sql.as_bytes();
    let mut order: Vec<usize> = Vec::new();
    let mut highest = 0;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'$' {
            let start = i + 1;
            let mut end = start;
            while end < bytes.len() && bytes[end].is_ascii_digit() {
                end += 1;
            }
            if end > start {
                let n: usize = sql[start..end].parse().unwrap_or(0);
                // Parameters mostly appear in increasing order: only a lower one can repeat.
                if n > highest || !order.contains(&n) {
                    order.push(n);
                    highest = highest.max(n);
                }
            }
            i = end;
        } else {
            i += 1;
        }
    }
    order
}

/// The database file's stem (`core`, `legacy`), to name its threads in profiles (Linux keeps
/// 15 bytes of a thread's name).
pub fn thread_label(path: &Path) -> String {
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("sqlite");
    stem.chars().take(8).collect()
}

/// Work for a thread that owns a connection.
pub type Task = Box<dyn FnOnce(&mut SqliteConn) + Send>;

/// A pool of reader threads sharing one queue.
pub struct Readers {
    queue: mpsc::Sender<Task>,
}

impl Readers {
    pub fn start(path: &Path, threads: usize) -> Result<Readers, DbError> {
        let (sender, receiver) = mpsc::channel::<Task>();
        let receiver = Arc::new(Mutex::new(receiver));
        for n in 0..threads.max(1) {
            let mut conn = SqliteConn::open(path, true)?;
            let receiver = receiver.clone();
            std::thread::Builder::new()
                .name(format!("{}-reader-{n}", thread_label(path)))
                .spawn(move || {
                    loop {
                        let task = receiver.lock().expect("reader queue").recv();
                        match task {
                            // A panicking read drops its reply (the caller sees `Unavailable`);
                            // the thread and its connection carry on.
                            Ok(task) => {
                                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                                    task(&mut conn)
                                }));
                            }
                            Err(_) => break,
                        }
                    }
                })
                .map_err(|e| DbError::new(format!("cannot start a reader thread: {e}")))?;
        }
        Ok(Readers { queue: sender })
    }

    pub fn submit(&self, task: Task) -> Result<(), DbError> {
        self.queue.send(task).map_err(|_| DbError::new("the readers stopped"))
    }
}

/// Starts the thread that checkpoints the WAL in the background (`PASSIVE`: it never blocks the
/// writer or the readers). It stops when `alive` has no other owner left.
pub fn start_checkpointer(path: &Path, alive: std::sync::Weak<()>) -> Result<(), DbError> {
    let connection = rusqlite::Connection::open(path)?;
    connection.busy_timeout(std::time::Duration::from_secs(5))?;
    std::thread::Builder::new()
        .name(format!("{}-checkpoint", thread_label(path)))
        .spawn(move || {
            while alive.upgrade().is_some() {
                std::thread::sleep(CHECKPOINT_INTERVAL);
                if let Err(error) = connection.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                    tracing::warn!(%error, "wal checkpoint failed");
                }
            }
        })
        .map_err(|e| DbError::new(format!("cannot start the checkpointer thread: {e}")))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn parameters_in_order_of_first_appearance() {
        assert_eq!(super::parameter_order("SELECT $1, $2"), vec![1, 2]);
        assert_eq!(
            super::parameter_order("UPDATE t SET a = $3 WHERE b = $1 AND c = $3 AND d >= $2"),
            vec![3, 1, 2]
        );
        assert_eq!(super::parameter_order("SELECT 1"), Vec::<usize>::new());
        assert_eq!(super::parameter_order("x = $10 OR y = $1"), vec![10, 1]);
    }
}
