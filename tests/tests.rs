//! The integration tests: one binary (as ripgrep's `tests/tests.rs`) that runs the real `capo`
//! binary against real local fleets (`tests/fleet/fleet.sh`: OpenSSH sshd, git, Puppet). Needs root.
//! Each module is one area; `common` holds the fleet harness wrapper and shared helpers.
//! `sim_table` alone needs no root: it runs `capo` against a simulated fleet it serves itself.

mod common;

mod r#become;
mod bootstrap;
mod check;
mod checkouts;
mod ci_outputs;
mod cli_inventory;
mod deadlines;
mod disable;
mod environments;
mod fleet_smoke;
mod host_keys;
mod html;
mod interrupt;
mod jump;
mod locking;
mod login_shells;
mod operator;
mod output;
mod plan;
mod pull_job;
mod pull_mode;
mod puppetfile;
mod revisions;
mod rollout;
mod run_record;
mod runs;
mod security;
mod shards;
mod sim_table;
mod ssh_auth;
mod ssh_config;
mod status;
