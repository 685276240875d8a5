#!/usr/bin/env bash
# fleet.sh -- local test fleet for capo: N "hosts", each an sshd running as pid 1
# of its own pid+mount+uts namespace on a loopback port, with a per-host Puppet
# setup and a git checkout of a shared control repo.  See README.md next to this file.
#
# Needs root (unshare/nsenter/mount).  Everything a fleet owns lives under DIR
# (default ./.fleet); the only things outside DIR are /run/sshd (created if missing,
# as the Debian sshd service would), the port lock /tmp/capo-fleet-ports.lock and the
# port registry /tmp/capo-fleet-ports.d/.
set -euo pipefail

SELF="$(readlink -f "${BASH_SOURCE[0]}")"
HERE="$(dirname "$SELF")"
CONTROL_REPO="$HERE/control-repo"
PORT_LOCK=/tmp/capo-fleet-ports.lock
PORT_REG=/tmp/capo-fleet-ports.d
SSHD=/usr/sbin/sshd
# Fixed identity for commits made by the harness (deterministic initial commit sha).
export GIT_AUTHOR_NAME="capo fleet" GIT_AUTHOR_EMAIL="fleet@capo.test"
export GIT_COMMITTER_NAME="capo fleet" GIT_COMMITTER_EMAIL="fleet@capo.test"
# Keep git away from the caller's configuration.
export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null GIT_TERMINAL_PROMPT=0
# Environment every command inside a host gets with `exec` (mimics an ssh session).
HOST_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

die() { echo "fleet.sh: $*" >&2; exit 1; }
log() { [[ -n "${FLEET_QUIET:-}" ]] || echo "fleet.sh: $*" >&2; }

usage() {
  cat <<'EOF'
usage: fleet.sh COMMAND [ARGS] [--dir DIR]        (DIR defaults to ./.fleet)
  up N [--ports P1,P2,...] [--user NAME:SHELL [--sudo nopasswd|password:SECRET]]
       [--repo demo|rolesprofiles] [--host-certs] [--bastion]
                             create and start hosts host01..hostNN; prints the inventory path.
                             --host-certs: a host CA (DIR/keys/host_ca) signs every host key
                             (principals 127.0.0.1 and the host name), each sshd presents its
                             certificate (HostCertificate), and DIR/keys/known_hosts_ca trusts
                             the CA with one @cert-authority line and lists no host key
                             --repo picks the control repo: demo (control-repo/, the default)
                             or rolesprofiles (control-repo-rolesprofiles/: environment.conf,
                             Hiera data, a Puppetfile whose module comes from DIR/forge, seen
                             as /srv/forge on the hosts; each host's Puppet environment
                             production is a link to its checkout, and the inventory leaves
                             manifest/modulepath unset)
                             --user also gives every host a non-root user NAME (uid 4242) whose
                             login shell is SHELL (e.g. deploy:/usr/bin/tcsh), with the fleet's
                             client key, home /srv/home/NAME and its own checkout there
                             (/srv/home/NAME/puppet); the inventory stays root's.
                             --sudo: NAME's sudo rule in the host's own /etc/sudoers: nopasswd
                             (the default) or password:SECRET (SECRET becomes NAME's password
                             in the host's own /etc/shadow; password:- reads SECRET from the
                             first line of stdin instead, off every command line and environment)
                             --bastion: the hosts live in a network namespace of their own that
                             only one more host, "bastion" (AllowTcpForwarding yes), can reach;
                             the controller reaches the bastion over a veth pair, and the
                             inventory sets jump = "root@BASTION_ADDR:PORT"
  down [--purge]             kill every host (idempotent); --purge also removes DIR
  stop HOST | start HOST     stop / restart one host (same port, same host key)
  rekey HOST                 new host key for HOST, restart it (known_hosts keeps the old key;
                             a certified host gets its new key certified the default way)
  certify HOST [--principals P1,P2] [--validity SPEC]
                             sign HOST's key again with the fleet's host CA (up --host-certs)
                             with these principals (default 127.0.0.1,HOST) and ssh-keygen -V
                             validity (default -1d:+365d; e.g. -2d:-1d is expired), restart it
  exec HOST -- CMD...        run CMD inside HOST's namespaces (mount, uts, pid)
  freeze HOST [--all]        SIGSTOP HOST's listening sshd (TCP connects still succeed, no
                             SSH banner); --all: every sshd process of HOST, sessions included
                             (established connections go silent), but not their commands
  thaw HOST                  SIGCONT every sshd process of HOST (undoes freeze)
  procs HOST                 ps -eo pid,pgid,stat,args as seen inside HOST's pid namespace
  status                     show hosts, ports, pids, state
  agent                      start an ssh-agent on DIR/agent.sock holding the fleet's client
                             key (pid in DIR/agent.pid; down kills it); prints the socket path
  commit PATH CONTENT MSG    write CONTENT to PATH in DIR/work, commit, push; prints the sha
                             (also: commit [--dir DIR] -- PATH CONTENT MSG)
EOF
}

# ---------------------------------------------------------------- helpers
# Names are zero-padded to two digits (host01), or three for fleets of 100 hosts or more.
NAME_WIDTH=2
host_name() { printf 'host%0*d' "$NAME_WIDTH" "$1"; }
hdir() { echo "$DIR/hosts/$1"; }

need_root() { [[ $EUID -eq 0 ]] || die "must run as root (needs unshare/nsenter/mount)"; }

need_fleet() {
  [[ -d "$DIR/hosts" ]] || die "no fleet in $DIR (run: fleet.sh up N --dir $DIR)"
}

need_host() {
  [[ -n "${1:-}" ]] || die "missing HOST argument"
  [[ -f "$(hdir "$1")/sshd_config" ]] || die "no host '$1' in fleet $DIR"
}

