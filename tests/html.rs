//! The HTML report (`--html FILE`, `capo report html RUN.json`) of a real rollout on a local
//! fleet with a changed, a failed, an unreachable and a cancelled host, loaded by a real
//! browser: headless Chromium (Debian's `chromium`), offline in a network namespace of its
//! own (`unshare -n`), its screenshot decoded and checked, its DOM after the page's script
//! ran checked for the counts, and its network log checked for any request the page made.
//! Needs root (the fleet, `unshare`); see tests/fleet/README.md.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use capo_report::html::{external_references, status_color};
use serde_json::Value;

use crate::common::run::{self, Run};
use crate::common::sim::SimFleet;
use crate::common::Fleet;

/// How long one Chromium run may take (it starts in 1-3 s here).
const CHROMIUM_LIMIT: Duration = Duration::from_secs(90);

/// The window the screenshot is taken in.
const WINDOW: (u32, u32) = (1280, 1600);

/// A Puppet resource whose title is markup: the page must show it as text.
const HOSTILE_FILE: &str = "/srv/managed/motd<img src=x onerror=alert(1)>";

/// host01 changes a file, host02 fails (an exec that exits 1), host04 sleeps until it is
/// cancelled; host03 is stopped before the run.
fn manifest() -> String {
    format!(
        "node 'host01' {{ file {{ '{HOSTILE_FILE}': content => \"html report\\n\" }} }}\n\
         node 'host02' {{ exec {{ 'boom': command => '/bin/false' }} }}\n\
         node 'host04' {{ exec {{ 'slow': command => '/bin/sleep 60' }} }}\n\
         node default {{ }}\n"
    )
}

