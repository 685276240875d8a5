//! What capo does with what hosts print: hostile bytes stay inert on the operator's terminal
//! but intact in the report and logs, and any amount of output keeps capo's memory flat.
//! Runs against a real local fleet (needs root); see tests/fleet/README.md.
//!
//! The apply step runs `PUPPET apply --detailed-exitcodes ...`, where PUPPET is the
//! inventory's `puppet` key, so a script under `/srv/managed` stands in for Puppet and
//! decides exactly what the host prints and how the apply ends.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::common::run::path_arg;
use crate::common::run::{self, Run};
use crate::common::Fleet;
use serde_json::Value;

/// Writes an executable script to `/srv/managed/NAME` on the host and returns its path there.
fn put_script(fleet: &Fleet, host: &str, name: &str, body: &str) -> String {
    let remote = format!("/srv/managed/{name}");
    let out = fleet.host_exec(
        host,
        &format!("cat > {remote} <<'CAPO_EOF'\n#!/bin/sh\n{body}\nCAPO_EOF\nchmod +x {remote}"),
    );
    assert!(
        out.status.success(),
        "writing {remote} on {host}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(fleet.managed_path(host, name).is_file());
    remote
}

/// An inventory whose `puppet` is `script`.
fn inventory_running(fleet: &Fleet, script: &str) -> PathBuf {
    run::inventory_with(fleet, &[("puppet", &format!("\"{script}\""))])
}

/// The step named `name` of host `host` in the report.
fn step<'a>(r: &'a Run, host: &str, name: &str) -> &'a Value {
    r.host(host)["steps"]
        .as_array()
        .and_then(|steps| steps.iter().find(|s| s["name"] == name))
        .unwrap_or_else(|| panic!("{host} has no {name} step:\n{}", r.dump()))
}

/// `bytes` without capo's own `::capo:KEY=VALUE` protocol lines (the step wrapper prints
/// `::capo:pid=N` before the command starts, and the log keeps the wrapper's raw output).
fn without_capo_marks(bytes: &[u8]) -> Vec<u8> {
    bytes
        .split_inclusive(|&b| b == b'\n')
        .filter(|line| !line.starts_with(b"::capo:"))
        .flatten()
        .copied()
        .collect()
}

/// Every control character in `text` other than newline, for assertion messages.
fn controls(text: &str) -> Vec<char> {
    text.chars()
        .filter(|&c| c != '\n' && (c.is_control() || c == '\u{7f}'))
        .collect()
}

#[test]
fn hostile_escape_sequences_are_inert_on_the_terminal_but_kept_in_report_and_logs() {
    let fleet = Fleet::up(1);
    let script = put_script(
        &fleet,
        "host01",
        "hostile",
        "printf 'Error: \\033]0;pwned\\007 bad \\033[2J\\033[31mred\\n' >&2\n\
         printf '\\033]52;c;aGk=\\007\\n'\n\
         exit 1",
    );
    let inventory = inventory_running(&fleet, &script);
    let r = run::rollout(&fleet, &["-i", path_arg(&inventory)]);

    assert_eq!(r.code, 1, "{}", r.dump());
    assert_eq!(r.statuses(), run::all(&["host01"], "failed"));
    let (kind, message) = r.error("host01");
    assert_eq!(kind, "puppet", "{}", r.dump());

    // Nothing capo prints can drive the terminal: no ESC, no BEL, no control character at all.
    for (what, text) in [("stdout", &r.stdout), ("stderr", &r.stderr)] {
        assert!(
            !text.contains('\u{1b}'),
            "ESC on capo's {what}:\n{}",
            r.dump()
        );
        assert!(
            !text.contains('\u{7}'),
            "BEL on capo's {what}:\n{}",
            r.dump()
        );
        assert_eq!(controls(text), Vec::<char>::new(), "{what}:\n{}", r.dump());
    }
    // The table shows the reason with the escapes made visible.
    assert!(
        r.stdout.contains("\\x1b]0;pwned\\x07"),
        "reason not shown escaped:\n{}",
        r.dump()
    );
    assert!(
        r.stdout
            .contains("puppet: puppet apply failed (exit 1): Error: \\x1b]0;pwned\\x07 bad red"),
        "{}",
        r.dump()
    );

    // The report keeps the text as the host printed it.
    let apply = step(&r, "host01", "apply");
    assert_eq!(apply["exit_code"], 1);
    assert_eq!(
        apply["stderr_tail"],
        "Error: \u{1b}]0;pwned\u{7} bad \u{1b}[2J\u{1b}[31mred\n"
    );
    assert_eq!(apply["stdout_tail"], "\u{1b}]52;c;aGk=\u{7}\n");
    assert!(
        apply["stderr_tail"]
            .as_str()
            .expect("stderr_tail")
            .contains("\u{1b}]0;pwned\u{7}"),
        "{apply:#}"
    );
    // error.message is one line (Puppet's SGR colour codes dropped, the rest kept as is).
    assert!(
        !message.contains('\n') && !message.contains('\r'),
        "{message:?}"
    );
    assert_eq!(
        message,
        "puppet apply failed (exit 1): Error: \u{1b}]0;pwned\u{7} bad red"
    );

    // The logs hold the raw bytes.
    let log_dir = r.log_dir(&fleet, "host01");
    assert_eq!(
        std::fs::read(log_dir.join("apply.stderr")).expect("apply.stderr"),
        b"Error: \x1b]0;pwned\x07 bad \x1b[2J\x1b[31mred\n"
    );
    assert_eq!(
        without_capo_marks(&std::fs::read(log_dir.join("apply.stdout")).expect("apply.stdout")),
        b"\x1b]52;c;aGk=\x07\n"
    );
}

