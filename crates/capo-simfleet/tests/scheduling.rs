//! The engine's scheduling against a simulated fleet: canary, batches, failure budget,
//! concurrency, and stopping (Ctrl-C's soft stop, then the hard stop). No root, no real hosts:
//! one `capo-simfleet` process per test on its own loopback addresses, and the engine driven
//! through its library API, every event recorded. Each test takes a second or two.

use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use capo_engine::strategy::{Budget, Size};
use capo_engine::{
    EngineOptions, ErrorKind, Event, HostOutcome, HostStatus, RunMeta, RunMode, Signal, Stop,
    StopReason, Strategy, DEFAULT_TAIL_BYTES,
};
use capo_inventory::{Host, Inventory};
use tokio::sync::{mpsc, watch};

/// A running simulated fleet; killed on drop.
struct SimFleet {
    child: Child,
    hosts: Vec<Host>,
    dir: tempfile::TempDir,
}

impl Drop for SimFleet {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Each test gets its own /24 in 127.0.0.0/8, so tests can run in parallel.
static NEXT_NET: AtomicU8 = AtomicU8::new(0);

impl SimFleet {
    /// `hosts` simulated hosts with `extra` arguments (delays, failures).
    fn start(hosts: u32, extra: &[&str]) -> SimFleet {
        let net = NEXT_NET.fetch_add(1, Ordering::Relaxed);
        let base = Ipv4Addr::new(127, 42, net, 1);
        // Any port free on the first address serves: the fleet binds it on every address.
        let port = TcpListener::bind((base, 0))
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free loopback port");
        let dir = tempfile::tempdir().expect("tempdir");
        let mut child = Command::new(env!("CARGO_BIN_EXE_capo-simfleet"))
            .args(["--hosts", &hosts.to_string()])
            .args(["--base", &base.to_string()])
            .args(["--port", &port.to_string()])
            .arg("--dir")
            .arg(dir.path())
            .args(["--sync-delay", "10ms", "--connections", "64"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("capo-simfleet starts");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("capo-simfleet prints");
        assert_eq!(line, "ready\n", "capo-simfleet did not come up");
        let inventory = Inventory::load(&dir.path().join("inventory.toml")).expect("inventory");
        SimFleet {
            child,
            hosts: inventory.hosts,
            dir,
        }
    }

    fn options(&self, mode: RunMode, strategy: Strategy, concurrency: usize) -> EngineOptions {
        let run_dir = self.dir.path().join("run");
        std::fs::create_dir_all(&run_dir).expect("run dir");
        EngineOptions {
            strategy,
            confirm: None,
            show_diff: false,
            stream_output: false,
            meta: RunMeta {
                run_id: "test".into(),
                mode: mode.mode(),
                inventory: self.dir.path().join("inventory.toml"),
                limit: None,
                run_dir,
                target_rev: None,
            },
            mode,
            concurrency,
            tail_bytes: DEFAULT_TAIL_BYTES,
            holder: "capo run test".into(),
            become_password: None,
            ssh: Default::default(),
        }
    }
}

fn rollout() -> RunMode {
    RunMode::Rollout { rev: None }
}

fn strategy() -> Strategy {
    Strategy {
        canary: 0,
        batches: Vec::new(),
        max_failures: None,
        pause: Duration::ZERO,
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// Runs the engine to its end and returns every event; `on_event` may ask it to stop.
fn run_engine(
    fleet: &SimFleet,
    options: EngineOptions,
    mut on_event: impl FnMut(&Event, &watch::Sender<Stop>),
) -> Vec<Event> {
    runtime().block_on(async {
        let (tx, mut rx) = mpsc::channel(1024);
        let (stop_tx, stop_rx) = watch::channel(Stop::Run);
        let engine = tokio::spawn(capo_engine::run(fleet.hosts.clone(), options, tx, stop_rx));
        let mut events = Vec::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while let Ok(Some(event)) = tokio::time::timeout_at(deadline, rx.recv()).await {
            on_event(&event, &stop_tx);
            events.push(event);
        }
        tokio::time::timeout(Duration::from_secs(5), engine)
            .await
            .expect("the engine ends after its last event")
            .expect("the engine does not panic");
        events
    })
}

fn outcomes(events: &[Event]) -> Vec<&HostOutcome> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::HostFinished { outcome } => Some(&**outcome),
            _ => None,
        })
        .collect()
}

/// `(host, status, kind)` of every host in the order they finished.
fn results(events: &[Event]) -> Vec<(String, HostStatus, Option<ErrorKind>)> {
    outcomes(events)
        .iter()
        .map(|o| (o.name.clone(), o.status, o.error.as_ref().map(|e| e.kind)))
        .collect()
}

fn sorted<T: Ord>(mut v: Vec<T>) -> Vec<T> {
    v.sort();
    v
}

fn batches(events: &[Event]) -> Vec<Vec<String>> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::BatchStarted { hosts, .. } => Some(hosts.clone()),
            _ => None,
        })
        .collect()
}

