//! PostgreSQL through sqlx: each unit is a transaction on a pooled connection.

use std::sync::Arc;

use futures::future::BoxFuture;
use sqlx::postgres::PgRow;
use sqlx::{Column, PgConnection, Row as _, TypeInfo, ValueRef};

use super::{Conn, DbError, Row, Value};

fn bind_all<'q>(
    mut query: sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
    params: Vec<Value>,
) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
    for value in params {
        query = match value {
            Value::Null => query.bind(None::<String>),
            Value::NullInt => query.bind(None::<i64>),
            Value::Int(v) => query.bind(v),
            Value::Text(v) => query.bind(v),
        };
    }
    query
}

fn convert(row: &PgRow, columns: &Arc<[String]>) -> Result<Row, DbError> {
    let mut values = Vec::with_capacity(columns.len());
    for (i, column) in row.columns().iter().enumerate() {
        let raw = row.try_get_raw(i)?;
        let value = if raw.is_null() {
            Value::Null
        } else {
            match column.type_info().name() {
                "INT8" => Value::Int(row.try_get::<i64, _>(i)?),
                "INT4" => Value::Int(i64::from(row.try_get::<i32, _>(i)?)),
                "INT2" => Value::Int(i64::from(row.try_get::<i16, _>(i)?)),
                "TEXT" | "VARCHAR" | "NAME" | "BPCHAR" => Value::Text(row.try_get::<String, _>(i)?),
                other => {
                    return Err(DbError::new(format!(
                        "column `{}` has type {other}, which the schema never uses",
                        column.name()
                    )));
                }
            }
        };
        values.push(value);
    }
    Ok(Row::new(columns.clone(), values))
}

impl Conn for PgConnection {
    fn is_postgres(&self) -> bool {
        true
    }

    fn execute<'a>(&'a mut self, sql: &'a str, params: Vec<Value>) -> BoxFuture<'a, Result<u64, DbError>> {
        Box::pin(async move {
            let query = bind_all(sqlx::query(sqlx::AssertSqlSafe(sql)), params);
            Ok(query.execute(&mut *self).await?.rows_affected())
        })
    }

    fn fetch_all<'a>(
        &'a mut self,
        sql: &'a str,
        params: Vec<Value>,
    ) -> BoxFuture<'a, Result<Vec<Row>, DbError>> {
        Box::pin(async move {
            let query = bind_all(sqlx::query(sqlx::AssertSqlSafe(sql)), params);
            let rows = query.fetch_all(&mut *self).await?;
            let Some(first) = rows.first() else { return Ok(Vec::new()) };
            let columns: Arc<[String]> = first.columns().iter().map(|c| c.name().to_owned()).collect();
            rows.iter().map(|r| convert(r, &columns)).collect()
        })
    }
}
