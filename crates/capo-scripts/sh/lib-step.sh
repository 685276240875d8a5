# shellcheck shell=sh
# capo: functions shared by the steps that work in a checkout (lock, sync, sync-rev, apply,
# plan). Not a script of its own: capo sends it in front of each of them, and they source it
# from their own directory when run by hand. Marker lines go to stdout as ::capo:KEY=VALUE.

# at_top: whether the current directory is the top of a git checkout (not merely somewhere
# inside one: git would happily work on an enclosing repository).
at_top() {
  t=$(git rev-parse --show-toplevel 2>/dev/null) && [ -n "$t" ] &&
    [ "$(cd "$t" && pwd -P)" = "$(pwd -P)" ]
}

# git_dir REPO: prints the absolute path of the git directory of the checkout at REPO (its
# common directory, for a worktree), where the lock files live; fails when REPO is not the
# top of a checkout.
git_dir() {
  (cd -- "$1" 2>/dev/null && at_top && d=$(git rev-parse --git-common-dir 2>/dev/null) &&
    [ -n "$d" ] && cd "$d" && pwd)
}

# step_lock REPO HOLDER: a shared lock on capo.lock.step for as long as this step's
# processes live (fd 8 is inherited by all of them), so that a later run can tell that a
# step outlived its controller. No HOLDER (a run with lock = false, or a run by hand): none.
step_lock() {
  [ -n "$2" ] || return 0
  g=$(git_dir "$1") && [ -w "$g" ] && command -v flock >/dev/null 2>&1 || return 0
  exec 8<>"$g/capo.lock.step" && flock -s -n 8 && printf '%s\n' "$2" >"$g/capo.lock.step"
}

# enter_checkout REPO: cd to the checkout (or say why not and exit 1); sets b to HEAD and
# reports it as both rev-before and rev-after.
enter_checkout() {
  cd -- "$1" 2>/dev/null || { echo '::capo:fail=no-repo-dir'; exit 1; }
  at_top || { echo '::capo:fail=not-a-repo'; exit 1; }
  b=$(git rev-parse --verify -q HEAD)
  echo "::capo:rev-before=$b"
  echo "::capo:rev-after=$b"
}

# fetch_target REMOTE BRANCH REV: fetches from REMOTE (which only moves remote-tracking refs
# and FETCH_HEAD: explicit refspecs, tags into the remote's own namespace) and sets t to the
# target commit: REV as a branch of the remote, a tag, or a commit the remote has; without
# REV, the remote's BRANCH. Reports it as target, or fails (fetch, rev-not-found) and exits 1.
fetch_target() {
  LC_ALL=C GIT_TERMINAL_PROMPT=0 git fetch --quiet --no-tags "$1" \
    "+refs/heads/*:refs/remotes/$1/*" "+refs/tags/*:refs/remotes/$1/tags/*" ||
    { echo '::capo:fail=fetch'; exit 1; }
  if [ -n "$3" ]; then
    t=$(git rev-parse --verify -q "refs/remotes/$1/$3^{commit}" 2>/dev/null ||
      git rev-parse --verify -q "refs/remotes/$1/tags/$3^{commit}" 2>/dev/null ||
      git rev-parse --verify -q "$3^{commit}" 2>/dev/null)
    if [ -z "$t" ] || [ -z "$(git for-each-ref --count=1 --contains "$t" "refs/remotes/$1" 2>/dev/null)" ]; then
      echo '::capo:fail=rev-not-found'
      exit 1
    fi
  else
    t=$(git rev-parse --verify -q "refs/remotes/$1/$2^{commit}" 2>/dev/null) ||
      { echo '::capo:fail=rev-not-found'; exit 1; }
  fi
  echo "::capo:target=$t"
}

# diverged: reports a checkout at b that has commits the target t lacks.
diverged() {
  echo '::capo:fail=diverged'
  echo "::capo:local-only=$(git rev-list --count "$t..$b" 2>/dev/null)"
  echo "::capo:remote-only=$(git rev-list --count "$b..$t" 2>/dev/null)"
}