/// Why the run halted, as the report words it.
fn halted(events: &[Event]) -> Option<String> {
    match events.last() {
        Some(Event::RunFinished { halted, .. }) => halted.as_ref().map(ToString::to_string),
        other => panic!("the last event is not RunFinished: {other:?}"),
    }
}

/// The largest number of hosts between HostStarted and HostFinished at once.
fn most_in_flight(events: &[Event]) -> usize {
    let (mut now, mut most) = (0usize, 0usize);
    for e in events {
        match e {
            Event::HostStarted { .. } => {
                now += 1;
                most = most.max(now);
            }
            Event::HostFinished { outcome } if outcome.connect_attempts > 0 => now -= 1,
            _ => {}
        }
    }
    most
}

fn names(range: std::ops::RangeInclusive<u32>) -> Vec<String> {
    range.map(|i| format!("sim{i:05}")).collect()
}

fn message<'a>(events: &'a [Event], host: &str) -> &'a str {
    outcomes(events)
        .into_iter()
        .find(|o| o.name == host)
        .and_then(|o| o.error.as_ref())
        .map(|e| e.message.as_str())
        .unwrap_or_else(|| panic!("{host} has no error"))
}

#[test]
fn every_host_ends_once_and_concurrency_is_bounded() {
    let fleet = SimFleet::start(6, &["--apply-delay", "200ms"]);
    let events = run_engine(&fleet, fleet.options(rollout(), strategy(), 2), |_, _| {});
    let done = results(&events);
    assert_eq!(
        sorted(done.iter().map(|(n, _, _)| n.clone()).collect()),
        names(1..=6)
    );
    assert!(done
        .iter()
        .all(|(_, s, k)| *s == HostStatus::Changed && k.is_none()));
    assert_eq!(most_in_flight(&events), 2, "-j 2 runs two hosts at a time");
    assert!(matches!(events.first(), Some(Event::RunStarted { .. })));
    assert_eq!(halted(&events), None);
}

#[test]
fn a_failed_canary_keeps_every_other_host_back() {
    let fleet = SimFleet::start(5, &["--apply-delay", "50ms", "--fail-every", "1"]);
    let plan = Strategy {
        canary: 1,
        ..strategy()
    };
    let events = run_engine(&fleet, fleet.options(rollout(), plan, 5), |_, _| {});
    assert_eq!(
        batches(&events),
        [names(1..=1)],
        "no batch after the canary"
    );
    let done = results(&events);
    assert_eq!(
        done[0],
        (
            "sim00001".into(),
            HostStatus::Failed,
            Some(ErrorKind::Puppet)
        )
    );
    for (name, status, kind) in &done[1..] {
        assert_eq!(
            (*status, *kind),
            (HostStatus::Skipped, Some(ErrorKind::Aborted)),
            "{name}"
        );
        assert_eq!(
            message(&events, name),
            "not started: the canary failed (sim00001)"
        );
    }
    assert_eq!(done.len(), 5);
    assert_eq!(
        halted(&events).as_deref(),
        Some("the canary failed (sim00001)")
    );
}

