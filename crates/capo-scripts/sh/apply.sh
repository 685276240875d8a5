#!/bin/sh
# capo-apply: `puppet apply --detailed-exitcodes` in a checkout, with its results written to
# a fresh temporary directory (read back and removed by collect.sh).
#
# Usage:   sh apply.sh REPO_DIR HOLDER PUPPET MANIFEST MODULEPATH CERTNAME SHOW_DIFF [PUPPET_ARG...]
#          e.g. sh apply.sh /srv/puppet '' puppet manifests/site.pp modules '' 0 --tags ntp
# MANIFEST and the colon-separated MODULEPATH entries are relative to REPO_DIR unless
# absolute; empty MODULEPATH or CERTNAME: no such option; SHOW_DIFF: 1 for --show_diff.
# HOLDER: as in sync.sh ('' for none). The exact command is in lib-step.sh (run_puppet).
# Markers: fail=no-puppet + path=PATH (exit 127), results=DIR.
# Exit status: Puppet's (--detailed-exitcodes: 0 nothing to do, 2 changed, 4/6 failures).

command -v step_lock >/dev/null 2>&1 || . "$(dirname -- "$0")/lib-step.sh"

repo=$1 holder=$2 puppet=$3 manifest=$4 modulepath=$5 certname=$6 show_diff=$7
shift 7
step_lock "$repo" "$holder"
cd -- "$repo" || exit 1
no_puppet "$puppet"
r=$(mktemp -d "${TMPDIR:-/tmp}/capo-run.XXXXXX") || exit 1
echo "::capo:results=$r"
run_puppet "$repo" "$r" "$puppet" "$manifest" "$modulepath" "$certname" "$show_diff" 0 "$@"