/// `truncated` is documented as "true when a tail holds less than the whole stream".
#[test]
fn a_small_output_is_not_marked_truncated() {
    let fleet = Fleet::up(1);
    let script = put_script(
        &fleet,
        "host01",
        "small",
        "echo 'Notice: all good'\necho 'Warning: mild' >&2\nexit 0",
    );
    let inventory = inventory_running(&fleet, &script);
    let r = run::rollout(&fleet, &["-i", path_arg(&inventory)]);
    assert_eq!(r.code, 0, "{}", r.dump());
    assert_eq!(r.statuses(), run::all(&["host01"], "unchanged"));
    let apply = step(&r, "host01", "apply");
    assert_eq!(apply["stdout_tail"], "Notice: all good\n");
    assert_eq!(apply["stderr_tail"], "Warning: mild\n");
    assert_eq!(apply["truncated"], false, "{apply:#}");
    let sync = step(&r, "host01", "sync");
    assert_eq!(sync["exit_code"], 0);
    assert_eq!(sync["truncated"], false, "{sync:#}");
}

/// One `capo rollout` under GNU time: the run and capo's peak RSS in KiB.
fn rollout_measured(fleet: &Fleet, inventory: &Path, tag: &str) -> (Run, u64) {
    let report = fleet.dir.join(format!("report-rss-{tag}.json"));
    // Same environment as `fleet.capo()`, with /usr/bin/time in front.
    let out = Command::new("/usr/bin/time")
        .args(["-f", "%M", env!("CARGO_BIN_EXE_capo"), "rollout", "-i"])
        .arg(inventory)
        .arg("--report")
        .arg(&report)
        .current_dir(&fleet.dir)
        .env("CAPO_INVENTORY", &fleet.inventory)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .expect("run /usr/bin/time (GNU time installed?)");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let rss_line = stderr
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or_default();
    let rss: u64 = rss_line
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("no peak RSS from GNU time ({e}):\n{stderr}"));
    let text = std::fs::read_to_string(&report)
        .unwrap_or_else(|e| panic!("no report ({e})\n{stdout}\n{stderr}"));
    let run = Run {
        code: out.status.code().unwrap_or(-1),
        report: serde_json::from_str(&text).expect("report is JSON"),
        stdout,
        stderr,
    };
    (run, rss)
}

const BIG: u64 = 200_000_000;

