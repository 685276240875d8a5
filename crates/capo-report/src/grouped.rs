//! What changed (or would change) across the fleet, grouped by resource and change, with the
//! hosts folded into range notation: `File[/etc/motd] content changed on web[01-40],db1 (41
//! hosts)`. Failures are grouped by identical message the same way, and each distinct file diff
//! is shown once with its hosts.

use crate::sanitize;
use capo_inventory::fold::fold_to_string;
use capo_schema::{Mode, Report, StepName};

/// One line of the folded view: what happened, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// e.g. `File[/etc/motd] content changed`.
    pub what: String,
    /// Host names, in report order.
    pub hosts: Vec<String>,
}

impl Group {
    /// `WHAT on HOSTS (N hosts)`.
    pub fn line(&self) -> String {
        let n = self.hosts.len();
        format!(
            "{} on {} ({n} host{})",
            sanitize::line(&self.what),
            sanitize::line(&fold_to_string(&self.hosts)),
            if n == 1 { "" } else { "s" }
        )
    }
}

/// Adds `host` to the group for `what`, keeping groups in first-seen order. Hosts come one
/// after another, each with all its entries, so a host already in the group is its last:
/// looking only there keeps 10,000 hosts linear.
fn add(groups: &mut Vec<Group>, what: String, host: &str) {
    match groups.iter_mut().find(|g| g.what == what) {
        Some(g) => {
            if g.hosts.last().is_none_or(|h| h != host) {
                g.hosts.push(host.to_string());
            }
        }
        None => groups.push(Group {
            what,
            hosts: vec![host.to_string()],
        }),
    }
}

/// Puppet's event status (its vocabulary, not capo's) as a verb.
fn verb(status: &str) -> &'static str {
    match status {
        "success" => "changed",
        "noop" => "would change",
        "failure" => "failed to change",
        "audit" => "audited",
        _ => "had an event",
    }
}

/// Resource changes grouped by resource, property and outcome. Values are shown when they are
/// short and the same on every host of the group (e.g. `mode would change (0644 -> 0600)`).
pub fn changes(report: &Report) -> Vec<Group> {
    let mut groups: Vec<Group> = Vec::new();
    // First pass: group by resource/property/verb; second: keep values only where uniform.
    // (what, the previous/desired pair first seen, whether every host had that same pair)
    type Seen = (String, Option<(String, String)>, bool);
    let mut values: Vec<Seen> = Vec::new();
    for h in &report.hosts {
        let Some(puppet) = &h.puppet else { continue };
        for e in &puppet.events {
            let what = match &e.property {
                Some(p) => format!("{} {p} {}", e.resource, verb(&e.status)),
                None => format!("{} {}", e.resource, verb(&e.status)),
            };
            let pair = match (&e.previous, &e.desired) {
                (Some(p), Some(d))
                    if e.property.as_deref() != Some("content") && p.len() + d.len() <= 60 =>
                {
                    Some((p.clone(), d.clone()))
                }
                _ => None,
            };
            match values.iter_mut().find(|(w, _, _)| *w == what) {
                Some((_, seen, uniform)) => {
                    if *seen != pair {
                        *uniform = false;
                    }
                }
                None => values.push((what.clone(), pair, true)),
            }
            add(&mut groups, what, &h.name);
        }
    }
    for g in &mut groups {
        if let Some((_, Some((p, d)), true)) = values.iter().find(|(w, _, _)| *w == g.what) {
            g.what = format!("{} ({p} -> {d})", g.what);
        }
    }
    groups
}

/// Hosts that did not succeed, grouped by identical `kind: message` once each host's own name
/// in it is replaced by `<host>` (Puppet names the node in its errors). One host's group too:
/// the line names the host right after the message, so its name in the message only repeats
/// it ("on node host001 on host001").
pub fn failures(report: &Report) -> Vec<Group> {
    let mut groups = Vec::new();
    for h in &report.hosts {
        if let Some(e) = &h.error {
            let message = format!("{}: {}", e.kind, e.message);
            add(&mut groups, without_host(&message, &h.name), &h.name);
        }
    }
    groups
}

