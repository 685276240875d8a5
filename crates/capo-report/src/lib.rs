//! capo's reporters. They only consume the engine's events (through [`Collector`], which
//! builds the [`Report`], or [`EventLog`], which records them as they happen) or the finished
//! [`Report`], and never reach into the engine. The report's types and words are
//! [`capo_schema`]'s; reporters match on its enums, never on their spellings.

mod atomic;
pub mod check;
pub mod collect;
pub mod events;
pub mod grouped;
pub mod html;
pub mod json;
pub mod junit;
pub mod markdown;
pub mod merge;
pub mod progress;
pub mod sanitize;
pub mod status;
pub mod table;

pub use capo_schema::{Report, SCHEMA};
pub use collect::Collector;
pub use events::EventLog;
pub use html::write_html;
pub use junit::{to_junit, write_junit, JunitError};
pub use markdown::{append_markdown, to_markdown, write_markdown};
