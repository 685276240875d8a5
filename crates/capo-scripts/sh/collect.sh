#!/bin/sh
# capo-collect: prints the files a Puppet run left in its results directory, and removes it.
# The apply and plan steps send their results themselves when Puppet ends (results_inline in
# lib-step.sh); capo runs this only when a step ended before it could (a deadline, Ctrl-C, a
# lost connection), and for bootstrap's check run.
#
# Usage:   sh collect.sh DIR     (DIR: the ::capo:results= of capo-apply or capo-plan, e.g.
#                                 /tmp/capo-run.AbC123; nothing else is accepted)
# Output:  summary.yaml, report.yaml and log.jsonl in that order, each followed by a line
#          ::capo:eof=FILE (an empty file for one that is missing).
# Exit status: 0; 2 when DIR does not look like a results directory.

command -v send_results >/dev/null 2>&1 || . "$(dirname -- "$0")/lib-step.sh"

r=$1
case $r in
  /*/capo-run.* | /*/capo-plan.*) ;;
  *) echo "collect.sh: not a capo results directory: $r" >&2; exit 2 ;;
esac
send_results "$r"