all_hosts() {  # the target hosts (the inventory's), not the bastion
  local d
  for d in "$DIR"/hosts/*/; do
    [[ -f "$d/sshd_config" && "$(basename "$d")" != bastion ]] && basename "$d"
  done
  return 0
}

has_bastion() { [[ -f "$DIR/hosts/bastion/sshd_config" ]]; }
members() { all_hosts; if has_bastion; then echo bastion; fi; }  # every sshd of the fleet

host_port() { cat "$(hdir "$1")/port"; }
# where the host's sshd listens: 127.0.0.1, or for the bastion its veth address
host_addr() { cat "$(hdir "$1")/addr" 2>/dev/null || echo 127.0.0.1; }

# up --bastion: every host of the fleet runs in the network namespace named in DIR/netns
netns_name() { cat "$DIR/netns" 2>/dev/null; }
netrun() {  # CMD...: run CMD in the fleet's network namespace (if it has one)
  local ns
  if ns="$(netns_name)" && [[ -n "$ns" ]]; then
    nsenter --net="/run/netns/$ns" -- "$@"
  else
    "$@"
  fi
}

# pid of the host's top process (unshare) if it is alive and really ours
host_top_pid() {
  local f pid
  f="$(hdir "$1")/pid"
  [[ -f "$f" ]] || return 1
  pid="$(cat "$f")"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  proc_is_ours "$pid" "$1" || return 1
  echo "$pid"
}

proc_alive() {  # running and not a zombie
  local st
  { read -r st <"/proc/$1/stat"; } 2>/dev/null || return 1
  st="${st##*) }"
  st="${st%% *}"
  [[ -n "$st" && "$st" != Z && "$st" != X ]]
}

proc_is_ours() {  # pid name: is this the unshare process of host NAME of this fleet?
  local cmd
  proc_alive "$1" || return 1
  cmd="$(tr '\0' '\n' 2>/dev/null <"/proc/$1/cmdline")" || return 1
  grep -qxF -- "__init" <<<"$cmd" && grep -qxF -- "$DIR" <<<"$cmd" && grep -qxF -- "$2" <<<"$cmd"
}

# pid (in our pid namespace) of the host's namespace init, i.e. its sshd
host_init_pid() {
  local top child
  top="$(host_top_pid "$1")" || return 1
  child="$(pgrep -P "$top" | head -n1)" || return 1
  [[ -n "$child" ]] && proc_alive "$child" || return 1
  echo "$child"
}

host_running() { host_init_pid "$1" >/dev/null 2>&1; }

# ---------------------------------------------------------------- freeze / thaw
# Executable names (comm) of OpenSSH's server processes.  Up to 9.7 the listener and the
# per-connection processes (monitor, session) are all "sshd"; 9.8+ execs sshd-session (and
# 10.0+ sshd-auth) for a connection.  setproctitle changes args, never comm.
is_sshd_comm() { [[ "$1" =~ ^(sshd|sshd-session|sshd-auth)$ ]]; }

proc_state() {  # pid -> its state letter (R, S, D, T, Z, ...); fails if the pid is gone
  local st
  { read -r st <"/proc/$1/stat"; } 2>/dev/null || return 1
  st="${st##*) }"
  echo "${st%% *}"
}

# pids (as seen from here) of the sshd processes in the pid namespace whose init is $1
ns_sshd_pids() {
  pgrep --ns "$1" --nslist pid -x 'sshd|sshd-session|sshd-auth' || true
}

# SIGSTOP every sshd process of the namespace of init pid $1 and wait until all of them
# are stopped.  Repeats until a pass finds nothing new, since a running session sshd may
# fork (or accept) while we work.  A process that exec'd a session's command between our
# look and our signal is stopped as that command: it is continued again, because only
# sshd is ours to freeze.
freeze_tree() {
  local init="$1" p st comm i busy
  local -A stopped=()
  for ((i = 0; i < 250; i++)); do
    busy=0
    for p in $(ns_sshd_pids "$init"); do
      [[ -n "${stopped[$p]:-}" ]] && continue
      st="$(proc_state "$p")" || continue
      [[ "$st" == Z || "$st" == X ]] && continue  # exited, waiting for its (stopped) parent
      kill -STOP "$p" 2>/dev/null || continue
      stopped[$p]=1
      busy=1
    done
    for p in "${!stopped[@]}"; do
      st="$(proc_state "$p")" || { unset "stopped[$p]"; continue; }
      case "$st" in
        T) comm="$(cat "/proc/$p/comm" 2>/dev/null)" || { unset "stopped[$p]"; continue; }
           if ! is_sshd_comm "$comm"; then kill -CONT "$p" 2>/dev/null || true; unset "stopped[$p]"; fi ;;
        Z | X) unset "stopped[$p]" ;;
        *) busy=1 ;;  # the stop is not delivered yet
      esac
    done
    ((busy)) || return 0
    sleep 0.02
  done
  return 1
}

wait_stopped() {  # pid: until it is in state T (at most ~5 s)
  local i
  for ((i = 0; i < 250; i++)); do
    [[ "$(proc_state "$1" 2>/dev/null)" == T ]] && return 0
    sleep 0.02
  done
  return 1
}

port_listening() {  # port -> 0 if something listens on it (any address)
  [[ -n "$(ss -Hltn "sport = :$1" 2>/dev/null)" ]] ||
    [[ -n "$(netns_name)" && -n "$(netrun ss -Hltn "sport = :$1" 2>/dev/null)" ]]
}

port_listener_pids() {
  netrun ss -Hltnp "sport = :$1" 2>/dev/null | grep -o 'pid=[0-9]*' | cut -d= -f2 | sort -u
}

# ---------------------------------------------------------------- port registry
# Called with the port lock held.  A registry entry PORT -> DIR reserves a port for a
# fleet even while one of its hosts is stopped; entries whose DIR is gone are stale.
reg_sweep() {
  local f owner
  mkdir -p "$PORT_REG"
  for f in "$PORT_REG"/*; do
    [[ -f "$f" ]] || continue
    owner="$(cat "$f" 2>/dev/null || true)"
    if [[ -z "$owner" || ! -d "$owner/hosts" ]]; then rm -f "$f"; fi
  done
}
reg_owner() { cat "$PORT_REG/$1" 2>/dev/null || true; }
reg_claim() { mkdir -p "$PORT_REG"; echo "$DIR" >"$PORT_REG/$1"; }
reg_release_fleet() {
  local f
  for f in "$PORT_REG"/*; do
    [[ -f "$f" ]] || continue
    [[ "$(cat "$f" 2>/dev/null || true)" == "$DIR" ]] && rm -f "$f"
  done
  return 0
}

with_port_lock() {  # run "$@" holding the global port lock (fd 9, never inherited by hosts)
  # (not in a condition context, so set -e still applies inside "$@"; on exit the lock is released)
  exec 9>>"$PORT_LOCK"
  flock -w 120 9 || die "timeout waiting for $PORT_LOCK"
  "$@"
  flock -u 9
  exec 9>&-
}

# choose a free port outside the ephemeral range (so outgoing connections never hold it)
pick_port() {
  local lo hi a b p tries=0
  read -r lo hi </proc/sys/net/ipv4/ip_local_port_range
  if ((lo > 12000)); then a=10000; b=$((lo - 1)); elif ((hi < 60000)); then a=$((hi + 1)); b=65000; else a=20000; b=60000; fi
  while ((tries++ < 500)); do
    p=$((a + (SRANDOM % (b - a + 1))))
    [[ -z "$(reg_owner "$p")" ]] || continue
    port_listening "$p" && continue
    grep -qw "$p" <<<"${PICKED_PORTS:-}" && continue
    echo "$p"
    return 0
  done
  die "could not find a free loopback port"
}

# ---------------------------------------------------------------- host files
write_sshd_config() {  # name port
  local d
  d="$(hdir "$1")"
  cat >"$d/sshd_config" <<EOF
# sshd for capo test fleet host $1 (generated by tests/fleet/fleet.sh)
ListenAddress $(host_addr "$1")
Port $2
HostKey $d/ssh_host_ed25519_key
AuthorizedKeysFile $DIR/keys/authorized_keys
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
UseDNS no
MaxStartups 1000:30:2000
MaxSessions $([[ "$1" == bastion ]] && echo 10 || echo 100)
PidFile none
LogLevel VERBOSE
PrintMotd no
PrintLastLog no
X11Forwarding no
AllowAgentForwarding no
Subsystem sftp /usr/lib/openssh/sftp-server
EOF
  # up --host-certs / certify: present the certificate (before any Match block)
  if [[ -f "$d/ssh_host_ed25519_key-cert.pub" ]]; then
    echo "HostCertificate $d/ssh_host_ed25519_key-cert.pub" >>"$d/sshd_config"
  fi
  # the bastion forwards to the hosts (ProxyJump's direct-tcpip channels). It keeps OpenSSH's
  # default MaxSessions (10, above): that limits session channels, not direct-tcpip ones.
  if [[ "$1" == bastion ]]; then echo "AllowTcpForwarding yes" >>"$d/sshd_config"; fi
  if [[ -f "$d/user" ]]; then
    printf 'Match User %s\n  AuthorizedKeysFile /srv/home/%s/.ssh/authorized_keys\n' \
      "$(cat "$d/user")" "$(cat "$d/user")" >>"$d/sshd_config"
  fi
  echo "$2" >"$d/port"
}

write_puppet_conf() {  # name
  local d
  d="$(hdir "$1")"
  mkdir -p "$d/puppet/code"
  if [[ "$REPO" == rolesprofiles ]]; then
    # the common masterless setup: the environment production is the checkout
    mkdir -p "$d/puppet/code/environments"
    ln -sfn /srv/puppet "$d/puppet/code/environments/production"
  fi
  cat >"$d/puppet/puppet.conf" <<EOF
# Puppet config of capo test fleet host $1 (generated by tests/fleet/fleet.sh).
# Inside the host this directory is /etc/puppet (root's default confdir on Debian).
[main]
certname = $1
vardir = /srv/state/var
logdir = /srv/state/log
rundir = /srv/state/run
ssldir = /srv/state/ssl
publicdir = /srv/state/public
# statedir (lastrunfile, lastrunreport) defaults to \$vardir/state = /srv/state/var/state
# keep the last run report (lastrunreport) but do not pile up per-run report files
reports = none
# plain output through ssh (puppet colors even without a tty otherwise)
color = false
# nothing in this fleet talks to a puppet server
server = localhost
usecacheonfailure = false
EOF
  if [[ "$REPO" == rolesprofiles ]]; then
    printf '%s\n' '# environments/production links to the checkout /srv/puppet' \
      'environmentpath = /etc/puppet/code/environments' >>"$d/puppet/puppet.conf"
  fi
  cat >"$d/puppet/hiera.yaml" <<'EOF'
---
version: 5
hierarchy: []
EOF
}

# The fleet user of `up --user NAME:SHELL`: a passwd and group of the host's own (the real
# machine's plus NAME, uid/gid FLEET_UID), a home with the client key, a git config that
# trusts the root-owned repositories (origin, /srv/puppet), and a checkout NAME owns.
FLEET_UID=4242
add_user() {  # name
  local d user shell
  d="$(hdir "$1")"
  user="${USER_SPEC%%:*}"
  shell="${USER_SPEC#*:}"
  echo "$user" >"$d/user"
  { cat /etc/passwd; echo "$user:x:$FLEET_UID:$FLEET_UID:capo fleet user:/srv/home/$user:$shell"; } >"$d/etc-passwd"
  { cat /etc/group; echo "$user:x:$FLEET_UID:"; } >"$d/etc-group"
  write_sudo "$1" "$user"
  mkdir -p "$d/home/.ssh"
  cp "$DIR/keys/client_ed25519.pub" "$d/home/.ssh/authorized_keys"
  printf '[safe]\n\tdirectory = *\n' >"$d/home/.gitconfig"
  git clone -q -b main "$DIR/origin.git" "$d/home/puppet"
  chown -R "$FLEET_UID:$FLEET_UID" "$d/home"
  chmod 0755 "$d/home"
}

# sudo for the fleet user (up --user ... --sudo): a host's own /etc/sudoers (nothing of the
# real machine's, no includedir) and /etc/shadow (the real machine's plus NAME: `*`, no
# password, for nopasswd; the password's SHA-512 crypt hash for password:SECRET). The secret
# goes to openssl on stdin, never on a command line.
write_sudo() {  # host user
  local d user="$2" rule hash='*'
  d="$(hdir "$1")"
  case "$SUDO_SPEC" in
    nopasswd) rule="NOPASSWD: ALL" ;;
    *)
      rule="ALL"
      hash="$(printf '%s' "$SUDO_SECRET" | openssl passwd -6 -stdin)" || die "up: openssl passwd failed"
      ;;
  esac
  (umask 0227
    printf '%s\n' "# sudoers of capo test fleet host $1 (generated by tests/fleet/fleet.sh)" \
      'Defaults env_reset' 'Defaults !mail_badpass' \
      'Defaults secure_path="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"' \
      'root ALL=(ALL:ALL) ALL' "$user ALL=(ALL:ALL) $rule" >"$d/sudoers")
  (umask 0137
    { grep -v "^$user:" /etc/shadow; echo "$user:$hash:19000:0:99999:7:::"; } >"$d/etc-shadow")
  chgrp shadow "$d/etc-shadow" 2>/dev/null || true
}

# The forge of the roles/profiles repo's Puppetfile: DIR/forge/motd.git (bare), seen by the
# hosts as /srv/forge/motd.git, with tags v1.0.0 (tests/fleet/forge/motd as it is) and
# v1.1.0 (the same, version 1.1.0, with a last line `-- motd 1.1.0` in every motd). Fixed
# author and dates, so the tags' commits are the same in every fleet.
make_forge() {
  local src
  src="$(mktemp -d)"
  cp -a "$HERE/forge/motd/." "$src/"
  git -C "$src" init -q -b main
  forge_commit() {  # version
    git -C "$src" add -A
    GIT_AUTHOR_DATE="2024-01-01T00:00:00Z" GIT_COMMITTER_DATE="2024-01-01T00:00:00Z" \
      git -C "$src" commit -q -m "motd $1"
    git -C "$src" tag "v$1"
  }
  forge_commit 1.0.0
  sed -i 's/"version": "1.0.0"/"version": "1.1.0"/' "$src/metadata.json"
  printf -- '-- motd 1.1.0\n' >>"$src/templates/motd.epp"
  forge_commit 1.1.0
  mkdir -p "$DIR/forge"
  git clone -q --bare "$src" "$DIR/forge/motd.git"
  rm -rf "$src"
}

# ---------------------------------------------------------------- host certificates
# up --host-certs: DIR/keys/host_ca signs each host key; sshd presents the certificate.
DEFAULT_VALIDITY=-1d:+365d
make_host_ca() {
  ssh-keygen -q -t ed25519 -N '' -C "capo-fleet-host-ca" -f "$DIR/keys/host_ca"
  chmod 600 "$DIR/keys/host_ca"
  # the name capo connects to: 127.0.0.1, [127.0.0.1]:PORT for every port but 22
  { echo "# capo test fleet: trust host certificates signed by keys/host_ca (generated by tests/fleet/fleet.sh)"
    echo "@cert-authority 127.0.0.1,[127.0.0.1]:* $(awk '{print $1" "$2}' "$DIR/keys/host_ca.pub")"
  } >"$DIR/keys/known_hosts_ca"
  chmod 600 "$DIR/keys/known_hosts_ca"
}

sign_host_key() {  # name principals validity
  local d
  d="$(hdir "$1")"
  [[ -f "$DIR/keys/host_ca" ]] || die "no host CA in $DIR (bring the fleet up with --host-certs)"
  rm -f "$d/ssh_host_ed25519_key-cert.pub"
  ssh-keygen -q -s "$DIR/keys/host_ca" -h -I "$1" -n "$2" -V "$3" "$d/ssh_host_ed25519_key.pub" 2>/dev/null ||
    die "$1: ssh-keygen could not sign the host key (principals '$2', validity '$3')"
}

# ---------------------------------------------------------------- network namespace
# up --bastion: a network namespace of the fleet's own (DIR/netns names it) holds every host;
# the hosts listen on its loopback, which nothing outside it can reach. A veth pair links it
# to the machine: 10.213.X.Y+1 outside, 10.213.X.Y+2 inside, where only the bastion listens.
# Called with the port lock held (which also keeps two fleets from taking one subnet).
make_netns() {
  local id ns a b i
  id="$(printf '%08x' "$(printf %s "$DIR" | cksum | cut -d' ' -f1)")"
  ns="capo-fleet-$id"
  ip netns add "$ns"
  echo "$ns" >"$DIR/netns"
  ip -n "$ns" link set lo up
  for ((i = 0; i < 500; i++)); do
    a=$((SRANDOM % 256)) b=$(((SRANDOM % 64) * 4))
    ip -o -4 addr show | grep -q " 10\.213\.$a\.$((b + 1))/" || break
  done
  ((i < 500)) || die "no free 10.213.x.y/30 subnet for the bastion"
  ip link add "cfj${id}a" type veth peer name "cfj${id}b" netns "$ns"
  ip addr add "10.213.$a.$((b + 1))/30" dev "cfj${id}a"
  ip link set "cfj${id}a" up
  ip -n "$ns" addr add "10.213.$a.$((b + 2))/30" dev "cfj${id}b"
  ip -n "$ns" link set "cfj${id}b" up
  echo "10.213.$a.$((b + 2))" >"$(hdir bastion)/addr"
}

del_netns() {  # deleting the namespace also deletes the veth pair
  local ns
  ns="$(netns_name)" || return 0
  [[ -n "$ns" ]] || return 0
  ip netns del "$ns" 2>/dev/null || true
  rm -f "$DIR/netns"
}

# ---------------------------------------------------------------- host process
# The directories each host has of its own for what capo installs and keeps on a host (pull
# mode's units and cron file, its scripts, the run record): hosts/HOST/SRC -> TARGET.
HOST_DIRS=(
  etc-systemd-system:/etc/systemd/system
  etc-cron.d:/etc/cron.d
  var-lib-capo:/var/lib/capo
  usr-local-lib-capo:/usr/local/lib/capo
)

# host_dir SRC TARGET (inside the host's mount namespace): bind-mounts SRC on TARGET. A
# TARGET the machine lacks (/var/lib/capo, ...) is created inside an overlay of its nearest
# existing parent whose writes go to hosts/HOST/overlay/, so it never appears on the machine.
# Runs before every other bind mount: an overlay hides the mounts below its directory.
declare -A OVERLAID=()
host_dir() {
  local src="$1" target="$2" h="$3" p q o
  if [[ ! -d "$target" ]]; then
    p="$(dirname "$target")"
    while [[ ! -d "$p" ]]; do p="$(dirname "$p")"; done
    q="$p"
    while [[ -z "${OVERLAID[$q]:-}" && "$q" != / ]]; do q="$(dirname "$q")"; done
    if [[ -z "${OVERLAID[$q]:-}" ]]; then
      o="$h/overlay/${p//\//_}"
      mkdir -p "$o/upper" "$o/work"
      mount -t overlay "capo-overlay" -o "lowerdir=$p,upperdir=$o/upper,workdir=$o/work" "$p"
      OVERLAID[$p]=1
    fi
    mkdir -p "$target"
  fi
  mount --bind "$src" "$target"
}

# Runs as pid 1 of the host's namespaces (via unshare, see start_host_proc).
cmd___init() {
  local dir="$1" name="$2" h e
  h="$dir/hosts/$name"
  # never propagate any mount back to the real machine
  mount --make-rprivate /
  hostname "$name"
  for e in "${HOST_DIRS[@]}"; do
    mkdir -p "$h/${e%%:*}"
    host_dir "$h/${e%%:*}" "${e#*:}" "$h"
  done
  mount -t tmpfs -o size=64m,mode=0755 "capo-$name" /srv
  mkdir -p /srv/puppet /srv/managed /srv/state
  mount --bind "$h/checkout" /srv/puppet
  mount --bind "$h/managed" /srv/managed
  mount --bind "$h/state" /srv/state
  mount --bind "$h/puppet" /etc/puppet
  # the forge (up --repo rolesprofiles): the Puppetfile's module repositories, read-only
  if [[ -d "$dir/forge" ]]; then
    mkdir -p /srv/forge
    mount --bind "$dir/forge" /srv/forge
    mount -o remount,bind,ro /srv/forge
  fi
  # the host's own name resolves locally, so facter never waits for DNS
  mount --bind "$h/etc-hosts" /etc/hosts
  # root's home is per host too: the real machine's dotfiles (.bashrc, .ssh, .gitconfig)
  # neither slow down nor leak into ssh sessions
  mount --bind "$h/root" /root
  # the fleet user (up --user), known to this host alone
  if [[ -f "$h/etc-passwd" ]]; then
    mount --bind "$h/etc-passwd" /etc/passwd
    mount --bind "$h/etc-group" /etc/group
    mount --bind "$h/etc-shadow" /etc/shadow
    mount --bind "$h/sudoers" /etc/sudoers
    # sudo's credential cache, this host's alone
    mkdir -p /run/sudo
    mount -t tmpfs -o size=1m,mode=0711 "capo-sudo-$name" /run/sudo
    mkdir -p "/srv/home/$(cat "$h/user")"
    mount --bind "$h/home" "/srv/home/$(cat "$h/user")"
  fi
  mkdir -p /run/sshd
  echo "fleet.sh: $name: namespace ready, exec sshd (pid $$)"
  exec "$SSHD" -D -e -f "$h/sshd_config"
}

start_host_proc() {  # name -> starts in background, records pid
  local name="$1" d
  d="$(hdir "$name")"
  mkdir -p /run/sshd
  echo "---- $(date '+%F %T') fleet.sh: starting $name on port $(host_port "$name")" >>"$d/sshd.log"
  # nsenter (up --bastion) execs unshare, so $! stays the host's top process
  local -a net=()
  [[ -z "$(netns_name)" ]] || net=(nsenter --net="/run/netns/$(netns_name)" --)
  "${net[@]}" unshare --pid --fork --mount-proc --mount --uts --kill-child \
    "$SELF" __init "$DIR" "$name" </dev/null >>"$d/sshd.log" 2>&1 9>&- &
  echo $! >"$d/pid"
}

# wait until the host's sshd listens on its port; 0 ok, 1 died (e.g. bind failure), 2 timeout
wait_listening() {  # name
  local name="$1" port i init
  port="$(host_port "$name")"
  for ((i = 0; i < 200; i++)); do
    if init="$(host_init_pid "$name")"; then
      if [[ "$(cat "/proc/$init/comm" 2>/dev/null)" == sshd ]] &&
        port_listener_pids "$port" | grep -qx "$init"; then
        return 0
      fi
    elif ((i > 2)) && ! host_top_pid "$name" >/dev/null; then
      return 1
    fi
    sleep 0.05
  done
  return 2
}

kill_host() {  # name: kill the namespace (idempotent)
  local name="$1" top i p
  top="$(host_top_pid "$name" 2>/dev/null)" || top=""
  if [[ -n "$top" ]]; then
    # SIGKILL to pid 1 of the namespace kills everything in it (sshd, sessions, puppet);
    # unshare (which ignores SIGTERM) exits once its child is reaped, and by then every
    # process of the namespace is gone and the listening socket is closed.
    for p in $(pgrep -P "$top" || true); do kill -KILL "$p" 2>/dev/null || true; done
    for ((i = 0; i < 200; i++)); do proc_alive "$top" || break; sleep 0.05; done
    if proc_alive "$top"; then kill -KILL "$top" 2>/dev/null || true; fi
  fi
  # belt and braces: anything still running with this host's paths on its command line
  for p in $(fleet_pids "$(hdir "$name")/"); do kill -KILL "$p" 2>/dev/null || true; done
  rm -f "$(hdir "$name")/pid"
}

fleet_pids() {  # pids of sshd/unshare processes whose command line contains the fixed string $1
  local f p comm
  for f in $(grep -laF -- "$1" /proc/[0-9]*/cmdline 2>/dev/null || true); do
    p="${f#/proc/}"
    p="${p%/cmdline}"
    [[ "$p" == "$$" || "$p" == "$BASHPID" ]] && continue
    comm="$(cat "/proc/$p/comm" 2>/dev/null)" || continue
    [[ "$comm" == sshd || "$comm" == unshare ]] && echo "$p"
  done
  return 0
}

