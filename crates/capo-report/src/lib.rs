//! capo's reporters. They only consume the engine's events (through [`Collector`]) and never
//! reach into the engine.

pub mod collect;
pub mod fold;
pub mod json;
pub mod model;
pub mod sanitize;
pub mod table;

pub use collect::Collector;
pub use model::{Report, SCHEMA};
