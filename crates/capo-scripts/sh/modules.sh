#!/bin/sh
# capo-modules: installs the modules a checkout's Puppetfile lists, with r10k (`r10k
# puppetfile install`) or g10k (`g10k -puppetfile`), run in the checkout, and records what
# it installed from which Puppetfile in capo.modules in the checkout's git directory (so
# that the next sync can tell whether they are current: see modules_state in lib-step.sh).
#
# Usage:   sh modules.sh REPO_DIR INSTALLER [HOLDER [STATE_DIR SOURCE RUN_ID BY STARTED REV_BEFORE]]
#          e.g. sh modules.sh /srv/puppet r10k
# INSTALLER: r10k or g10k. HOLDER, STATE_DIR, SOURCE, RUN_ID, BY: as in sync.sh (a failure
# writes the run record, step modules); STARTED: the sync's started= marker (empty: now);
# REV_BEFORE: HEAD before the sync (the record's rev_before).
# Markers: fail=no-repo-dir (exit 1); fail=no-installer + installer=NAME + pkg=MANAGER
#          (exit 127); modules=installed + module-count=N (exit 0); record=... (sync.sh).
# Exit status: the installer's. LC_ALL=C keeps its messages in English.

command -v step_lock >/dev/null 2>&1 || . "$(dirname -- "$0")/lib-step.sh"
command -v record_run >/dev/null 2>&1 || . "$(dirname -- "$0")/lib-record.sh"

repo=$1 installer=$2 holder=${3-}
record_start modules "${4-}" "${5-}" "${6-}" "${7-}" "${8-}" "${9-}"
step_lock "$repo" "$holder"
cd -- "$repo" 2>/dev/null || { echo '::capo:fail=no-repo-dir'; exit 1; }
rec_after=$(git rev-parse --verify -q HEAD 2>/dev/null)
here=$(pwd)
g=$(git_dir "$here") || { echo '::capo:fail=not-a-repo'; exit 1; }
install_modules "$here" "$installer" || exit
record_modules "$installer" "$here" "$g/capo.modules" || exit
echo '::capo:modules=installed'
echo "::capo:module-count=$(($(wc -l <"$g/capo.modules") - 1))"
