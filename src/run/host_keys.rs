//! The warning a run prints when it does not verify some hosts' identity.

use capo_inventory::{Host, HostKeyCheck};

/// `host_key_check = "off"` is a choice to trust the network; say so once per run, naming a
/// few of the hosts.
pub fn warn_unchecked(hosts: &[Host]) {
    let off: Vec<&str> = hosts
        .iter()
        .filter(|h| h.settings.host_key_check == HostKeyCheck::Off)
        .map(|h| h.name.as_str())
        .collect();
    if let Some(warning) = warning(&off) {
        eprintln!("{warning}");
    }
}

/// The warning for hosts `off`, none if there are none.
fn warning(off: &[&str]) -> Option<String> {
    if off.is_empty() {
        return None;
    }
    let shown: Vec<&str> = off.iter().take(5).copied().collect();
    let more = if off.len() > shown.len() {
        format!(" and {} more", off.len() - shown.len())
    } else {
        String::new()
    };
    Some(format!(
        "capo: warning: host key checking is off for {} host{} ({}{more}); their identity is not verified",
        off.len(),
        if off.len() == 1 { "" } else { "s" },
        capo_report::sanitize::line(&shown.join(", ")),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_at_most_five_hosts() {
        assert_eq!(warning(&[]), None);
        assert_eq!(
            warning(&["web01"]).as_deref(),
            Some("capo: warning: host key checking is off for 1 host (web01); their identity is not verified")
        );
        let seven = ["a", "b", "c", "d", "e", "f", "g"];
        assert_eq!(
            warning(&seven).as_deref(),
            Some("capo: warning: host key checking is off for 7 hosts (a, b, c, d, e and 2 more); their identity is not verified")
        );
    }
}
