//! Pull mode's schedule files on a host: a systemd service and timer, or a cron file, that
//! run the installed pull job on their own, so that a push to the repo reaches every host
//! within a known time even when nobody runs capo.
//!
//! Only text here: what `capo pull install` writes (and `remove` deletes) is built by these
//! functions from the command line of the pull job and a [`Schedule`]. Every word of that
//! command line is quoted for the file's own reader: systemd's `ExecStart=` rules for the
//! service, `sh` (with cron's `%` escaped) for the cron file.

use std::fmt::Write as _;
use std::time::Duration;

use crate::quote::quote;

/// Where pull mode's files go on a host.
pub mod paths {
    /// The directory the host-side scripts are installed in.
    pub const LIB_DIR: &str = "/usr/local/lib/capo";
    /// The systemd service.
    pub const SERVICE: &str = "/etc/systemd/system/capo-pull.service";
    /// The systemd timer.
    pub const TIMER: &str = "/etc/systemd/system/capo-pull.timer";
    /// The cron file, for hosts without systemd.
    pub const CRON: &str = "/etc/cron.d/capo-pull";
}

/// The files pull mode installs in [`paths::LIB_DIR`]: its job and the scripts the job runs,
/// as they are in the repository (header comments and all, so that a person on the host can
/// read how to run each by hand).
pub const INSTALLED: [(&str, &str); 8] = [
    ("pull.sh", include_str!("../sh/pull.sh")),
    ("lock.sh", include_str!("../sh/lock.sh")),
    ("sync.sh", include_str!("../sh/sync.sh")),
    ("sync-rev.sh", include_str!("../sh/sync-rev.sh")),
    ("modules.sh", include_str!("../sh/modules.sh")),
    ("apply.sh", include_str!("../sh/apply.sh")),
    ("lib-step.sh", include_str!("../sh/lib-step.sh")),
    ("lib-record.sh", include_str!("../sh/lib-record.sh")),
];

/// When the pull job runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    /// How long after one run ends the next starts (systemd), or the period (cron).
    pub interval: Duration,
    /// Each host starts up to this much later than the schedule says, by an amount that is
    /// fixed per host, so that a fleet does not pull all at once.
    pub splay: Duration,
    /// A run that takes longer than this is stopped.
    pub deadline: Duration,
}

/// A schedule that cannot be written for a scheduler.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// cron only has minutes, hours and days.
    #[error(
        "interval {minutes} min cannot be written as a cron schedule: use a whole number of minutes that divides 60, or of hours that divides 24"
    )]
    NotForCron {
        /// The interval, in minutes.
        minutes: u64,
    },
    /// Shorter than a minute, or zero.
    #[error("interval must be at least one minute")]
    TooShort,
}

/// The service: one run of `command` (the pull job and its arguments), at low priority,
/// stopped at the deadline.
pub fn service(command: &[String], schedule: &Schedule) -> String {
    let exec = command
        .iter()
        .map(|w| systemd_quote(w))
        .collect::<Vec<_>>()
        .join(" ");
    let mut out = String::new();
    let _ = write!(
        out,
        "# Written by capo pull install; capo pull remove deletes it.\n\
         [Unit]\n\
         Description=capo pull: bring the Puppet checkout up to date and apply it\n\
         Wants=network-online.target\n\
         After=network-online.target\n\
         \n\
         [Service]\n\
         Type=oneshot\n\
         ExecStart={exec}\n\
         TimeoutStartSec={}\n\
         Nice=10\n",
        seconds(schedule.deadline)
    );
    out
}

/// The timer: a first run a minute after it starts, then `interval` after each run ends
/// (`OnUnitActiveSec`), each host delayed by its own fixed share of `splay`; missed runs
/// are made up after downtime.
pub fn timer(schedule: &Schedule) -> String {
    format!(
        "# Written by capo pull install; capo pull remove deletes it.\n\
         [Unit]\n\
         Description=capo pull every {interval}\n\
         \n\
         [Timer]\n\
         OnActiveSec=1min\n\
         OnUnitActiveSec={interval}\n\
         RandomizedDelaySec={splay}\n\
         FixedRandomDelay=true\n\
         Persistent=true\n\
         Unit=capo-pull.service\n\
         \n\
         [Install]\n\
         WantedBy=timers.target\n",
        interval = seconds(schedule.interval),
        splay = seconds(schedule.splay),
    )
}

