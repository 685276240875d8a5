//! `--shard K/N` and `capo report merge` against a real local fleet: the parts of a sharded
//! run cover every host once and merge into the report of the same run unsharded; parts of
//! different runs are refused; and the CI and Kubernetes examples in docs/examples/ are
//! validated against their schemas and their commands run end to end. Needs root.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

use crate::common::run::{self, path_arg};
use crate::common::Fleet;

const INDEX: &str = "modules/capo_demo/files/index.html";

/// Where each of host01..host06 falls with 2 and 3 shards: pinned, as in capo-inventory's
/// unit test, so that a change to the hash shows here too.
const PARTS_OF_2: [u32; 6] = [2, 2, 1, 2, 1, 2];
const PARTS_OF_3: [u32; 6] = [1, 2, 3, 1, 2, 2];

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// What must agree between a merged report and the unsharded run's: every host (in order)
/// with its status and error, and the summary.
fn essence(report: &Value) -> (Vec<(String, String, Value)>, Value) {
    let hosts = report["hosts"]
        .as_array()
        .expect("hosts")
        .iter()
        .map(|h| {
            (
                h["name"].as_str().unwrap_or("?").to_string(),
                h["status"].as_str().unwrap_or("?").to_string(),
                h["error"].clone(),
            )
        })
        .collect();
    (hosts, report["summary"].clone())
}

fn names(report: &Value) -> Vec<String> {
    report["hosts"]
        .as_array()
        .expect("hosts")
        .iter()
        .map(|h| h["name"].as_str().unwrap_or("?").to_string())
        .collect()
}

/// `capo report merge PARTS... ARGS...` in the fleet dir.
fn merge(fleet: &Fleet, parts: &[PathBuf], args: &[&str]) -> Output {
    fleet
        .capo()
        .args(["report", "merge"])
        .args(parts)
        .args(args)
        .output()
        .expect("capo runs")
}

