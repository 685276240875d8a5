#!/bin/sh
# capo-status: what `capo status` reads on a host, changing nothing (unless FETCH is 1, when
# the remote-tracking branch is fetched first): the checkout's HEAD and how far behind
# REMOTE/BRANCH it is, capo's last run record, Puppet's own last run summary, capo's lock,
# the maintenance switch, and pull mode's schedule files.
#
# Usage:   sh status.sh REPO_DIR REMOTE BRANCH STATE_DIR FETCH LOCK
#          e.g. sh status.sh /srv/puppet origin main /var/lib/capo 0 1
# FETCH: 1 to `git fetch REMOTE BRANCH` first. LOCK: 0 when the inventory says lock = false.
# Markers (stdout):
#   now=EPOCH_SECONDS                   this host's clock
#   disabled=... (see `disabled` in lib-step.sh)
#   repo=checkout + head=SHA + branch=NAME | repo=missing | repo=not-a-checkout
#   fetch=ok | fetch=failed (its error on stderr)
#   upstream=SHA + behind=N + ahead=N   when REMOTE/BRANCH is known here
#   lock=... (see look_at_lock in lib-step.sh), or lock=off
#   pin-rev=REV + pin-commit=SHA + pin-by=LINE + pin-since=TIME   when a rollout --rev pinned it
#   record=|LINE ...                    STATE_DIR/last_run.json, one marker per line, each
#                                       after a `|` that keeps its indentation
#   summary=|LINE ...                   Puppet's last_run_summary.yaml, the same way
#   pull=systemd|cron|none + pull-interval=SECONDS (the timer's OnUnitActiveSec, or the cron
#   file's `# interval:` line),
#   pull-active=yes|no (the timer is active, or a cron daemon runs), pull-next=TIME (systemd:
#   when the timer fires next)
# Exit status: 0.

command -v git_dir >/dev/null 2>&1 || . "$(dirname -- "$0")/lib-step.sh"

repo=$1 remote=$2 branch=$3 state=$4 fetch=$5 lock=$6
echo "::capo:now=$(date +%s)"
disabled "$state" || true

if [ -f /etc/systemd/system/capo-pull.timer ]; then
  echo '::capo:pull=systemd'
  echo "::capo:pull-interval=$(sed -n 's/^OnUnitActiveSec=\([0-9]*\)s$/\1/p' /etc/systemd/system/capo-pull.timer | tail -n 1)"
  # Where systemd runs the host, it says whether the timer is on and when it fires next.
  if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
    if systemctl is-active --quiet capo-pull.timer; then
      echo '::capo:pull-active=yes'
      echo "::capo:pull-next=$(systemctl show -p NextElapseUSecRealtime --value capo-pull.timer 2>/dev/null)"
    else
      echo '::capo:pull-active=no'
    fi
  else
    echo '::capo:pull-active=no'
  fi
elif [ -f /etc/cron.d/capo-pull ]; then
  echo '::capo:pull=cron'
  echo "::capo:pull-interval=$(sed -n 's/^# interval: \([0-9]*\)s$/\1/p' /etc/cron.d/capo-pull | head -n 1)"
  # cron reads /etc/cron.d by itself, if a cron daemon runs here.
  if pgrep -x cron >/dev/null 2>&1 || pgrep -x crond >/dev/null 2>&1; then
    echo '::capo:pull-active=yes'
  else
    echo '::capo:pull-active=no'
  fi
else
  echo '::capo:pull=none'
fi
if [ -f "$state/pin" ]; then
  for k in rev commit by since; do
    echo "::capo:pin-$k=$(sed -n "s/^$k=//p" "$state/pin" | head -n 1)"
  done
fi
if [ -f "$state/last_run.json" ]; then
  sed 's/^/::capo:record=|/' "$state/last_run.json"
fi
f=$(puppet_summaryfile)
if [ -f "$f" ]; then
  sed 's/^/::capo:summary=|/' "$f"
fi

if [ ! -e "$repo" ]; then
  echo '::capo:repo=missing'
  exit 0
fi
if ! g=$(git_dir "$repo"); then
  echo '::capo:repo=not-a-checkout'
  exit 0
fi
cd -- "$repo" || exit 0
echo '::capo:repo=checkout'
echo "::capo:head=$(git rev-parse --verify -q HEAD 2>/dev/null)"
echo "::capo:branch=$(git symbolic-ref -q --short HEAD 2>/dev/null)"
if [ "$fetch" = 1 ]; then
  if LC_ALL=C GIT_TERMINAL_PROMPT=0 git fetch --quiet --no-tags "$remote" \
    "+refs/heads/$branch:refs/remotes/$remote/$branch" </dev/null; then
    echo '::capo:fetch=ok'
  else
    echo '::capo:fetch=failed'
  fi
fi
if u=$(git rev-parse --verify -q "refs/remotes/$remote/$branch^{commit}" 2>/dev/null); then
  echo "::capo:upstream=$u"
  echo "::capo:behind=$(git rev-list --count "HEAD..$u" 2>/dev/null)"
  echo "::capo:ahead=$(git rev-list --count "$u..HEAD" 2>/dev/null)"
fi
if [ "$lock" = 1 ]; then
  look_at_lock "$g"
else
  echo '::capo:lock=off'
fi
