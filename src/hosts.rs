//! `capo hosts`: the resolved selection, without connecting.

use std::process::ExitCode;

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::Table;

use crate::cli::{Format, HostsArgs};

pub fn run(args: &HostsArgs) -> ExitCode {
    let hosts = match crate::select::limited(&args.selection) {
        Ok(v) => v,
        Err(code) => return code,
    };
    match args.format {
        Format::Json => {
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
            match serde_json::to_string_pretty(&list) {
                Ok(text) => println!("{text}"),
                Err(e) => {
                    eprintln!("capo: cannot encode host list: {e}");
                    return ExitCode::FAILURE;
                }
            }
        }
        Format::Table => {
            let mut table = Table::new();
            table
                .load_style(UTF8_FULL_CONDENSED)
                .set_header(["HOST", "ADDRESS", "USER", "GROUPS"]);
            for h in &hosts {
                table.add_row(vec![
                    capo_report::sanitize::line(&h.name),
                    format!("{}:{}", h.address, h.settings.port),
                    h.settings.user.clone(),
                    h.groups.join(","),
                ]);
            }
            println!("{table}");
            println!(
                "{} host{}",
                hosts.len(),
                if hosts.len() == 1 { "" } else { "s" }
            );
        }
    }
    ExitCode::SUCCESS
}
