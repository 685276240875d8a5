//! Live progress on stderr while a run goes: on a terminal, an indicatif display (one bar with
//! counts per status and elapsed time, and a line per host in flight with its current step);
//! elsewhere (CI, pipes), one plain line per finished host and no escape sequences at all.

use std::collections::HashMap;
use std::io::Write;
use std::time::{Duration, Instant};

use capo_engine::{Event, HostOutcome, HostStatus};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::sanitize;
use crate::table::{revision, seconds};

/// How much progress to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verbosity {
    /// Nothing while the run goes; only the final summary.
    Quiet,
    /// The default.
    Normal,
    /// Also every host's output, line by line, prefixed with the host name.
    Verbose,
}

/// A progress reporter; feed it every event.
pub enum Progress {
    /// Show nothing.
    Silent,
    /// One plain line per finished host.
    Plain(Plain),
    /// Bars on a terminal.
    Bars(Box<Bars>),
}

impl Progress {
    /// The reporter for a terminal (`tty`) or not, at a verbosity.
    pub fn new(tty: bool, verbosity: Verbosity) -> Progress {
        let lines = (verbosity == Verbosity::Verbose).then(Lines::default);
        match (verbosity, tty) {
            (Verbosity::Quiet, _) => Progress::Silent,
            (_, false) => Progress::Plain(Plain { width: 0, lines }),
            (_, true) => Progress::Bars(Box::new(Bars::new(lines))),
        }
    }

    /// Takes in one event.
    pub fn observe(&mut self, event: &Event) {
        match self {
            Progress::Silent => {}
            Progress::Plain(p) => p.observe(event),
            Progress::Bars(b) => b.observe(event),
        }
    }

    /// Clears any live display, so the final report prints on a clean screen.
    pub fn finish(&mut self) {
        if let Progress::Bars(b) = self {
            b.finish();
        }
    }
}

/// The line printed for a finished host: `web03  changed  12.3s  3f2a1c9 -> 77b0e41`, plus the
/// reason when there is one. `width` pads the host name so columns line up.
pub fn host_line(outcome: &HostOutcome, width: usize) -> String {
    let name = sanitize::line(&outcome.name);
    let rev = revision(outcome.rev_before.as_deref(), outcome.rev_after.as_deref());
    let mut line = format!(
        "{name:<width$}  {:<12} {:>7}  {rev}",
        outcome.status.as_str(),
        seconds(u64::try_from(outcome.duration.as_millis()).unwrap_or(u64::MAX)),
    );
    if let Some(e) = &outcome.error {
        line.push_str(&format!(
            "  {}: {}",
            e.kind.as_str(),
            sanitize::line(&e.message)
        ));
    }
    line.trim_end().to_string()
}

/// Assembles streamed output chunks into whole lines per host and stream (`-v`).
#[derive(Debug, Default)]
pub struct Lines {
    partial: HashMap<(String, bool), Vec<u8>>,
}

/// Longest partial line kept before it is shown anyway.
const MAX_LINE: usize = 4096;

impl Lines {
    /// Complete lines in this chunk, as `host | line` (sanitized); capo's marker lines are
    /// left out.
    fn take(&mut self, host: &str, stderr: bool, bytes: &[u8], width: usize) -> Vec<String> {
        let buf = self.partial.entry((host.to_string(), stderr)).or_default();
        buf.extend_from_slice(bytes);
        let mut out = Vec::new();
        while let Some(at) = buf.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = buf.drain(..=at).collect();
            out.push(line);
        }
        if buf.len() > MAX_LINE {
            out.push(std::mem::take(buf));
        }
        out.into_iter()
            .filter(|l| !l.starts_with(b"::capo:"))
            .map(|l| {
                let text = String::from_utf8_lossy(&l);
                let text = text.trim_end_matches(['\n', '\r']);
                format!(
                    "{:<width$} | {}",
                    sanitize::line(host),
                    sanitize::line(text)
                )
            })
            .collect()
    }
}

/// Plain lines, for logs: nothing but text and newlines.
#[derive(Debug, Default)]
pub struct Plain {
    width: usize,
    lines: Option<Lines>,
}

impl Plain {
    fn observe(&mut self, event: &Event) {
        match event {
            Event::Output {
                host,
                stderr,
                bytes,
                ..
            } => {
                if let Some(lines) = self.lines.as_mut() {
                    let mut err = std::io::stderr().lock();
                    for line in lines.take(host, *stderr, bytes, self.width) {
                        let _ = writeln!(err, "{line}");
                    }
                }
            }
            Event::RunStarted { hosts, .. } => {
                self.width = hosts.iter().map(|h| h.chars().count()).max().unwrap_or(0);
            }
            Event::HostFinished { outcome } => {
                let mut err = std::io::stderr().lock();
                // A closed stderr must not stop the run.
                let _ = writeln!(err, "{}", host_line(outcome, self.width));
            }
            _ => {}
        }
    }
}

/// The terminal display.
pub struct Bars {
    lines: Option<Lines>,
    multi: MultiProgress,
    main: ProgressBar,
    hosts: HashMap<String, (ProgressBar, Instant)>,
    counts: HashMap<HostStatus, usize>,
    width: usize,
    started: Instant,
}

