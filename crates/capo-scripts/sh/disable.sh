#!/bin/sh
# capo-disable: the host's maintenance switch, which capo's rollouts and pull runs honour
# (see `disabled` in lib-step.sh): `disable` writes STATE_DIR/disabled (atomically: a temp
# file in STATE_DIR, then mv), `enable` removes it.
#
# Usage:   sh disable.sh STATE_DIR disable MESSAGE BY
#          sh disable.sh STATE_DIR enable
#          e.g. sh disable.sh /var/lib/capo disable 'kernel upgrade, ask alice' alice@ctl
# The file holds three lines: message=MESSAGE, by=BY, since=TIME (RFC 3339 UTC, this host's
# clock). MESSAGE and BY are single lines.
# Markers: was=disabled|enabled (before), then after disable the markers of `disabled`; after
# enable, those of `disabled` too when Puppet's own switch (puppet agent --disable) still
# disables runs. fail=write + path=STATE_DIR (exit 1) when the file cannot be written or
# removed.

command -v disabled >/dev/null 2>&1 || . "$(dirname -- "$0")/lib-step.sh"

state=$1 action=$2
if [ -f "$state/disabled" ]; then echo '::capo:was=disabled'; else echo '::capo:was=enabled'; fi
case $action in
  disable)
    t=$state/.disabled.$$
    if ! { mkdir -p -- "$state" &&
      printf 'message=%s\nby=%s\nsince=%s\n' "$3" "$4" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >"$t" &&
      mv -f -- "$t" "$state/disabled"; }; then
      rm -f -- "$t"
      echo '::capo:fail=write'
      echo "::capo:path=$state"
      exit 1
    fi
    ;;
  enable)
    if ! rm -f -- "$state/disabled"; then
      echo '::capo:fail=write'
      echo "::capo:path=$state"
      exit 1
    fi
    ;;
  *)
    echo "capo-disable: unknown action $action" >&2
    exit 2
    ;;
esac
disabled "$state" || true