# moduledir ROOT: the directory ROOT/Puppetfile's modules go to: its `moduledir` (relative to
# ROOT unless absolute, as r10k and g10k take it), else ROOT/modules.
moduledir() {
  d=$(sed -n "s/^[[:space:]]*moduledir[[:space:]]*[\"']\([^\"']*\)[\"'].*/\1/p" "$1/Puppetfile" | tail -n 1)
  case $d in '') d=$1/modules ;; /*) ;; *) d=$1/$d ;; esac
  printf '%s\n' "$d"
}

# stamp_key INSTALLER ROOT: the first line of a modules stamp for ROOT's Puppetfile: which
# installer installed from which exact Puppetfile (its checksum and size).
stamp_key() {
  printf '%s %s\n' "$1" "$(cksum <"$2/Puppetfile")"
}

# modules_current INSTALLER PUPPETFILE_ROOT MODULES_ROOT STAMP: whether the modules stamp
# STAMP records an install by INSTALLER from a Puppetfile identical to PUPPETFILE_ROOT's, and
# every module it installed is still in MODULES_ROOT's moduledir.
modules_current() {
  [ -f "$4" ] && [ "$(head -n 1 "$4")" = "$(stamp_key "$1" "$2")" ] || return 1
  md=$(moduledir "$3")
  tail -n +2 "$4" | {
    while IFS= read -r m; do [ -e "$md/$m" ] || exit 1; done
  }
}

# modules_state ROOT INSTALLER: whether the checkout's Puppetfile modules need installing,
# as modules=none (no Puppetfile, or INSTALLER is ignore), current (installed from this
# very Puppetfile and all there, per capo.modules in the git directory) or stale.
modules_state() {
  if [ "$2" = ignore ] || [ ! -f "$1/Puppetfile" ]; then
    echo '::capo:modules=none'
  elif modules_current "$2" "$1" "$1" "$(git_dir "$1")/capo.modules"; then
    echo '::capo:modules=current'
  else
    echo '::capo:modules=stale'
  fi
}

# install_modules ROOT INSTALLER: installs ROOT/Puppetfile's modules with INSTALLER (r10k or
# g10k), in ROOT, with the installer's own cache. Without INSTALLER on PATH: markers
# fail=no-installer, installer=NAME and pkg=PACKAGE_MANAGER (apt, dnf, yum, zypper, apk or
# empty) and exit 127. Returns the installer's status.
install_modules() {
  if ! command -v "$2" >/dev/null 2>&1; then
    echo '::capo:fail=no-installer'
    echo "::capo:installer=$2"
    echo "::capo:pkg=$(pkg_manager)"
    exit 127
  fi
  case $2 in
    r10k) (cd -- "$1" && LC_ALL=C r10k puppetfile install --verbose info) ;;
    g10k) (cd -- "$1" && LC_ALL=C g10k -puppetfile) ;;
    *) echo "capo: unknown module installer $2" >&2; return 2 ;;
  esac
}

# pkg_manager: the host's package manager (apt, dnf, yum, zypper or apk), or nothing, for
# the install commands capo's messages suggest.
pkg_manager() {
  for m in apt-get dnf yum zypper apk; do
    if command -v "$m" >/dev/null 2>&1; then
      echo "${m%-get}"
      return 0
    fi
  done
}

# record_modules INSTALLER ROOT STAMP: writes the modules stamp STAMP (atomically) after a
# successful install from ROOT's Puppetfile: stamp_key, then each entry of the moduledir.
record_modules() {
  { stamp_key "$1" "$2" && ls -A "$(moduledir "$2")"; } >"$3.tmp" && mv -f "$3.tmp" "$3"
}

# no_puppet PUPPET: unless PUPPET is a command here, says so with the PATH and exits 127.
no_puppet() {
  command -v "$1" >/dev/null 2>&1 && return 0
  echo '::capo:fail=no-puppet'
  echo "::capo:path=$PATH"
  exit 127
}

# run_puppet ROOT RESULTS PUPPET ENVIRONMENT MANIFEST MODULEPATH CERTNAME SHOW_DIFF NOOP REV
# [PUPPET_ARG...] runs ROOT as the Puppet environment ENVIRONMENT: RESULTS/env/ENVIRONMENT
# is a link to ROOT, and it execs `PUPPET apply --detailed-exitcodes --color=false
# --environmentpath RESULTS/env --environment ENVIRONMENT [--certname CERTNAME]
# [--modulepath M] [MANIFEST] [--config_version '/bin/echo REV'] [--noop] PUPPET_ARG...
# [results options] [--show_diff]`, so everything Puppet reads from the repo
# (environment.conf, the environment's hiera.yaml and data, modules, their facts) is ROOT's.
# MANIFEST and each colon-separated MODULEPATH entry are taken relative to ROOT unless
# absolute. Empty MANIFEST or MODULEPATH: the environment's own (from ROOT/environment.conf)
# when ROOT has an environment.conf, else manifests/site.pp and modules as before; with no
# manifest argument Puppet applies the environment's manifest (stdin is /dev/null). REV (a
# commit, or empty) becomes the run's config version unless environment.conf sets
# config_version. Puppet's summary, report, state and a JSON log go into RESULTS (so capo's
# runs never overwrite Puppet's own last-run files, and a plan leaves no trace in Puppet's
# state). SHOW_DIFF and NOOP are 1 or 0; empty CERTNAME: no such option.
run_puppet() {
  root=$1 res=$2 puppet=$3 env=$4 manifest=$5 mp=$6 cert=$7 diff=$8 noop=$9
  shift 9
  rev=$1
  shift
  n=$#
  conf=''
  if [ -f "$root/environment.conf" ]; then conf=$root/environment.conf; fi
  if [ -z "$conf" ]; then
    manifest=${manifest:-manifests/site.pp}
    mp=${mp:-modules}
  fi
  abs=$(cd -- "$root" && pwd) && mkdir "$res/env" && ln -s "$abs" "$res/env/$env" || exit 1
  set -- "$@" "$puppet" apply --detailed-exitcodes --color=false \
    --environmentpath "$res/env" --environment "$env"
  if [ -n "$cert" ]; then set -- "$@" --certname "$cert"; fi
  if [ -n "$mp" ]; then
    m='' rest=$mp
    while :; do
      e=${rest%%:*}
      case $e in /*) ;; *) e=$root/$e ;; esac
      m=${m:+$m:}$e
      case $rest in *:*) rest=${rest#*:} ;; *) break ;; esac
    done
    set -- "$@" --modulepath "$m"
  fi
  if [ -n "$manifest" ]; then
    case $manifest in /*) ;; *) manifest=$root/$manifest ;; esac
    set -- "$@" "$manifest"
  fi
  if [ -n "$rev" ] && ! { [ -n "$conf" ] && grep -q '^[[:space:]]*config_version[[:space:]]*=' "$conf"; }; then
    set -- "$@" --config_version "/bin/echo $rev"
  fi
  if [ "$noop" = 1 ]; then set -- "$@" --noop; fi
  # The PUPPET_ARGs came first: move them behind capo's own words.
  while [ "$n" -gt 0 ]; do
    set -- "$@" "$1"
    shift
    n=$((n - 1))
  done
  set -- "$@" --lastrunfile "$res/summary.yaml" --lastrunreport "$res/report.yaml" \
    --statefile "$res/state.yaml" --transactionstorefile "$res/transactionstore.yaml" \
    --logdest "$res/log.jsonl" --logdest console
  if [ "$diff" = 1 ]; then set -- "$@" --show_diff; fi
  exec "$@" </dev/null
}

# The run record: what every run that got as far as applying (or failed to sync or install
# modules) leaves on the host, written by the host-side steps themselves (push needs no
# extra round trip, and pull mode runs the same scripts): STATE_DIR/last_run.json, and a copy
# in STATE_DIR/runs/<UTC time>-<source>.json of which the newest RECORD_KEEP are kept. Its
# fields are in docs/run-record.md (schema capo.run/v1).

# How many records STATE_DIR/runs keeps.
RECORD_KEEP=20

# now: the time as the run record takes it, three words: milliseconds since the epoch (whole
# seconds times 1000 where date has no %N), RFC 3339 UTC, and the same compact
# (20261124T224501) for file names.
now() {
  n_t=$(LC_ALL=C date -u '+%s%3N %Y-%m-%dT%H:%M:%SZ %Y%m%dT%H%M%S' 2>/dev/null)
  case ${n_t%% *} in
    '' | *[!0-9]*) n_t=$(LC_ALL=C date -u '+%s000 %Y-%m-%dT%H:%M:%SZ %Y%m%dT%H%M%S') ;;
  esac
  printf '%s\n' "$n_t"
}

# json_object KEY TYPE VALUE...: prints a JSON object, one member a line, from triples.
# TYPE s: VALUE as a string, null when empty; n: VALUE as a whole number, null unless it is
# one. Strings are escaped as JSON wants (quote, backslash, every control character) and
# otherwise passed through byte for byte. The values reach awk as arguments (ARGV), which
# awk takes literally, unlike -v.
json_object() {
  LC_ALL=C awk 'BEGIN {
    for (i = 1; i < 32; i++) esc[sprintf("%c", i)] = sprintf("\\u%04x", i)
    esc["\n"] = "\\n"; esc["\t"] = "\\t"; esc["\r"] = "\\r"
    esc["\""] = "\\\""; esc["\\"] = "\\\\"
    printf "{"
    for (i = 1; i + 2 < ARGC; i += 3) {
      v = ARGV[i + 2]
      if (ARGV[i + 1] == "n") out = (v ~ /^(0|[1-9][0-9]*)$/) ? v : "null"
      else if (v == "") out = "null"
      else {
        out = "\""
        for (j = 1; j <= length(v); j++) { c = substr(v, j, 1); out = out ((c in esc) ? esc[c] : c) }
        out = out "\""
      }
      printf "%s\n  \"%s\": %s", (i > 1 ? "," : ""), ARGV[i], out
    }
    printf "\n}\n"
    exit
  }' "$@"
}

# summary_values FILE: from a Puppet last-run summary, one line: resources changed, failed,
# corrective_change and out_of_sync (each a number, or - when missing), then version.config
# (the rest of the line, unquoted; empty when missing).
summary_values() {
  LC_ALL=C awk '
    /^[^ ]/ { sec = $0; sub(/:.*/, "", sec); next }
    /^  [a-z_]+:/ {
      k = $0; sub(/^  /, "", k); sub(/:.*/, "", k)
      v = $0; sub(/^  [a-z_]+:[ ]*/, "", v); sub(/[ \r]+$/, "", v)
      if (sec == "resources") r[k] = v
      else if (sec == "version" && k == "config") {
        if (v ~ /^\047.*\047$/) { v = substr(v, 2, length(v) - 2); gsub(/\047\047/, "\047", v) }
        else if (v ~ /^".*"$/) { v = substr(v, 2, length(v) - 2); gsub(/\\"/, "\"", v); gsub(/\\\\/, "\\", v) }
        conf = v
      }
    }
    END {
      n = split("changed failed corrective_change out_of_sync", ks, " ")
      for (i = 1; i <= n; i++) printf "%s ", ((ks[i] in r) && r[ks[i]] ~ /^[0-9]+$/) ? r[ks[i]] : "-"
      printf "%s\n", conf
    }' "$1"
}