ssh_check() {  # name: can the client log in?
  local port
  port="$(host_port "$1")"
  netrun ssh -F /dev/null -i "$DIR/keys/client_ed25519" -o IdentitiesOnly=yes -o BatchMode=yes \
    -o UserKnownHostsFile="$DIR/keys/known_hosts" -o GlobalKnownHostsFile=/dev/null \
    -o StrictHostKeyChecking=yes -o ConnectTimeout=5 -o LogLevel=ERROR \
    -p "$port" "root@$(host_addr "$1")" true </dev/null
}

wait_ssh() {  # name
  local i
  for ((i = 0; i < 20; i++)); do
    ssh_check "$1" 2>/dev/null && return 0
    sleep 0.2
  done
  ssh_check "$1" || true
  echo "---- tail of $(hdir "$1")/sshd.log:" >&2
  tail -n 20 "$(hdir "$1")/sshd.log" >&2 || true
  return 1
}

# Start every host in $@ (port lock held) and wait until each sshd listens.  With
# FIXED_PORTS=1 the ports in the configs are kept (fail if taken); otherwise a host whose
# port turns out to be busy gets a new one.  Hosts are launched in parallel first, then
# waited for one by one (retrying the ones that failed to bind).
start_hosts_locked() {
  local name
  reg_sweep
  for name in "$@"; do launch_host "$name" || true; done
  for name in "$@"; do settle_host "$name"; done
}

