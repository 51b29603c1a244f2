//! Bearer tokens: `jbt_` and 64 hex digits of OS randomness. Only the SHA-256 is stored; a
//! short-lived cache of hashes saves a read per request (a revoked token stops working within
//! `CACHE_TTL`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jembatan_domain::{Principal, TokenId};
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::error::CoreError;
use crate::{Access, Core, authz};

const CACHE_TTL: Duration = Duration::from_secs(30);
const CACHE_ENTRIES_MAX: usize = 10_000;
const PREFIX: &str = "jbt_";

#[derive(Clone, Default)]
pub struct TokenCache(Arc<Mutex<HashMap<String, (Principal, Instant)>>>);

pub fn secret_sha256(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

impl Core {
    /// Issues a token for `subject`; returns the secret (shown once) and the token's id.
    pub async fn issue_token(
        &self,
        who: &Principal,
        subject: Principal,
        label: &str,
    ) -> Result<(String, TokenId), CoreError> {
        authz::check(who, Access::IssueToken)?;
        if let Principal::Merchant(id) = &subject {
            self.merchant(who, *id).await?;
        }
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        let secret = format!("{PREFIX}{}", hex::encode(bytes));
        let id = self
            .store()
            .insert_token(self.ctx(who), subject, secret_sha256(&secret), label.to_owned())
            .await?;
        Ok((secret, id))
    }

    /// The principal of a bearer secret, or `None` for an unknown or revoked one.
    pub async fn authenticate(&self, secret: &str) -> Result<Option<Principal>, CoreError> {
        if !secret.starts_with(PREFIX) || secret.len() != PREFIX.len() + 64 {
            return Ok(None);
        }
        let hash = secret_sha256(secret);
        if let Some((principal, at)) = self.tokens.0.lock().expect("token cache").get(&hash)
            && at.elapsed() < CACHE_TTL
        {
            return Ok(Some(principal.clone()));
        }
        let found = self.store().find_token(&hash).await?.map(|(_, p)| p);
        if let Some(principal) = &found {
            let mut cache = self.tokens.0.lock().expect("token cache");
            if cache.len() >= CACHE_ENTRIES_MAX {
                cache.clear();
            }
            cache.insert(hash, (principal.clone(), Instant::now()));
        }
        Ok(found)
    }
}
