//! The table of `capo check`: per host how capo got in (login user and identity, jump
//! hosts), whom its steps run as, git's and Puppet's versions, the checkout and the lock,
//! and why a rollout could not run there now; then the fleet's versions in one line each.

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{Cell, ContentArrangement, Table};
use unicode_width::UnicodeWidthStr;

use capo_schema::{CheckReport, HostReport, IdentitySource, LockState, RepoState, Report};

use crate::sanitize;
use crate::table::{cut, Rows, View, FOLD_HOSTS};

/// The table's columns. VIA is left out when every host is reached directly, and RUNS AS
/// when no host uses `become` (the steps then run as the LOGIN user): columns that say
/// nothing take room from those that do.
const HEADER: [&str; 8] = [
    "HOST",
    "STATUS",
    "LOGIN",
    "VIA",
    "RUNS AS",
    "GIT/PUPPET",
    "CHECKOUT",
    "LOCK",
];

/// What gives way, in this order, when the table is wider than the view: LOGIN, then VIA,
/// each cut down to [`MIN_CUT`] columns (the report has them in full). A folded host set is
/// cut to a quarter of the width beforehand, keeping its count.
const SHRINK: [&str; 2] = ["LOGIN", "VIA"];

/// A cell cut to fit is never narrower than this.
const MIN_CUT: usize = 12;

/// Cuts the cells of the columns in [`SHRINK`] until the table fits in `width` columns (or
/// they cannot be cut further).
fn fit(header: &[&str], lines: &mut [Vec<String>], width: usize) {
    let column = |lines: &[Vec<String>], i: usize| {
        lines
            .iter()
            .map(|l| l[i].width())
            .chain([header[i].width()])
            .max()
            .unwrap_or(0)
    };
    let frame = 1 + 3 * header.len();
    for name in SHRINK {
        let Some(i) = header.iter().position(|h| *h == name) else {
            continue;
        };
        let total: usize = frame + (0..header.len()).map(|c| column(lines, c)).sum::<usize>();
        if total <= width {
            return;
        }
        let room = column(lines, i).saturating_sub(total - width).max(MIN_CUT);
        for line in lines.iter_mut() {
            if line[i].width() > room {
                line[i] = cut(&line[i], room);
            }
        }
    }
}

