//! One module per subcommand: each turns its arguments into work and returns how it ended;
//! `main` maps that to the exit status.

pub mod bootstrap;
pub mod check;
pub mod disable;
pub mod enable;
pub mod exec;
pub mod hosts;
pub mod plan;
pub mod pull;
pub mod report;
pub mod report_html;
pub mod rollout;
pub mod runs;
pub mod status;