/// The width of the terminal on stderr, if it is one.
fn stderr_width() -> Option<usize> {
    comfy_table::Table::new()
        .use_stderr()
        .width()
        .filter(|w| *w > 0)
        .map(usize::from)
}

impl Bars {
    fn new(lines: Option<Lines>) -> Bars {
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(10));
        let main = multi.add(ProgressBar::new(0));
        main.set_style(
            ProgressStyle::with_template("{bar:30} {pos}/{len} hosts  {msg}  [{elapsed}]")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        main.enable_steady_tick(Duration::from_millis(200));
        Bars {
            lines,
            multi,
            main,
            hosts: HashMap::new(),
            counts: HashMap::new(),
            width: 0,
            started: Instant::now(),
        }
    }

    fn counts_message(&self) -> String {
        HostStatus::PROGRESS_ORDER
            .iter()
            .filter_map(|s| {
                self.counts
                    .get(s)
                    .filter(|n| **n > 0)
                    .map(|n| format!("{n} {}", s.as_str()))
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn observe(&mut self, event: &Event) {
        match event {
            Event::Output {
                host,
                stderr,
                bytes,
                ..
            } => {
                if let Some(lines) = self.lines.as_mut() {
                    for line in lines.take(host, *stderr, bytes, self.width) {
                        let _ = self.multi.println(line);
                    }
                }
            }
            Event::RunStarted { hosts, .. } => {
                self.main.set_length(hosts.len() as u64);
                self.width = hosts.iter().map(|h| h.chars().count()).max().unwrap_or(0);
                self.started = Instant::now();
            }
            Event::HostStarted { host } => {
                let bar = self.multi.add(ProgressBar::new_spinner());
                bar.set_style(
                    ProgressStyle::with_template("  {spinner} {msg} {elapsed}")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                );
                bar.enable_steady_tick(Duration::from_millis(200));
                let name = sanitize::line(host);
                bar.set_message(format!("{name:<w$}  connecting", w = self.width));
                self.hosts.insert(host.clone(), (bar, Instant::now()));
            }
            Event::StepStarted { host, step } => {
                if let Some((bar, since)) = self.hosts.get_mut(host) {
                    *since = Instant::now();
                    // The time shown is the time in the current step.
                    bar.reset_elapsed();
                    let name = sanitize::line(host);
                    bar.set_message(format!("{name:<w$}  {}", step.as_str(), w = self.width));
                }
            }
            Event::HostFinished { outcome } => {
                if let Some((bar, _)) = self.hosts.remove(&outcome.name) {
                    bar.finish_and_clear();
                    self.multi.remove(&bar);
                }
                *self.counts.entry(outcome.status).or_default() += 1;
                self.main.inc(1);
                self.main.set_message(self.counts_message());
                // Finished hosts scroll above the bars, so the operator sees them as they come.
                // Cut to the terminal, so a long reason does not wrap over many lines; the
                // whole of it is under `problems:` at the end.
                let line = host_line(outcome, self.width);
                let line = match stderr_width() {
                    Some(width) => crate::table::cut(&line, width),
                    None => line,
                };
                let _ = self.multi.println(line);
            }
            _ => {}
        }
    }

    fn finish(&mut self) {
        for (_, (bar, _)) in self.hosts.drain() {
            bar.finish_and_clear();
        }
        self.main.finish_and_clear();
        let _ = self.multi.clear();
        let _ = self.started;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use capo_engine::{ErrorKind, HostError};
    use std::path::PathBuf;

    fn outcome(status: HostStatus, error: Option<HostError>) -> HostOutcome {
        HostOutcome {
            name: "web03".into(),
            address: "a".into(),
            port: 22,
            status,
            error,
            rev_before: Some("3f2a1c9aaaa".into()),
            rev_after: Some("77b0e41bbbb".into()),
            duration: Duration::from_millis(12_345),
            steps: vec![],
            log_dir: PathBuf::new(),
            connect_attempts: 1,
            locked: None,
            target: None,
            incoming: None,
            puppet: None,
            check: None,
            disabled: None,
            run_record_error: None,
            host_state: None,
            pull: None,
            unpinned: None,
            timing: None,
        }
    }

    #[test]
    fn streamed_chunks_become_prefixed_sanitized_lines() {
        let mut lines = Lines::default();
        assert!(lines.take("h1", false, b"::capo:pid=4\npart", 3).is_empty());
        assert_eq!(
            lines.take("h1", false, b"ial\n\x1b[2Jnext\n", 3),
            ["h1  | partial", "h1  | \\x1b[2Jnext"]
        );
        assert_eq!(lines.take("h2", true, b"err\r\n", 3), ["h2  | err"]);
    }

    #[test]
    fn plain_lines_say_host_status_time_and_revision() {
        assert_eq!(
            host_line(&outcome(HostStatus::Changed, None), 6),
            "web03   changed        12.3s  3f2a1c9 -> 77b0e41"
        );
        let failed = outcome(
            HostStatus::Failed,
            Some(HostError::new(ErrorKind::Puppet, "bad \u{1b}[2J")),
        );
        assert_eq!(
            host_line(&failed, 5),
            "web03  failed         12.3s  3f2a1c9 -> 77b0e41  puppet: bad \\x1b[2J"
        );
    }
}
