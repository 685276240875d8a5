#!/bin/sh
# capo-sync: `git pull --ff-only REMOTE BRANCH` in a checkout, recording HEAD around it.
#
# Usage:   sh sync.sh REPO_DIR REMOTE BRANCH [HOLDER [INSTALLER [STATE_DIR SOURCE RUN_ID BY]]]
#          e.g. sh sync.sh /srv/puppet origin main '' r10k
# HOLDER: who runs it, written into capo.lock.step while the step lives (see lock.sh);
# without it (or empty) no step lock is taken. INSTALLER: the `puppetfile` setting (r10k,
# g10k or ignore); with it, a pull that succeeds says whether the Puppetfile's modules need
# installing (modules=none|current|stale, see modules_state in lib-step.sh).
# STATE_DIR SOURCE RUN_ID BY: the run record (record_run in lib-step.sh): a sync that fails
# writes one into STATE_DIR (status failed, step sync), as SOURCE (push or pull), naming the
# run RUN_ID and its holder line BY; the run begins with this step (marker started=..., for
# the modules and apply steps). Empty or missing STATE_DIR: no record.
# A push (SOURCE push) that pulls the branch ends a pin left by `capo rollout --rev`
# (pin_clear in lib-record.sh).
# Markers: fail=no-repo-dir | fail=not-a-repo (exit 1), rev-before=SHA, rev-after=SHA, pin=cleared,
#          started=MS TIME STAMP, record=ok | record=failed + record-why=WHY (the record), and
#          when the pull fails: dirty=LINE (git status --porcelain, at most 20),
#          local-only=N, remote-only=N (commits on either side of FETCH_HEAD).
# Exit status: git pull's. LC_ALL=C keeps git's messages in English so that capo can
# classify them; GIT_TERMINAL_PROMPT=0 makes a remote that wants credentials fail instead
# of waiting for input that never comes.

command -v step_lock >/dev/null 2>&1 || . "$(dirname -- "$0")/lib-step.sh"
command -v record_run >/dev/null 2>&1 || . "$(dirname -- "$0")/lib-record.sh"

repo=$1 remote=$2 branch=$3 holder=${4-} installer=${5-}
record_start sync "${6-}" "${7-}" "${8-}" "${9-}"
step_lock "$repo" "$holder"
cd -- "$repo" 2>/dev/null || { echo '::capo:fail=no-repo-dir'; exit 1; }
at_top || { echo '::capo:fail=not-a-repo'; exit 1; }
rec_before=$(git rev-parse --verify -q HEAD) rec_after=$rec_before
echo "::capo:rev-before=$rec_before"
LC_ALL=C GIT_TERMINAL_PROMPT=0 git pull --ff-only "$remote" "$branch"
rc=$?
rec_after=$(git rev-parse --verify -q HEAD)
echo "::capo:rev-after=$rec_after"
if [ "$rc" -ne 0 ]; then
  git status --porcelain 2>/dev/null | head -n 20 | sed 's/^/::capo:dirty=/'
  echo "::capo:local-only=$(git rev-list --count FETCH_HEAD..HEAD 2>/dev/null)"
  echo "::capo:remote-only=$(git rev-list --count HEAD..FETCH_HEAD 2>/dev/null)"
else
  if [ -n "${6-}" ] && [ "${7-}" = push ]; then pin_clear "$6"; fi
  if [ -n "$installer" ]; then modules_state "$(pwd)" "$installer"; fi
fi
exit "$rc"
