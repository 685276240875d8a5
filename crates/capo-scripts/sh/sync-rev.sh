#!/bin/sh
# capo-sync-rev: fetch, then fast-forward a checkout to an exact revision (`capo rollout
# --rev`). A checkout already there does nothing; one already past it is left alone
# (ahead); one that has diverged from it fails. It never moves a checkout backwards.
#
# Usage:   sh sync-rev.sh REPO_DIR REMOTE REV [HOLDER [INSTALLER [STATE_DIR SOURCE RUN_ID BY]]]
#          e.g. sh sync-rev.sh /srv/puppet origin v1.2 '' r10k
# REV: a branch of REMOTE, a tag, or a commit REMOTE has. HOLDER, INSTALLER, STATE_DIR,
# SOURCE, RUN_ID, BY: as in sync.sh (a failure writes the run record, step sync).
# A push (SOURCE push) that leaves the checkout at or past REV pins the host there (pin_set
# in lib-record.sh: STATE_DIR/pin), for pull mode to keep to.
# Markers: fail=no-repo-dir | not-a-repo | fetch | rev-not-found | diverged (exit 1),
#          rev-before=SHA, rev-after=SHA, target=SHA, ahead=1 (exit 0), local-only=N and
#          remote-only=N (diverged), dirty=LINE (the merge failed), modules=... (as in
#          sync.sh, when the checkout is at REV), started=... and record=... (as in sync.sh),
#          pin=set | pin=failed + pin-why=WHY.
# Exit status: 0 when the checkout is at or past REV, else 1 (or git merge's).

command -v step_lock >/dev/null 2>&1 || . "$(dirname -- "$0")/lib-step.sh"
command -v record_run >/dev/null 2>&1 || . "$(dirname -- "$0")/lib-record.sh"

repo=$1 remote=$2 rev=$3 holder=${4-} installer=${5-}
record_start sync "${6-}" "${7-}" "${8-}" "${9-}"
step_lock "$repo" "$holder"
enter_checkout "$repo"
rec_before=$b rec_after=$b
fetch_target "$remote" "" "$rev"
if [ -n "${6-}" ] && [ "${7-}" = push ]; then
  trap 'rc=$?; [ "$rc" -ne 0 ] || pin_set "$6" "$rev" "$t" "${9-}"; record_exit "$rc"' EXIT
fi
if [ "$b" = "$t" ]; then
  echo "::capo:rev-after=$b"
  if [ -n "$installer" ]; then modules_state "$(pwd)" "$installer"; fi
  exit 0
fi
if [ -n "$b" ] && git merge-base --is-ancestor "$t" "$b"; then
  echo '::capo:ahead=1'
  echo "::capo:rev-after=$b"
  exit 0
fi
if [ -n "$b" ] && ! git merge-base --is-ancestor "$b" "$t"; then
  diverged
  echo "::capo:rev-after=$b"
  exit 1
fi
LC_ALL=C git merge --ff-only --quiet "$t"
rc=$?
rec_after=$(git rev-parse --verify -q HEAD)
echo "::capo:rev-after=$rec_after"
if [ "$rc" -ne 0 ]; then
  git status --porcelain 2>/dev/null | head -n 20 | sed 's/^/::capo:dirty=/'
elif [ -n "$installer" ]; then
  modules_state "$(pwd)" "$installer"
fi
exit "$rc"
