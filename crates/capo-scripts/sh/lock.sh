#!/bin/sh
# capo-lock: holds a checkout's capo lock for as long as its standard input stays open.
#
# Usage:   sh lock.sh REPO_DIR HOLDER STATE_DIR
#          e.g. sh lock.sh /srv/puppet "me, by hand" /var/lib/capo
# First, whether the host is disabled (capo disable, puppet agent --disable; see `disabled`
# in lib-step.sh): then nothing is locked or touched. An empty HOLDER (a run with
# lock = false) only asks that.
# The lock is the file capo.lock in REPO_DIR's git directory (whoever may pull can write
# there), taken with flock(1). Once held, HOLDER is written into it and `lock=ok` printed;
# then the script waits for its stdin to close, so the lock dies with it: when capo
# finishes, is killed, or loses the connection (by hand: press Ctrl-D to let go).
# Taking the lock and writing the holder line (or failing and reading it) happen under a
# short lock on capo.lock.info, so a loser never reads the line before the winner wrote it.
# It also checks that no step of an earlier run is still running (steps hold capo.lock.step
# shared while they live).
# Markers (stdout):
#   lock=disabled + disabled=capo|puppet, disabled-message=, disabled-by=, disabled-since=
#                                the host is disabled: nothing locked (exit 0)
#   lock=off                     not disabled, and HOLDER is empty: nothing locked (exit 0)
#   lock=ok                      held, until stdin closes (then exit 0)
#   lock=none                    REPO_DIR is not a checkout: nothing to lock (exit 0; capo's
#                                sync step then says what is wrong)
#   lock=held   + holder=LINE    another run holds the lock (exit 75, EX_TEMPFAIL)
#   lock=busy   + holder=LINE    a step of an earlier run is still running (exit 75)
#   lock=failed + why=REASON     the lock cannot be taken here (exit 1); REASON is one of
#                no-flock (+ path=PATH), not-writable (+ user=USER, path=GITDIR),
#                open (+ path=GITDIR, the error on stderr), info-timeout (+ path=FILE)

command -v git_dir >/dev/null 2>&1 || . "$(dirname -- "$0")/lib-step.sh"

repo=$1 holder=$2 state=$3
if disabled "$state"; then
  echo '::capo:lock=disabled'
  exit 0
fi
if [ -z "$holder" ]; then
  echo '::capo:lock=off'
  exit 0
fi
g=$(git_dir "$repo") || { echo '::capo:lock=none'; exit 0; }
failed() { echo '::capo:lock=failed'; echo "::capo:why=$1"; }
if ! command -v flock >/dev/null 2>&1; then
  failed no-flock
  echo "::capo:path=$PATH"
  exit 1
fi
if [ ! -w "$g" ]; then
  failed not-writable
  echo "::capo:user=$(id -un 2>/dev/null || id -u)"
  echo "::capo:path=$g"
  exit 1
fi
# `command` keeps a failed redirection from ending the shell (exec is a special builtin).
if ! command exec 9<>"$g/capo.lock" 8<>"$g/capo.lock.step" 7<>"$g/capo.lock.info"; then
  failed open
  echo "::capo:user=$(id -un 2>/dev/null || id -u)"
  echo "::capo:path=$g"
  exit 1
fi
if ! flock -w 10 7; then
  failed info-timeout
  echo "::capo:path=$g/capo.lock.info"
  exit 1
fi
if ! flock -n 9; then
  echo '::capo:lock=held'
  echo "::capo:holder=$(head -c 300 "$g/capo.lock" | head -n 1)"
  exit 75
fi
if ! flock -n 8; then
  echo '::capo:lock=busy'
  echo "::capo:holder=$(head -c 300 "$g/capo.lock.step" | head -n 1)"
  exit 75
fi
flock -u 8
exec 8>&-
printf '%s\n' "$holder" >"$g/capo.lock"
flock -u 7
exec 7>&-
echo '::capo:lock=ok'
exec cat >/dev/null