/// `text` with every whole-word `host` (not inside a longer name: `web01` in `web01.example`
/// but not in `web011`) replaced by `<host>`.
pub fn without_host(text: &str, host: &str) -> String {
    if host.is_empty() {
        return text.to_string();
    }
    let part_of_name = |c: char| c.is_alphanumeric() || c == '-' || c == '_';
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut before: Option<char> = None;
    while let Some(at) = rest.find(host) {
        let prev = rest[..at].chars().next_back().or(before);
        let next = rest[at + host.len()..].chars().next();
        let whole = !prev.is_some_and(part_of_name) && !next.is_some_and(part_of_name);
        out.push_str(&rest[..at]);
        out.push_str(if whole { "<host>" } else { host });
        before = host.chars().next_back();
        rest = &rest[at + host.len()..];
    }
    out.push_str(rest);
    out
}

/// Each distinct file diff once, with the hosts it applies to.
pub fn diffs(report: &Report) -> Vec<(String, String, Vec<String>)> {
    let mut out: Vec<(String, String, Vec<String>)> = Vec::new();
    for h in &report.hosts {
        let Some(puppet) = &h.puppet else { continue };
        for d in &puppet.diffs {
            match out
                .iter_mut()
                .find(|(r, diff, _)| *r == d.resource && *diff == d.diff)
            {
                Some((_, _, hosts)) => hosts.push(h.name.clone()),
                None => out.push((d.resource.clone(), d.diff.clone(), vec![h.name.clone()])),
            }
        }
    }
    out
}

/// Exec: hosts grouped by identical output (stdout, then stderr) and exit code, as
/// ClusterShell's `clush -b` gathers them, in first-seen order.
pub fn outputs(report: &Report) -> Vec<(String, Option<i32>, Vec<String>)> {
    let mut out: Vec<(String, Option<i32>, Vec<String>)> = Vec::new();
    for h in &report.hosts {
        let Some(step) = h.steps.iter().find(|s| s.name == StepName::Exec) else {
            continue;
        };
        let text = format!("{}{}", step.stdout_tail, step.stderr_tail);
        match out
            .iter_mut()
            .find(|(t, code, _)| *t == text && *code == step.exit_code)
        {
            Some((_, _, hosts)) => hosts.push(h.name.clone()),
            None => out.push((text, step.exit_code, vec![h.name.clone()])),
        }
    }
    out
}

/// Exec: the gathered outputs, each under a header naming its folded host set.
pub fn render_outputs(report: &Report) -> String {
    let mut out = String::new();
    for (text, code, hosts) in outputs(report) {
        let n = hosts.len();
        let mut header = format!(
            "{} ({n} host{})",
            sanitize::line(&fold_to_string(&hosts)),
            if n == 1 { "" } else { "s" }
        );
        match code {
            Some(0) => {}
            Some(c) => header.push_str(&format!(", exit {c}")),
            None => header.push_str(", did not finish"),
        }
        let rule = "-".repeat(header.chars().count().min(78));
        out.push_str(&format!("{rule}\n{header}\n{rule}\n"));
        out.push_str(&sanitize::block(&text));
        if !text.is_empty() && !text.ends_with('\n') {
            out.push('\n');
        }
        out.push('\n');
    }
    out
}

/// Plan: the incoming commits, grouped by identical list.
pub fn incoming(report: &Report) -> Vec<(Vec<String>, u64, Vec<String>)> {
    let mut out: Vec<(Vec<String>, u64, Vec<String>)> = Vec::new();
    for h in &report.hosts {
        let Some(inc) = h.incoming.as_ref().filter(|i| i.count > 0) else {
            continue;
        };
        match out
            .iter_mut()
            .find(|(commits, count, _)| *commits == inc.commits && *count == inc.count)
        {
            Some((_, _, hosts)) => hosts.push(h.name.clone()),
            None => out.push((inc.commits.clone(), inc.count, vec![h.name.clone()])),
        }
    }
    out
}