# record_run STATE_DIR SOURCE RUN_ID BY STARTED REV_BEFORE REV_AFTER STATUS STEP SUMMARY
# [KEEP]: writes the run record (see above) of a run that ends now. STARTED: what `now`
# printed when the run began; SUMMARY: the run's own Puppet summary file (empty or missing:
# Puppet did not run, and the counts are null); KEEP: how many records runs/ keeps (default
# RECORD_KEEP). Each file is written to a temporary file in its own directory, then renamed.
# It never fails the step: it prints record=ok, or record=failed + record-why=REASON.
# Empty STATE_DIR: no record, no marker.
record_run() {
  [ -n "$1" ] || return 0
  rr_dir=$1 rr_source=$2 rr_run=$3 rr_by=$4 rr_before=$6 rr_after=$7 rr_status=$8
  rr_step=$9 rr_summary=${10} rr_keep=${11:-$RECORD_KEEP}
  rr_end=$(now)
  rr_end_ms=${rr_end%% *} rr_rest=${rr_end#* }
  rr_time=${rr_rest%% *} rr_stamp=${rr_rest#* }
  rr_start_ms=${5%% *} rr_started=${5#* }
  rr_started=${rr_started%% *}
  rr_ms=''
  case $rr_start_ms:$rr_end_ms in
    *[!0-9:]* | :* | *:) ;;
    *) rr_ms=$((rr_end_ms - rr_start_ms)) ;;
  esac
  rr_vals='- - - - '
  if [ -n "$rr_summary" ] && [ -f "$rr_summary" ]; then
    rr_vals=$(summary_values "$rr_summary")
  fi
  rr_changed=${rr_vals%% *} rr_vals=${rr_vals#* }
  rr_failed=${rr_vals%% *} rr_vals=${rr_vals#* }
  rr_corrective=${rr_vals%% *} rr_vals=${rr_vals#* }
  rr_oos=${rr_vals%% *} rr_config=${rr_vals#* }
  rr_name=$rr_stamp.$(printf '%03d' $((rr_end_ms % 1000)))Z-$rr_source.json
  if ! rr_err=$(LC_ALL=C mkdir -p -- "$rr_dir/runs" 2>&1); then
    record_failed "$rr_err"
    return 0
  fi
  if ! rr_err=$(json_object schema s capo.run/v1 time s "$rr_time" started s "$rr_started" \
    source s "$rr_source" by s "$rr_by" run_id s "$rr_run" rev_before s "$rr_before" \
    rev_after s "$rr_after" status s "$rr_status" step s "$rr_step" \
    changed n "$rr_changed" failed n "$rr_failed" corrective n "$rr_corrective" \
    out_of_sync n "$rr_oos" config_version s "$rr_config" duration_ms n "$rr_ms" \
    2>&1 >"$rr_dir/runs/.$rr_name.tmp") ||
    ! rr_err=$(LC_ALL=C mv -f -- "$rr_dir/runs/.$rr_name.tmp" "$rr_dir/runs/$rr_name" 2>&1) ||
    ! rr_err=$(LC_ALL=C cp -- "$rr_dir/runs/$rr_name" "$rr_dir/.last_run.json.tmp" 2>&1) ||
    ! rr_err=$(LC_ALL=C mv -f -- "$rr_dir/.last_run.json.tmp" "$rr_dir/last_run.json" 2>&1); then
    rm -f -- "$rr_dir/runs/.$rr_name.tmp" "$rr_dir/.last_run.json.tmp" 2>/dev/null
    record_failed "$rr_err"
    return 0
  fi
  # The oldest go first: the names sort by time.
  rr_n=0
  for rr_f in "$rr_dir"/runs/*.json; do [ -e "$rr_f" ] && rr_n=$((rr_n + 1)); done
  for rr_f in "$rr_dir"/runs/*.json; do
    [ "$rr_n" -gt "$rr_keep" ] || break
    rm -f -- "$rr_f"
    rr_n=$((rr_n - 1))
  done
  echo '::capo:record=ok'
}

# record_failed ERROR: says that the run record could not be written to rr_dir, as whom, and
# the command's error (its last line).
record_failed() {
  rr_why=$(printf '%s\n' "$1" | sed -n '$p')
  echo '::capo:record=failed'
  echo "::capo:record-why=cannot write $rr_dir as $(id -un 2>/dev/null || id -u): ${rr_why:-no error shown}"
}

# record_start STEP STATE_DIR SOURCE RUN_ID BY [STARTED [REV_BEFORE]]: makes this step write
# the run record when it exits (record_exit, an EXIT trap) and sets what the record names:
# rec_before is REV_BEFORE (a step that learns it later sets it), rec_after and rec_summary
# are set by the step as it learns them. Without STARTED the run begins now, and the step
# says when (started=MS TIME TIMESTAMP, for the steps after it). A step ended by TERM records
# too (status 143: failed). Empty STATE_DIR: no record.
record_start() {
  rec_step=$1 rec_dir=$2 rec_source=$3 rec_run=$4 rec_by=$5 rec_started=${6-} rec_before=${7-}
  rec_after='' rec_summary=''
  [ -n "$rec_dir" ] || return 0
  if [ -z "$rec_started" ]; then
    rec_started=$(now)
    echo "::capo:started=$rec_started"
  fi
  trap 'record_exit $?' EXIT
  # Stopped at the deadline or by Ctrl-C (capo-wrap and capo-kill TERM the whole step): the
  # shell ends once its child has, and records a failure first (bash as sh skips the EXIT
  # trap when a signal trap exits, so this one writes the record itself).
  trap 'trap - EXIT; record_exit 143; exit 143' TERM
}

# record_exit STATUS: the EXIT trap of record_start. The apply step records how Puppet's
# exit STATUS reads (0 unchanged, 2 changed, anything else failed); the other steps record
# only a failure (a sync or modules step that succeeds leaves the record to apply).
record_exit() {
  case $rec_step:$1 in
    apply:0) rec_status=unchanged rec_failed_step='' ;;
    apply:2) rec_status=changed rec_failed_step='' ;;
    *:0) return 0 ;;
    *) rec_status=failed rec_failed_step=$rec_step ;;
  esac
  record_run "$rec_dir" "$rec_source" "$rec_run" "$rec_by" "$rec_started" "$rec_before" \
    "$rec_after" "$rec_status" "$rec_failed_step" "$rec_summary"
}
