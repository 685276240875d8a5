//! Steps that work with an exact target revision: `rollout --rev` (fast-forward to it, never
//! backwards) and `plan` (a dry run of it in a temporary copy), and reading a run's results.

use std::time::Duration;

use capo_inventory::Settings;

use super::{
    apply_command, deadline_wrapper, lit, render_display, render_shell, result_files, step_lock,
    Step, AT_CHECKOUT_TOP, MARK,
};
use crate::outcome::StepName;
use crate::shell::{join, quote};

/// How many incoming commit subjects a plan lists per host.
pub const INCOMING_SHOWN: usize = 10;

/// Checks that the script is at the top of the checkout, after recording HEAD.
fn enter_checkout(settings: &Settings) -> String {
    format!(
        "cd -- {dir} 2>/dev/null || {{ echo '{MARK}fail=no-repo-dir'; exit 1; }}\n\
         {AT_CHECKOUT_TOP} || {{ echo '{MARK}fail=not-a-repo'; exit 1; }}\n\
         b=$(git rev-parse --verify -q HEAD)\n\
         echo \"{MARK}rev-before=$b\"\n\
         echo \"{MARK}rev-after=$b\"\n",
        dir = quote(&settings.repo_dir),
    )
}

/// Fetches from the remote (which only moves remote-tracking refs and FETCH_HEAD) and sets `t`
/// to the target commit: `rev` as a remote branch, a tag or a commit the remote has, or the
/// remote's `branch` when no revision is asked for.
fn fetch_and_resolve(settings: &Settings, rev: Option<&str>) -> String {
    let remote = &settings.remote;
    // Explicit refspecs, and tags into the remote's own namespace: fetching writes nothing but
    // remote-tracking refs (and FETCH_HEAD), never a local branch or tag.
    let fetch = format!(
        "LC_ALL=C GIT_TERMINAL_PROMPT=0 git fetch --quiet --no-tags {} {} {} || {{ echo '{MARK}fail=fetch'; exit 1; }}\n",
        quote(remote),
        quote(&format!("+refs/heads/*:refs/remotes/{remote}/*")),
        quote(&format!("+refs/tags/*:refs/remotes/{remote}/tags/*")),
    );
    let resolve = match rev {
        Some(rev) => format!(
            "t=$(git rev-parse --verify -q {remote_branch} 2>/dev/null || git rev-parse --verify -q {tag} 2>/dev/null || git rev-parse --verify -q {raw} 2>/dev/null)\n\
             if [ -z \"$t\" ] || [ -z \"$(git for-each-ref --count=1 --contains \"$t\" {remote_refs} 2>/dev/null)\" ]; then echo '{MARK}fail=rev-not-found'; exit 1; fi\n",
            remote_branch = quote(&format!("refs/remotes/{remote}/{rev}^{{commit}}")),
            tag = quote(&format!("refs/remotes/{remote}/tags/{rev}^{{commit}}")),
            raw = quote(&format!("{rev}^{{commit}}")),
            remote_refs = quote(&format!("refs/remotes/{remote}")),
        ),
        None => format!(
            "t=$(git rev-parse --verify -q {} 2>/dev/null) || {{ echo '{MARK}fail=rev-not-found'; exit 1; }}\n",
            quote(&format!("refs/remotes/{remote}/{}^{{commit}}", settings.branch))
        ),
    };
    format!("{fetch}{resolve}echo \"{MARK}target=$t\"\n")
}

/// Reports a checkout that has commits the target lacks, and exits.
const DIVERGED: &str = "echo \"::capo:fail=diverged\"\n\
    echo \"::capo:local-only=$(git rev-list --count \"$t..$b\" 2>/dev/null)\"\n\
    echo \"::capo:remote-only=$(git rev-list --count \"$b..$t\" 2>/dev/null)\"\n";

/// `rollout --rev`: fetch, then fast-forward the checkout to the target. A checkout already
/// there does nothing; one already past it is left alone (`ahead`); one that has diverged from
/// it fails. capo never moves a checkout backwards.
pub fn sync_to_rev(settings: &Settings, rev: &str, holder: &str, deadline: Duration) -> Step {
    let inner = format!(
        "{lock}{enter}{resolve}\
         if [ \"$b\" = \"$t\" ]; then echo \"{MARK}rev-after=$b\"; exit 0; fi\n\
         if [ -n \"$b\" ] && git merge-base --is-ancestor \"$t\" \"$b\"; then echo '{MARK}ahead=1'; echo \"{MARK}rev-after=$b\"; exit 0; fi\n\
         if [ -n \"$b\" ] && ! git merge-base --is-ancestor \"$b\" \"$t\"; then {DIVERGED}echo \"{MARK}rev-after=$b\"; exit 1; fi\n\
         LC_ALL=C git merge --ff-only --quiet \"$t\"\n\
         rc=$?\n\
         echo \"{MARK}rev-after=$(git rev-parse --verify -q HEAD)\"\n\
         if [ $rc -ne 0 ]; then git status --porcelain 2>/dev/null | head -n 20 | sed 's/^/{MARK}dirty=/'; fi\n\
         exit $rc\n",
        lock = step_lock(settings, holder),
        enter = enter_checkout(settings),
        resolve = fetch_and_resolve(settings, Some(rev)),
    );
    Step {
        name: StepName::Sync,
        display: format!(
            "{} && {}",
            join(["git", "fetch", &settings.remote]),
            join(["git", "merge", "--ff-only", rev])
        ),
        script: deadline_wrapper(&inner, deadline),
    }
}

