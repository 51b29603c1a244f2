//! The two database engines behind one small interface, so every unit of SQL is written once.
//!
//! Why not `sqlx::Any` for both: sqlx runs each SQLite connection on a worker thread and hands
//! every statement over to it and back, two thread switches per statement. Profiling the
//! checkout benchmark showed those switches (futex wake-ups, scheduler) taking most of the CPU
//! and SQLite itself a few percent. Here SQLite is driven by `rusqlite` on threads that own
//! their connection: a whole group of units crosses threads once. PostgreSQL stays on sqlx,
//! whose async driver is the natural fit for a network database.
//!
//! The SQL dialect is the common one: `$1…` placeholders, `RETURNING`, `ON CONFLICT DO
//! NOTHING`, integer and text columns only.

pub mod postgres;
pub mod sqlite;

use std::sync::Arc;

use futures::future::BoxFuture;

/// A database failure, with its cause for the logs.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct DbError {
    pub message: String,
    /// A unique constraint refused the write (two requests raced for the same key).
    pub unique_violation: bool,
    /// PostgreSQL chose this transaction to break a deadlock or a serialization conflict
    /// (40P01, 40001): nothing was written and the request may be retried as it is.
    pub retryable: bool,
    #[source]
    pub source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl DbError {
    pub fn new(message: impl Into<String>) -> DbError {
        DbError { message: message.into(), unique_violation: false, retryable: false, source: None }
    }

    /// The shop named by a legacy store's fence trigger (`shop_fenced:SHOP_ID:`), if that is
    /// what refused the statement.
    pub fn fenced_shop(&self) -> Option<String> {
        let (_, rest) = self.message.split_once(crate::legacy::FENCED_MARK)?;
        let shop: String = rest.chars().take_while(char::is_ascii_digit).collect();
        Some(shop)
    }
}

impl From<rusqlite::Error> for DbError {
    fn from(error: rusqlite::Error) -> Self {
        let unique_violation = matches!(
            error.sqlite_error().map(|e| e.extended_code),
            Some(rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE | rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY)
        );
        DbError {
            message: format!("sqlite: {error}"),
            unique_violation,
            retryable: false,
            source: Some(Box::new(error)),
        }
    }
}

impl From<sqlx::Error> for DbError {
    fn from(error: sqlx::Error) -> Self {
        let unique_violation = error.as_database_error().is_some_and(|e| e.is_unique_violation());
        let retryable = error
            .as_database_error()
            .and_then(|e| e.code())
            .is_some_and(|code| code == "40P01" || code == "40001");
        DbError {
            message: format!("postgresql: {error}"),
            unique_violation,
            retryable,
            source: Some(Box::new(error)),
        }
    }
}

/// A bound parameter or a column value. Every column of the schema is an integer or text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// A NULL text value.
    Null,
    /// A NULL integer value (PostgreSQL types parameters, so the two nulls differ there).
    NullInt,
    Int(i64),
    Text(String),
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Int(v)
    }
}
impl From<u32> for Value {
    fn from(v: u32) -> Self {
        Value::Int(i64::from(v))
    }
}
impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Text(v)
    }
}
impl From<&String> for Value {
    fn from(v: &String) -> Self {
        Value::Text(v.clone())
    }
}
impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Text(v.to_owned())
    }
}
impl From<Option<String>> for Value {
    fn from(v: Option<String>) -> Self {
        v.map_or(Value::Null, Value::Text)
    }
}
impl From<Option<&str>> for Value {
    fn from(v: Option<&str>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}
impl From<Option<i64>> for Value {
    fn from(v: Option<i64>) -> Self {
        v.map_or(Value::NullInt, Value::Int)
    }
}

/// One result row: values by column name.
#[derive(Debug, Clone)]
pub struct Row {
    columns: Arc<[String]>,
    values: Vec<Value>,
}

impl Row {
    pub fn new(columns: Arc<[String]>, values: Vec<Value>) -> Row {
        debug_assert_eq!(columns.len(), values.len());
        Row { columns, values }
    }

    pub fn value(&self, column: &str) -> Result<&Value, DbError> {
        self.columns
            .iter()
            .position(|c| c == column)
            .map(|i| &self.values[i])
            .ok_or_else(|| DbError::new(format!("no column `{column}` in the result")))
    }

    pub fn int(&self, column: &str) -> Result<i64, DbError> {
        match self.value(column)? {
            Value::Int(v) => Ok(*v),
            other => Err(DbError::new(format!("column `{column}` is {other:?}, not an integer"))),
        }
    }