#[test]
fn shards_of_2_and_3_cover_every_host_once_and_merge_into_the_unsharded_run() {
    let fleet = Fleet::up(6);
    let first = run::rollout(&fleet, &[]);
    assert_eq!(first.code, 0, "{}", first.dump());
    fleet.commit(INDEX, "<html><body>sharded</body></html>\n", "New index");
    fleet.stop("host05");

    let whole = run::capo(&fleet, "plan", &[]);
    assert_eq!(whole.code, 1, "{}", whole.dump());
    let statuses = whole.statuses();
    assert_eq!(
        statuses,
        run::pairs(&[
            ("host01", "would_change"),
            ("host02", "would_change"),
            ("host03", "would_change"),
            ("host04", "unchanged"),
            ("host05", "unreachable"),
            ("host06", "unchanged"),
        ]),
        "{}",
        whole.dump()
    );
    let all: Vec<String> = fleet.host_names();

    for (count, expected_parts) in [(2u32, &PARTS_OF_2[..]), (3, &PARTS_OF_3[..])] {
        let mut reports = Vec::new();
        let mut seen = Vec::new();
        for index in 1..=count {
            let (mut cmd, path) =
                run::command(&fleet, "plan", &["--shard", &format!("{index}/{count}")]);
            let out = cmd.output().expect("capo runs");
            let report = read_json(&path);
            let want: Vec<String> = all
                .iter()
                .zip(expected_parts)
                .filter(|(_, part)| **part == index)
                .map(|(name, _)| name.clone())
                .collect();
            assert_eq!(names(&report), want, "shard {index}/{count}");
            assert_eq!(
                report["shard"],
                serde_json::json!({"index": index, "count": count, "selected": 6}),
                "shard {index}/{count}"
            );
            let summary = format!(
                "{} host{} (shard {index}/{count} of 6 selected): ",
                want.len(),
                if want.len() == 1 { "" } else { "s" }
            );
            assert!(
                String::from_utf8_lossy(&out.stdout).contains(&summary),
                "{summary}\n{}",
                String::from_utf8_lossy(&out.stdout)
            );
            let has_unreachable = want.iter().any(|n| n == "host05");
            assert_eq!(
                out.status.code(),
                Some(if has_unreachable { 1 } else { 0 }),
                "shard {index}/{count}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            seen.extend(want);
            reports.push(path);
        }
        let unique: BTreeSet<&String> = seen.iter().collect();
        assert_eq!(seen.len(), 6, "{count} shards: every host once: {seen:?}");
        assert_eq!(unique.len(), 6, "{count} shards: no host twice: {seen:?}");

        // Given in reverse: the merge puts hosts back in inventory order.
        reports.reverse();
        let merged_path = fleet.dir.join(format!("merged-{count}.json"));
        let html_path = fleet.dir.join(format!("merged-{count}.html"));
        let out = merge(
            &fleet,
            &reports,
            &[
                "--report",
                path_arg(&merged_path),
                "--html",
                path_arg(&html_path),
                "--format",
                "json",
            ],
        );
        let merged = read_json(&merged_path);
        // The page is the merged report's, as `capo report html` renders it.
        let page = fleet
            .capo()
            .args(["report", "html"])
            .arg(&merged_path)
            .output()
            .expect("capo runs");
        assert_eq!(page.status.code(), Some(0));
        assert_eq!(
            std::fs::read(&html_path).expect("merged page"),
            page.stdout,
            "{count} shards"
        );
        assert_eq!(out.status.code(), Some(whole.code), "{count} shards");
        assert_eq!(essence(&merged), essence(&whole.report), "{count} shards");
        assert_eq!(merged["mode"], "plan");
        assert_eq!(
            merged["parts"].as_array().map(Vec::len),
            Some(count as usize)
        );
        assert_eq!(
            serde_json::from_slice::<Value>(&out.stdout).expect("stdout is the report"),
            merged
        );
    }
}

#[test]
fn parts_of_different_runs_are_refused_and_nothing_is_written() {
    let fleet = Fleet::up(3);
    let head = fleet.origin_head();
    let newer = fleet.commit(INDEX, "<html><body>newer</body></html>\n", "Newer index");
    assert_ne!(head, newer);
    let report = |args: &[&str]| {
        let (mut cmd, path) = run::command(&fleet, "plan", args);
        let out = cmd.output().expect("capo runs");
        assert!(path.exists(), "{}", String::from_utf8_lossy(&out.stderr));
        path
    };
    let at_head = report(&["--rev", &head, "--shard", "1/2"]);
    let at_newer = report(&["--rev", &newer, "--shard", "2/2"]);
    let merged = fleet.dir.join("merged.json");
    let out = merge(
        &fleet,
        &[at_head.clone(), at_newer.clone()],
        &["--report", path_arg(&merged)],
    );
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "capo: {} pinned --rev {head} and {} --rev {newer}: they are not parts of one run\n",
            at_head.display(),
            at_newer.display()
        )
    );
    assert!(!merged.exists(), "a refused merge writes no report");

    // The same shard twice, and a shard with the whole selection.
    let again = report(&["--rev", &head, "--shard", "1/2"]);
    let out = merge(&fleet, &[at_head.clone(), again.clone()], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "capo: {} and {} are both shard 1/2\n",
            at_head.display(),
            again.display()
        )
    );
    let whole = report(&["--rev", &head]);
    let out = merge(&fleet, &[whole.clone(), at_head.clone()], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "capo: {} is shard no shard (the whole selection) and {} 1/2: they are not parts of one run\n",
            whole.display(),
            at_head.display()
        )
    );
    // Two whole runs overlap on every host.
    let out = merge(&fleet, &[whole.clone(), whole.clone()], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "capo: host host01 is in both {} and {}: the parts overlap\n",
            whole.display(),
            whole.display()
        )
    );
    // A missing part.
    let out = merge(&fleet, std::slice::from_ref(&at_head), &[]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "capo: shard 2/2 missing: the run has 2 parts and each must be merged (a job whose hosts failed still writes its report; pass it too)\n"
    );
}