/// Renders the table, then the problems (each distinct reason once, with its hosts: at the
/// end of a row of up to eight cells there is seldom room for it), the fleet's git and Puppet
/// versions, the summary line and where the logs are.
pub fn render(report: &Report, view: &View) -> String {
    let fold = view.rows == Rows::Auto && report.hosts.len() > FOLD_HOSTS;
    let mut rows: Vec<(Vec<String>, [String; 7])> = Vec::new();
    for h in &report.hosts {
        let cells = cells(h);
        match rows.iter_mut().find(|(_, c)| fold && *c == cells) {
            Some((hosts, _)) => hosts.push(h.name.clone()),
            None => rows.push((vec![h.name.clone()], cells)),
        }
    }
    let mut lines: Vec<Vec<String>> = rows
        .into_iter()
        .map(|(hosts, cells)| {
            let name = if hosts.len() == 1 {
                sanitize::line(&hosts[0])
            } else {
                // Cut here, before the other columns, so that the count stays.
                let folded = sanitize::line(&capo_inventory::fold::fold_to_string(&hosts));
                let count = format!(" ({})", hosts.len());
                let room = (view.width / 4).max(MIN_CUT).saturating_sub(count.len());
                format!("{}{count}", cut(&folded, room))
            };
            std::iter::once(name)
                .chain(cells.into_iter().map(|c| sanitize::line(&c)))
                .collect()
        })
        .collect();
    let checks = || report.hosts.iter().filter_map(|h| h.check.as_ref());
    let shown = |name: &str| match name {
        "VIA" => checks().any(|c| !c.jump.is_empty()),
        "RUNS AS" => checks().any(|c| c.become_.is_some()),
        _ => true,
    };
    let keep: Vec<bool> = HEADER.iter().map(|h| shown(h)).collect();
    let header: Vec<&str> = HEADER.iter().copied().filter(|h| shown(h)).collect();
    for line in &mut lines {
        let mut i = 0;
        line.retain(|_| {
            i += 1;
            keep[i - 1]
        });
    }
    fit(&header, &mut lines, view.width);
    let mut table = Table::new();
    table
        .load_style(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(header);
    for line in lines {
        table.add_row(line.into_iter().map(Cell::new));
    }
    let mut out = table.to_string();
    out.push('\n');
    out.push_str(&crate::grouped::render(report, view.changes));
    let mut disabled: Vec<crate::grouped::Group> = Vec::new();
    for h in &report.hosts {
        if let Some(d) = &h.disabled {
            let what = crate::table::disabled_reason(d);
            match disabled.iter_mut().find(|g| g.what == what) {
                Some(g) => g.hosts.push(h.name.clone()),
                None => disabled.push(crate::grouped::Group {
                    what,
                    hosts: vec![h.name.clone()],
                }),
            }
        }
    }
    if !disabled.is_empty() {
        out.push_str("disabled:\n");
        for g in &disabled {
            out.push_str(&format!("  {}\n", g.line()));
        }
    }
    for line in versions(report) {
        out.push_str(&line);
        out.push('\n');
    }
    out.push_str(&crate::table::summary_line(report));
    out.push('\n');
    out.push_str(&format!(
        "full output of every host: {}/<host>/\n",
        sanitize::line(&report.run_dir)
    ));
    out
}

/// A host's cells after HOST: STATUS, LOGIN, VIA, RUNS AS, GIT/PUPPET, CHECKOUT, LOCK.
fn cells(h: &HostReport) -> [String; 7] {
    let status = h.status.as_str().to_string();
    let Some(c) = &h.check else {
        let none = || "-".to_string();
        return [status, none(), none(), none(), none(), none(), none()];
    };
    // `missing` only for a host that was looked at.
    let versions = if c.repo.is_some() {
        format!(
            "{}/{}",
            c.git.as_deref().unwrap_or("missing"),
            c.puppet.as_deref().unwrap_or("missing")
        )
    } else {
        "-".into()
    };
    [
        status,
        login(c),
        via(c),
        runs_as(c),
        versions,
        checkout(c),
        lock(c),
    ]
}

/// `deploy (agent: fleet@capo)`, `root (key id_ed25519)` (the file's name: the report has
/// its path), or the user alone when the host could not be logged in to.
fn login(c: &CheckReport) -> String {
    match &c.identity {
        Some(id) => match id.source {
            IdentitySource::Agent => format!(
                "{} (agent: {})",
                c.user,
                id.comment
                    .as_deref()
                    .filter(|s| !s.is_empty())
                    .unwrap_or(&id.fingerprint)
            ),
            IdentitySource::File => {
                let name = id.path.rsplit('/').next().unwrap_or(&id.path);
                format!("{} (key {name})", c.user)
            }
        },
        None => c.user.clone(),
    }
}

/// `direct`, or the jump hosts in order: `root@10.0.0.1:22 > ops@10.1.0.1:22`.
fn via(c: &CheckReport) -> String {
    if c.jump.is_empty() {
        "direct".into()
    } else {
        c.jump.join(" > ")
    }
}

/// `root (sudo)`, `sudo refused`, `deploy`, or `-` when not learnt.
fn runs_as(c: &CheckReport) -> String {
    match (&c.become_, &c.runs_as) {
        (Some(b), Some(user)) if b.works => format!("{user} (sudo)"),
        (Some(_), _) if c.identity.is_some() => "sudo refused".into(),
        (_, Some(user)) => user.clone(),
        _ => "-".into(),
    }
}

/// `3f2a1c9 main`, `3f2a1c9 (detached)`, `missing`, `not a checkout`, `-`.
fn checkout(c: &CheckReport) -> String {
    let Some(repo) = &c.repo else {
        return "-".into();
    };
    match repo.state {
        RepoState::Checkout => {
            let head: String = repo
                .head
                .as_deref()
                .unwrap_or("(no commit)")
                .chars()
                .take(7)
                .collect();
            match &repo.branch {
                Some(b) => format!("{head} {b}"),
                None => format!("{head} (detached)"),
            }
        }
        RepoState::Missing => "missing".into(),
        RepoState::NotACheckout => "not a checkout".into(),
        RepoState::Unknown => "unknown".into(),
    }
}

fn lock(c: &CheckReport) -> String {
    match &c.lock {
        Some(l) => match l.state {
            LockState::Free => "free".into(),
            LockState::Held => "held".into(),
            LockState::Busy => "busy".into(),
            LockState::Off => "off (lock = false)".into(),
            LockState::Unavailable => "unavailable".into(),
        },
        None => "-".into(),
    }
}

/// `git: 2.39.5 on 40 hosts, 2.30.2 on 2, missing on 1`, and the same for Puppet, over the
/// hosts that were looked at; nothing when none was.
fn versions(report: &Report) -> Vec<String> {
    let looked: Vec<&CheckReport> = report
        .hosts
        .iter()
        .filter_map(|h| h.check.as_ref())
        .filter(|c| c.repo.is_some())
        .collect();
    if looked.is_empty() {
        return Vec::new();
    }
    let line = |name: &str, of: &dyn Fn(&CheckReport) -> Option<&str>| {
        let mut counts: Vec<(String, usize)> = Vec::new();
        for c in &looked {
            let v = of(c).unwrap_or("missing").to_string();
            match counts.iter_mut().find(|(seen, _)| *seen == v) {
                Some((_, n)) => *n += 1,
                None => counts.push((v, 1)),
            }
        }
        counts.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        let parts: Vec<String> = counts
            .iter()
            .enumerate()
            .map(|(i, (v, n))| {
                let v = sanitize::line(v);
                match (i, *n) {
                    (0, 1) => format!("{v} on 1 host"),
                    (0, n) => format!("{v} on {n} hosts"),
                    (_, n) => format!("{v} on {n}"),
                }
            })
            .collect();
        format!("{name}: {}", parts.join(", "))
    };
    let git = line("git", &|c| c.git.as_deref());
    let puppet = line("puppet", &|c| c.puppet.as_deref());
    // One line when both fit in a screen's width.
    if git.width() + puppet.width() + 2 <= 100 {
        vec![format!("{git}; {puppet}")]
    } else {
        vec![git, puppet]
    }
}