/// How much of the changes list the terminal shows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ChangesView {
    /// Every line up to [`SHORT_CHANGES`]; past that, counts by resource type and host set
    /// and the first lines.
    #[default]
    Short,
    /// Every line.
    All,
}

/// Past this many lines, a short changes list shows counts and the first lines instead.
pub const SHORT_CHANGES: usize = 20;

/// How many lines of counts and of changes a shortened list shows.
const SHORT_PART: usize = 8;

/// `60 File on web[01-03] (3 hosts)`: how many change lines each resource type has on each
/// host set, in first-seen order.
pub fn counts_by_type(changes: &[Group]) -> Vec<(usize, Group)> {
    let mut out: Vec<(usize, Group)> = Vec::new();
    for g in changes {
        let kind = g.what.split('[').next().unwrap_or_default().to_string();
        match out
            .iter_mut()
            .find(|(_, c)| c.what == kind && c.hosts == g.hosts)
        {
            Some((n, _)) => *n += 1,
            None => out.push((
                1,
                Group {
                    what: kind,
                    hosts: g.hosts.clone(),
                },
            )),
        }
    }
    out
}

/// The changes section: a title (`changes:`, `would change:`) and every line, or past
/// [`SHORT_CHANGES`] lines in the short view, counts by resource type and host set, the first
/// lines, and how to see them all.
fn render_changes(title: &str, changes: &[Group], view: ChangesView) -> String {
    let mut out = String::new();
    if changes.is_empty() {
        return out;
    }
    if view == ChangesView::All || changes.len() <= SHORT_CHANGES {
        out.push_str(&format!("\n{title}:\n"));
        for g in changes {
            out.push_str(&format!("  {}\n", g.line()));
        }
        return out;
    }
    out.push_str(&format!(
        "\n{title} ({} lines; `--changes all` lists every one, as the JSON report does):\n",
        changes.len()
    ));
    out.push_str("  by resource type:\n");
    let counts = counts_by_type(changes);
    for (n, g) in counts.iter().take(SHORT_PART) {
        out.push_str(&format!("    {n} {}\n", g.line()));
    }
    if counts.len() > SHORT_PART {
        out.push_str(&format!("    ... and {} more\n", counts.len() - SHORT_PART));
    }
    out.push_str(&format!("  the first {SHORT_PART}:\n"));
    for g in changes.iter().take(SHORT_PART) {
        out.push_str(&format!("    {}\n", g.line()));
    }
    out.push_str(&format!(
        "    ... and {} more\n",
        changes.len() - SHORT_PART
    ));
    out
}