#[test]
fn batches_run_one_after_another_and_the_last_size_repeats() {
    let fleet = SimFleet::start(7, &["--apply-delay", "50ms"]);
    let plan = Strategy {
        canary: 1,
        batches: vec![Size::Count(2)],
        ..strategy()
    };
    let events = run_engine(&fleet, fleet.options(rollout(), plan, 10), |_, _| {});
    assert_eq!(
        batches(&events),
        [names(1..=1), names(2..=3), names(4..=5), names(6..=7)]
    );
    // No host of a batch starts before every host of the one before it has finished.
    let mut open: Vec<String> = Vec::new();
    for e in &events {
        match e {
            Event::BatchStarted { hosts, .. } => {
                assert!(open.is_empty(), "a batch started while {open:?} ran");
                open = hosts.clone();
            }
            Event::HostFinished { outcome } => open.retain(|h| *h != outcome.name),
            Event::HostStarted { host } => assert!(open.contains(host), "{host} outside its batch"),
            _ => {}
        }
    }
    assert!(results(&events)
        .iter()
        .all(|(_, s, _)| *s == HostStatus::Changed));
}

#[test]
fn the_failure_budget_stops_new_hosts_once_exceeded() {
    // Hosts 2, 4 and 6 fail; one failure is allowed, so the second (host 4) halts the run.
    let fleet = SimFleet::start(6, &["--apply-delay", "20ms", "--fail-every", "2"]);
    let plan = Strategy {
        max_failures: Some(Budget::Count(1)),
        ..strategy()
    };
    let events = run_engine(&fleet, fleet.options(rollout(), plan, 1), |_, _| {});
    let statuses: Vec<(String, HostStatus)> = results(&events)
        .into_iter()
        .map(|(n, s, _)| (n, s))
        .collect();
    assert_eq!(
        statuses,
        [
            ("sim00001".into(), HostStatus::Changed),
            ("sim00002".into(), HostStatus::Failed),
            ("sim00003".into(), HostStatus::Changed),
            ("sim00004".into(), HostStatus::Failed),
            ("sim00005".into(), HostStatus::Skipped),
            ("sim00006".into(), HostStatus::Skipped),
        ]
    );
    assert_eq!(
        message(&events, "sim00005"),
        "not started: stopped after 2 failures (more than 1 allowed)"
    );
    assert_eq!(
        halted(&events).as_deref(),
        Some("stopped after 2 failures (more than 1 allowed)")
    );
}

#[test]
fn a_soft_stop_lets_hosts_in_flight_finish_and_starts_no_other() {
    let fleet = SimFleet::start(5, &["--apply-delay", "1s"]);
    let mut started = 0;
    let events = run_engine(
        &fleet,
        fleet.options(rollout(), strategy(), 2),
        |e, stop| {
            if let Event::HostStarted { .. } = e {
                started += 1;
                if started == 2 {
                    let _ = stop.send(Stop::Soft {
                        reason: StopReason::Signal(Signal::Int),
                    });
                }
            }
        },
    );
    let done = results(&events);
    assert_eq!(done.len(), 5);
    for (name, status, kind) in &done {
        if ["sim00001", "sim00002"].contains(&name.as_str()) {
            assert_eq!((*status, *kind), (HostStatus::Changed, None), "{name}");
        } else {
            assert_eq!(
                (*status, *kind),
                (HostStatus::Skipped, Some(ErrorKind::Interrupted)),
                "{name}"
            );
            assert_eq!(message(&events, name), "not started: interrupted by SIGINT");
        }
    }
    assert_eq!(halted(&events), None, "an interrupt is not a halt");
}

#[test]
fn a_hard_stop_cancels_hosts_in_flight_at_once() {
    let fleet = SimFleet::start(3, &["--apply-delay", "30s"]);
    let mut started = 0;
    let began = Instant::now();
    let events = run_engine(
        &fleet,
        fleet.options(rollout(), strategy(), 2),
        |e, stop| match e {
            Event::HostStarted { .. } => started += 1,
            Event::StepStarted { step, .. } if started == 2 && step.as_str() == "apply" => {
                let _ = stop.send(Stop::Hard {
                    reason: StopReason::SecondSignal(Signal::Int),
                });
            }
            _ => {}
        },
    );
    assert!(
        began.elapsed() < Duration::from_secs(15),
        "a hard stop waited for a 30 s apply: {:?}",
        began.elapsed()
    );
    let done = results(&events);
    assert_eq!(done.len(), 3);
    let cancelled: Vec<&str> = done
        .iter()
        .filter(|(_, s, k)| *s == HostStatus::Cancelled && *k == Some(ErrorKind::Interrupted))
        .map(|(n, _, _)| n.as_str())
        .collect();
    assert!(!cancelled.is_empty(), "{done:?}");
    for name in cancelled {
        assert!(
            message(&events, name).ends_with("cut short: interrupted by a second SIGINT"),
            "{}",
            message(&events, name)
        );
    }
    assert!(done.iter().any(|(n, s, k)| n == "sim00003"
        && *s == HostStatus::Skipped
        && *k == Some(ErrorKind::Interrupted)));
}

