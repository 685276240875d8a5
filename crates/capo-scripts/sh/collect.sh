#!/bin/sh
# capo-collect: prints the files a Puppet run left in its results directory, and removes it.
#
# Usage:   sh collect.sh DIR     (DIR: the ::capo:results= of capo-apply or capo-plan, e.g.
#                                 /tmp/capo-run.AbC123; nothing else is accepted)
# Output:  summary.yaml, report.yaml and log.jsonl in that order, each followed by a line
#          ::capo:eof=FILE (an empty file for one that is missing).
# Exit status: 0; 2 when DIR does not look like a results directory.

r=$1
case $r in
  /*/capo-run.* | /*/capo-plan.*) ;;
  *) echo "collect.sh: not a capo results directory: $r" >&2; exit 2 ;;
esac
for f in summary.yaml report.yaml log.jsonl; do
  cat "$r/$f" 2>/dev/null
  printf '\n::capo:eof=%s\n' "$f"
done
rm -rf -- "$r"
