#!/bin/sh
# capo-kill: stops a step that capo-wrap runs, with its whole process tree.
#
# Usage:   sh kill.sh PID        (PID: the ::capo:pid= a wrapped step printed)
# TERM to the tree, then KILL for whatever is still there after 2 s.
# Markers: none. Exit status: 0.

command -v stop_tree >/dev/null 2>&1 || . "$(dirname -- "$0")/lib-proc.sh"

stop_tree "$(tree "$1")"
exit 0
