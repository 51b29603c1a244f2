//! Merchants.

use jembatan_domain::{Merchant, MerchantId, MerchantName, Nib, Origin, Province, Timestamp};

use crate::db::{Row, q};
use crate::error::StoreError;
use crate::exec::{Idem, Store, WriteCtx};
use crate::journal::{self, Change};
use crate::rows;

/// A merchant, its event and audit entry, and its balance account, inside a unit.
pub(crate) async fn insert_merchant(
    conn: &mut dyn crate::db::Conn,
    ctx: &WriteCtx,
    merchant: &Merchant,
) -> Result<(), StoreError> {
    q("INSERT INTO merchants (merchant_id, name, origin, province, nib, created_at_ms)
         VALUES ($1, $2, $3, $4, $5, $6)")
    .bind(merchant.id.to_string())
    .bind(merchant.name.as_str())
    .bind(merchant.origin.as_str())
    .bind(merchant.province.as_str())
    .bind(merchant.nib.as_ref().map(|n| n.as_str().to_owned()))
    .bind(merchant.created_at.unix_ms())
    .execute(&mut *conn)
    .await?;
    let change = Change {
        event_type: "merchant.created",
        action: "merchant.create",
        entity_type: "merchant",
        entity_id: merchant.id.to_string(),
        merchant_id: Some(merchant.id),
        channel: None,
        payload: serde_json::json!({
            "merchant_id": merchant.id.to_string(),
            "origin": merchant.origin.as_str(),
            "province": merchant.province.as_str(),
        }),
    };
    journal::record(conn, ctx, change).await?;
    crate::ledger::ensure_accounts(conn, ctx, &[crate::ledger::merchant_account(merchant.id)]).await?;
    Ok(())
}

const COLUMNS: &str = "merchant_id, name, origin, province, nib, created_at_ms";

impl Store {
    pub async fn create_merchant(
        &self,
        ctx: WriteCtx,
        merchant: Merchant,
        idem: Option<Idem<Merchant>>,
    ) -> Result<Merchant, StoreError> {
        self.write(idem, move |conn| {
            Box::pin(async move {
                insert_merchant(conn, &ctx, &merchant).await?;
                Ok(merchant)
            })
        })
        .await
    }

    pub async fn merchant(&self, id: MerchantId) -> Result<Option<Merchant>, StoreError> {
        self.read(move |conn| {
            Box::pin(async move {
                let sql = format!("SELECT {COLUMNS} FROM merchants WHERE merchant_id = $1");
                let row = q(sql).bind(id.to_string()).fetch_optional(conn).await?;
                row.map(|r| decode(&r)).transpose()
            })
        })
        .await
    }

    /// Merchants in id order after `after`, at most `limit`.
    pub async fn merchants(
        &self,
        after: Option<MerchantId>,
        limit: u32,
    ) -> Result<Vec<Merchant>, StoreError> {
        self.read(move |conn| {
            Box::pin(async move {
                let sql = format!(
                    "SELECT {COLUMNS} FROM merchants WHERE merchant_id > $1 ORDER BY merchant_id LIMIT $2"
                );
                let rows = q(sql)
                    .bind(after.map(|a| a.to_string()).unwrap_or_default())
                    .bind(i64::from(limit))
                    .fetch_all(conn)
                    .await?;
                rows.iter().map(decode).collect()
            })
        })
        .await
    }
}

fn decode(row: &Row) -> Result<Merchant, StoreError> {
    let nib: Option<String> = row.opt_text("nib")?;
    Ok(Merchant {
        id: rows::id(row, "merchant_id")?,
        name: rows::parsed("name", MerchantName::parse(&rows::text(row, "name")?))?,
        origin: rows::parsed("origin", Origin::parse(&rows::text(row, "origin")?))?,
        province: rows::parsed("province", Province::parse(&rows::text(row, "province")?))?,
        nib: nib.map(|n| rows::parsed("nib", Nib::parse(&n))).transpose()?,
        created_at: Timestamp::from_unix_ms(rows::int(row, "created_at_ms")?),
    })
}
