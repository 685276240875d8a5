#!/bin/sh
# capo-bootstrap: makes a new host ready for capo rollout: git and Puppet there (installed
# with the host's package manager when INSTALL is 1), a clone of URL in REPO_DIR, the
# Puppetfile's modules installed, and a noop apply of the clone that proves it compiles.
# A REPO_DIR that already is a checkout of URL is left exactly as it is (already=1); one
# that holds anything else (another repository, files, a file) is refused, never touched.
#
# Usage:   sh bootstrap.sh REPO_DIR URL REMOTE BRANCH REV INSTALL INSTALLER PUPPET ENVIRONMENT MANIFEST MODULEPATH CERTNAME [PUPPET_ARG...]
#          e.g. sh bootstrap.sh /srv/puppet https://git.example/puppet.git origin main '' 0 r10k puppet production '' '' ''
# REPO_DIR: absent or an empty directory, to clone into. The clone's remote is named REMOTE
# (git clone -o) and its local branch BRANCH tracks REMOTE/BRANCH, so that later rollouts'
# `git pull --ff-only REMOTE BRANCH` work. REV (a branch of URL, a tag or a commit; empty:
# the tip of BRANCH): the local branch BRANCH is put at exactly that commit, as
# `capo rollout --rev` leaves a checkout. INSTALL: 1 to install a missing git or Puppet
# (packages git and puppet) with apt-get, dnf, yum, zypper or apk; 0 to only say what is
# missing. INSTALLER: r10k, g10k or ignore (the `puppetfile` setting). PUPPET ... CERTNAME
# and the PUPPET_ARGs: as in apply.sh; the noop apply is run_puppet's (lib-step.sh) with
# the clone as the Puppet environment ENVIRONMENT, its results in a temporary directory
# (read back and removed by collect.sh). Nothing outside REPO_DIR is set up: a rollout
# needs nothing else (each run links the checkout into a per-run --environmentpath).
# Markers (stdout), in this order:
#   pkg=MANAGER                      apt, dnf, yum, zypper, apk or empty
#   fail=not-a-dir                   REPO_DIR exists and is not a directory (exit 1)
#   fail=unreadable                  REPO_DIR cannot be listed (exit 1)
#   fail=occupied + why=GIT'S LINE   REPO_DIR is not empty and not a checkout (exit 1)
#   fail=other-repo + found-url=URL  REPO_DIR is a checkout whose REMOTE is not URL (exit 1)
#   already=1 + head=SHA             REPO_DIR is a checkout of URL (exit 0; nothing done)
#   missing=git puppet + search-path=PATH   what is not installed (either or both)
#   fail=missing                     ... and INSTALL is 0 (exit 1)
#   fail=install                     the package manager failed or is unknown; its error is on
#                                    stderr (exit 1). Installing comes before a REPO_DIR that
#                                    is not empty can be looked at without git.
#   fail=install + why=still-missing it succeeded, and git or PUPPET is still not there
#   installed=PACKAGES
#   fail=clone                       git clone failed; its error is on stderr (exit 1)
#   fail=rev-not-found               REV is not in the clone, which is removed again (exit 1)
#   rev-after=SHA                    the clone is there, at SHA
#   fail=no-installer + installer=NAME (exit 127) | fail=modules (exit 1) | modules=installed
#   results=DIR                      the noop apply runs, with its results in DIR
# Exit status: 0 when already; else the noop apply's (puppet --detailed-exitcodes: 0 or 2
# compiled; 1, 4 or 6 it did not, and the clone stays where it is), or 1 before it ran.

command -v at_top >/dev/null 2>&1 || . "$(dirname -- "$0")/lib-step.sh"

# look: REPO_DIR is a non-empty directory and git is here: refuses it (exit 1) unless it
# is the top of a checkout whose REMOTE is URL; sets have=1 when it is.
look() {
  if ! (cd -- "$repo" && at_top); then
    echo '::capo:fail=occupied'
    why=$( (cd -- "$repo" && LC_ALL=C git rev-parse --show-toplevel >/dev/null) 2>&1 | head -n 1)
    echo "::capo:why=$why"
    exit 1
  fi
  found=$(cd -- "$repo" && git config --get "remote.$remote.url" 2>/dev/null)
  if [ "${found%/}" != "${url%/}" ]; then
    echo '::capo:fail=other-repo'
    echo "::capo:found-url=$found"
    exit 1
  fi
  have=1
}

