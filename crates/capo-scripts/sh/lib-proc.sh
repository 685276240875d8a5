# shellcheck shell=sh
# capo: process-tree functions shared by wrap.sh and kill.sh. Not a script of its own: capo
# sends it in front of those two, and they source it from their own directory when run by hand.
#
# Puppet runs `exec` resources in their own session, so a process-group kill would miss them:
# a step is stopped by killing its whole process tree instead.

# tree PID: prints PID and all its descendants, collected in one pass before anything is
# killed, so that children orphaned by the first kill are still caught. Without `ps` it
# falls back to the process group (-PID) and PID itself.
tree() {
  t=$(ps -eo pid=,ppid= 2>/dev/null | awk -v r="$1" '{p[$1]=$2} END{d[r]=1; do {c=0; for (k in p) if (!(k in d) && (p[k] in d)) {d[k]=1; c=1}} while (c); for (k in d) print k}')
  # shellcheck disable=SC2086 # one pid per word
  if [ -n "$t" ]; then echo $t; else echo "-$1 $1"; fi
}

# stop_tree "PID...": TERM, then KILL for whatever is still there after 2 s.
stop_tree() {
  # shellcheck disable=SC2086 # one pid per word
  kill -TERM $1 2>/dev/null
  for _ in 1 2 3 4 5 6 7 8 9 10; do
    a=
    for p in $1; do kill -0 "$p" 2>/dev/null && a=1; done
    [ -n "$a" ] || return 0
    sleep 0.2
  done
  # shellcheck disable=SC2086 # one pid per word
  kill -KILL $1 2>/dev/null
}
