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
