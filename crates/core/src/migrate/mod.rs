//! The live migration engine of social shops from the legacy store to the core (DESIGN.md §6,
//! issue 5). So far: the one transform of legacy rows into the core's model, with every defect
//! of a row (`transform`), the plan of a wave (`plan`) and the reads of the waves planned
//! (`waves`). Copy, catch-up, verification, fence and cutover come next, on the states of
//! `jembatan_domain::migration`.

pub mod plan;
pub mod transform;
pub mod waves;

pub use plan::{PlanReport, PlanRequest, plan};
pub use transform::{Defect, DefectKind, Entity, ShopTransform};