#[test]
fn the_run_dir_holds_each_hosts_logs() {
    let fleet = SimFleet::start(2, &["--apply-delay", "10ms"]);
    let options = fleet.options(rollout(), strategy(), 2);
    let run_dir = options.meta.run_dir.clone();
    let events = run_engine(&fleet, options, |_, _| {});
    for o in outcomes(&events) {
        assert_eq!(o.log_dir, run_dir.join(&o.name));
        assert!(
            Path::new(&o.log_dir).join("apply.stdout").is_file(),
            "{o:?}"
        );
    }
}

#[test]
fn every_host_and_step_is_placed_on_the_runs_timeline() {
    // One host at a time, so each starts after the one before it ended.
    let fleet = SimFleet::start(3, &["--apply-delay", "150ms"]);
    let events = run_engine(&fleet, fleet.options(rollout(), strategy(), 1), |_, _| {});
    let Some(Event::RunFinished { duration, .. }) = events.last() else {
        panic!("the last event is not RunFinished");
    };
    let mut previous_end = Duration::ZERO;
    for o in outcomes(&events) {
        assert_eq!(o.status, HostStatus::Changed, "{o:?}");
        let t = o.timing.expect("a host that ran has its timing");
        assert!(
            t.started >= previous_end,
            "{}: {t:?} before {previous_end:?}",
            o.name
        );
        assert!(t.connect > Duration::ZERO, "{}: {t:?}", o.name);
        let lock = t.lock.expect("a rollout takes the lock");
        // Steps follow connect and lock, one after another, and the apply takes its delay.
        let mut at = t.started + t.connect + lock;
        assert_eq!(
            o.steps.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
            ["sync", "apply"]
        );
        for s in &o.steps {
            assert!(
                s.started >= at,
                "{}: {} at {:?} before {at:?}",
                o.name,
                s.name,
                s.started
            );
            at = s.started + s.duration;
        }
        assert!(o.steps[1].duration >= Duration::from_millis(150));
        let end = t.started + o.duration;
        assert!(
            at <= end,
            "{}: steps end at {at:?}, the host at {end:?}",
            o.name
        );
        assert!(
            end <= *duration,
            "{}: ends at {end:?}, the run at {duration:?}",
            o.name
        );
        previous_end = end;
    }
    assert!(
        previous_end >= Duration::from_millis(450),
        "three applies one after another"
    );
}

#[test]
fn a_host_never_started_has_no_timing_and_an_unreachable_one_its_connect_time() {
    let mut fleet = SimFleet::start(2, &["--apply-delay", "10ms"]);
    let mut hosts = fleet.hosts.clone();
    // Nothing listens on the fleet's port of an address outside it: refused at once.
    let mut gone = hosts[1].clone();
    gone.name = "gone".into();
    gone.address = "127.42.255.254".into();
    hosts.push(gone);
    let plan = Strategy {
        canary: 0,
        batches: vec![Size::Count(1)],
        max_failures: Some(Budget::Count(0)),
        pause: Duration::ZERO,
    };
    let options = fleet.options(rollout(), plan, 1);
    // The budget of 0 stops the run after `gone` fails; put it first so the others are skipped.
    hosts.rotate_right(1);
    fleet.hosts = hosts;
    let events = run_engine(&fleet, options, |_, _| {});
    let all = outcomes(&events);
    let gone = all.iter().find(|o| o.name == "gone").expect("gone");
    assert_eq!(gone.status, HostStatus::Unreachable, "{gone:?}");
    let t = gone.timing.expect("an unreachable host was started");
    assert_eq!((t.lock, gone.steps.len()), (None, 0));
    assert!(t.connect <= gone.duration, "{t:?} {:?}", gone.duration);
    for o in all.iter().filter(|o| o.name != "gone") {
        assert_eq!((o.status, o.timing), (HostStatus::Skipped, None), "{o:?}");
    }
}