port_free_for_us() {  # port -> 0 if neither reserved by another fleet nor in use
  local owner
  owner="$(reg_owner "$1")"
  if [[ -n "$owner" && "$owner" != "$DIR" ]]; then
    [[ "${FIXED_PORTS:-0}" == 1 ]] && die "port $1 is reserved by fleet $owner"
    return 1
  fi
  if port_listening "$1"; then
    [[ "${FIXED_PORTS:-0}" == 1 ]] && die "port $1 is in use by another process"
    return 1
  fi
  return 0
}

launch_host() {  # name -> 0 launched, 1 port not free (nothing launched)
  local port
  port="$(host_port "$1")"
  if ! port_free_for_us "$port"; then rm -f "$(hdir "$1")/pid"; return 1; fi
  reg_claim "$port"
  start_host_proc "$1"
}

settle_host() {  # name: wait for the launched host; move it to another port if it cannot bind
  local name="$1" port rc tries=0
  while :; do
    port="$(host_port "$name")"
    rc=1
    if [[ -f "$(hdir "$name")/pid" ]]; then
      rc=0
      wait_listening "$name" || rc=$?
      ((rc == 0)) && return 0
      kill_host "$name"
      if ((rc == 2)); then
        tail -n 20 "$(hdir "$name")/sshd.log" >&2
        die "$name: sshd did not start listening on port $port"
      fi
      rm -f "$PORT_REG/$port"
      if ! tail -n 5 "$(hdir "$name")/sshd.log" | grep -q "Address already in use"; then
        tail -n 20 "$(hdir "$name")/sshd.log" >&2
        die "$name: host failed to start (see $(hdir "$name")/sshd.log)"
      fi
      if [[ "${FIXED_PORTS:-0}" == 1 ]]; then
        tail -n 20 "$(hdir "$name")/sshd.log" >&2
        die "$name: sshd failed to start on port $port"
      fi
    fi
    ((++tries < 20)) || die "$name: could not start sshd (tried $tries ports)"
    PICKED_PORTS="${PICKED_PORTS:-} $port"
    port="$(pick_port)"
    log "$name: port $(host_port "$name") busy, retrying on $port"
    write_sshd_config "$name" "$port"
    launch_host "$name" || true
  done
}