/// The cron file for `host`: the job every `interval`, each host at its own fixed minute
/// within the splay (cron has no random delay of its own), stopped at the deadline by
/// `timeout`.
pub fn cron(command: &[String], schedule: &Schedule, host: &str) -> Result<String, ScheduleError> {
    let minutes = schedule.interval.as_secs() / 60;
    if minutes == 0 {
        return Err(ScheduleError::TooShort);
    }
    let window = (schedule.splay.as_secs() / 60).min(minutes.saturating_sub(1));
    let offset = if window == 0 {
        0
    } else {
        stable_hash(host) % (window + 1)
    };
    let whole = schedule.interval.as_secs().is_multiple_of(60);
    let when = if whole && minutes < 60 && 60u64.is_multiple_of(minutes) {
        format!("{offset}-59/{minutes} * * * *")
    } else if whole && minutes.is_multiple_of(60) && 24u64.is_multiple_of(minutes / 60) {
        let hours = minutes / 60;
        let (hour, minute) = (offset / 60, offset % 60);
        if hours == 24 {
            format!("{minute} {hour} * * *")
        } else {
            format!("{minute} {hour}-23/{hours} * * *")
        }
    } else {
        return Err(ScheduleError::NotForCron { minutes });
    };
    let mut line = vec![
        "timeout".to_string(),
        "--kill-after=30s".to_string(),
        seconds(schedule.deadline),
    ];
    line.extend(command.iter().cloned());
    // cron turns `%` into a newline unless escaped.
    let line = crate::quote::join(&line).replace('%', "\\%");
    Ok(format!(
        "# Written by capo pull install; capo pull remove deletes it.\n\
         # interval: {}s\n\
         SHELL=/bin/sh\n\
         PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n\
         {when} root {line}\n",
        schedule.interval.as_secs()
    ))
}

