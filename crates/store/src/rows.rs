//! Decoding stored columns back into domain types. Stored data was valid when written, so a
//! value that no longer parses is corruption and reported as a database error, not a panic.

use jembatan_domain::{DomainError, TypedId};

use crate::db::{DbError, Row};
use crate::error::StoreError;

pub fn text(row: &Row, column: &str) -> Result<String, StoreError> {
    Ok(row.text(column)?)
}

pub fn int(row: &Row, column: &str) -> Result<i64, StoreError> {
    Ok(row.int(column)?)
}

pub fn id<T: TypedId>(row: &Row, column: &str) -> Result<T, StoreError> {
    parsed(column, T::parse(&text(row, column)?))
}

/// Maps a parse failure of stored data to a database error naming the column.
pub fn parsed<T>(column: &str, value: Result<T, DomainError>) -> Result<T, StoreError> {
    value.map_err(|e| StoreError::Database(DbError::new(format!("stored {column} is invalid: {e}"))))
}

/// A nullable integer column.
pub fn opt_int(row: &Row, column: &str) -> Result<Option<i64>, StoreError> {
    match row.value(column)? {
        crate::db::Value::Int(v) => Ok(Some(*v)),
        _ => Ok(None),
    }
}