#[test]
fn huge_output_keeps_the_controllers_memory_flat() {
    let fleet = Fleet::up(1);
    let tiny = put_script(&fleet, "host01", "tiny", "echo 'Notice: tiny'\nexit 0");
    let big = put_script(
        &fleet,
        "host01",
        "big",
        &format!("head -c {BIG} /dev/zero | tr '\\0' 'x'\necho\nexit 0"),
    );

    let (base, base_rss) = rollout_measured(&fleet, &inventory_running(&fleet, &tiny), "tiny");
    assert_eq!(base.code, 0, "{}", base.dump());
    assert_eq!(base.statuses(), run::all(&["host01"], "unchanged"));

    let (r, big_rss) = rollout_measured(&fleet, &inventory_running(&fleet, &big), "big");
    let mib = |kib: u64| kib as f64 / 1024.0;
    eprintln!(
        "capo peak RSS: baseline {:.1} MiB, 200 MB of output {:.1} MiB (+{:.1} MiB)",
        mib(base_rss),
        mib(big_rss),
        mib(big_rss.saturating_sub(base_rss))
    );
    assert_eq!(r.code, 0, "{}", r.dump());
    assert_eq!(r.statuses(), run::all(&["host01"], "unchanged"));

    // The log has every byte: 200,000,000 'x' and a newline (after capo's own marker lines).
    let path = r.log_dir(&fleet, "host01").join("apply.stdout");
    let mut file = std::io::BufReader::with_capacity(
        1 << 20,
        std::fs::File::open(&path).expect("apply.stdout"),
    );
    let mut marks = Vec::new();
    let mut line = Vec::new();
    // Leading `::capo:` lines are capo's protocol, not the script's output.
    let first_script_bytes = loop {
        line.clear();
        let mut byte = [0u8; 1];
        loop {
            if file.read(&mut byte).expect("read log") == 0 {
                break;
            }
            line.push(byte[0]);
            if byte[0] == b'\n' || line.len() > 200 {
                break;
            }
        }
        if line.starts_with(b"::capo:") && line.ends_with(b"\n") {
            marks.push(String::from_utf8_lossy(&line).into_owned());
        } else {
            break line.clone();
        }
    };
    let mut total = first_script_bytes.len() as u64;
    let mut bad_at: Option<u64> = first_script_bytes
        .iter()
        .position(|&b| b != b'x')
        .map(|p| p as u64);
    // The last bytes of the stream: the output's end, and the marker lines the step prints
    // after it (its run record's).
    let mut end: Vec<u8> = first_script_bytes.clone();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).expect("read log");
        if n == 0 {
            break;
        }
        if bad_at.is_none() {
            if let Some(p) = buf[..n].iter().position(|&b| b != b'x') {
                bad_at = Some(total + p as u64);
            }
        }
        total += n as u64;
        end.extend_from_slice(&buf[..n]);
        if end.len() > 8192 {
            end.drain(..end.len() - 4096);
        }
    }
    assert_eq!(
        bad_at,
        Some(BIG),
        "apply.stdout holds {total} bytes after capo's marker lines {marks:?}; all 'x' up to the script's last byte"
    );
    // After the 200,000,000 'x': the script's newline, then only capo's own marker lines.
    let rest = &end[end.len() - usize::try_from(total - BIG).expect("small")..];
    let rest = String::from_utf8_lossy(rest);
    assert!(rest.starts_with('\n'), "{rest:?}");
    assert!(
        rest[1..].lines().all(|l| l.starts_with("::capo:")),
        "after the output: {rest:?}"
    );

    let apply = step(&r, "host01", "apply");
    assert_eq!(apply["exit_code"], 0);
    let tail = apply["stdout_tail"].as_str().expect("stdout_tail");
    assert!(
        tail.len() <= 65_536,
        "stdout_tail is {} bytes, over 64 KiB",
        tail.len()
    );
    assert!(
        tail.len() >= 60_000,
        "stdout_tail is only {} bytes",
        tail.len()
    );
    assert!(
        tail.ends_with("xxx\n"),
        "{:?}",
        &tail[tail.len().saturating_sub(10)..]
    );
    assert_eq!(apply["truncated"], true);

    assert!(
        big_rss < base_rss + 8 * 1024,
        "peak RSS grew from {base_rss} KiB to {big_rss} KiB with 200 MB of output"
    );
}

/// Runs `capo SUBCOMMAND ARGS...` with `COLUMNS=columns` (stdout is a pipe, so capo lays its
/// table out in COLUMNS).
fn capo_in_columns(fleet: &Fleet, subcommand: &str, args: &[&str], columns: &str) -> Run {
    let (mut cmd, report) = run::command(fleet, subcommand, args);
    let child = cmd
        .env("COLUMNS", columns)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("capo starts");
    run::wait(child, &report)
}

