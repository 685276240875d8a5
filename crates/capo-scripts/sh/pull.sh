#!/bin/sh
# capo-pull: pull mode's job, run on the host by its timer (or cron, or by hand): the same
# steps as `capo rollout`, from the same scripts installed beside it (lock.sh, sync.sh or
# sync-rev.sh, modules.sh, apply.sh and their libraries), under the same per-host lock, so
# that push and pull never interleave. It writes the same run record, as source `pull`.
#
# Usage:   sh pull.sh [--only-if-changed=MAX_AGE] REPO_DIR REMOTE BRANCH STATE_DIR INSTALLER
#                  PUPPET ENVIRONMENT MANIFEST MODULEPATH CERTNAME [PUPPET_ARG...]
#          e.g. sh /usr/local/lib/capo/pull.sh /srv/puppet origin main /var/lib/capo r10k \
#                  puppet production '' '' ''
# Arguments as the rollout's steps take them (see sync.sh, modules.sh and apply.sh).
# - A disabled host (capo disable, puppet agent --disable) is left alone.
# - A lock held by a push (or another pull) is left alone: the run is skipped.
# - A host pinned by `capo rollout --rev` (STATE_DIR/pin) is brought to the pinned commit,
#   never past it; otherwise to the tip of REMOTE/BRANCH.
# - --only-if-changed=MAX_AGE (seconds): apply only when the sync moved the checkout, the
#   modules had to be installed, the last run failed (or there is none), or the last run
#   ended more than MAX_AGE seconds ago, so that drift is still corrected that often.
# Each skip is written to STATE_DIR/last_skip (time=, why=, by=) and said on stdout; the
# run record (last_run.json) keeps the last run that did something.
# Exit status: the apply step's (0 unchanged, 2 changed, 4/6 failed), the sync's or modules'
# when they failed, 0 when skipped.

here=$(cd -- "$(dirname -- "$0")" && pwd)
. "$here/lib-step.sh"
. "$here/lib-record.sh"

max_age=''
case ${1-} in
  --only-if-changed=*)
    max_age=${1#*=}
    shift
    ;;
esac
repo=$1 remote=$2 branch=$3 state=$4 installer=$5 puppet=$6 env=$7 manifest=$8
modulepath=$9
shift 9
certname=$1
shift
holder="capo pull on $(uname -n) (pid $$), started $(date -u +%Y-%m-%dT%H:%M:%SZ)"

# skip WHY: records why this run did nothing, and ends it.
skip() {
  mkdir -p -- "$state" 2>/dev/null &&
    printf 'time=%s\nwhy=%s\nby=%s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$1" "$holder" \
      >"$state/.last_skip.$$" && mv -f -- "$state/.last_skip.$$" "$state/last_skip"
  echo "capo-pull: skipped: $1"
  exit 0
}

# The lock, taken by lock.sh itself (which first looks whether the host is disabled) and
# held while its stdin, a FIFO this job keeps open, stays open.
fifo=$(mktemp -u "${TMPDIR:-/tmp}/capo-pull.XXXXXX") && mkfifo -m 600 "$fifo" || exit 1
out=$fifo.out
sh "$here/lock.sh" "$repo" "$holder" "$state" <"$fifo" >"$out" 2>&1 &
exec 4>"$fifo"
rm -f -- "$fifo"
# lock.sh says how it went on its first lines; wait for them (it gives up after 10 s).
i=0
while ! grep -q '^::capo:lock=' "$out" 2>/dev/null && [ "$i" -lt 150 ]; do
  sleep 0.1
  i=$((i + 1))
done
lock=$(sed -n 's/^::capo:lock=//p' "$out" | head -n 1)
why_line=$(cat "$out")
case $lock in
  ok | none) ;;
  disabled)
    rm -f -- "$out"
    skip "disabled ($(printf '%s\n' "$why_line" | sed -n 's/^::capo:disabled-message=//p'))"
    ;;
  held | busy)
    rm -f -- "$out"
    skip "locked by $(printf '%s\n' "$why_line" | sed -n 's/^::capo:holder=//p')"
    ;;
  *)
    rm -f -- "$out"
    skip "the lock could not be taken: $(printf '%s\n' "$why_line" | tail -n 1)"
    ;;
esac
rm -f -- "$out"

# The sync: to the pin when there is one, else the branch.
if [ -f "$state/pin" ]; then
  pin=$(sed -n 's/^commit=//p' "$state/pin" | head -n 1)
  sync=$(sh "$here/sync-rev.sh" "$repo" "$remote" "$pin" "$holder" "$installer" \
    "$state" pull "" "$holder")
else
  sync=$(sh "$here/sync.sh" "$repo" "$remote" "$branch" "$holder" "$installer" \
    "$state" pull "" "$holder")
fi
rc=$?
printf '%s\n' "$sync"
[ "$rc" -eq 0 ] || exit "$rc"
mark() { printf '%s\n' "$sync" | sed -n "s/^::capo:$1=//p" | tail -n 1; }
started=$(mark started) before=$(mark rev-before)

# Nothing new, the last run went well and is recent enough: nothing to apply.
if [ -n "$max_age" ] && [ "$before" = "$(mark rev-after)" ] && [ "$(mark modules)" != stale ] &&
  [ -f "$state/last_run.json" ] && ! grep -q '"status": "failed"' "$state/last_run.json"; then
  age=$(($(date +%s) - $(date -r "$state/last_run.json" +%s 2>/dev/null || echo 0)))
  if [ "$age" -le "$max_age" ]; then
    skip "nothing changed at $before; the last run, ${age}s ago, went well"
  fi
fi

if [ "$(mark modules)" = stale ]; then
  sh "$here/modules.sh" "$repo" "$installer" "$holder" "$state" pull "" "$holder" \
    "$started" "$before" || exit
fi

applied=$(sh "$here/apply.sh" "$repo" "$holder" "$puppet" "$env" "$manifest" "$modulepath" \
  "$certname" 0 "$state" pull "" "$holder" "$started" "$before" "" "$@")
rc=$?
printf '%s\n' "$applied"
results=$(printf '%s\n' "$applied" | sed -n 's/^::capo:results=//p' | tail -n 1)
case $results in
  /*/capo-run.*) rm -rf -- "$results" ;;
esac
exit "$rc"