/// The folded sections, ready to print after the table; empty when there is nothing to say.
pub fn render(report: &Report, view: ChangesView) -> String {
    let mut out = String::new();
    for (commits, count, hosts) in incoming(report) {
        let group = Group {
            what: format!(
                "{count} incoming commit{}",
                if count == 1 { "" } else { "s" }
            ),
            hosts,
        };
        out.push_str(&format!("\n{}:\n", group.line()));
        for c in &commits {
            out.push_str(&format!("  {}\n", sanitize::line(c)));
        }
        if count > commits.len() as u64 {
            out.push_str(&format!(
                "  ... and {} more\n",
                count - commits.len() as u64
            ));
        }
    }
    // A bootstrap's apply is a noop too: what the first rollout would change.
    let title = if matches!(report.mode, Mode::Plan | Mode::Bootstrap) {
        "would change"
    } else {
        "changes"
    };
    out.push_str(&render_changes(title, &changes(report), view));
    for (resource, diff, hosts) in diffs(report) {
        let group = Group {
            what: format!("diff of {resource}"),
            hosts,
        };
        out.push_str(&format!("\n{}:\n", group.line()));
        out.push_str(&sanitize::block(&diff));
        if !diff.ends_with('\n') {
            out.push('\n');
        }
    }
    let failures = failures(report);
    if !failures.is_empty() {
        out.push_str("\nproblems:\n");
        for g in &failures {
            out.push_str(&format!("  {}\n", g.line()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use capo_schema::{EventReport, HostReport, HostStatus, PuppetReport, Summary};

    fn host(name: &str, events: &[(&str, &str, &str, &str, &str)]) -> HostReport {
        HostReport {
            name: name.into(),
            address: "a".into(),
            port: 22,
            status: HostStatus::WouldChange,
            duration_ms: 0,
            log_dir: String::new(),
            connect_attempts: 1,
            puppet: Some(PuppetReport {
                exit_code: Some(0),
                resources: None,
                event_counts: None,
                events: events
                    .iter()
                    .map(|(r, p, prev, des, st)| EventReport {
                        resource: r.to_string(),
                        property: Some(p.to_string()),
                        previous: Some(prev.to_string()),
                        desired: Some(des.to_string()),
                        status: st.to_string(),
                        message: String::new(),
                    })
                    .collect(),
                diffs: vec![],
                unreadable: None,
                config_version: None,
            }),
            ..HostReport::new(name, HostStatus::WouldChange)
        }
    }

    fn report(hosts: Vec<HostReport>) -> Report {
        Report {
            schema: String::new(),
            run_id: String::new(),
            mode: Mode::Plan,
            target_rev: None,
            started_at: String::new(),
            finished_at: String::new(),
            duration_ms: 0,
            inventory: String::new(),
            limit: None,
            interrupted: None,
            halted: None,
            run_dir: String::new(),
            summary: Summary::default(),
            hosts,
            shard: None,
            seed: None,
            parts: vec![],
        }
    }

    #[test]
    fn twenty_hosts_with_two_distinct_changes_make_two_groups() {
        let mut hosts = Vec::new();
        for i in 1..=20 {
            let name = format!("web{i:02}");
            let motd = (
                "File[/etc/motd]",
                "content",
                "{sha256}a",
                "{sha256}b",
                "noop",
            );
            let mode = ("File[/etc/app.conf]", "mode", "0644", "0600", "noop");
            let events: Vec<_> = if i <= 12 {
                vec![motd, mode]
            } else {
                vec![motd]
            };
            hosts.push(host(&name, &events));
        }
        let groups = changes(&report(hosts));
        let lines: Vec<String> = groups.iter().map(Group::line).collect();
        assert_eq!(
            lines,
            [
                "File[/etc/motd] content would change on web[01-20] (20 hosts)",
                "File[/etc/app.conf] mode would change (0644 -> 0600) on web[01-12] (12 hosts)",
            ]
        );
    }

    fn failed(name: &str, message: &str) -> HostReport {
        HostReport {
            status: HostStatus::Failed,
            error: Some(capo_schema::ErrorReport {
                kind: capo_schema::ErrorKind::Puppet,
                message: message.into(),
            }),
            puppet: None,
            ..host(name, &[])
        }
    }

    #[test]
    fn the_host_name_is_a_whole_word() {
        assert_eq!(
            without_host(
                "on node web01 (web01.example.com) not web011 or xweb01",
                "web01"
            ),
            "on node <host> (<host>.example.com) not web011 or xweb01"
        );
        assert_eq!(
            without_host("web01web01 web01", "web01"),
            "web01web01 <host>"
        );
        assert_eq!(without_host("anything", ""), "anything");
    }

    #[test]
    fn problems_fold_with_each_host_name_replaced() {
        let error = |h: &str| format!("Evaluation Error: bad type on node {h}");
        let hosts = vec![
            failed("host001", &error("host001")),
            failed("host002", &error("host002")),
            failed("host003", &error("host003")),
            failed("db1", "Could not find class foo for db1.example.com"),
            failed("db2", "exit 1"),
        ];
        let lines: Vec<String> = failures(&report(hosts)).iter().map(Group::line).collect();
        assert_eq!(
            lines,
            [
                "puppet: Evaluation Error: bad type on node <host> on host[001-003] (3 hosts)",
                "puppet: Could not find class foo for <host>.example.com on db1 (1 host)",
                "puppet: exit 1 on db2 (1 host)",
            ]
        );
    }

    /// Three hosts, each changing `files` files and web01 also a service.
    fn many_changes(files: usize) -> Report {
        let names: Vec<String> = (1..=files).map(|i| format!("File[/srv/f{i:02}]")).collect();
        let mut events: Vec<(&str, &str, &str, &str, &str)> = names
            .iter()
            .map(|n| (n.as_str(), "ensure", "absent", "file", "success"))
            .collect();
        let mut hosts = vec![host("web02", &events), host("web03", &events)];
        events.push(("Service[app]", "ensure", "stopped", "running", "success"));
        hosts.insert(0, host("web01", &events));
        let mut r = report(hosts);
        r.mode = Mode::Rollout;
        r
    }

    #[test]
    fn a_short_changes_list_is_shown_whole() {
        let out = render(&many_changes(2), ChangesView::Short);
        assert_eq!(
            out,
            "\nchanges:\n  \
             File[/srv/f01] ensure changed (absent -> file) on web[01-03] (3 hosts)\n  \
             File[/srv/f02] ensure changed (absent -> file) on web[01-03] (3 hosts)\n  \
             Service[app] ensure changed (stopped -> running) on web01 (1 host)\n"
        );
    }

    #[test]
    fn a_long_changes_list_shows_counts_and_the_first_lines() {
        let report = many_changes(60);
        let out = render(&report, ChangesView::Short);
        assert_eq!(
            out,
            "\nchanges (61 lines; `--changes all` lists every one, as the JSON report does):\n\
             \x20 by resource type:\n\
             \x20   60 File on web[01-03] (3 hosts)\n\
             \x20   1 Service on web01 (1 host)\n\
             \x20 the first 8:\n\
             \x20   File[/srv/f01] ensure changed (absent -> file) on web[01-03] (3 hosts)\n\
             \x20   File[/srv/f02] ensure changed (absent -> file) on web[01-03] (3 hosts)\n\
             \x20   File[/srv/f03] ensure changed (absent -> file) on web[01-03] (3 hosts)\n\
             \x20   File[/srv/f04] ensure changed (absent -> file) on web[01-03] (3 hosts)\n\
             \x20   File[/srv/f05] ensure changed (absent -> file) on web[01-03] (3 hosts)\n\
             \x20   File[/srv/f06] ensure changed (absent -> file) on web[01-03] (3 hosts)\n\
             \x20   File[/srv/f07] ensure changed (absent -> file) on web[01-03] (3 hosts)\n\
             \x20   File[/srv/f08] ensure changed (absent -> file) on web[01-03] (3 hosts)\n\
             \x20   ... and 53 more\n"
        );
        assert!(out.lines().count() <= 25);
        let all = render(&report, ChangesView::All);
        assert_eq!(all.lines().count(), 2 + 61, "{all}");
        assert!(all.contains("File[/srv/f60] ensure changed"), "{all}");
    }

    #[test]
    fn differing_values_are_not_shown() {
        let hosts = vec![
            host(
                "a1",
                &[("Service[x]", "ensure", "stopped", "running", "success")],
            ),
            host(
                "a2",
                &[("Service[x]", "ensure", "absent", "running", "success")],
            ),
        ];
        let lines: Vec<String> = changes(&report(hosts)).iter().map(Group::line).collect();
        assert_eq!(lines, ["Service[x] ensure changed on a[1-2] (2 hosts)"]);
    }
}