#[test]
fn a_long_puppet_error_keeps_the_table_within_columns() {
    let fleet = Fleet::up(1);
    let long = format!(
        "Error: Evaluation Error: {}on node host01",
        "parameter x expects a String value, got Integer; ".repeat(14)
    );
    assert!(long.len() > 700);
    let script = put_script(
        &fleet,
        "host01",
        "long_error",
        &format!("echo '{long}' >&2\nexit 1"),
    );
    let inventory = inventory_running(&fleet, &script);
    let r = capo_in_columns(&fleet, "rollout", &["-i", path_arg(&inventory)], "100");

    assert_eq!(r.code, 1, "{}", r.dump());
    let table: Vec<&str> = r.stdout.lines().take_while(|l| !l.is_empty()).collect();
    assert_eq!(table.len(), 5, "{}", r.dump());
    for line in &table {
        assert!(line.chars().count() <= 100, "{line}\n{}", r.dump());
    }
    assert!(
        table[3].contains("puppet: ") && table[3].ends_with("… │"),
        "{}",
        r.dump()
    );
    // The whole message is in problems: and in the report.
    let problems = run::section(&r.stdout, "problems:");
    assert_eq!(problems.len(), 1, "{}", r.dump());
    // The host's own name in it stands as <host>: the line names the host right after.
    assert!(
        problems[0].contains(&long.replace("on node host01", "on node <host>")),
        "{}",
        r.dump()
    );
    assert!(problems[0].ends_with(" on host01 (1 host)"), "{}", r.dump());
    let (kind, message) = r.error("host01");
    assert_eq!(kind, "puppet");
    assert!(message.contains(&long), "{message}");
}

/// The lines of the section whose header starts with `title` (`changes`, `would change`).
fn changes_section(stdout: &str, title: &str) -> Vec<String> {
    let mut lines = stdout.lines().skip_while(|l| !l.starts_with(title));
    let Some(header) = lines.next() else {
        return Vec::new();
    };
    std::iter::once(header)
        .chain(lines.take_while(|l| l.starts_with("  ")))
        .map(str::to_string)
        .collect()
}

#[test]
fn sixty_changed_resources_keep_the_changes_list_short() {
    let fleet = Fleet::up(2);
    let files: String = (1..=60)
        .map(|i| {
            format!(
                "  file {{ '/srv/managed/many_{i:02}': ensure => file, content => \"x\\n\" }}\n"
            )
        })
        .collect();
    fleet.commit(
        "manifests/site.pp",
        &format!("node default {{\n{files}}}\n"),
        "sixty files",
    );

    let plan = run::capo(&fleet, "plan", &[]);
    assert_eq!(plan.code, 0, "{}", plan.dump());
    let short = changes_section(&plan.stdout, "would change");
    assert!(short.len() <= 25, "{} lines:\n{}", short.len(), plan.dump());
    assert!(
        short.first().is_some_and(|h| h.contains("`--changes all`")),
        "{}",
        plan.dump()
    );
    assert!(
        short
            .iter()
            .any(|l| l.contains("60 File on host[01-02] (2 hosts)")),
        "{}",
        plan.dump()
    );

    let all = run::capo(&fleet, "plan", &["--changes", "all"]);
    assert_eq!(all.code, 0, "{}", all.dump());
    let every = changes_section(&all.stdout, "would change");
    assert_eq!(every.len(), 1 + 60, "{}", all.dump());
    assert!(every
        .iter()
        .any(|l| l.contains("File[/srv/managed/many_60]")));
    // The report keeps every change either way.
    let events = plan.host("host01")["puppet"]["events"]
        .as_array()
        .map_or(0, Vec::len);
    assert_eq!(events, 60, "{}", plan.dump());

    let r = run::rollout(&fleet, &[]);
    assert_eq!(r.code, 0, "{}", r.dump());
    let short = changes_section(&r.stdout, "changes");
    assert!(short.len() <= 25, "{} lines:\n{}", short.len(), r.dump());
    assert!(
        short.first().is_some_and(|h| h.contains("`--changes all`")),
        "{}",
        r.dump()
    );
}
