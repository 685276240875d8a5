#!/bin/sh
# capo-apply: `puppet apply --detailed-exitcodes` in a checkout, with its results written to
# a fresh temporary directory (sent inline and removed, or left for collect.sh).
#
# Usage:   sh apply.sh REPO_DIR HOLDER PUPPET ENVIRONMENT MANIFEST MODULEPATH CERTNAME SHOW_DIFF
#                   STATE_DIR SOURCE RUN_ID BY STARTED REV_BEFORE INLINE [PUPPET_ARG...]
#          e.g. sh apply.sh /srv/puppet '' puppet production manifests/site.pp modules '' 0 \
#                   '' '' '' '' '' '' '' --tags ntp
# The checkout runs as the Puppet environment ENVIRONMENT (a per-run --environmentpath
# holding a link to REPO_DIR), with its HEAD commit as the config version unless its
# environment.conf sets config_version. MANIFEST and the colon-separated MODULEPATH entries
# are relative to REPO_DIR unless absolute; empty: environment.conf's, or without one
# manifests/site.pp and modules; empty CERTNAME: no such option; SHOW_DIFF: 1 for --show_diff.
# HOLDER: as in sync.sh ('' for none). The exact command is in lib-step.sh (run_puppet).
# STATE_DIR SOURCE RUN_ID BY STARTED REV_BEFORE: as in modules.sh; the step writes the run
# record when it ends, whatever its end (status changed, unchanged, or failed with step
# apply, with Puppet's counts from this run's summary); empty STATE_DIR: no record.
# INLINE: 1 to send the results on stdout once Puppet ends (results_inline in lib-step.sh:
# capo's push) and remove them; empty: leave them in DIR for whoever ran this (pull.sh).
# Markers: fail=no-puppet + path=PATH (exit 127), results=DIR, record=... (as in sync.sh).
# Exit status: Puppet's (--detailed-exitcodes: 0 nothing to do, 2 changed, 4/6 failures).

command -v step_lock >/dev/null 2>&1 || . "$(dirname -- "$0")/lib-step.sh"
command -v record_run >/dev/null 2>&1 || . "$(dirname -- "$0")/lib-record.sh"

repo=$1 holder=$2 puppet=$3 env=$4 manifest=$5 modulepath=$6 certname=$7 show_diff=$8
record_start apply "$9" "${10}" "${11}" "${12}" "${13}" "${14}"
inline=${15}
shift 15
step_lock "$repo" "$holder"
cd -- "$repo" || exit 1
rev=$(git rev-parse --verify -q HEAD 2>/dev/null)
rec_after=$rev rec_before=${rec_before:-$rev}
no_puppet "$puppet"
r=$(mktemp -d "${TMPDIR:-/tmp}/capo-run.XXXXXX") || exit 1
echo "::capo:results=$r"
rec_summary=$r/summary.yaml
# Puppet runs as a child (run_puppet execs it in a subshell), so that this step can write
# the run record once it ends.
(run_puppet "$repo" "$r" "$puppet" "$env" "$manifest" "$modulepath" "$certname" "$show_diff" 0 "$rev" "$@")
rc=$?
[ "$inline" = 1 ] || exit "$rc"
# The record first (it reads the summary), then the results, which removes them.
trap - EXIT TERM
record_exit "$rc"
results_inline "$r"
exit "$rc"