/// `plan`: fetch, resolve the target, list the incoming commits, materialize the target in a
/// temporary directory with `git archive` (nothing is written to the checkout or its git
/// directory), and run `puppet apply --noop` there with every piece of Puppet state pointed
/// into that directory. The directory is removed by [`collect`] afterwards.
pub fn plan(settings: &Settings, rev: Option<&str>, deadline: Duration, show_diff: bool) -> Step {
    let noop = [lit("--noop")];
    let command = apply_command(settings, &noop);
    let inner = format!(
        "{enter}{resolve}\
         if [ -n \"$b\" ] && [ \"$b\" != \"$t\" ] && git merge-base --is-ancestor \"$t\" \"$b\"; then echo '{MARK}ahead=1'; exit 0; fi\n\
         if [ -n \"$b\" ] && ! git merge-base --is-ancestor \"$b\" \"$t\"; then {DIVERGED}exit 1; fi\n\
         if [ -n \"$b\" ]; then range=\"$b..$t\"; else range=\"$t\"; fi\n\
         echo \"{MARK}incoming-count=$(git rev-list --count \"$range\")\"\n\
         git log -n {INCOMING_SHOWN} --format='{MARK}incoming=%h %s' \"$range\"\n\
         command -v {puppet} >/dev/null 2>&1 || {{ echo '{MARK}fail=no-puppet'; echo \"{MARK}path=$PATH\"; exit 127; }}\n\
         r=$(mktemp -d \"${{TMPDIR:-/tmp}}/capo-plan.XXXXXX\") || exit 1\n\
         echo \"{MARK}results=$r\"\n\
         mkdir \"$r/code\" && git archive --format=tar \"$t\" | tar -xf - -C \"$r/code\" || {{ echo '{MARK}fail=archive'; exit 1; }}\n\
         cd \"$r/code\" || exit 1\n\
         exec {command} {results}\n",
        enter = enter_checkout(settings),
        resolve = fetch_and_resolve(settings, rev),
        puppet = quote(&settings.puppet),
        command = render_shell(&command, "\"$r\"/code"),
        results = render_shell(&result_files(show_diff), "\"$r\""),
    );
    Step {
        name: StepName::Plan,
        display: render_display(&command, "<target>"),
        script: deadline_wrapper(&inner, deadline),
    }
}

/// Separates the files in [`collect`]'s output.
const EOF_MARK: &str = "::capo:eof=";

/// Files a run left in its results directory.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Collected {
    /// `last_run_summary.yaml` of the run.
    pub summary: String,
    /// `last_run_report.yaml` of the run.
    pub report: String,
    /// Puppet's log as JSON lines.
    pub log: String,
}

/// Prints the results directory's files and removes the directory. `dir` comes from the host;
/// it is only used when it looks like one capo made.
pub fn collect(dir: &str) -> Option<String> {
    let name = dir.rsplit('/').next().unwrap_or("");
    let ours = dir.starts_with('/')
        && (name.starts_with("capo-run.") || name.starts_with("capo-plan."))
        && !dir.contains(['\n', '\0']);
    ours.then(|| {
        format!(
            "sh -c {}",
            quote(&format!(
                "r={dir}\n\
                 for f in summary.yaml report.yaml log.jsonl; do cat \"$r/$f\" 2>/dev/null; printf '\\n{EOF_MARK}%s\\n' \"$f\"; done\n\
                 rm -rf -- \"$r\"\n",
                dir = quote(dir)
            ))
        )
    })
}

/// Splits [`collect`]'s output back into files.
pub fn split_collected(output: &str) -> Collected {
    let mut collected = Collected::default();
    let mut rest = output;
    for slot in [
        &mut collected.summary,
        &mut collected.report,
        &mut collected.log,
    ] {
        let Some(at) = rest.find(&format!("\n{EOF_MARK}")) else {
            break;
        };
        *slot = rest[..at].to_string();
        rest = rest[at + 1..]
            .split_once('\n')
            .map(|(_, after)| after)
            .unwrap_or("");
    }
    collected
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collect_only_touches_directories_capo_made() {
        assert!(collect("/tmp/capo-plan.AbC123").is_some());
        assert!(collect("/var/tmp/capo-run.x").is_some());
        assert!(collect("/").is_none());
        assert!(collect("/home/me").is_none());
        assert!(collect("relative/capo-run.x").is_none());
    }

    #[test]
    fn collected_files_are_split_back() {
        let out = "a: 1\n\n::capo:eof=summary.yaml\n--- r\n\n::capo:eof=report.yaml\n{}\n\n::capo:eof=log.jsonl\n";
        let c = split_collected(out);
        assert_eq!(c.summary, "a: 1\n");
        assert_eq!(c.report, "--- r\n");
        assert_eq!(c.log, "{}\n");
    }
}