    pub fn text(&self, column: &str) -> Result<String, DbError> {
        match self.value(column)? {
            Value::Text(v) => Ok(v.clone()),
            other => Err(DbError::new(format!("column `{column}` is {other:?}, not text"))),
        }
    }

    pub fn opt_text(&self, column: &str) -> Result<Option<String>, DbError> {
        match self.value(column)? {
            Value::Null | Value::NullInt => Ok(None),
            _ => self.text(column).map(Some),
        }
    }

    pub fn opt_int(&self, column: &str) -> Result<Option<i64>, DbError> {
        match self.value(column)? {
            Value::Null | Value::NullInt => Ok(None),
            _ => self.int(column).map(Some),
        }
    }
}

/// A connection inside a transaction (or, for reads, outside one).
pub trait Conn: Send {
    /// Whether this is PostgreSQL, for the few statements that differ (row locks).
    fn is_postgres(&self) -> bool;
    fn execute<'a>(&'a mut self, sql: &'a str, params: Vec<Value>) -> BoxFuture<'a, Result<u64, DbError>>;
    fn fetch_all<'a>(
        &'a mut self,
        sql: &'a str,
        params: Vec<Value>,
    ) -> BoxFuture<'a, Result<Vec<Row>, DbError>>;
}

/// A statement with its parameters: `q("…").bind(a).bind(b).execute(conn)`.
pub struct Query {
    sql: std::borrow::Cow<'static, str>,
    params: Vec<Value>,
}

pub fn q(sql: impl Into<std::borrow::Cow<'static, str>>) -> Query {
    Query { sql: sql.into(), params: Vec::new() }
}

impl Query {
    pub fn bind(mut self, value: impl Into<Value>) -> Query {
        self.params.push(value.into());
        self
    }

    pub async fn execute(self, conn: &mut dyn Conn) -> Result<u64, DbError> {
        conn.execute(&self.sql, self.params).await
    }

    pub async fn fetch_all(self, conn: &mut dyn Conn) -> Result<Vec<Row>, DbError> {
        conn.fetch_all(&self.sql, self.params).await
    }

    pub async fn fetch_optional(self, conn: &mut dyn Conn) -> Result<Option<Row>, DbError> {
        let sql = self.sql.clone();
        let mut rows = conn.fetch_all(&self.sql, self.params).await?;
        if rows.len() > 1 {
            return Err(DbError::new(format!("expected at most one row, got {}: {sql}", rows.len())));
        }
        Ok(rows.pop())
    }

    pub async fn fetch_one(self, conn: &mut dyn Conn) -> Result<Row, DbError> {
        let sql = self.sql.clone();
        self.fetch_optional(conn)
            .await?
            .ok_or_else(|| DbError::new(format!("expected one row, got none: {sql}")))
    }
}

/// Inserts rows of `width` values each with multi-row `INSERT … VALUES (…), (…)` statements:
/// `head` is `INSERT INTO t (a, b)`, `tail` what follows the values (`ON CONFLICT …`) or "".
/// Rows go in chunks of 64, 16, 4 and 1, so a table has at most four statement shapes in the
/// prepared-statement cache. Returns the rows changed.
pub(crate) async fn insert_many(
    conn: &mut dyn Conn,
    head: &str,
    width: usize,
    rows: Vec<Vec<Value>>,
    tail: &str,
) -> Result<u64, DbError> {
    let mut changed = 0;
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let left = rows.len();
        let take = [64, 16, 4, 1].into_iter().find(|n| *n <= left).unwrap_or(1);
        let mut params = Vec::with_capacity(take * width);
        let mut tuples = Vec::with_capacity(take);
        for row in rows.by_ref().take(take) {
            if row.len() != width {
                return Err(DbError::new(format!(
                    "a row of {} values for {width} columns: {head}",
                    row.len()
                )));
            }
            let first = params.len();
            tuples.push(format!(
                "({})",
                (first + 1..=first + width).map(|n| format!("${n}")).collect::<Vec<_>>().join(", ")
            ));
            params.extend(row);
        }
        let sql = format!("{head} VALUES {}{tail}", tuples.join(", "));
        changed += conn.execute(&sql, params).await?;
    }
    Ok(changed)
}

/// ` FOR UPDATE` on PostgreSQL when a write unit reads a row it will change (concurrent units
/// then queue on the row instead of computing from a stale read); SQLite's single writer
/// serialises units anyway.
pub(crate) fn lock_clause(conn: &dyn Conn, for_update: bool) -> &'static str {
    if for_update && conn.is_postgres() { " FOR UPDATE" } else { "" }
}