/// A word as systemd's `ExecStart=` reads it back unchanged: double-quoted with C escapes
/// when it needs quoting, and `%` (specifiers) and `$` (variables) doubled.
fn systemd_quote(word: &str) -> String {
    let escaped = word.replace('%', "%%").replace('$', "$$");
    let plain = !escaped.is_empty()
        && escaped
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-./:=@,+%$".contains(&b));
    if plain {
        return escaped;
    }
    let mut out = String::from("\"");
    for c in escaped.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `1800s`: systemd and coreutils' `timeout` both read it.
fn seconds(d: Duration) -> String {
    format!("{}s", d.as_secs())
}

/// FNV-1a of `s`: the same number for the same host on every controller and every run,
/// unlike Rust's randomly keyed hasher.
fn stable_hash(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The pull job's command line: `/bin/sh /usr/local/lib/capo/pull.sh ARGS...`.
pub fn pull_command<I, S>(args: I) -> Vec<String>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    let mut words = vec!["/bin/sh".to_string(), format!("{}/pull.sh", paths::LIB_DIR)];
    words.extend(args.into_iter().map(Into::into));
    words
}

/// What a person types to run the job by hand (for messages).
pub fn readable(command: &[String]) -> String {
    command
        .iter()
        .map(|w| quote(w))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn schedule(interval: u64, splay: u64) -> Schedule {
        Schedule {
            interval: Duration::from_secs(interval),
            splay: Duration::from_secs(splay),
            deadline: Duration::from_secs(1800),
        }
    }

    const HOSTILE: [&str; 6] = ["a b", "$HOME", "50%n", "say \"hi\"", "back\\slash", "it's"];

    #[test]
    fn the_units_pass_systemd_analyze_verify() {
        let dir = tempfile::tempdir().expect("tempdir");
        let args: Vec<String> = ["/srv/puppet", "origin", "main"]
            .iter()
            .chain(HOSTILE.iter())
            .map(|s| s.to_string())
            .collect();
        let s = schedule(1800, 300);
        let service = dir.path().join("capo-pull.service");
        let timer = dir.path().join("capo-pull.timer");
        std::fs::write(&service, super::service(&pull_command(args), &s)).expect("write");
        std::fs::write(&timer, super::timer(&s)).expect("write");
        let out = Command::new("systemd-analyze")
            .arg("verify")
            .arg(&service)
            .arg(&timer)
            .env("SYSTEMD_LOG_LEVEL", "notice")
            .output()
            .expect("systemd-analyze runs (apt-get install systemd)");
        let stderr = String::from_utf8_lossy(&out.stderr);
        // It may note that /usr/local/lib/capo does not exist here; nothing about our units.
        let ours: Vec<&str> = stderr.lines().filter(|l| l.contains("capo-pull")).collect();
        assert!(out.status.success() && ours.is_empty(), "{stderr}");
    }

    #[test]
    fn systemd_reads_every_word_back_unchanged() {
        assert_eq!(systemd_quote("/srv/puppet"), "/srv/puppet");
        assert_eq!(systemd_quote("a b"), "\"a b\"");
        assert_eq!(systemd_quote("$HOME"), "$$HOME");
        assert_eq!(systemd_quote("50%n"), "50%%n");
        assert_eq!(systemd_quote("say \"hi\""), "\"say \\\"hi\\\"\"");
        assert_eq!(systemd_quote("back\\slash"), "\"back\\\\slash\"");
        assert_eq!(systemd_quote(""), "\"\"");
    }

    #[test]
    fn the_timer_says_interval_splay_and_persistence() {
        let t = timer(&schedule(1800, 300));
        for line in [
            "OnUnitActiveSec=1800s",
            "RandomizedDelaySec=300s",
            "FixedRandomDelay=true",
            "Persistent=true",
            "WantedBy=timers.target",
        ] {
            assert!(t.lines().any(|l| l == line), "{line} not in\n{t}");
        }
        let s = service(&pull_command(["x"]), &schedule(1800, 300));
        assert!(s.contains("\nTimeoutStartSec=1800s\n"), "{s}");
        assert!(
            s.contains("\nExecStart=/bin/sh /usr/local/lib/capo/pull.sh x\n"),
            "{s}"
        );
    }

    #[test]
    fn cron_spreads_hosts_at_fixed_minutes_within_the_splay() {
        let job = pull_command(["/srv/puppet"]);
        let line = |host: &str, interval, splay| {
            cron(&job, &schedule(interval, splay), host)
                .expect("a cron schedule")
                .lines()
                .last()
                .unwrap_or("")
                .to_string()
        };
        // Every 30 min, no splay: all at :00 and :30.
        assert_eq!(
            line("web01", 1800, 0),
            "0-59/30 * * * * root timeout --kill-after=30s 1800s /bin/sh /usr/local/lib/capo/pull.sh /srv/puppet"
        );
        // With a splay, a host keeps its minute from run to run, and hosts spread out.
        assert_eq!(line("web01", 1800, 600), line("web01", 1800, 600));
        let minutes: std::collections::BTreeSet<String> = (1..=40)
            .map(|i| line(&format!("web{i:02}"), 1800, 600))
            .map(|l| l.split('-').next().unwrap_or("").to_string())
            .collect();
        assert!(minutes.len() > 5, "{minutes:?}");
        assert!(
            minutes
                .iter()
                .all(|m| m.parse::<u64>().is_ok_and(|m| m <= 10)),
            "{minutes:?}"
        );
        // Hourly and daily.
        assert!(line("db1", 3600 * 2, 0).starts_with("0 0-23/2 * * * root "));
        assert!(line("db1", 86400, 0).starts_with("0 0 * * * root "));
        // What cron cannot say is refused, with what it can.
        assert_eq!(
            cron(&job, &schedule(45 * 60, 0), "h"),
            Err(ScheduleError::NotForCron { minutes: 45 })
        );
        assert_eq!(
            cron(&job, &schedule(30, 0), "h"),
            Err(ScheduleError::TooShort)
        );
    }

    #[test]
    fn cron_lines_keep_every_word_whole() {
        let words: Vec<String> = HOSTILE.iter().map(|s| s.to_string()).collect();
        let file = cron(&pull_command(words.clone()), &schedule(3600, 0), "h").expect("cron");
        let line = file.lines().last().unwrap_or("");
        let command = line.splitn(7, ' ').nth(6).unwrap_or("");
        assert!(!command.replace("\\%", "").contains('%'), "{command}");
        // What cron hands to sh, sh splits back into the same words.
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "set -- {}; shift 5; printf '%s\\n' \"$@\"",
                command.replace("\\%", "%")
            ))
            .output()
            .expect("sh");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            format!("{}\n", HOSTILE.join("\n"))
        );
    }
}