# install_packages PACKAGE...: installs them with the host's package manager $pkg,
# non-interactively. apt-get refreshes its package lists and tries again once when the
# first try fails (a new machine often has none yet).
install_packages() {
  case $pkg in
    apt)
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" </dev/null ||
        { DEBIAN_FRONTEND=noninteractive apt-get update -q </dev/null &&
          DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" </dev/null; }
      ;;
    dnf | yum) "$pkg" install -y "$@" </dev/null ;;
    zypper) zypper --non-interactive install "$@" </dev/null ;;
    apk) apk add "$@" </dev/null ;;
    *) echo 'capo: no package manager found (apt-get, dnf, yum, zypper, apk)' >&2; return 1 ;;
  esac
}

# undo: removes the clone this run made (REPO_DIR itself when it was absent, else what is
# in it), leaving the host as it was.
undo() {
  cd / || return 1
  if [ "$state" = absent ]; then
    rm -rf -- "$repo"
  else
    find "$repo" -mindepth 1 -maxdepth 1 -exec rm -rf -- {} +
  fi
}

repo=$1 url=$2 remote=$3 branch=$4 rev=$5 install=$6 installer=$7 puppet=$8 env=$9
shift 9
manifest=$1 modulepath=$2 certname=$3
shift 3
pkg=$(pkg_manager)
echo "::capo:pkg=$pkg"

if [ -d "$repo" ]; then
  if ! entries=$(ls -A -- "$repo" 2>/dev/null) || [ ! -x "$repo" ]; then
    echo '::capo:fail=unreadable'
    exit 1
  fi
  if [ -z "$entries" ]; then state=empty; else state=full; fi
elif [ -e "$repo" ] || [ -L "$repo" ]; then
  echo '::capo:fail=not-a-dir'
  exit 1
else
  state=absent
fi

missing=''
command -v git >/dev/null 2>&1 || missing=git
command -v "$puppet" >/dev/null 2>&1 || missing="${missing:+$missing }puppet"
have=0
if [ "$state" = full ] && command -v git >/dev/null 2>&1; then look; fi
if [ "$have" = 1 ] && [ -z "$missing" ]; then
  echo '::capo:already=1'
  echo "::capo:head=$(cd -- "$repo" && git rev-parse --verify -q HEAD)"
  exit 0
fi

if [ -n "$missing" ]; then
  echo "::capo:missing=$missing"
  echo "::capo:search-path=$PATH"
  if [ "$install" != 1 ]; then
    echo '::capo:fail=missing'
    exit 1
  fi
  # Word splitting on purpose: one package per word.
  # shellcheck disable=SC2086
  if ! install_packages $missing; then
    echo '::capo:fail=install'
    exit 1
  fi
  if ! command -v git >/dev/null 2>&1 || ! command -v "$puppet" >/dev/null 2>&1; then
    echo '::capo:fail=install'
    echo '::capo:why=still-missing'
    exit 1
  fi
  echo "::capo:installed=$missing"
  # Without git, a non-empty REPO_DIR could not be looked at before.
  if [ "$state" = full ] && [ "$have" != 1 ]; then look; fi
fi

if [ "$have" != 1 ]; then
  LC_ALL=C GIT_TERMINAL_PROMPT=0 git clone -q --no-checkout -o "$remote" -b "$branch" \
    -- "$url" "$repo" </dev/null || { echo '::capo:fail=clone'; exit 1; }
fi
cd -- "$repo" || exit 1
abs=$(pwd)
if [ "$have" = 1 ]; then
  t=$(git rev-parse --verify -q 'HEAD^{commit}')
elif [ -n "$rev" ]; then
  t=$(git rev-parse --verify -q "refs/remotes/$remote/$rev^{commit}" 2>/dev/null ||
    git rev-parse --verify -q "refs/tags/$rev^{commit}" 2>/dev/null ||
    git rev-parse --verify -q "$rev^{commit}" 2>/dev/null)
  if [ -z "$t" ]; then
    echo '::capo:fail=rev-not-found'
    undo
    exit 1
  fi
else
  t=$(git rev-parse --verify -q 'HEAD^{commit}')
fi
if [ "$have" != 1 ]; then
  git reset -q --hard "$t" || { echo '::capo:fail=clone'; exit 1; }
fi
echo "::capo:rev-after=$t"

if [ "$installer" != ignore ] && [ -f Puppetfile ]; then
  install_modules "$abs" "$installer" || { echo '::capo:fail=modules'; exit 1; }
  record_modules "$installer" "$abs" "$(git_dir "$abs")/capo.modules"
  echo '::capo:modules=installed'
fi

r=$(mktemp -d "${TMPDIR:-/tmp}/capo-run.XXXXXX") || exit 1
echo "::capo:results=$r"
run_puppet "$abs" "$r" "$puppet" "$env" "$manifest" "$modulepath" "$certname" 0 1 "$t" "$@"
