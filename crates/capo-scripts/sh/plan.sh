#!/bin/sh
# capo-plan: a dry run of a target revision. Fetches, resolves the target, lists the
# incoming commits, materializes the target in a temporary directory with `git archive`
# (nothing is written to the checkout or its git directory) and runs `puppet apply --noop`
# there, as the Puppet environment ENVIRONMENT (so environment.conf, hiera.yaml, data and
# modules all come from the target), with the target commit as the config version and
# every piece of Puppet state pointed into that directory, whose results it then sends inline
# and removes (results_inline in lib-step.sh).
# When the target has a Puppetfile, its modules go into that copy first: the checkout's,
# copied, when they were installed from an identical Puppetfile and are all there, else
# installed afresh by INSTALLER (whose own cache, like the fetch, may be updated).
#
# Usage:   sh plan.sh REPO_DIR REMOTE BRANCH REV INSTALLER PUPPET ENVIRONMENT MANIFEST MODULEPATH CERTNAME SHOW_DIFF [PUPPET_ARG...]
#          e.g. sh plan.sh /srv/puppet origin main '' r10k puppet production manifests/site.pp modules '' 1
# REV: as in sync-rev.sh; empty: the tip of REMOTE's BRANCH. INSTALLER: r10k, g10k or
# ignore (the `puppetfile` setting). The rest: as in apply.sh.
# Markers: as sync-rev.sh (ahead=1: nothing to plan, exit 0), then incoming-count=N and
#          incoming=SHORT SUBJECT (at most 10), fail=no-puppet + path=PATH (exit 127),
#          results=DIR, fail=archive (exit 1), modules=none|copied|installed, or
#          fail=no-installer + installer=NAME + pkg=MANAGER (exit 127), fail=modules (the
#          installer failed, exit 1), fail=modules-outside + moduledir=DIR (the Puppetfile's
#          moduledir is outside the copy: installing there would touch the host; exit 1).
# Exit status: Puppet's (--detailed-exitcodes), or 1 before Puppet ran.

command -v step_lock >/dev/null 2>&1 || . "$(dirname -- "$0")/lib-step.sh"

# plan_modules LIVE CODE INSTALLER: gives the copy CODE the modules its Puppetfile lists (see
# the header); LIVE is the checkout.
plan_modules() {
  if [ "$3" = ignore ] || [ ! -f "$2/Puppetfile" ]; then
    echo '::capo:modules=none'
    return 0
  fi
  to=$(moduledir "$2")
  case $to in
    "$2"/*) ;;
    *) echo '::capo:fail=modules-outside'; echo "::capo:moduledir=$to"; exit 1 ;;
  esac
  if modules_current "$3" "$2" "$1" "$(git_dir "$1")/capo.modules" &&
    mkdir -p "$to" && cp -R "$(moduledir "$1")/." "$to/"; then
    echo '::capo:modules=copied'
    return 0
  fi
  install_modules "$2" "$3" || { echo '::capo:fail=modules'; exit 1; }
  echo '::capo:modules=installed'
}

repo=$1 remote=$2 branch=$3 rev=$4 installer=$5 puppet=$6 env=$7 manifest=$8 modulepath=$9
shift 9
certname=$1 show_diff=$2
shift 2
enter_checkout "$repo"
live=$(pwd)
fetch_target "$remote" "$branch" "$rev"
if [ -n "$b" ] && [ "$b" != "$t" ] && git merge-base --is-ancestor "$t" "$b"; then
  echo '::capo:ahead=1'
  exit 0
fi
if [ -n "$b" ] && ! git merge-base --is-ancestor "$b" "$t"; then diverged; exit 1; fi
if [ -n "$b" ]; then range="$b..$t"; else range="$t"; fi
echo "::capo:incoming-count=$(git rev-list --count "$range")"
git log -n 10 --format='::capo:incoming=%h %s' "$range"
no_puppet "$puppet"
r=$(mktemp -d "${TMPDIR:-/tmp}/capo-plan.XXXXXX") || exit 1
echo "::capo:results=$r"
{ mkdir "$r/code" && git archive --format=tar "$t" | tar -xf - -C "$r/code"; } ||
  { echo '::capo:fail=archive'; exit 1; }
cd "$r/code" || exit 1
plan_modules "$live" "$r/code" "$installer"
(run_puppet "$r/code" "$r" "$puppet" "$env" "$manifest" "$modulepath" "$certname" "$show_diff" 1 "$t" "$@")
rc=$?
results_inline "$r"
exit "$rc"