/// The `host_finished` events in an `--events` file so far: host name to status.
fn finished(events: &Path) -> Vec<(String, String)> {
    let Ok(file) = std::fs::File::open(events) else {
        return Vec::new();
    };
    BufReader::new(file)
        .lines()
        .map_while(Result::ok)
        .filter_map(|l| serde_json::from_str::<Value>(&l).ok())
        .filter(|e| e["event"] == "host_finished")
        .map(|e| {
            (
                e["host"].as_str().unwrap_or("").to_string(),
                e["status"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

/// Headless Chromium on `url` with `args`, offline: in a new network namespace (its only
/// interface, loopback, down), background networking off, its own profile in `profile`.
/// Killed after [`CHROMIUM_LIMIT`].
fn chromium(profile: &Path, args: &[&str], url: &str) -> Output {
    let started = Instant::now();
    let out = Command::new("timeout")
        .args(["--kill-after=5", &CHROMIUM_LIMIT.as_secs().to_string()])
        .args(["unshare", "-n", "chromium"])
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--no-default-browser-check",
            "--force-color-profile=srgb",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(url)
        .stdin(Stdio::null())
        .output()
        .expect("chromium runs (apt-get install chromium; scripts/install-deps.sh)");
    assert!(
        out.status.success(),
        "chromium failed ({}, after {:?})\n--- stderr\n{}",
        out.status,
        started.elapsed(),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The DOM after the page's scripts ran, and the URLs the page itself asked the network for
/// (from Chromium's net log: requests made for a `file://` page carry its isolation key;
/// Chromium's own, such as its component updater, do not).
fn load(dir: &Path, page: &Path) -> (String, Vec<String>) {
    let profile = tempfile::tempdir_in(dir).expect("profile dir");
    let netlog = dir.join(format!(
        "netlog-{}.json",
        page.file_stem().and_then(|s| s.to_str()).unwrap_or("page")
    ));
    let out = chromium(
        profile.path(),
        &[
            "--dump-dom",
            &format!("--log-net-log={}", netlog.display()),
            "--net-log-capture-mode=Everything",
        ],
        &file_url(page),
    );
    let dom = String::from_utf8_lossy(&out.stdout).into_owned();
    let log: Value = serde_json::from_str(&std::fs::read_to_string(&netlog).expect("net log"))
        .expect("the net log is JSON");
    let mut requests = Vec::new();
    for event in log["events"].as_array().expect("net log events") {
        let params = &event["params"];
        let from_page = params["network_isolation_key"]
            .as_str()
            .is_some_and(|k| k.contains("file://"));
        if let (true, Some(url)) = (from_page, params["url"].as_str()) {
            requests.push(url.to_string());
        }
    }
    (dom, requests)
}

fn file_url(path: &Path) -> String {
    format!("file://{}", path.display())
}

/// The screenshot's pixels (RGBA) and width.
fn screenshot(dir: &Path, page: &Path) -> (Vec<u8>, u32) {
    let profile = tempfile::tempdir_in(dir).expect("profile dir");
    let png = dir.join("screenshot.png");
    chromium(
        profile.path(),
        &[
            &format!("--screenshot={}", png.display()),
            &format!("--window-size={},{}", WINDOW.0, WINDOW.1),
        ],
        &file_url(page),
    );
    let decoder = png::Decoder::new(BufReader::new(
        std::fs::File::open(&png).expect("screenshot written"),
    ));
    let mut reader = decoder.read_info().expect("a PNG");
    let mut pixels = vec![0; reader.output_buffer_size().expect("size")];
    let info = reader.next_frame(&mut pixels).expect("a frame");
    pixels.truncate(info.buffer_size());
    let rgba: Vec<u8> = match info.color_type {
        png::ColorType::Rgba => pixels,
        png::ColorType::Rgb => pixels
            .chunks(3)
            .flat_map(|p| [p[0], p[1], p[2], 255])
            .collect(),
        other => panic!("unexpected screenshot colour type {other:?}"),
    };
    assert_eq!(info.bit_depth, png::BitDepth::Eight);
    (rgba, info.width)
}

/// Pixels within 3 of `#rrggbb` in each channel.
fn pixels_of(rgba: &[u8], hex: &str) -> usize {
    let channel = |i: usize| u8::from_str_radix(&hex[1 + 2 * i..3 + 2 * i], 16).expect("hex");
    let want = [channel(0), channel(1), channel(2)];
    rgba.chunks(4)
        .filter(|p| (0..3).all(|i| p[i].abs_diff(want[i]) <= 3))
        .count()
}

/// The text of the element with `id`, tags dropped and white space collapsed.
fn text_of(dom: &str, id: &str) -> String {
    let start = dom
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id} in the DOM:\n{dom}"));
    let body = &dom[start..];
    let body = &body[body.find('>').expect("tag end") + 1..];
    let end = body.find("</ul>").expect("list end");
    let mut text = String::new();
    let mut in_tag = false;
    for c in body[..end].chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                text.push(' ');
            }
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The rollout: host01 changed, host02 failed, host03 unreachable, host04 cancelled by a
/// SIGINT whose grace period runs out. Returns the fleet, the run, its JSON report and its
/// `--html` page.
fn mixed_rollout() -> (Fleet, Run, PathBuf, PathBuf) {
    let fleet = Fleet::up(4);
    fleet.commit("manifests/site.pp", &manifest(), "html report test");
    fleet.stop("host03");
    let html = fleet.dir.join("report.html");
    let events = fleet.dir.join("events.jsonl");
    let (mut cmd, report) = run::command(
        &fleet,
        "rollout",
        &[
            "-j",
            "4",
            "--grace",
            "2s",
            "--html",
            run::path_arg(&html),
            "--events",
            run::path_arg(&events),
        ],
    );
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("capo starts");
    // The other hosts end first; then host04, still in its sleep, is interrupted.
    let deadline = Instant::now() + Duration::from_secs(120);
    while finished(&events).len() < 3 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let running = fleet.wait_for_proc("host04", "sleep 60", Duration::from_secs(60));
    if finished(&events).len() < 3 || !running {
        let (r, _) = run::wait_within(child, &report, Duration::from_secs(120));
        panic!(
            "the other hosts did not finish, or host04 never slept ({:?})\n{}",
            finished(&events),
            r.dump()
        );
    }
    run::signal(&child, "INT");
    let (r, _) = run::wait_within(child, &report, Duration::from_secs(60));
    (fleet, r, report, html)
}

#[test]
fn the_html_report_of_a_mixed_rollout_renders_offline_in_chromium() {
    let (fleet, r, report, html) = mixed_rollout();
    assert_eq!(r.code, 130, "{}", r.dump());
    assert_eq!(
        r.statuses(),
        run::pairs(&[
            ("host01", "changed"),
            ("host02", "failed"),
            ("host03", "unreachable"),
            ("host04", "cancelled"),
        ]),
        "{}",
        r.dump()
    );
    assert_eq!(r.error("host02").0, "puppet", "{}", r.dump());
    assert_eq!(r.error("host03").0, "connect", "{}", r.dump());
    assert_eq!(
        r.error("host04"),
        (
            "interrupted".to_string(),
            "apply cut short: interrupted by SIGINT; the grace period of 2s ran out".to_string()
        )
    );
    // The host that did not change is left as it was: nothing of the run's file on it.
    assert!(!fleet
        .managed_path("host02", "motd<img src=x onerror=alert(1)>")
        .exists());
    assert!(fleet
        .managed_path("host01", "motd<img src=x onerror=alert(1)>")
        .is_file());

    // The timeline's data in the JSON report: every host that started has its timing, each
    // step starts after the one before it, and within the run.
    let run_ms = r.report["duration_ms"].as_u64().expect("duration");
    for name in ["host01", "host02", "host04"] {
        let h = r.host(name);
        let t = &h["timing"];
        let started = t["started_ms"].as_u64().expect("started_ms");
        let connect = t["connect_ms"].as_u64().expect("connect_ms");
        let lock = t["lock_ms"].as_u64().expect("a rollout takes the lock");
        assert!(connect > 0, "{name}: {t}");
        let mut at = started + connect + lock;
        let steps = h["steps"].as_array().expect("steps");
        assert_eq!(steps.len(), 2, "{name}: sync and apply\n{h}");
        for s in steps {
            let start = s["started_ms"].as_u64().expect("started_ms");
            assert!(start >= at, "{name}: {} at {start} before {at}", s["name"]);
            at = start + s["duration_ms"].as_u64().expect("duration_ms");
        }
        assert!(
            at <= run_ms,
            "{name}: steps end at {at}, the run at {run_ms}"
        );
    }
    let unreachable = &r.host("host03")["timing"];
    assert!(unreachable["connect_ms"].is_u64(), "{unreachable}");
    assert!(unreachable.get("lock_ms").is_none(), "{unreachable}");

    // The page: the same as `capo report html` makes of the JSON report, pointing nowhere.
    let page = std::fs::read_to_string(&html).expect("--html wrote the page");
    let out = fleet
        .capo()
        .args(["report", "html"])
        .arg(&report)
        .output()
        .expect("capo report html runs");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), page);
    assert_eq!(external_references(&page), Vec::<String>::new());
    assert!(page.contains("File[/srv/managed/motd&lt;img src=x onerror=alert(1)&gt;]"));

    // Chromium, offline: the page's script ran (allowed by the page's own policy) and drew
    // every host; the counts are there; the page asked the network for nothing.
    let (dom, requests) = load(&fleet.dir, &html);
    assert!(
        dom.contains("data-drawn=\"4\""),
        "the script did not run:\n{dom}"
    );
    assert_eq!(
        text_of(&dom, "counts"),
        "hosts 4 failed 1 unreachable 1 cancelled 1 changed 1"
    );
    assert_eq!(external_references(&dom), Vec::<String>::new(), "{dom}");
    assert!(!dom.contains("<img"), "{dom}");
    assert_eq!(requests, Vec::<String>::new());

    // The screenshot is a page, not a blank, and shows each status's colour (the counts).
    let (rgba, width) = screenshot(&fleet.dir, &html);
    assert_eq!(width, WINDOW.0);
    let mut colours: Vec<u32> = rgba
        .chunks(4)
        .map(|p| u32::from_be_bytes([p[0], p[1], p[2], 0]))
        .collect();
    colours.sort_unstable();
    colours.dedup();
    assert!(colours.len() > 50, "{} colours: blank?", colours.len());
    for status in ["changed", "failed", "unreachable", "cancelled"] {
        let colour = status_color(status.parse().expect("a status"));
        let n = pixels_of(&rgba, colour);
        // A count's box alone is about 90 x 50 pixels.
        assert!(n > 2000, "{status} ({colour}): {n} pixels");
    }
    // No status shown that no host had (a few pixels of anti-aliasing could come near it).
    let unchanged = pixels_of(&rgba, status_color(capo_engine::HostStatus::Unchanged));
    assert!(unchanged < 20, "unchanged's colour: {unchanged} pixels");
}

#[test]
fn the_request_check_sees_a_page_that_fetches() {
    // The check above must be able to fail: a page with an image and a stylesheet elsewhere.
    let dir = tempfile::tempdir().expect("tempdir");
    let page = dir.path().join("fetches.html");
    std::fs::write(
        &page,
        "<!DOCTYPE html><html><body><p>x</p><img src=\"http://example.invalid/x.png\">\
         <link rel=stylesheet href=\"https://cdn.example.invalid/s.css\"></body></html>",
    )
    .expect("write");
    let (dom, requests) = load(dir.path(), &page);
    assert_eq!(
        external_references(&dom),
        [
            "src=http://example.invalid/x.png",
            "href=https://cdn.example.invalid/s.css"
        ]
    );
    let mut requests = requests;
    requests.sort();
    requests.dedup();
    assert_eq!(
        requests,
        [
            "http://example.invalid/x.png",
            "https://cdn.example.invalid/s.css"
        ]
    );
}

#[test]
fn capo_report_html_says_what_is_wrong_with_its_input() {
    let dir = tempfile::tempdir().expect("tempdir");
    let capo = |arg: &Path| {
        Command::new(env!("CARGO_BIN_EXE_capo"))
            .args(["report", "html"])
            .arg(arg)
            .stdin(Stdio::null())
            .output()
            .expect("capo runs")
    };
    let missing = dir.path().join("missing.json");
    let out = capo(&missing);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "capo: cannot read {}: No such file or directory (os error 2)\n",
            missing.display()
        )
    );

    let events = dir.path().join("events.jsonl");
    std::fs::write(
        &events,
        "{\"event\": \"run_started\"}\n{\"event\": \"host_started\"}\n",
    )
    .expect("write");
    let out = capo(&events);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with(&format!(
            "capo: {} is not a capo report: ",
            events.display()
        )),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn an_html_file_that_cannot_be_written_fails_the_run_and_the_other_outputs_stay() {
    // A simulated fleet (no root needed): every host changes.
    let sim = SimFleet::start(3, |_| {});
    let html = sim.dir().join("no-such-dir").join("report.html");
    let report = sim.dir().join("report.json");
    let out = sim
        .capo(&["rollout", "-q", "--html", run::path_arg(&html)])
        .arg("--report")
        .arg(&report)
        .arg("-i")
        .arg(sim.inventory())
        .output()
        .expect("capo runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    // (The atomic writer's error names its temporary file too, as for --junit.)
    assert!(
        stderr.starts_with(&format!(
            "capo: cannot write report {}: No such file or directory (os error 2)",
            html.display()
        )),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(!html.exists());
    let written: Value =
        serde_json::from_str(&std::fs::read_to_string(&report).expect("--report written"))
            .expect("JSON");
    assert_eq!(written["summary"]["changed"], 3, "{written}");

    // Written where it can be: the page has every host.
    let html = sim.dir().join("report.html");
    let out = sim
        .capo(&["rollout", "-q", "--html", run::path_arg(&html)])
        .arg("-i")
        .arg(sim.inventory())
        .output()
        .expect("capo runs");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let page = std::fs::read_to_string(&html).expect("--html written");
    assert!(page.contains("<span class=\"w\">changed</span> <span class=\"n\">3</span>"));
    assert!(
        page.contains("<span class=\"set\">sim[00001-00003]</span>"),
        "{page}"
    );
}
