//! `capo hosts`: the hosts a `--limit` selects, without connecting to any.

use capo_inventory::Host;
use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::Table;

use crate::cli::{Format, HostsArgs};
use crate::error::Error;
use crate::exit::Outcome;

/// Prints the selection as a table or JSON.
pub fn run(args: &HostsArgs) -> Result<Outcome, Error> {
    let hosts = crate::select::limited(&args.selection)?;
    let text = match args.format {
        Format::Json => format!("{}\n", json(&hosts)?),
        Format::Table => format!(
            "{}\n{} host{}\n",
            table(&hosts),
            hosts.len(),
            if hosts.len() == 1 { "" } else { "s" }
        ),
    };
    crate::stdout::write(&text).map_err(Error::Stdout)?;
    Ok(Outcome::Done)
}

/// One object per host: what capo connects to, as whom, and its groups.
fn json(hosts: &[Host]) -> Result<String, Error> {
    let list: Vec<serde_json::Value> = hosts
        .iter()
        .map(|h| {
            serde_json::json!({
                "name": h.name,
                "address": h.address,
                "port": h.settings.port,
                "user": h.settings.user,
                "groups": h.groups,
            })
        })
        .collect();
    serde_json::to_string_pretty(&list).map_err(Error::EncodeHosts)
}

/// A table for people; host names are sanitised, as they may come from anywhere.
fn table(hosts: &[Host]) -> Table {
    let mut table = Table::new();
    table
        .load_style(UTF8_FULL_CONDENSED)
        .set_header(["HOST", "ADDRESS", "USER", "GROUPS"]);
    for h in hosts {
        table.add_row(vec![
            capo_report::sanitize::line(&h.name),
            format!("{}:{}", h.address, h.settings.port),
            h.settings.user.clone(),
            h.groups.join(","),
        ]);
    }
    table
}
