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

# puppet_conf: the host's puppet.conf (Puppet's own packages' first, then Debian's), if any.
puppet_conf() {
  for c in /etc/puppetlabs/puppet/puppet.conf /etc/puppet/puppet.conf; do
    if [ -f "$c" ]; then
      echo "$c"
      return 0
    fi
  done
  return 1
}

# puppet_setting KEY: the last value puppet.conf gives KEY, in any section, or nothing. Read
# without running Puppet (which takes a second or more); a value that refers to another
# setting ($vardir/...) is not expanded.
puppet_setting() {
  c=$(puppet_conf) || return 0
  sed -n "s/^[[:space:]]*${1}[[:space:]]*=[[:space:]]*//p" "$c" | tail -n 1
}

# puppet_statedir: Puppet's statedir: puppet.conf's statedir, else vardir/state, else the
# package's default.
puppet_statedir() {
  d=$(puppet_setting statedir)
  if [ -z "$d" ]; then
    d=$(puppet_setting vardir)
    d=${d:+$d/state}
  fi
  if [ -z "$d" ]; then
    case $(puppet_conf) in
      /etc/puppetlabs/*) d=/opt/puppetlabs/puppet/cache/state ;;
      *) d=/var/lib/puppet/state ;;
    esac
  fi
  echo "$d"
}

# puppet_lockfile: where `puppet agent --disable` leaves its lock (agent_disabled_lockfile).
puppet_lockfile() {
  f=$(puppet_setting agent_disabled_lockfile)
  echo "${f:-$(puppet_statedir)/agent_disabled.lock}"
}

# puppet_summaryfile: Puppet's own last run summary (lastrunfile).
puppet_summaryfile() {
  f=$(puppet_setting lastrunfile)
  echo "${f:-$(puppet_statedir)/last_run_summary.yaml}"
}

# disabled STATE_DIR: whether runs are disabled on this host, by `capo disable` (the file
# disabled in STATE_DIR: lines message=, by=, since=) or by `puppet agent --disable` (its
# lock file, whose JSON holds disabled_message; by is its owner, since its time). If so,
# prints the markers disabled=capo|puppet, disabled-message=, disabled-by=,
# disabled-since= and returns 0; else returns 1.
disabled() {
  if [ -f "$1/disabled" ]; then
    echo '::capo:disabled=capo'
    for k in message by since; do
      echo "::capo:disabled-$k=$(sed -n "s/^$k=//p" "$1/disabled" | head -n 1)"
    done
    return 0
  fi
  f=$(puppet_lockfile)
  [ -f "$f" ] || return 1
  echo '::capo:disabled=puppet'
  echo "::capo:disabled-message=$(sed -n 's/.*"disabled_message"[[:space:]]*:[[:space:]]*"\(.*\)".*/\1/p' "$f" | head -n 1)"
  echo "::capo:disabled-by=$(stat -c %U "$f" 2>/dev/null)"
  echo "::capo:disabled-since=$(date -u -r "$f" +%Y-%m-%dT%H:%M:%SZ 2>/dev/null)"
  return 0
}

# look_at_lock GITDIR: capo's lock of the checkout whose git directory is GITDIR, looked at
# and never taken from anyone: lock=free | held + holder=LINE | busy + holder=LINE |
# unavailable + why=no-flock | not-writable (+ user=USER, path=GITDIR). Its files are opened
# for reading only (nothing is created); when they exist it takes capo.lock.info, then tries
# capo.lock and the step lock without waiting, as lock.sh does, so that a run taking the lock
# at that instant waits a moment rather than finding it held. A subshell: the files close,
# and whatever it took is let go, when it returns.
look_at_lock() (
  g=$1
  if ! command -v flock >/dev/null 2>&1; then
    echo '::capo:lock=unavailable'
    echo '::capo:why=no-flock'
    exit 0
  fi
  if [ ! -w "$g" ]; then
    echo '::capo:lock=unavailable'
    echo '::capo:why=not-writable'
    echo "::capo:user=$(id -un 2>/dev/null || id -u)"
    echo "::capo:path=$g"
    exit 0
  fi
  # Opened for reading only: nothing is created. No lock file: no run ever took the lock.
  if ! command exec 7<"$g/capo.lock.info" 9<"$g/capo.lock" 2>/dev/null; then
    echo '::capo:lock=free'
    exit 0
  fi
  if ! flock -w 10 7; then
    echo '::capo:lock=held'
    echo "::capo:holder=$(head -c 300 "$g/capo.lock" | head -n 1)"
    exit 0
  fi
  if ! flock -n 9; then
    echo '::capo:lock=held'
    echo "::capo:holder=$(head -c 300 "$g/capo.lock" | head -n 1)"
    exit 0
  fi
  # Steps of an earlier run hold capo.lock.step shared while they live.
  if command exec 8<"$g/capo.lock.step" 2>/dev/null && ! flock -n 8; then
    echo '::capo:lock=busy'
    echo "::capo:holder=$(head -c 300 "$g/capo.lock.step" | head -n 1)"
    exit 0
  fi
  echo '::capo:lock=free'
)

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

# send_results DIR: prints the files a Puppet run left in its results directory DIR
# (summary.yaml, report.yaml and log.jsonl in that order, each followed by a line
# ::capo:eof=FILE; an empty file for one that is missing), then removes DIR.
send_results() {
  for f in summary.yaml report.yaml log.jsonl; do
    cat "$1/$f" 2>/dev/null
    printf '\n::capo:eof=%s\n' "$f"
  done
  rm -rf -- "$1"
}

# results_inline DIR: sends DIR's results on the step's own stdout, framed by
# ::capo:results-begin=DIR and ::capo:results-end=DIR lines, so that capo needs no second
# command to read them and keeps them out of the step's log. Named by the random DIR, the
# end line cannot be mistaken for a line of the results.
results_inline() {
  echo "::capo:results-begin=$1"
  send_results "$1"
  echo "::capo:results-end=$1"
}
