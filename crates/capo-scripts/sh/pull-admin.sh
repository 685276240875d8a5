#!/bin/sh
# capo-pull-admin: installs pull mode on a host (its job and the scripts it runs, and the
# timer or cron file that runs it) or removes it again, leaving nothing of it behind.
#
# Usage:   sh pull-admin.sh install LIB_DIR SCHEDULER SERVICE TIMER CRON [NAME CONTENT]...
#          sh pull-admin.sh remove LIB_DIR
#          sh pull-admin.sh unpin STATE_DIR
# LIB_DIR: where the scripts go (/usr/local/lib/capo). SCHEDULER: systemd, cron, or auto
# (systemd when it runs this host: /run/systemd/system exists). SERVICE, TIMER, CRON: the
# texts of /etc/systemd/system/capo-pull.service and .timer, and /etc/cron.d/capo-pull; only
# the chosen scheduler's are written, and the other's files are removed. Each NAME CONTENT
# pair is a file of LIB_DIR. Every file is written to a temporary file beside it and renamed,
# and only when its content differs, so installing again changes nothing.
# Where systemd runs, the timer is enabled and started (`systemctl enable --now`); remove
# stops and disables it first.
# Markers: scheduler=systemd|cron, changed=N (files written or removed), active=yes|no
#          (the timer started, or a cron daemon runs) (install);
#          unpinned=REV | unpinned= (there was no pin) (unpin: removes STATE_DIR/pin, which
#          `capo rollout --rev` leaves, so that the pull job follows the branch again);
#          removed=N (remove); fail=write + path=FILE (exit 1).
# Exit status: 0, or 1 when a file could not be written or removed.

units=/etc/systemd/system
cron=/etc/cron.d/capo-pull
changed=0

# put FILE CONTENT MODE: writes FILE unless it already holds exactly CONTENT.
put() {
  if [ -f "$1" ] && [ "$(cat -- "$1"; echo x)" = "${2}x" ]; then
    return 0
  fi
  if ! { printf '%s' "$2" >"$1.capo-new" && chmod "$3" "$1.capo-new" &&
    mv -f -- "$1.capo-new" "$1"; }; then
    rm -f -- "$1.capo-new"
    echo '::capo:fail=write'
    echo "::capo:path=$1"
    exit 1
  fi
  changed=$((changed + 1))
}

systemd_runs() { [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; }

# drop FILE...: removes what exists of them, counting.
drop() {
  for f in "$@"; do
    if [ -e "$f" ]; then
      rm -f -- "$f" || { echo '::capo:fail=write'; echo "::capo:path=$f"; exit 1; }
      changed=$((changed + 1))
    fi
  done
}

action=$1 lib=$2
case $action in
  install)
    sched=$3 service=$4 timer=$5 crontab=$6
    shift 6
    if [ "$sched" = auto ]; then
      if systemd_runs; then sched=systemd; else sched=cron; fi
    fi
    mkdir -p -- "$lib" || { echo '::capo:fail=write'; echo "::capo:path=$lib"; exit 1; }
    while [ $# -ge 2 ]; do
      put "$lib/$1" "$2" 644
      shift 2
    done
    echo "::capo:scheduler=$sched"
    if [ "$sched" = systemd ]; then
      mkdir -p -- "$units"
      put "$units/capo-pull.service" "$service" 644
      put "$units/capo-pull.timer" "$timer" 644
      drop "$cron"
      if systemd_runs; then
        if systemctl daemon-reload && systemctl enable --now capo-pull.timer >/dev/null 2>&1; then
          echo '::capo:active=yes'
        else
          echo '::capo:active=no'
        fi
      else
        echo '::capo:active=no'
      fi
    else
      mkdir -p -- "${cron%/*}"
      put "$cron" "$crontab" 644
      if [ -e "$units/capo-pull.timer" ] && systemd_runs; then
        systemctl disable --now capo-pull.timer >/dev/null 2>&1
      fi
      drop "$units/capo-pull.service" "$units/capo-pull.timer"
      # cron reads /etc/cron.d by itself, if a cron daemon runs here.
      if pgrep -x cron >/dev/null 2>&1 || pgrep -x crond >/dev/null 2>&1; then
        echo '::capo:active=yes'
      else
        echo '::capo:active=no'
      fi
    fi
    echo "::capo:changed=$changed"
    ;;
  remove)
    if [ -e "$units/capo-pull.timer" ] && systemd_runs; then
      systemctl disable --now capo-pull.timer >/dev/null 2>&1
    fi
    drop "$units/capo-pull.service" "$units/capo-pull.timer" "$cron"
    if [ -d "$lib" ]; then
      for f in "$lib"/* "$lib"/.[!.]*; do drop "$f"; done
      rmdir -- "$lib" 2>/dev/null
    fi
    if systemd_runs; then systemctl daemon-reload >/dev/null 2>&1; fi
    echo "::capo:removed=$changed"
    ;;
  unpin)
    rev=''
    if [ -f "$lib/pin" ]; then
      rev=$(sed -n 's/^rev=//p' "$lib/pin" | head -n 1)
      rm -f -- "$lib/pin" || { echo '::capo:fail=write'; echo "::capo:path=$lib/pin"; exit 1; }
    fi
    echo "::capo:unpinned=$rev"
    ;;
  *)
    echo "capo-pull-admin: unknown action $action" >&2
    exit 2
    ;;
esac
