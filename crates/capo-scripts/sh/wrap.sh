#!/bin/sh
# capo-wrap: runs one step under a deadline that the host itself enforces.
#
# Usage:   sh wrap.sh DEADLINE NAME SCRIPT [ARG...]
#          sh wrap.sh 10 sh 'sleep 30; echo never'
# Runs `sh -c SCRIPT NAME ARG...` and, if it is still running after DEADLINE seconds (a
# number, fractions allowed), kills its whole process tree (TERM, then KILL after 2 s).
# capo sends every step (sync, apply, plan, exec) through this wrapper; the step's script
# id (e.g. capo-sync) is NAME, so `ps` on the host shows which step runs.
# Markers (stdout): ::capo:pid=PID first (this shell's pid, for capo-kill), and
#                   ::capo:deadline=DEADLINE when the deadline ended the step.
# Exit status: the step's (143 or 137 when the deadline killed it).
#
# Why this shape (OpenSSH ignores signal requests for root and a closed channel does not
# stop a command, so stopping must happen on the host): the timer is a plain `sleep`
# started by the wrapper itself, so its pid is known exactly and nothing it forks can escape
# a kill; its output goes to /dev/null, so it never holds the channel open. The step runs in
# a subshell that stops the timer as soon as the step ends, and the wrapper waits for the
# timer alone: ended by that kill, the step is done; ended by itself, the deadline has come.
# This costs two processes besides the step (the timer and the step's `sh`), which matters
# when a quick command goes to many hosts. (An earlier design raced with dash's vfork and
# signals; keep it this simple.)

command -v stop_tree >/dev/null 2>&1 || . "$(dirname -- "$0")/lib-proc.sh"

secs=$1 name=$2 script=$3
shift 3
echo "::capo:pid=$$"
# shellcheck disable=SC2217 # no stdin, stdout or stderr: it must not hold the channel open
sleep "$secs" </dev/null >/dev/null 2>&1 &
s=$!
{ sh -c "$script" "$name" "$@"; rc=$?; kill "$s" 2>/dev/null; exit "$rc"; } &
c=$!
if wait "$s" 2>/dev/null; then
  printf '\n::capo:deadline=%s\n' "$secs"
  stop_tree "$(tree "$c")"
fi
wait "$c"