# ---------------------------------------------------------------- generated files
host_range() {  # first last -> TOML string for an inventory host pattern
  if (($1 == $2)); then printf '"%s"' "$(host_name "$1")"; else printf '"host[%0*d-%0*d]"' "$NAME_WIDTH" "$1" "$NAME_WIDTH" "$2"; fi
}

write_known_hosts() {
  local name port key addr
  : >"$DIR/keys/known_hosts.new"
  for name in $(members); do
    port="$(host_port "$name")"
    addr="$(host_addr "$name")"
    key="$(awk '{print $1" "$2}' "$(hdir "$name")/ssh_host_ed25519_key.pub")"
    if [[ "$port" == 22 ]]; then echo "$addr $key"; else echo "[$addr]:$port $key"; fi \
      >>"$DIR/keys/known_hosts.new"
  done
  chmod 600 "$DIR/keys/known_hosts.new"
  mv "$DIR/keys/known_hosts.new" "$DIR/keys/known_hosts"
}

write_inventory_and_env() {
  local n web i name
  n="$(all_hosts | wc -l)"
  # web: first ~60% of the hosts (at least one); db: the rest (at least one if n >= 2)
  web=$(((6 * n + 5) / 10))
  ((web < 1)) && web=1
  ((n >= 2 && web > n - 1)) && web=$((n - 1))
  {
    echo "# capo inventory for the local test fleet (generated by tests/fleet/fleet.sh)"
    echo "[defaults]"
    echo 'user = "root"'
    echo 'identity_files = ["keys/client_ed25519"]'
    echo 'known_hosts = "keys/known_hosts"'
    echo 'host_key_check = "strict"'
    echo 'connect_timeout = "5s"'
    echo 'command_timeout = "5m"'
    echo 'repo_dir = "/srv/puppet"'
    echo 'remote = "origin"'
    echo 'branch = "main"'
    if [[ "$(cat "$DIR/repo" 2>/dev/null)" != rolesprofiles ]]; then
      echo 'manifest = "manifests/site.pp"'
      echo 'modulepath = ["modules"]'
    fi
    if has_bastion; then
      echo "jump = \"root@$(host_addr bastion):$(host_port bastion)\""
    fi
    echo
    echo "[groups.all]"
    echo "hosts = [$(host_range 1 "$n")]"
    echo
    echo "[groups.web]"
    echo "hosts = [$(host_range 1 "$web")]"
    if ((web < n)); then
      echo
      echo "[groups.db]"
      echo "hosts = [$(host_range $((web + 1)) "$n")]"
    fi
    for ((i = 1; i <= n; i++)); do
      name="$(host_name "$i")"
      echo
      echo "[hosts.$name]"
      echo 'address = "127.0.0.1"'
      echo "port = $(host_port "$name")"
    done
  } >"$DIR/inventory.toml.new"
  mv "$DIR/inventory.toml.new" "$DIR/inventory.toml"

  {
    echo "# capo test fleet (generated by tests/fleet/fleet.sh); source me"
    echo "FLEET_DIR=$(printf %q "$DIR")"
    echo "FLEET_HOSTS=$(printf %q "$(all_hosts | tr '\n' ' ' | sed 's/ $//')")"
    echo "FLEET_INVENTORY=$(printf %q "$DIR/inventory.toml")"
    echo "FLEET_KEY=$(printf %q "$DIR/keys/client_ed25519")"
    echo "FLEET_KNOWN_HOSTS=$(printf %q "$DIR/keys/known_hosts")"
    if [[ -f "$DIR/keys/known_hosts_ca" ]]; then
      echo "FLEET_KNOWN_HOSTS_CA=$(printf %q "$DIR/keys/known_hosts_ca")"
      echo "FLEET_HOST_CA=$(printf %q "$DIR/keys/host_ca")"
    fi
    echo "FLEET_ORIGIN=$(printf %q "$DIR/origin.git")"
    echo "FLEET_WORK=$(printf %q "$DIR/work")"
    for name in $(all_hosts); do
      echo "FLEET_PORT_$name=$(host_port "$name")"
    done
    if has_bastion; then
      echo "FLEET_BASTION=$(printf %q "root@$(host_addr bastion):$(host_port bastion)")"
      echo "FLEET_BASTION_ADDR=$(host_addr bastion)"
      echo "FLEET_PORT_bastion=$(host_port bastion)"
      echo "FLEET_NETNS=$(netns_name)"
    fi
  } >"$DIR/fleet.env"
}

