#!/bin/sh
# capo-check: what `capo check` reports about a host, changing nothing on it: who capo's
# steps run as, git's and Puppet's versions, whether REPO_DIR is a checkout (its HEAD and
# branch), whether the installer its Puppetfile needs is there, and whether capo's lock is
# free.
#
# Usage:   sh check.sh REPO_DIR PUPPET INSTALLER LOCK STATE_DIR
#          e.g. sh check.sh /srv/puppet puppet r10k 1 /var/lib/capo
# PUPPET: the puppet command (the `puppet` setting). INSTALLER: r10k, g10k or ignore (the
# `puppetfile` setting). LOCK: 1 to look at capo's lock, 0 when the inventory says
# lock = false.
# The lock is only looked at, never created or written: when its files exist, it is taken
# for an instant without waiting (under capo.lock.info, as lock.sh takes it, so that a
# rollout starting at that moment waits for it rather than seeing it held) and let go.
# Markers (stdout), in this order:
#   user=NAME                        who this runs as (with become: after sudo)
#   pkg=MANAGER                      apt, dnf, yum, zypper, apk or empty (for install hints)
#   git=VERSION | git=missing + search-path=PATH
#   puppet=VERSION | puppet=missing + search-path=PATH
#   repo=checkout + head=SHA + branch=NAME (empty: detached HEAD)
#   repo=missing | repo=unknown (no git) | repo=not-a-checkout + why=GIT'S ERROR LINE
#   puppetfile=none | puppetfile=INSTALLER + installer=present|missing
#   lock=free | off | held + holder=LINE | busy + holder=LINE
#   lock=unavailable + why=no-flock | not-writable (+ user=USER, path=GITDIR)
#   disabled=capo|puppet + disabled-message=, disabled-by=, disabled-since= (when disabled;
#                                    first of all, see `disabled` in lib-step.sh)
# Exit status: 0; what it found is in the markers.

command -v git_dir >/dev/null 2>&1 || . "$(dirname -- "$0")/lib-step.sh"

repo=$1 puppet=$2 installer=$3 lock=$4 state=$5
disabled "$state"
me=$(id -un 2>/dev/null || id -u)
echo "::capo:user=$me"
echo "::capo:pkg=$(pkg_manager)"
has_git=0
if command -v git >/dev/null 2>&1; then
  has_git=1
  v=$(LC_ALL=C git --version 2>/dev/null)
  echo "::capo:git=${v#git version }"
else
  echo '::capo:git=missing'
  echo "::capo:search-path=$PATH"
fi
if command -v "$puppet" >/dev/null 2>&1; then
  v=$("$puppet" --version </dev/null 2>/dev/null | head -n 1)
  echo "::capo:puppet=${v:-unknown}"
else
  echo '::capo:puppet=missing'
  echo "::capo:search-path=$PATH"
fi

if [ ! -e "$repo" ]; then
  echo '::capo:repo=missing'
  exit 0
fi
if [ "$has_git" = 0 ]; then
  echo '::capo:repo=unknown'
  exit 0
fi
if ! g=$(git_dir "$repo"); then
  echo '::capo:repo=not-a-checkout'
  why=$( (cd -- "$repo" && LC_ALL=C git rev-parse --show-toplevel >/dev/null) 2>&1 | head -n 1)
  echo "::capo:why=$why"
  exit 0
fi
cd -- "$repo" || exit 0
echo '::capo:repo=checkout'
echo "::capo:head=$(git rev-parse --verify -q HEAD 2>/dev/null)"
echo "::capo:branch=$(git symbolic-ref -q --short HEAD 2>/dev/null)"
if [ "$installer" = ignore ] || [ ! -f Puppetfile ]; then
  echo '::capo:puppetfile=none'
else
  echo "::capo:puppetfile=$installer"
  if command -v "$installer" >/dev/null 2>&1; then
    echo '::capo:installer=present'
  else
    echo '::capo:installer=missing'
  fi
fi

if [ "$lock" != 1 ]; then
  echo '::capo:lock=off'
  exit 0
fi
look_at_lock "$g"
