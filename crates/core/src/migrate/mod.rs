//! The live migration engine of social shops from the legacy store to the core (DESIGN.md §6,
//! issue 5): the one transform of legacy rows into the core's model, with every defect of a
//! row (`transform`); the plan of a wave (`plan`); the engine that copies, catches up,
//! verifies, fences and cuts over one merchant at a time (`engine`), and its verifier
//! (`verify`), on the states of `jembatan_domain::migration`.

pub mod engine;
pub mod plan;
pub mod transform;
pub mod verify;

pub use engine::{Engine, EngineOptions, MerchantRun, RunReport};
pub use plan::{PlanReport, PlanRequest, plan};
pub use transform::{Defect, DefectKind, Entity, ShopTransform};
