//! Reading the waves `migrate plan` wrote: the list, and one wave with its merchants counted by
//! state. Operator only for now (`authz` rule 8): the regulator's progress report comes later.

use jembatan_domain::Principal;
use jembatan_store::StoreError;
use jembatan_store::migration::WaveRecord;

use crate::authz::{self, Access};
use crate::{Core, CoreError};

/// Waves in name order after `after` ("" from the start), at most `limit`.
pub async fn waves(
    core: &Core,
    who: &Principal,
    after: &str,
    limit: u32,
) -> Result<Vec<WaveRecord>, CoreError> {
    authz::check(who, Access::ReadMigration)?;
    Ok(core.store().waves(after, limit).await?)
}

/// One wave by name; not found if there is none.
pub async fn wave(core: &Core, who: &Principal, name: &str) -> Result<WaveRecord, CoreError> {
    authz::check(who, Access::ReadMigration)?;
    core.store().wave(name).await?.ok_or_else(|| CoreError::Store(StoreError::not_found("wave", name)))
}
