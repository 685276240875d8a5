#!/bin/sh
# capo-plan: a dry run of a target revision. Fetches, resolves the target, lists the
# incoming commits, materializes the target in a temporary directory with `git archive`
# (nothing is written to the checkout or its git directory) and runs `puppet apply --noop`
# there, as the Puppet environment ENVIRONMENT (so environment.conf, hiera.yaml, data and
# modules all come from the target), with the target commit as the config version and
# every piece of Puppet state pointed into that directory (removed afterwards by collect.sh).
#
# Usage:   sh plan.sh REPO_DIR REMOTE BRANCH REV PUPPET ENVIRONMENT MANIFEST MODULEPATH CERTNAME SHOW_DIFF [PUPPET_ARG...]
#          e.g. sh plan.sh /srv/puppet origin main '' puppet production manifests/site.pp modules '' 1
# REV: as in sync-rev.sh; empty: the tip of REMOTE's BRANCH. The rest: as in apply.sh.
# Markers: as sync-rev.sh (ahead=1: nothing to plan, exit 0), then incoming-count=N and
#          incoming=SHORT SUBJECT (at most 10), fail=no-puppet + path=PATH (exit 127),
#          results=DIR, fail=archive (exit 1).
# Exit status: Puppet's (--detailed-exitcodes), or 1 before Puppet ran.

command -v step_lock >/dev/null 2>&1 || . "$(dirname -- "$0")/lib-step.sh"

repo=$1 remote=$2 branch=$3 rev=$4 puppet=$5 env=$6 manifest=$7 modulepath=$8 certname=$9
shift 9
show_diff=$1
shift
enter_checkout "$repo"
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
run_puppet "$r/code" "$r" "$puppet" "$env" "$manifest" "$modulepath" "$certname" "$show_diff" 1 "$t" "$@"
