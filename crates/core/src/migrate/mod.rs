//! The live migration engine of social shops from the legacy store to the core (DESIGN.md §6,
//! issue 5): the one transform of legacy rows into the core's model, with every defect of a
//! row (`transform`); the plan of a wave (`plan`) and the reads of the waves planned
//! (`waves`); the engine that copies, catches up, verifies, fences and cuts over one merchant
//! at a time (`engine`), its verifier (`verify`), the reverse sync, rollback and finalize
//! (`reverse`) and the progress report (`progress`), on the states of
//! `jembatan_domain::migration`.

pub mod engine;
pub mod plan;
pub mod progress;
pub mod reverse;
pub mod throttle;
pub mod transform;
pub mod verify;
pub mod waves;

pub use engine::{Engine, EngineOptions, MerchantRun, RunReport};
pub use plan::{PlanReport, PlanRequest, plan};
pub use transform::{Defect, DefectKind, Entity, ShopTransform};

use jembatan_domain::{MerchantId, Principal};

use crate::{Core, CoreError};

impl Core {
    /// The operator accepts moving a merchant without its open quarantined rows; the reason is
    /// audited. Returns how many rows were accepted.
    pub async fn accept_quarantine(
        &self,
        who: &Principal,
        merchant_id: MerchantId,
        reason: String,
    ) -> Result<u64, CoreError> {
        if *who != Principal::Operator {
            return Err(CoreError::Forbidden("only the operator accepts quarantined rows".to_owned()));
        }
        if reason.trim().is_empty() {
            return Err(
                jembatan_domain::DomainError::invalid("reason", "say why the rows may stay behind").into()
            );
        }
        Ok(self.store().accept_quarantine(self.ctx(who), merchant_id, None, reason).await?)
    }

    /// Pauses (or resumes) a wave. Operator only.
    pub async fn pause_wave(&self, who: &Principal, wave: String, paused: bool) -> Result<(), CoreError> {
        if *who != Principal::Operator {
            return Err(CoreError::Forbidden("only the operator pauses a migration".to_owned()));
        }
        Ok(self.store().set_wave_paused(self.ctx(who), wave, paused).await?)
    }
}
