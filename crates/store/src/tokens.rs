//! API tokens: only the SHA-256 of each secret is stored.

use jembatan_domain::{Principal, Role, TokenId};

use crate::db::q;
use crate::error::StoreError;
use crate::exec::{Store, WriteCtx};
use crate::journal::{self, Change};
use crate::new_id;
use crate::rows;

impl Store {
    /// Stores a token for `principal` given the hash of its secret; returns its public id.
    pub async fn insert_token(
        &self,
        ctx: WriteCtx,
        principal: Principal,
        secret_sha256: String,
        label: String,
    ) -> Result<TokenId, StoreError> {
        self.write(None, move |conn| {
            Box::pin(async move {
                let id: TokenId = new_id();
                q(
                    "INSERT INTO api_tokens (token_id, secret_sha256, role, subject, label, created_at_ms)
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(id.to_string())
                .bind(&secret_sha256)
                .bind(principal.role().as_str())
                .bind(principal.subject())
                .bind(&label)
                .bind(ctx.now.unix_ms())
                .execute(&mut *conn)
                .await?;
                let change = Change {
                    event_type: "token.issued",
                    action: "token.issue",
                    entity_type: "token",
                    entity_id: id.to_string(),
                    merchant_id: match &principal {
                        Principal::Merchant(m) => Some(*m),
                        _ => None,
                    },
                    channel: None,
                    payload: serde_json::json!({"token_id": id.to_string(), "role": principal.role().as_str(), "subject": principal.subject(), "label": label}),
                };
                journal::record(conn, &ctx, change).await?;
                Ok(id)
            })
        })
        .await
    }

    /// The principal of a live token with this secret hash, if any.
    pub async fn find_token(&self, secret_sha256: &str) -> Result<Option<(TokenId, Principal)>, StoreError> {
        let hash = secret_sha256.to_owned();
        let row = self
            .read(move |conn| {
                Box::pin(async move {
                    Ok(q("SELECT token_id, role, subject FROM api_tokens WHERE secret_sha256 = $1 AND revoked_at_ms IS NULL")
                        .bind(hash)
                        .fetch_optional(conn)
                        .await?)
                })
            })
            .await?;
        let Some(row) = row else { return Ok(None) };
        let role = rows::parsed("role", Role::parse(&rows::text(&row, "role")?))?;
        let principal = rows::parsed("subject", Principal::from_parts(role, &rows::text(&row, "subject")?))?;
        Ok(Some((rows::id(&row, "token_id")?, principal)))
    }

    pub async fn revoke_token(&self, ctx: WriteCtx, token_id: TokenId) -> Result<(), StoreError> {
        self.write(None, move |conn| {
            Box::pin(async move {
                let done = q(
                    "UPDATE api_tokens SET revoked_at_ms = $2 WHERE token_id = $1 AND revoked_at_ms IS NULL",
                )
                .bind(token_id.to_string())
                .bind(ctx.now.unix_ms())
                .execute(&mut *conn)
                .await?;
                if done != 1 {
                    return Err(StoreError::not_found("token", token_id));
                }
                let change = Change {
                    event_type: "token.revoked",
                    action: "token.revoke",
                    entity_type: "token",
                    entity_id: token_id.to_string(),
                    merchant_id: None,
                    channel: None,
                    payload: serde_json::json!({"token_id": token_id.to_string()}),
                };
                journal::record(conn, &ctx, change).await
            })
        })
        .await
    }
}