# ---------------------------------------------------------------- commands
cmd_up() {
  need_root
  local n="${POS[0]:-}" i name d ports=() t0
  t0=$(date +%s.%N)
  if ! [[ "$n" =~ ^[0-9]+$ ]] || ((10#$n < 1 || 10#$n > 999)); then die "up: N must be 1..999"; fi
  n=$((10#$n))
  ((n < 100)) || NAME_WIDTH=3
  if [[ -n "$PORTS" ]]; then
    IFS=, read -r -a ports <<<"$PORTS"
    ((${#ports[@]} == n)) || die "up: --ports needs exactly $n ports"
    for i in "${ports[@]}"; do
      if ! [[ "$i" =~ ^[0-9]+$ ]] || ((10#$i < 1 || 10#$i > 65535)); then die "up: bad port '$i'"; fi
    done
  fi
  ((!BASTION)) || command -v ip >/dev/null || die "missing ip (up --bastion needs iproute2)"
  for cmd in unshare nsenter ss flock ssh ssh-keygen git puppet "$SSHD"; do
    command -v "$cmd" >/dev/null || die "missing $cmd"
  done
  # the roles/profiles repo's modules come from its Puppetfile
  [[ "$REPO" != rolesprofiles ]] || command -v r10k >/dev/null ||
    die "missing r10k (up --repo rolesprofiles installs the Puppetfile's modules with it)"

  if [[ -n "$USER_SPEC" ]]; then
    [[ "$USER_SPEC" =~ ^[a-z_][a-z0-9_-]*:/.+$ ]] || die "up: --user wants NAME:SHELL (e.g. deploy:/usr/bin/tcsh)"
    [[ -x "${USER_SPEC#*:}" ]] || die "up: login shell ${USER_SPEC#*:} is not installed"
    command -v sudo >/dev/null || die "missing sudo (up --user gives the user sudo)"
  fi
  case "$SUDO_SPEC" in
    nopasswd) ;;
    password:*)
      [[ -n "$USER_SPEC" ]] || die "up: --sudo needs --user"
      SUDO_SECRET="${SUDO_SPEC#password:}"
      # An environment variable would not do: /proc/PID/environ keeps it after unset, and
      # the tests look for the password in every process's environment.
      if [[ "$SUDO_SECRET" == "-" ]]; then
        IFS= read -r SUDO_SECRET || true
      fi
      [[ -n "$SUDO_SECRET" ]] || die "up: --sudo password: wants a password (password:SECRET, or password:- and SECRET on stdin)"
      ;;
    *) die "up: --sudo wants nopasswd or password:SECRET" ;;
  esac
  case "$REPO" in
    demo) ;;
    rolesprofiles) CONTROL_REPO="$HERE/control-repo-rolesprofiles" ;;
    *) die "up: --repo wants demo or rolesprofiles" ;;
  esac
  [[ -d "$CONTROL_REPO/manifests" ]] || die "control repo template not found at $CONTROL_REPO"
  if [[ -d "$DIR/hosts" ]]; then
    for name in $(all_hosts); do
      host_running "$name" && die "fleet in $DIR is already up (run: fleet.sh down --dir $DIR)"
    done
    die "$DIR already holds a fleet (run: fleet.sh down --purge --dir $DIR, or start HOST)"
  fi
  mkdir -p "$DIR/keys" "$DIR/hosts"
  echo "$REPO" >"$DIR/repo"
  ((!HOST_CERTS)) || make_host_ca
  # the fleet user clones and fetches from DIR/origin.git
  [[ -z "$USER_SPEC" ]] || chmod o+x "$DIR"

  # client key
  ssh-keygen -q -t ed25519 -N '' -C "capo-fleet-client" -f "$DIR/keys/client_ed25519"
  chmod 600 "$DIR/keys/client_ed25519" "$DIR/keys/client_ed25519.pub"
  cp "$DIR/keys/client_ed25519.pub" "$DIR/keys/authorized_keys"
  chmod 600 "$DIR/keys/authorized_keys"

  # control repo: origin.git (bare) <- seed commit; DIR/work is a clone for tests
  local seed
  seed="$(mktemp -d)"
  cp -a "$CONTROL_REPO/." "$seed/"
  git -C "$seed" init -q -b main
  git -C "$seed" add -A
  GIT_AUTHOR_DATE="2024-01-01T00:00:00Z" GIT_COMMITTER_DATE="2024-01-01T00:00:00Z" \
    git -C "$seed" commit -q -m "Initial control repo"
  git init -q --bare -b main "$DIR/origin.git"
  git -C "$seed" push -q "$DIR/origin.git" main:main
  rm -rf "$seed"
  git clone -q -b main "$DIR/origin.git" "$DIR/work"
  git -C "$DIR/work" config user.name "$GIT_AUTHOR_NAME"
  git -C "$DIR/work" config user.email "$GIT_AUTHOR_EMAIL"
  [[ "$REPO" != rolesprofiles ]] || make_forge

  # hosts (and the bastion, a host like the others that is not in the inventory)
  local -a members=()
  local e
  for ((i = 1; i <= n; i++)); do members+=("$(host_name "$i")"); done
  ((!BASTION)) || members+=(bastion)
  for name in "${members[@]}"; do
    d="$(hdir "$name")"
    mkdir -p "$d/state" "$d/managed" "$d/root"
    for e in "${HOST_DIRS[@]}"; do mkdir -p "$d/${e%%:*}"; done
    chmod 0755 "$d/managed"
    chmod 0700 "$d/root"
    chmod 0750 "$d/state"
    ssh-keygen -q -t ed25519 -N '' -C "root@$name" -f "$d/ssh_host_ed25519_key"
    ((!HOST_CERTS)) || sign_host_key "$name" "127.0.0.1,$name" "$DEFAULT_VALIDITY"
    git clone -q -b main "$DIR/origin.git" "$d/checkout"
    write_puppet_conf "$name"
    [[ -z "$USER_SPEC" ]] || add_user "$name"
    { cat /etc/hosts 2>/dev/null || echo "127.0.0.1 localhost"
      echo "127.0.1.1 $name.capo.test $name  # capo test fleet"; } >"$d/etc-hosts"
    : >"$d/sshd.log"
  done

  # ports + start, under the global lock so concurrent fleets never pick the same port
  local -a names=("${members[@]}")
  up_locked() {
    local j port
    reg_sweep
    ((!BASTION)) || make_netns
    PICKED_PORTS=""
    for ((j = 0; j < ${#names[@]}; j++)); do
      if [[ -n "$PORTS" && "${names[$j]}" != bastion ]]; then port="${ports[$j]}"; else port="$(pick_port)"; fi
      PICKED_PORTS+=" $port"
      write_sshd_config "${names[$j]}" "$port"
    done
    FIXED_PORTS=$([[ -n "$PORTS" ]] && echo 1 || echo 0) start_hosts_locked "${names[@]}"
  }
  # on any failure from here on, do not leave half a fleet running
  UP_NAMES=("${names[@]}")
  trap 'rc=$?; if ((rc != 0)); then for h in "${UP_NAMES[@]}"; do kill_host "$h"; done; del_netns; echo "fleet.sh: up failed; hosts stopped (files left in $DIR)" >&2; fi' EXIT
  with_port_lock up_locked

  write_known_hosts
  write_inventory_and_env

  # every sshd must accept a real login before we return
  local -A pids=()
  for name in "${names[@]}"; do
    wait_ssh "$name" &
    pids[$name]=$!
  done
  local failed=""
  for name in "${names[@]}"; do wait "${pids[$name]}" || failed+=" $name"; done
  [[ -z "$failed" ]] || die "ssh login failed on:$failed"
  trap - EXIT
  log "$n hosts up in $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.2f", b-a}')s"
  echo "$DIR/inventory.toml"
}

cmd_agent() {
  need_fleet
  local sock="$DIR/agent.sock"
  [[ ! -f "$DIR/agent.pid" ]] || kill "$(cat "$DIR/agent.pid")" 2>/dev/null || true
  rm -f "$sock"
  ssh-agent -a "$sock" -s >"$DIR/agent.out" || die "ssh-agent did not start"
  sed -n 's/^SSH_AGENT_PID=\([0-9]*\);.*/\1/p' "$DIR/agent.out" >"$DIR/agent.pid"
  SSH_AUTH_SOCK="$sock" ssh-add -q "$DIR/keys/client_ed25519" </dev/null || die "ssh-add failed"
  echo "$sock"
}

cmd_down() {
  need_root
  local name
  if [[ -f "$DIR/agent.pid" ]]; then
    kill "$(cat "$DIR/agent.pid")" 2>/dev/null || true
    rm -f "$DIR/agent.pid" "$DIR/agent.sock"
  fi
  if [[ -d "$DIR/hosts" ]]; then
    for name in $(members); do kill_host "$name"; done
  fi
  # anything left that belongs to this fleet (e.g. pid files lost)
  local p
  for p in $(fleet_pids "$DIR/hosts/"); do kill -KILL "$p" 2>/dev/null || true; done
  if ((PURGE)); then
    del_netns
    with_port_lock reg_release_fleet
    if [[ -d "$DIR" ]]; then
      # refuse to rm something that does not look like a fleet
      if [[ -d "$DIR/hosts" || -f "$DIR/fleet.env" || -d "$DIR/keys" || -z "$(ls -A "$DIR")" ]]; then
        rm -rf "$DIR"
      else
        die "down --purge: $DIR does not look like a fleet dir; not removing it"
      fi
    fi
  fi
  return 0
}

cmd_stop() {
  need_root; need_fleet
  local name="${POS[0]:-}"
  need_host "$name"
  kill_host "$name"
}

cmd_start() {
  need_root; need_fleet
  local name="${POS[0]:-}"
  need_host "$name"
  if host_running "$name"; then log "$name already running"; return 0; fi
  kill_host "$name"  # clean up leftovers, if any
  FIXED_PORTS=1 with_port_lock start_hosts_locked "$name"
  wait_ssh_any "$name"
}

# after rekey the known_hosts no longer matches, so only check that sshd answers
wait_ssh_any() {
  local i port
  port="$(host_port "$1")"
  for ((i = 0; i < 50; i++)); do
    if netrun ssh-keyscan -T 2 -t ed25519 -p "$port" "$(host_addr "$1")" 2>/dev/null | grep -q ssh-ed25519; then return 0; fi
    sleep 0.1
  done
  die "$1: sshd on port $port does not answer"
}

cmd_rekey() {
  need_root; need_fleet
  local name="${POS[0]:-}" d
  need_host "$name"
  d="$(hdir "$name")"
  kill_host "$name"
  rm -f "$d/ssh_host_ed25519_key" "$d/ssh_host_ed25519_key.pub"
  ssh-keygen -q -t ed25519 -N '' -C "root@$name (rekeyed)" -f "$d/ssh_host_ed25519_key"
  if [[ -f "$d/ssh_host_ed25519_key-cert.pub" ]]; then
    sign_host_key "$name" "127.0.0.1,$name" "$DEFAULT_VALIDITY"
  fi
  FIXED_PORTS=1 with_port_lock start_hosts_locked "$name"
  wait_ssh_any "$name"
}

cmd_certify() {
  need_root; need_fleet
  local name="${POS[0]:-}" d
  need_host "$name"
  d="$(hdir "$name")"
  sign_host_key "$name" "${PRINCIPALS:-127.0.0.1,$name}" "${VALIDITY:-$DEFAULT_VALIDITY}"
  kill_host "$name"
  # the config names the certificate from now on (a host of a fleet without certs until now)
  write_sshd_config "$name" "$(host_port "$name")"
  FIXED_PORTS=1 with_port_lock start_hosts_locked "$name"
  wait_ssh_any "$name"
}

cmd_exec() {
  need_root; need_fleet
  local name="${POS[0]:-}" init
  need_host "$name"
  ((${#CMD[@]} > 0)) || die "exec: missing command (fleet.sh exec HOST -- CMD...)"
  init="$(host_init_pid "$name")" || die "$name is not running"
  exec nsenter -t "$init" --mount --uts --pid --net -- \
    env -i PATH="$HOST_PATH" HOME=/root USER=root LOGNAME=root SHELL=/bin/sh \
    ${TERM:+TERM=$TERM} "${CMD[@]}"
}

cmd_freeze() {
  need_root; need_fleet
  local name="${POS[0]:-}" init
  need_host "$name"
  init="$(host_init_pid "$name")" || die "$name is not running"
  [[ "$(cat "/proc/$init/comm" 2>/dev/null)" == sshd ]] || die "$name: pid $init is not sshd (still starting?)"
  # the listener first: once it is stopped no new connection gets a process of its own.
  # The kernel still completes TCP handshakes into the listen backlog.
  kill -STOP "$init"
  if ((ALL)); then
    freeze_tree "$init" || die "$name: could not stop every sshd process"
  else
    wait_stopped "$init" || die "$name: sshd (pid $init) did not stop"
  fi
}

cmd_thaw() {
  need_root; need_fleet
  local name="${POS[0]:-}" init p i frozen
  need_host "$name"
  # nothing can be frozen in a host that is not running (down kills stopped processes too)
  init="$(host_init_pid "$name")" || return 0
  for p in $(ns_sshd_pids "$init"); do kill -CONT "$p" 2>/dev/null || true; done
  kill -CONT "$init" 2>/dev/null || true
  # SIGCONT takes effect as it is sent; check anyway, so callers can rely on it
  for ((i = 0; i < 50; i++)); do
    frozen=0
    for p in $(ns_sshd_pids "$init"); do
      [[ "$(proc_state "$p" 2>/dev/null)" == T ]] && { frozen=1; kill -CONT "$p" 2>/dev/null || true; }
    done
    ((frozen)) || return 0
    sleep 0.02
  done
  die "$name: some sshd processes are still stopped"
}

cmd_procs() {
  need_root; need_fleet
  local name="${POS[0]:-}"
  need_host "$name"
  # -N -p $$: everything but the ps itself (sh execs it, so $$ is its pid)
  CMD=(sh -c 'exec ps -ww -N -p "$$" -o pid,pgid,stat,args')
  cmd_exec
}

cmd_status() {
  need_fleet
  local name port state init
  printf '%-8s %-6s %-8s %-8s %s\n' HOST PORT PID STATE HEAD
  for name in $(members); do
    port="$(host_port "$name")"
    if init="$(host_init_pid "$name" 2>/dev/null)"; then
      if [[ "$(proc_state "$init" 2>/dev/null)" == T ]]; then
        state=frozen
      elif port_listening "$port"; then
        state=up
      else
        state=starting
      fi
    else
      state=down init=-
    fi
    printf '%-8s %-6s %-8s %-8s %s\n' "$name" "$port" "$(cat "$(hdir "$name")/pid" 2>/dev/null || echo -)" \
      "$state" "$(git -C "$(hdir "$name")/checkout" rev-parse --short HEAD 2>/dev/null || echo -)"
  done
  echo "origin main: $(git --git-dir="$DIR/origin.git" rev-parse --short main 2>/dev/null || echo -)"
  echo "inventory:   $DIR/inventory.toml"
}

cmd_commit() {
  need_fleet
  # arguments may also follow "--" (safe for contents that look like options)
  if ((${#CMD[@]} > 0)); then POS+=("${CMD[@]}"); fi
  local path="${POS[0]:-}" content="${POS[1]-}" msg="${POS[2]:-}"
  [[ -n "$path" && -n "$msg" && ${#POS[@]} -eq 3 ]] || die "usage: fleet.sh commit [--dir DIR] PATH CONTENT MESSAGE"
  [[ "$path" != /* && "$path" != *..* ]] || die "commit: PATH must be relative to the repo, without '..'"
  exec 8>>"$DIR/.commit.lock"
  flock -w 60 8 || die "timeout waiting for the commit lock"
  local w="$DIR/work"
  # follow origin first, in case something else pushed
  git -C "$w" pull -q --ff-only origin main >/dev/null 2>&1 || true
  mkdir -p "$(dirname "$w/$path")"
  printf '%s' "$content" >"$w/$path"
  git -C "$w" add -A -- "$path"
  git -C "$w" commit -q --allow-empty -m "$msg"
  git -C "$w" push -q origin HEAD:main
  git -C "$w" rev-parse HEAD
}

# ---------------------------------------------------------------- main
main() {
  local sub="${1:-}"
  [[ -n "$sub" ]] || { usage >&2; exit 2; }
  shift
  if [[ "$sub" == __init ]]; then cmd___init "$@"; fi
  DIR=./.fleet
  PORTS=""
  PURGE=0
  BASTION=0
  ALL=0
  USER_SPEC=""
  SUDO_SPEC=nopasswd
  REPO=demo
  HOST_CERTS=0
  PRINCIPALS=""
  VALIDITY=""
  POS=()
  CMD=()
  while (($#)); do
    case "$1" in
      --dir) [[ $# -ge 2 ]] || die "--dir needs a value"; DIR="$2"; shift 2 ;;
      --dir=*) DIR="${1#--dir=}"; shift ;;
      --ports) [[ $# -ge 2 ]] || die "--ports needs a value"; PORTS="$2"; shift 2 ;;
      --ports=*) PORTS="${1#--ports=}"; shift ;;
      --user) [[ $# -ge 2 ]] || die "--user needs NAME:SHELL"; USER_SPEC="$2"; shift 2 ;;
      --sudo) [[ $# -ge 2 ]] || die "--sudo needs nopasswd or password:SECRET"; SUDO_SPEC="$2"; shift 2 ;;
      --repo) [[ $# -ge 2 ]] || die "--repo needs a value"; REPO="$2"; shift 2 ;;
      --host-certs) HOST_CERTS=1; shift ;;
      --principals) [[ $# -ge 2 && -n "$2" ]] || die "--principals needs a value"; PRINCIPALS="$2"; shift 2 ;;
      --validity) [[ $# -ge 2 && -n "$2" ]] || die "--validity needs a value"; VALIDITY="$2"; shift 2 ;;
      --purge) PURGE=1; shift ;;
      --bastion) BASTION=1; shift ;;
      --all) ALL=1; shift ;;
      --) shift; CMD=("$@"); break ;;
      -h|--help) usage; exit 0 ;;
      *) POS+=("$1"); shift ;;
    esac
  done
  [[ -n "$DIR" ]] || die "--dir must not be empty"
  DIR="$(realpath -m -- "$DIR")"
  [[ "$DIR" != / ]] || die "refusing to use / as fleet dir"
  case "$sub" in
    up) cmd_up ;;
    down) cmd_down ;;
    stop) cmd_stop ;;
    start) cmd_start ;;
    rekey) cmd_rekey ;;
    certify) cmd_certify ;;
    exec) cmd_exec ;;
    freeze) cmd_freeze ;;
    thaw) cmd_thaw ;;
    procs) cmd_procs ;;
    status) cmd_status ;;
    commit) cmd_commit ;;
    agent) cmd_agent ;;
    help) usage ;;
    *) usage >&2; die "unknown command '$sub'" ;;
  esac
}

main "$@"