#[test]
fn auto_takes_the_shard_from_the_job_index_and_shuffle_repeats_with_a_seed() {
    let fleet = Fleet::up(6);
    let exec = |args: &[&str], env: &[(&str, &str)]| {
        let (mut cmd, path) = run::command(&fleet, "exec", args);
        cmd.args(["--", "true"]);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().expect("capo runs");
        (out, path)
    };
    let (out, path) = exec(&["--shard", "auto/3"], &[("JOB_COMPLETION_INDEX", "1")]);
    assert_eq!(out.status.code(), Some(0));
    let report = read_json(&path);
    assert_eq!(names(&report), ["host02", "host05", "host06"]);
    assert_eq!(report["shard"]["index"], 2);

    let before: usize = (1..=6)
        .map(|i| fleet.sshd_connections(&format!("host{i:02}")))
        .sum();
    let (out, path) = exec(&["--shard", "auto/3"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "capo: --shard auto/3 takes the part from JOB_COMPLETION_INDEX, which is not set (a Kubernetes Indexed Job sets it); elsewhere give --shard K/3\n"
    );
    assert!(!path.exists());
    let (out, _) = exec(&["--shard", "auto/3"], &[("JOB_COMPLETION_INDEX", "3")]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "capo: JOB_COMPLETION_INDEX=\"3\" is not a number from 0 to 2 (--shard auto/3)\n"
    );
    let after: usize = (1..=6)
        .map(|i| fleet.sshd_connections(&format!("host{i:02}")))
        .sum();
    assert_eq!(before, after, "no host contacted by a refused shard");

    // The same seed gives the same order; the order is recorded.
    let order = |seed: &str| {
        let (out, path) = exec(
            &[
                "--shard", "2/2", "--order", "shuffle", "--seed", seed, "-j", "1",
            ],
            &[],
        );
        assert_eq!(out.status.code(), Some(0));
        let report = read_json(&path);
        assert_eq!(report["seed"], seed);
        names(&report)
    };
    let a = order("build-1234");
    assert_eq!(a, order("build-1234"));
    let mut sorted = a.clone();
    sorted.sort();
    assert_eq!(sorted, ["host01", "host02", "host04", "host06"]);
    let orders: BTreeSet<Vec<String>> = ["s1", "s2", "s3", "s4", "s5"]
        .iter()
        .map(|s| order(s))
        .collect();
    assert!(orders.len() > 1, "five seeds, one order: {orders:?}");
}

/// A YAML file of docs/examples, as JSON values.
fn example(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("docs/examples")
        .join(name);
    let text = std::fs::read_to_string(&path).expect("example");
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Runs a schema validator from the tools `scripts/install-deps.sh` installs.
fn validate(tool: &str, args: &[&str]) {
    let bin = Path::new("/opt/capo-tools/bin").join(tool);
    let out = Command::new(&bin)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{} ({e}): run scripts/install-deps.sh", bin.display()));
    assert!(
        out.status.success(),
        "{tool} {args:?}:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/examples")
}

/// The fleet's inventory with its key paths made absolute, at `dir/inventory.toml`, as a
/// job's checkout (or a ConfigMap) would hold it.
fn inventory_in(fleet: &Fleet, dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).expect("dir");
    let text = std::fs::read_to_string(&fleet.inventory).expect("inventory");
    let keys = format!("\"{}/keys/", fleet.dir.display());
    let path = dir.join("inventory.toml");
    std::fs::write(&path, text.replace("\"keys/", &keys)).expect("write");
    path
}

/// A shell command as a CI runner or a pod would run it: capo on PATH, the fleet's HOME.
fn shell(fleet: &Fleet, argv: &[&str], cwd: &Path, env: &[(String, String)]) -> Output {
    let capo_dir = Path::new(env!("CARGO_BIN_EXE_capo"))
        .parent()
        .expect("bin dir")
        .to_path_buf();
    let path = format!(
        "{}:{}",
        capo_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut cmd = Command::new(argv[0]);
    cmd.args(&argv[1..])
        .current_dir(cwd)
        .env("PATH", path)
        .env("HOME", &fleet.dir)
        .env("NO_COLOR", "1")
        .env_remove("SSH_AUTH_SOCK")
        .env_remove("CAPO_INVENTORY")
        .env_remove("GITHUB_STEP_SUMMARY");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("runs")
}

/// The workflow's jobs run as GitHub Actions would run them, on this machine: each matrix
/// entry in its own workspace, `run:` steps with bash as Actions does, artifacts uploaded
/// and downloaded as directories; `actions/checkout` puts the inventory in the workspace.
#[test]
fn the_github_actions_example_validates_and_rolls_out_in_shards() {
    let file = examples_dir().join("github-actions-shards.yml");
    validate(
        "check-jsonschema",
        &[
            "--builtin-schema",
            "vendor.github-workflows",
            path_arg(&file),
        ],
    );
    let workflow = example("github-actions-shards.yml");
    let fleet = Fleet::up(6);
    let sha = fleet.commit(INDEX, "<html><body>from CI</body></html>\n", "CI rollout");
    let artifacts = fleet.dir.join("artifacts");

    let shard_job = &workflow["jobs"]["shard"];
    let matrix: Vec<String> = shard_job["strategy"]["matrix"]["shard"]
        .as_array()
        .expect("matrix")
        .iter()
        .map(|v| v.to_string())
        .collect();
    assert_eq!(matrix, ["1", "2", "3"]);
    for shard in &matrix {
        let workspace = fleet.dir.join(format!("ws-shard-{shard}"));
        let code = run_job(
            &fleet,
            shard_job,
            &workspace,
            &artifacts,
            &[("matrix.shard", shard)],
            &sha,
        );
        assert_eq!(code, 0, "shard {shard}");
    }
    let merge_job = &workflow["jobs"]["merge"];
    assert_eq!(merge_job["needs"], "shard");
    assert_eq!(merge_job["if"], "always()");
    let workspace = fleet.dir.join("ws-merge");
    let code = run_job(&fleet, merge_job, &workspace, &artifacts, &[], &sha);
    assert_eq!(code, 0, "merge");

    let merged = read_json(&artifacts.join("capo-report/report.json"));
    assert_eq!(names(&merged), fleet.host_names());
    assert!(
        merged["hosts"]
            .as_array()
            .expect("hosts")
            .iter()
            .all(|h| h["status"] == "changed" && h["rev_after"] == sha.as_str()),
        "{merged:#}"
    );
    assert_eq!(merged["target_rev"], sha.as_str());
    let junit = std::fs::read_to_string(artifacts.join("capo-report/junit.xml")).expect("junit");
    assert_eq!(junit.matches("<testcase ").count(), 6, "{junit}");
    assert!(artifacts.join("capo-report/summary.md").exists());
    for name in fleet.host_names() {
        assert_eq!(fleet.checkout_head(&name), sha, "{name}");
    }
}

/// Runs one job's steps; returns the exit status of its first failed `run:` step (0 when
/// all passed). Steps with `if: always()` run after a failure, as on Actions.
fn run_job(
    fleet: &Fleet,
    job: &Value,
    workspace: &Path,
    artifacts: &Path,
    expressions: &[(&str, &str)],
    sha: &str,
) -> i32 {
    std::fs::create_dir_all(workspace).expect("workspace");
    let mut env: Vec<(String, String)> = vec![("GITHUB_SHA".into(), sha.into())];
    if let Some(map) = job["env"].as_object() {
        for (k, v) in map {
            env.push((k.clone(), v.as_str().expect("env value").to_string()));
        }
    }
    let expand = |text: &str| {
        let mut text = text.to_string();
        for (name, value) in expressions {
            text = text.replace(&format!("${{{{ {name} }}}}"), value);
        }
        assert!(!text.contains("${{"), "unknown expression in {text}");
        text
    };
    let mut failed = 0;
    for step in job["steps"].as_array().expect("steps") {
        if failed != 0 && step["if"] != "always()" {
            continue;
        }
        let with = &step["with"];
        match step["uses"].as_str() {
            Some(u) if u.starts_with("actions/checkout@") => {
                inventory_in(fleet, workspace);
            }
            Some(u) if u.starts_with("actions/upload-artifact@") => {
                let name = expand(with["name"].as_str().expect("name"));
                let dir = artifacts.join(&name);
                std::fs::create_dir_all(&dir).expect("artifact dir");
                for path in expand(with["path"].as_str().expect("path")).split_whitespace() {
                    std::fs::copy(workspace.join(path), dir.join(path))
                        .unwrap_or_else(|e| panic!("upload {path}: {e}"));
                }
            }
            Some(u) if u.starts_with("actions/download-artifact@") => {
                assert_eq!(with["merge-multiple"], true);
                let prefix = with["pattern"]
                    .as_str()
                    .expect("pattern")
                    .trim_end_matches('*');
                for entry in std::fs::read_dir(artifacts).expect("artifacts") {
                    let entry = entry.expect("entry");
                    if !entry.file_name().to_string_lossy().starts_with(prefix) {
                        continue;
                    }
                    for file in std::fs::read_dir(entry.path()).expect("artifact") {
                        let file = file.expect("file");
                        std::fs::copy(file.path(), workspace.join(file.file_name()))
                            .expect("download");
                    }
                }
            }
            Some(other) => panic!("the test runner does not know {other}"),
            None => {
                let script = expand(step["run"].as_str().expect("run"));
                let out = shell(
                    fleet,
                    &[
                        "bash",
                        "--noprofile",
                        "--norc",
                        "-eo",
                        "pipefail",
                        "-c",
                        &script,
                    ],
                    workspace,
                    &env,
                );
                let code = out.status.code().unwrap_or(-1);
                assert!(
                    code == 0 || code == 1,
                    "{script}\nexit {code}\n{}",
                    String::from_utf8_lossy(&out.stderr)
                );
                if code != 0 && failed == 0 {
                    failed = code;
                }
            }
        }
    }
    failed
}

/// The manifests' commands as the pods would run them: `$(VAR)` expanded from the
/// container's env (and JOB_COMPLETION_INDEX, which the Job controller adds), the volumes'
/// mount paths mapped to directories of the test.
#[test]
fn the_kubernetes_example_validates_and_rolls_out_in_shards() {
    let job_file = examples_dir().join("k8s-indexed-job.yaml");
    let merge_file = examples_dir().join("k8s-merge-job.yaml");
    validate(
        "kubernetes-validate",
        &["--strict", path_arg(&job_file), path_arg(&merge_file)],
    );
    let fleet = Fleet::up(6);
    let sha = fleet.commit(INDEX, "<html><body>from k8s</body></html>\n", "k8s rollout");
    let etc = fleet.dir.join("k8s-etc-capo");
    inventory_in(&fleet, &etc);
    let reports = fleet.dir.join("k8s-reports");
    std::fs::create_dir_all(&reports).expect("reports");
    let mounts = [("/etc/capo", etc.clone()), ("/reports", reports.clone())];
    let map = |text: &str| {
        let mut text = text.to_string();
        for (mount, dir) in &mounts {
            text = text.replace(mount, &dir.display().to_string());
        }
        text
    };

    let job = example("k8s-indexed-job.yaml");
    assert_eq!(job["spec"]["completionMode"], "Indexed");
    let completions = job["spec"]["completions"].as_u64().expect("completions");
    let container = &job["spec"]["template"]["spec"]["containers"][0];
    for index in 0..completions {
        // The manifest's revision is an example; the test rolls out its commit.
        let (argv, env) = pod(
            container,
            &[
                ("CAPO_REV", sha.clone()),
                ("JOB_COMPLETION_INDEX", index.to_string()),
            ],
            &map,
        );
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        let out = shell(&fleet, &argv, &fleet.dir, &env);
        assert_eq!(
            out.status.code(),
            Some(0),
            "pod {index}: {argv:?}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    let merge_job = example("k8s-merge-job.yaml");
    let container = &merge_job["spec"]["template"]["spec"]["containers"][0];
    let (argv, env) = pod(container, &[], &map);
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let out = shell(&fleet, &argv, &fleet.dir, &env);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{argv:?}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run_dir = reports.join("rollout-1");
    let merged = read_json(&run_dir.join("report.json"));
    assert_eq!(names(&merged), fleet.host_names());
    assert_eq!(merged["summary"]["changed"], 6, "{merged:#}");
    assert_eq!(merged["parts"].as_array().map(Vec::len), Some(3));
    assert!(run_dir.join("junit.xml").exists() && run_dir.join("summary.md").exists());

    // A pod that never wrote its report: the merge refuses, and writes nothing.
    std::fs::remove_file(run_dir.join("report.json")).expect("rm");
    std::fs::remove_file(run_dir.join("report-1.json")).expect("rm");
    let out = shell(&fleet, &argv, &fleet.dir, &env);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "capo: shard 2/3 missing: the run has 3 parts and each must be merged (a job whose hosts failed still writes its report; pass it too)\n"
    );
    assert!(!run_dir.join("report.json").exists());
}

/// A container's env (values with mount paths mapped by `map`, `set` replacing or adding
/// variables) and its command with `$(VAR)` expanded from that env, as the kubelet runs it.
fn pod(
    container: &Value,
    set: &[(&str, String)],
    map: &dyn Fn(&str) -> String,
) -> (Vec<String>, Vec<(String, String)>) {
    let mut env: Vec<(String, String)> = container["env"]
        .as_array()
        .expect("env")
        .iter()
        .map(|e| {
            let name = e["name"].as_str().expect("name").to_string();
            let value = match set.iter().find(|(k, _)| *k == name) {
                Some((_, v)) => v.clone(),
                None => map(e["value"].as_str().expect("value")),
            };
            (name, value)
        })
        .collect();
    for (k, v) in set {
        if !env.iter().any(|(name, _)| name == k) {
            env.push((k.to_string(), v.clone()));
        }
    }
    let argv = container["command"]
        .as_array()
        .expect("command")
        .iter()
        .map(|a| {
            let mut a = a.as_str().expect("arg").to_string();
            for (k, v) in &env {
                a = a.replace(&format!("$({k})"), v);
            }
            map(&a)
        })
        .collect();
    (argv, env)
}

#[test]
fn rerun_takes_the_hosts_of_the_same_shard() {
    let fleet = Fleet::up(6);
    let exec = |args: &[&str]| {
        let (mut cmd, path) = run::command(&fleet, "exec", args);
        let out = cmd.args(["--", "true"]).output().expect("capo runs");
        (out, path)
    };
    // Shard 1/3 is host01 and host04; host01 is down for its run.
    fleet.stop("host01");
    let (out, path) = exec(&["--shard", "1/3"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        crate::common::run::statuses_of(&read_json(&path)),
        run::pairs(&[("host01", "unreachable"), ("host04", "ok")])
    );
    fleet.start("host01");
    // A later run of another shard, and of the whole fleet's other shard, all ok.
    let (out, _) = exec(&["--shard", "2/3"]);
    assert_eq!(out.status.code(), Some(0));

    let (out, path) = exec(&["--shard", "1/3", "--rerun", "unreachable"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        crate::common::run::statuses_of(&read_json(&path)),
        run::pairs(&[("host01", "ok")])
    );
    // Shard 2/3's latest run had nothing unreachable.
    let (out, _) = exec(&["--shard", "2/3", "--rerun", "unreachable"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("capo: --rerun: the last exec of ")
            && stderr.contains(" (shard 2/3) (")
            && stderr.ends_with(") has no unreachable hosts\n"),
        "{stderr}"
    );
}
