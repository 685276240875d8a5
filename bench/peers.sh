#!/usr/bin/env bash
# bench/peers.sh -- capo against parallel-ssh, ClusterShell (clush), pdsh, Ansible and bssh on
# the same real local fleet (tests/fleet/fleet.sh: one OpenSSH sshd per "host" on 127.0.0.1, each
# with a git checkout of a control repo and a real Puppet).
#
# Two workloads, each measured per tool at the same concurrency, with the same client key and
# the same known_hosts (strict host key checking everywhere):
#   cmd  a trivial command (`true`) on N hosts              (--sizes,     default 50,200)
#   job  git pull --ff-only + puppet apply on N hosts       (--job-sizes, default 20,50)
# Runs are interleaved: every round runs every tool once, starting one tool further each
# round. Each run is timed with /usr/bin/time; controller CPU comes from a cpuacct cgroup per
# run when possible (daemonized ssh ControlPersist masters included). See bench/README.md.
#
# Needs root (the fleet harness uses unshare/nsenter/mount). Run from any directory.
set -euo pipefail

SELF="$(readlink -f "${BASH_SOURCE[0]}")"
BENCH_DIR="$(dirname "$SELF")"
ROOT="$(dirname "$BENCH_DIR")"
FLEET_SH="$ROOT/tests/fleet/fleet.sh"

# The rollout job every tool runs (MSG_PATH, JOB_LINE) and verify_job: shared with latency.sh
# shellcheck source=lib/job.sh disable=SC1091  # followed with shellcheck -x
. "$BENCH_DIR/lib/job.sh"
FORCED_KEX=curve25519-sha256   # what capo (russh) negotiates first
# lablup's bssh (Rust, russh), the fastest parallel-SSH peer: a pinned crates.io version,
# built once with `cargo install --locked` into a cache outside the repository. 2.2.3 is the
# newest release that builds with the stable Rust this project uses (1.95); 2.3.1 and later
# declare rust-version 1.96+. The 3.x releases also changed bssh's short flags, so a newer
# pin needs build_cmd's bssh line checked too.
BSSH_VERSION=2.2.3
BSSH_ROOT="${XDG_CACHE_HOME:-$HOME/.cache}/capo-bench/bssh-$BSSH_VERSION"

usage() {
  sed -e "s|BSSH_V|$BSSH_VERSION|" -e "s|BSSH_ROOT_DIR|$BSSH_ROOT|" <<'EOF'
usage: bench/peers.sh [OPTIONS]

Benchmarks capo against parallel-ssh, clush, pdsh, ansible and bssh on a local fleet (needs root).

  --sizes N,N,...       hosts for the trivial command (`true`)          (default 50,200)
  --job-sizes N,N,...   hosts for the real job (git pull + puppet apply) (default 20,50)
                        (0 or empty: skip that workload)
  --rounds R            rounds; each round runs every tool once          (default 5)
  --jobs J              concurrency of every tool                        (default 50)
  --tools LIST          subset of capo,pssh,clush,pdsh,ansible,bssh      (default all)
  --job-forced          also run the job's peers forced to curve25519-sha256
  --no-build            do not run `cargo build --release` (use target/release/capo)
  --no-install          do not apt-get install missing tools, nor build bssh (fail instead)
  --keep-fleet          leave the fleet up and the work directory in place
  --out FILE            Markdown results (default bench/results/peers-YYYYmmdd-HHMMSS.md)
  --quick               = --sizes 10 --job-sizes 10 --rounds 1 (CI smoke run; targets n/a;
                        bssh is skipped when it is not built yet)
  -h, --help            this text

Environment: CAPO=/path/to/capo uses that binary and skips the build; PEERS_CPU=time takes
controller CPU from /usr/bin/time even where a per-run cgroup could be used.
bssh BSSH_V is installed with `cargo install --locked` into
  BSSH_ROOT_DIR (built once, kept across runs).
Exit status: 0 when every run completed with zero failed hosts (a missed target does not
fail the script), 1 when a run had failures, 2 for bad usage, other non-zero if it broke.
EOF
}

die() { echo "peers.sh: $*" >&2; exit 1; }
say() { echo "peers.sh: $*" >&2; }
bad_usage() { echo "peers.sh: $*" >&2; usage >&2; exit 2; }

# ---------------------------------------------------------------- options
SIZES=50,200
JOB_SIZES=20,50
ROUNDS=5
JOBS=50
TOOLS=capo,pssh,clush,pdsh,ansible,bssh
JOB_FORCED=0
BUILD=1
INSTALL=1
KEEP=0
OUT=""
QUICK=0
while (($#)); do
  opt="$1"
  val=""
  case "$opt" in
    --*=*) val="${opt#*=}"; opt="${opt%%=*}" ;;
    --sizes | --job-sizes | --rounds | --jobs | --tools | --out)
      [[ $# -ge 2 ]] || bad_usage "$opt needs a value"
      val="$2"
      shift ;;
  esac
  case "$opt" in
    --sizes) SIZES="$val" ;;
    --job-sizes) JOB_SIZES="$val" ;;
    --rounds) ROUNDS="$val" ;;
    --jobs) JOBS="$val" ;;
    --tools) TOOLS="$val" ;;
    --out) OUT="$val" ;;
    --job-forced) JOB_FORCED=1 ;;
    --no-build) BUILD=0 ;;
    --no-install) INSTALL=0 ;;
    --keep-fleet) KEEP=1 ;;
    --quick) QUICK=1 ;;
    -h | --help) usage; exit 0 ;;
    *) bad_usage "unknown option '$1'" ;;
  esac
  shift
done
if ((QUICK)); then SIZES=10 JOB_SIZES=10 ROUNDS=1; fi

parse_sizes() {  # "50,200" -> space-separated, validated, duplicates dropped, order kept
  local list="$1" what="$2" s out=" "
  [[ "$list" == 0 ]] && list=""
  IFS=, read -r -a parts <<<"$list"
  for s in "${parts[@]}"; do
    if ! [[ "$s" =~ ^[0-9]+$ ]] || ((10#$s < 1 || 10#$s > 999)); then
      bad_usage "$what: '$s' is not a number of hosts (1..999)"
    fi
    s=$((10#$s))
    [[ "$out" == *" $s "* ]] || out+="$s "
  done
  echo "$out" | xargs
}
read -r -a CMD_SIZES <<<"$(parse_sizes "$SIZES" --sizes)"
read -r -a JOB_NS <<<"$(parse_sizes "$JOB_SIZES" --job-sizes)"
((${#CMD_SIZES[@]} + ${#JOB_NS[@]} > 0)) || bad_usage "nothing to do (--sizes and --job-sizes are both empty)"
if ! [[ "$ROUNDS" =~ ^[0-9]+$ ]] || ((10#$ROUNDS < 1)); then bad_usage "--rounds must be >= 1"; fi
if ! [[ "$JOBS" =~ ^[0-9]+$ ]] || ((10#$JOBS < 1)); then bad_usage "--jobs must be >= 1"; fi
ROUNDS=$((10#$ROUNDS)) JOBS=$((10#$JOBS))

declare -A WANT=()
IFS=, read -r -a tool_list <<<"$TOOLS"
for t in "${tool_list[@]}"; do
  case "$t" in
    capo | pssh | clush | pdsh | ansible | bssh) WANT[$t]=1 ;;
    parallel-ssh) WANT[pssh]=1 ;;
    clustershell) WANT[clush]=1 ;;
    *) bad_usage "--tools: unknown tool '$t' (capo, pssh, clush, pdsh, ansible, bssh)" ;;
  esac
done
((${#WANT[@]} > 0)) || bad_usage "--tools is empty"
want() { [[ -n "${WANT[$1]:-}" ]]; }

# Runs per workload, in canonical order (round 1 starts with the first). Keys ending in -c
# are forced to $FORCED_KEX; the others use each tool's defaults ("as users run it").
CMD_KEYS=()
want capo && CMD_KEYS+=(capo)
want pssh && CMD_KEYS+=(pssh pssh-c)
want clush && CMD_KEYS+=(clush clush-c)
want pdsh && CMD_KEYS+=(pdsh pdsh-c)
want ansible && CMD_KEYS+=(ans-raw ans-raw-c ans-cmd ans-cmd-c)
# bssh is russh like capo, so it has no forced-kex row: it negotiates what capo does
want bssh && CMD_KEYS+=(bssh)
JOB_KEYS=()
want capo && JOB_KEYS+=(capo)
want pssh && JOB_KEYS+=(pssh)
((JOB_FORCED)) && want pssh && JOB_KEYS+=(pssh-c)
want ansible && JOB_KEYS+=(ans-sh)
((JOB_FORCED)) && want ansible && JOB_KEYS+=(ans-sh-c)
if ((${#JOB_KEYS[@]} == 0)); then JOB_NS=(); fi  # only clush/pdsh/bssh: they have no job row

label() {  # key phase -> row label
  local base="${1%-c}" l
  case "$base" in
    capo) if [[ "$2" == job ]]; then l="capo rollout"; else l="capo exec"; fi ;;
    pssh) l="parallel-ssh" ;;
    clush) l="clush" ;;
    pdsh) l="pdsh" ;;
    ans-raw) l="ansible -m raw" ;;
    ans-cmd) l="ansible -m command" ;;
    ans-sh) l="ansible -m shell" ;;
    bssh) l="bssh $BSSH_VERSION" ;;
    *) l="$base" ;;
  esac
  [[ "$1" == *-c ]] && l+=" (curve25519)"
  echo "$l"
}

# ---------------------------------------------------------------- prerequisites
[[ $EUID -eq 0 ]] || die "must run as root (the fleet harness needs unshare/nsenter/mount)"
[[ -x "$FLEET_SH" ]] || die "fleet harness not found at $FLEET_SH"

install_missing() {
  local -a need=()
  local pair cmd pkg
  # command:package; the fleet's own needs first, then the tools selected, then helpers
  local -a pairs=(/usr/sbin/sshd:openssh-server ssh:openssh-client puppet:puppet git:git
    unshare:util-linux nsenter:util-linux ss:iproute2 pgrep:procps
    /usr/bin/time:time jq:jq)
  want pssh && pairs+=(parallel-ssh:pssh)
  want clush && pairs+=(clush:clustershell)
  want pdsh && pairs+=(pdsh:pdsh)
  want ansible && pairs+=(ansible:ansible-core)
  for pair in "${pairs[@]}"; do
    cmd="${pair%%:*}" pkg="${pair#*:}"
    command -v "$cmd" >/dev/null 2>&1 && continue
    [[ " ${need[*]} " == *" $pkg "* ]] || need+=("$pkg")
  done
  ((${#need[@]} > 0)) || return 0
  ((INSTALL)) || die "missing packages: ${need[*]} (install them, or drop --no-install)"
  say "installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >&2
  apt-get install -y -q "${need[@]}" >&2
}
install_missing

# bssh: built once into $BSSH_ROOT (cargo install writes bin/bssh only when the build
# succeeded). A quick run (CI) does not spend minutes compiling it: it skips bssh instead.
BSSH="$BSSH_ROOT/bin/bssh"
if want bssh && [[ ! -x "$BSSH" ]]; then
  if ((QUICK)); then
    say "skipping bssh: not built at $BSSH (a full run builds it: cargo install --locked bssh --version $BSSH_VERSION)"
    unset 'WANT[bssh]'
    keep=()
    for k in "${CMD_KEYS[@]}"; do [[ "$k" == bssh ]] || keep+=("$k"); done
    CMD_KEYS=("${keep[@]}")
  else
    ((INSTALL)) || die "bssh $BSSH_VERSION is not built at $BSSH (drop --no-install to build it, or leave bssh out of --tools)"
    command -v cargo >/dev/null || die "cargo not found: needed once to build bssh $BSSH_VERSION (or leave bssh out of --tools)"
    say "building bssh $BSSH_VERSION once into $BSSH_ROOT (cargo install --locked; can take half an hour on 2 cores)"
    mkdir -p "$BSSH_ROOT"
    cargo install --locked --quiet bssh --version "$BSSH_VERSION" --root "$BSSH_ROOT" >&2 ||
      die "cargo install bssh $BSSH_VERSION failed"
    [[ -x "$BSSH" ]] || die "cargo install bssh did not leave $BSSH"
  fi
fi
((${#WANT[@]} > 0)) || die "no tool left to run"

if [[ -n "${CAPO:-}" ]]; then
  CAPO="$(readlink -f "$CAPO")"
else
  target_dir="${CARGO_TARGET_DIR:-$ROOT/target}"
  [[ "$target_dir" == /* ]] || target_dir="$ROOT/$target_dir"
  CAPO="$target_dir/release/capo"
  if ((BUILD)); then
    command -v cargo >/dev/null || die "cargo not found (install Rust, or use --no-build / CAPO=...)"
    say "cargo build --release --locked"
    (cd "$ROOT" && cargo build --release --locked --quiet) || die "cargo build failed"
  fi
fi
[[ -x "$CAPO" ]] || die "capo binary not found at $CAPO (build it, or set CAPO=/path/to/capo)"

# ---------------------------------------------------------------- work dir, cleanup
WORK="$(mktemp -d /tmp/capo-peers.XXXXXX)"
FLEET="$WORK/fleet"
SSHCFG="$WORK/ssh_config"
RESULTS="$WORK/results.tsv"
: >"$RESULTS"
mkdir -p "$WORK/runs" "$WORK/capo-runs" "$WORK/ansible-tmp"
: >"$WORK/ansible.cfg"   # empty: ansible's defaults, nothing from /etc/ansible or ~
FLEET_UP=0
TOTAL_FAILS=0
CUR_PID=""

# CPU accounting: a cgroup per run (cgroup v1 cpuacct, or v2), else time's user+sys.
CG_MODE=none CG_BASE=""
if [[ "${PEERS_CPU:-auto}" != time ]]; then
  if [[ -w /sys/fs/cgroup/cpuacct && -f /sys/fs/cgroup/cpuacct/cpuacct.usage ]] &&
    mkdir "/sys/fs/cgroup/cpuacct/capo-peers-$$" 2>/dev/null; then
    CG_MODE=v1 CG_BASE="/sys/fs/cgroup/cpuacct/capo-peers-$$"
  elif [[ -f /sys/fs/cgroup/cgroup.controllers && -w /sys/fs/cgroup ]] &&
    mkdir "/sys/fs/cgroup/capo-peers-$$" 2>/dev/null; then
    CG_MODE=v2 CG_BASE="/sys/fs/cgroup/capo-peers-$$"
  fi
fi
case "$CG_MODE" in
  v1) CPU_SRC="cgroup v1 cpuacct.usage of a cgroup per run (the whole process tree, daemonized ssh masters included)" ;;
  v2) CPU_SRC="cgroup v2 cpu.stat usage_usec of a cgroup per run (the whole process tree, daemonized ssh masters included)" ;;
  *) CPU_SRC="user+sys from /usr/bin/time (the tool and the children it waited for; daemonized ssh ControlPersist masters NOT included)" ;;
esac

pids_with_arg() {  # pids whose command line contains the fixed string $1 (not ours)
  local f p
  for f in $(grep -laF -- "$1" /proc/[0-9]*/cmdline 2>/dev/null || true); do
    p="${f#/proc/}"
    p="${p%/cmdline}"
    [[ "$p" == "$$" || "$p" == "$BASHPID" ]] || echo "$p"
  done
  return 0
}

# Ends whatever a run left behind: ansible's ControlPersist masters (ssh -O exit on every
# socket of the run's control dir, then a kill of any process naming that dir), then every
# process still in the run's cgroup, which is removed.
reap_run() {  # run-dir cgroup-dir-or-empty
  local dir="$1" cg="$2" s p i
  if [[ -d "$dir/cp" ]]; then
    for s in "$dir"/cp/*; do
      if [[ -S "$s" ]]; then ssh -F /dev/null -o ControlPath="$s" -O exit reap >/dev/null 2>&1 || true; fi
    done
    for ((i = 0; i < 50; i++)); do
      p="$(pids_with_arg "$dir/cp")"
      [[ -z "$p" ]] && break
      ((i < 10)) && sleep 0.05 && continue  # give the exit request a moment
      # shellcheck disable=SC2086
      kill -KILL $p 2>/dev/null || true
      sleep 0.05
    done
  fi
  [[ -n "$cg" && -d "$cg" ]] || return 0
  for ((i = 0; i < 100; i++)); do
    p="$(cat "$cg/cgroup.procs" 2>/dev/null || true)"
    [[ -z "$p" ]] && break
    # shellcheck disable=SC2086
    kill -KILL $p 2>/dev/null || true
    sleep 0.05
  done
  rmdir "$cg" 2>/dev/null || say "warning: could not remove cgroup $cg"
}

# shellcheck disable=SC2317  # called from cleanup
kill_tree() {  # pid: the process and its descendants (all started by this script)
  local c
  for c in $(pgrep -P "$1" 2>/dev/null || true); do kill_tree "$c"; done
  kill -KILL "$1" 2>/dev/null || true
}

# shellcheck disable=SC2317  # invoked by the EXIT trap
cleanup() {
  local rc=$? d
  set +e
  trap - EXIT INT TERM
  # interrupted in the middle of a run: stop the tool now
  if ((rc == 130 || rc == 143)); then say "interrupted; stopping"; fi
  if [[ -n "$CUR_PID" ]]; then
    kill_tree "$CUR_PID"
    wait "$CUR_PID" 2>/dev/null
  fi
  for d in "$WORK"/runs/*/; do
    [[ -d "$d" ]] || continue
    reap_run "${d%/}" "${CG_BASE:+$CG_BASE/$(basename "$d")}" 2>/dev/null
  done
  [[ -n "$CG_BASE" && -d "$CG_BASE" ]] && rmdir "$CG_BASE" 2>/dev/null
  if ((KEEP)); then
    ((FLEET_UP)) && say "fleet kept up: $FLEET (tear down: $FLEET_SH down --purge --dir $FLEET)"
    say "work directory kept: $WORK"
  else
    if ((FLEET_UP)) || [[ -d "$FLEET" ]]; then
      FLEET_QUIET=1 "$FLEET_SH" down --purge --dir "$FLEET" >/dev/null 2>&1 ||
        say "warning: fleet.sh down failed for $FLEET"
    fi
    if ((rc == 0 || rc == 130 || rc == 143)); then
      rm -rf "$WORK"
    else
      say "logs of every run kept in $WORK/runs"
    fi
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- fleet
MAXN=0
for n in "${CMD_SIZES[@]}" "${JOB_NS[@]}"; do ((n > MAXN)) && MAXN=$n; done
WARM_N=$((MAXN < 5 ? MAXN : 5))

say "bringing up a fleet of $MAXN hosts in $FLEET (about 1 s per 4 hosts)"
t0=$(date +%s.%N)
FLEET_UP=1
FLEET_QUIET=1 "$FLEET_SH" up "$MAXN" --dir "$FLEET" >/dev/null
say "fleet up in $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}') s"
# shellcheck disable=SC1091
. "$FLEET/fleet.env"
read -r -a HOSTS <<<"$FLEET_HOSTS"
((${#HOSTS[@]} == MAXN)) || die "fleet has ${#HOSTS[@]} hosts, expected $MAXN"
port_of() { local v="FLEET_PORT_$1"; echo "${!v}"; }

# The hosts' side of a run: each host's sshd is pid 1 of its own pid namespace (its parent is
# fleet.sh's `unshare`, whose pid is in hosts/NAME/pid), so it reaps every session, shell and
# command that ran on that host, orphans included; its utime+stime+cutime+cstime, summed over
# the fleet before and after a run, is the CPU the run cost the hosts (sshd's key exchanges
# included), once those processes have ended.
HOST_STATS=()
for h in "${HOSTS[@]}"; do
  init="$(pgrep -P "$(cat "$FLEET/hosts/$h/pid")" | head -n 1)" || init=""
  [[ -n "$init" ]] || die "cannot find the sshd of $h (pid 1 of its namespace)"
  HOST_STATS+=("/proc/$init/stat")
done
CLK_TCK="$(getconf CLK_TCK)"
hosts_cpu() {  # seconds of CPU used on all hosts so far
  # after "pid (comm) ", $12..$15 are utime stime cutime cstime (fields 14-17 of proc(5))
  awk -v hz="$CLK_TCK" '{ sub(/^.*\) /, ""); t += $12 + $13 + $14 + $15 } END { printf "%.3f", t / hz }' "${HOST_STATS[@]}"
}

# One ssh_config for every OpenSSH-based tool (-F): names, ports, key, strict known_hosts.
for h in "${HOSTS[@]}"; do
  cat <<EOF
Host $h
  HostName 127.0.0.1
  Port $(port_of "$h")
  User root
  IdentityFile $FLEET_KEY
  IdentitiesOnly yes
  UserKnownHostsFile $FLEET_KNOWN_HOSTS
  GlobalKnownHostsFile /dev/null
  StrictHostKeyChecking yes
  BatchMode yes

EOF
done >"$SSHCFG"

# Per size: pssh hosts file, clush/pdsh host range, capo inventory, ansible INI inventory.
nodeset() {  # n -> host[01-NN] (the first n hosts)
  local first="${HOSTS[0]}" last="${HOSTS[$(($1 - 1))]}"
  if (($1 == 1)); then echo "$first"; else echo "host[${first#host}-${last#host}]"; fi
}
declare -A NODESET=()
for n in "${CMD_SIZES[@]}" "${JOB_NS[@]}" "$WARM_N"; do
  [[ -f "$WORK/hosts-$n.txt" ]] && continue
  printf '%s\n' "${HOSTS[@]:0:n}" >"$WORK/hosts-$n.txt"
  NODESET[$n]="$(nodeset "$n")"
  {
    # the fleet's [defaults], with its key paths made absolute
    awk '/^\[/ && $0 != "[defaults]" {exit} {print}' "$FLEET/inventory.toml" |
      sed -e "s|\"keys/|\"$FLEET/keys/|g"
    echo
    echo "[groups.bench]"
    echo "hosts = [$(printf '"%s",' "${HOSTS[@]:0:n}" | sed 's/,$//')]"
    for h in "${HOSTS[@]:0:n}"; do
      printf '\n[hosts.%s]\naddress = "127.0.0.1"\nport = %s\n' "$h" "$(port_of "$h")"
    done
  } >"$WORK/inv-$n.toml"
  {
    echo "[bench]"
    for h in "${HOSTS[@]:0:n}"; do
      echo "$h ansible_host=127.0.0.1 ansible_port=$(port_of "$h") ansible_user=root ansible_ssh_private_key_file=$FLEET_KEY"
    done
    echo
    echo "[bench:vars]"
    echo "ansible_ssh_common_args='-F /dev/null -o IdentitiesOnly=yes -o UserKnownHostsFile=$FLEET_KNOWN_HOSTS -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes'"
  } >"$WORK/ansible-$n.ini"
  # bssh 2.2.3 takes hosts only on the command line (-H a,b,c; no ^file)
  for h in "${HOSTS[@]:0:n}"; do echo "root@127.0.0.1:$(port_of "$h")"; done | paste -sd, >"$WORK/bssh-hosts-$n.txt"
done

# bssh 2.x checks host keys only against ~/.ssh/known_hosts (in strict mode it ignores
# UserKnownHostsFile), and reads ./config.yaml, ~/.config/bssh and ~/.ssh/config. So every bssh
# run gets a home of its own whose .ssh/known_hosts is the fleet's file (a symlink: the same
# file as every other tool's), with no other configuration, and runs from there.
BSSH_HOME="$WORK/bssh-home"
mkdir -p "$BSSH_HOME/.ssh" "$WORK/bssh-nokeys/.ssh"
ln -s "$FLEET_KNOWN_HOSTS" "$BSSH_HOME/.ssh/known_hosts"
: >"$WORK/bssh-nokeys/.ssh/known_hosts"   # for the check that bssh rejects unknown keys
"$CAPO" hosts -i "$WORK/inv-$MAXN.toml" >/dev/null || die "capo does not accept the generated inventory $WORK/inv-$MAXN.toml"

# ---------------------------------------------------------------- one measured run
# measure RUN_DIR CMD... : runs CMD (with RUN_ENV) under /usr/bin/time, inside the run's own
# cgroup when there is one. Sets M_WALL M_USER M_SYS M_RSS (KiB) M_CPU M_HOSTS_CPU (the hosts'
# CPU, see hosts_cpu); returns CMD's status.
RUN_ENV=()
measure() {
  local dir="$1" cg="" rc=0 line usage h0 h1
  shift
  M_WALL="" M_USER="" M_SYS="" M_RSS="" M_CPU="" M_HOSTS_CPU=""
  h0="$(hosts_cpu)"
  local -a timed=(/usr/bin/time -f '%e %U %S %M' -o "$dir/time" env "${RUN_ENV[@]}" "$@")
  if [[ -n "$CG_BASE" ]]; then
    cg="$CG_BASE/$(basename "$dir")"
    mkdir "$cg"
    # shellcheck disable=SC2016  # $$ and $@ are the inner shell's
    sh -c 'echo $$ >"$0/cgroup.procs" && exec "$@"' "$cg" "${timed[@]}" \
      </dev/null >"$dir/stdout" 2>"$dir/stderr" &
  else
    "${timed[@]}" </dev/null >"$dir/stdout" 2>"$dir/stderr" &
  fi
  # in the background, so that a signal to this script is handled at once (see cleanup)
  CUR_PID=$!
  wait "$CUR_PID" || rc=$?
  CUR_PID=""
  # time writes "Command exited with non-zero status N" first when the command failed
  line="$(tail -n 1 "$dir/time" 2>/dev/null || true)"
  if [[ "$line" =~ ^([0-9.]+)\ ([0-9.]+)\ ([0-9.]+)\ ([0-9]+)$ ]]; then
    M_WALL="${BASH_REMATCH[1]}" M_USER="${BASH_REMATCH[2]}" M_SYS="${BASH_REMATCH[3]}" M_RSS="${BASH_REMATCH[4]}"
  fi
  case "$CG_MODE" in
    v1) usage="$(cat "$cg/cpuacct.usage")"
        M_CPU="$(awk -v u="$usage" 'BEGIN{printf "%.3f", u/1e9}')" ;;
    v2) usage="$(awk '$1=="usage_usec"{print $2}' "$cg/cpu.stat")"
        M_CPU="$(awk -v u="$usage" 'BEGIN{printf "%.3f", u/1e6}')" ;;
    *) [[ -n "$M_USER" ]] && M_CPU="$(awk -v a="$M_USER" -v b="$M_SYS" 'BEGIN{printf "%.3f", a+b}')" ;;
  esac
  reap_run "$dir" "$cg"
  # the last sessions may end (and be reaped) just after the tool exits: give them a moment
  sleep 0.3
  h1="$(hosts_cpu)"
  M_HOSTS_CPU="$(awk -v a="$h0" -v b="$h1" 'BEGIN{printf "%.3f", b-a}')"
  return "$rc"
}

# Hosts a run did not succeed on, from the tool's own output (and exit status).
count_failures() {  # key phase n dir rc
  local key="$1" phase="$2" n="$3" dir="$4" rc="$5" f=0 ok=0 bad=0
  case "${key%-c}" in
    capo)
      if [[ -s "$dir/report.json" ]]; then
        if [[ "$phase" == job ]]; then
          f="$(jq '.summary.total - .summary.changed' "$dir/report.json")"  # must change every host
        else
          f="$(jq '.summary.total - .summary.ok' "$dir/report.json")"
        fi
        [[ "$(jq .summary.total "$dir/report.json")" == "$n" ]] || f=$n
      else
        f=$n
      fi ;;
    pssh)
      bad="$(grep -c '\[FAILURE\]' "$dir/stdout" || true)"
      ok="$(grep -c '\[SUCCESS\]' "$dir/stdout" || true)"
      f=$((n - ok > bad ? n - ok : bad)) ;;
    clush)  # -S: exit status is the largest remote one; stderr names each failed host
      if ((rc != 0)); then
        f="$(sed -nE 's/^clush: ([^: ]+): .*/\1/p' "$dir/stderr" | sort -u | wc -l)"
        ((f > 0)) || f=1
      fi ;;
    pdsh)  # -S as for clush; "pdsh@CONTROLLER: HOST: ssh exited with exit code N"
      if ((rc != 0)); then
        f="$(sed -nE 's/^pdsh@[^:]*: ([^: ]+): .*/\1/p' "$dir/stderr" | sort -u | wc -l)"
        ((f > 0)) || f=1
      fi ;;
    bssh)  # its summary line: " Summary: 200 nodes • 199 successful • 1 failed" (coloured)
      ok="$(sed 's/\x1b\[[0-9;]*m//g' "$dir/stdout" | grep -oE '[0-9]+ nodes( • [0-9]+ successful)?' |
        sed -nE 's/.* ([0-9]+) successful$/\1/p' | tail -n 1)"
      f=$((n - ${ok:-0})) ;;
    ans-*)  # "host01 | CHANGED | rc=0 >>", "host01 | FAILED | rc=1 >>", "host01 | UNREACHABLE! => {"
      bad="$(grep -E '^[^ ]+ \| (FAILED|UNREACHABLE)' "$dir/stdout" | awk '{print $1}' | sort -u | wc -l)"
      ok="$(grep -E '^[^ ]+ \| (CHANGED|SUCCESS) ' "$dir/stdout" | awk '{print $1}' | sort -u | wc -l)"
      f=$((n - ok > bad ? n - ok : bad)) ;;
  esac
  if ((f == 0 && rc != 0)); then f=1; fi  # the tool failed without naming a host
  if [[ -z "$M_WALL" ]]; then f=$n; fi    # it did not even run
  echo "$f"
}

# The command line of one tool run (sets RUN_CMD and RUN_ENV).
build_cmd() {  # key phase n dir
  local key="$1" phase="$2" n="$3" dir="$4" remote=true ssh_args="-F $SSHCFG"
  local -a kex=()
  [[ "$phase" == job ]] && remote="$JOB_LINE"
  if [[ "$key" == *-c ]]; then
    ssh_args+=" -o KexAlgorithms=$FORCED_KEX"
    kex=("--ssh-extra-args=-o KexAlgorithms=$FORCED_KEX")  # "=": the value starts with a dash
  fi
  RUN_ENV=()
  case "${key%-c}" in
    capo)
      if [[ "$phase" == job ]]; then
        RUN_CMD=("$CAPO" rollout -i "$WORK/inv-$n.toml" -q -j "$JOBS" --runs-dir "$WORK/capo-runs" --report "$dir/report.json")
      else
        RUN_CMD=("$CAPO" exec -i "$WORK/inv-$n.toml" -q -j "$JOBS" --runs-dir "$WORK/capo-runs" --report "$dir/report.json" -- true)
      fi ;;
    pssh)
      RUN_CMD=(parallel-ssh -h "$WORK/hosts-$n.txt" -p "$JOBS" -x "$ssh_args")
      # parallel-ssh kills a host after 60 s by default; 50 Puppet runs on a small
      # controller can take longer than that, so the job runs without that limit
      [[ "$phase" == job ]] && RUN_CMD+=(-t 0)
      RUN_CMD+=("$remote") ;;
    clush)
      RUN_CMD=(clush -S -b -f "$JOBS" -w "${NODESET[$n]}" -o "$ssh_args" "$remote") ;;
    pdsh)
      RUN_ENV=("PDSH_SSH_ARGS_APPEND=$ssh_args")
      RUN_CMD=(pdsh -S -R ssh -f "$JOBS" -w "${NODESET[$n]}" "$remote") ;;
    bssh)
      # --require-all-success: exit 0 only when every host succeeded (its default is the
      # "main rank's" status); stdout is a file, so bssh prints plainly, no TUI
      RUN_ENV=(-u SSH_AUTH_SOCK "--chdir=$BSSH_HOME" "HOME=$BSSH_HOME" "XDG_CONFIG_HOME=$BSSH_HOME/.config")
      RUN_CMD=("$BSSH" -H "$(cat "$WORK/bssh-hosts-$n.txt")" -i "$FLEET_KEY" --strict-host-key-checking yes
        --parallel "$JOBS" --require-all-success "$remote") ;;
    ans-*)
      local module=raw
      case "${key%-c}" in ans-cmd) module="command" ;; ans-sh) module="shell" ;; esac
      mkdir -p "$dir/cp"
      # a fresh ControlPath dir per run: every run starts cold, as a CI job would
      RUN_ENV=("ANSIBLE_CONFIG=$WORK/ansible.cfg" ANSIBLE_HOST_KEY_CHECKING=True
        "ANSIBLE_SSH_CONTROL_PATH_DIR=$dir/cp" "ANSIBLE_LOCAL_TEMP=$WORK/ansible-tmp")
      RUN_CMD=(ansible bench -i "$WORK/ansible-$n.ini" -f "$JOBS" -m "$module" -a "$remote" "${kex[@]}") ;;
  esac
}

# Runs one tool once: phase cmd|job|warm, n hosts, round r. Records a line in $RESULTS
# (except for warm-up runs) and returns 1 if any host failed.
run_one() {  # key phase n round
  local key="$1" phase="$2" n="$3" round="$4" id dir rc=0 fails sha="" token="" vbad
  id="$phase-n$n-r$round-$key"
  dir="$WORK/runs/$id"
  mkdir -p "$dir"
  if [[ "$phase" == job ]]; then
    # a new commit before every run, so that every tool does a real pull and a real change
    token="capo peers benchmark $id $(date +%s%N)"
    sha="$(FLEET_QUIET=1 "$FLEET_SH" commit --dir "$FLEET" -- "$MSG_PATH" "$token"$'\n' "bench: $id")"
  fi
  build_cmd "$key" "$phase" "$n" "$dir"
  printf '%q ' "${RUN_ENV[@]}" "${RUN_CMD[@]}" >"$dir/cmd"
  measure "$dir" "${RUN_CMD[@]}" || rc=$?
  fails="$(count_failures "$key" "$phase" "$n" "$dir" "$rc")"
  if [[ "$phase" == job ]]; then
    vbad="$(verify_job "$n" "$sha" "$token")"
    if ((vbad > fails)); then
      say "warning: $(label "$key" job) reported $fails failed, but $vbad hosts did not take the change"
      fails=$vbad
    fi
  fi
  if [[ "$phase" != warm ]]; then
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$phase" "$n" "$round" "$key" "$(label "$key" "$phase")" \
      "${M_WALL:-nan}" "${M_CPU:-nan}" "${M_RSS:-0}" "$fails" "$rc" "${M_HOSTS_CPU:-nan}" >>"$RESULTS"
  fi
  printf 'peers.sh: %-4s N=%-3s round %s/%s  %-30s %7s s wall %7s s CPU %6s MiB %8s s hosts CPU  %s failed\n' \
    "$phase" "$n" "$round" "$ROUNDS" "$(label "$key" "$phase")" "${M_WALL:-?}" "${M_CPU:-?}" \
    "$(awk -v k="${M_RSS:-0}" 'BEGIN{printf "%.0f", k/1024}')" "${M_HOSTS_CPU:-?}" "$fails" >&2
  if ((fails > 0)); then
    say "  $fails hosts failed (exit $rc); command: $(cat "$dir/cmd")"
    say "  logs: $dir/{stdout,stderr}:"
    { grep -hiE 'FAILURE|UNREACHABLE|FAILED|unreachable|exit code|error|refused|denied' "$dir/stdout" "$dir/stderr" ||
        tail -n 5 "$dir/stderr"; } | head -n 8 | sed 's/^/    /' >&2
    return 1
  fi
  return 0
}

run_rounds() {  # phase n key...
  local phase="$1" n="$2" r i k start
  shift 2
  local -a keys=("$@")
  for ((r = 1; r <= ROUNDS; r++)); do
    start=$(((r - 1) % ${#keys[@]}))
    for ((i = 0; i < ${#keys[@]}; i++)); do
      k="${keys[$(((start + i) % ${#keys[@]}))]}"
      run_one "$k" "$phase" "$n" "$r" || TOTAL_FAILS=$((TOTAL_FAILS + 1))
    done
  done
}

# ---------------------------------------------------------------- header
START_DATE="$(date '+%Y-%m-%d %H:%M:%S %Z')"
first_line() { "$@" 2>&1 | head -n 1 || true; }
VERSIONS=("capo: $(first_line "$CAPO" --version)" "ssh: $(first_line ssh -V)")
want pssh && VERSIONS+=("parallel-ssh: $(first_line parallel-ssh --version)")
want clush && VERSIONS+=("clush: $(first_line clush --version)")
want pdsh && VERSIONS+=("pdsh: $(first_line pdsh -V)")
want ansible && VERSIONS+=("ansible: $(first_line ansible --version)")
want bssh && VERSIONS+=("bssh: $(first_line "$BSSH" --version) (cargo install --locked bssh --version $BSSH_VERSION)")
VERSIONS+=("puppet: $(first_line puppet --version)")
MACHINE="$(nproc) CPUs ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)), \
$(awk '/^MemTotal/{printf "%.1f GiB RAM", $2/1048576}' /proc/meminfo), kernel $(uname -r)"
LOAD_START="$(cut -d' ' -f1-3 /proc/loadavg)"

# ---------------------------------------------------------------- warm-up
# Untimed: every selected tool once on a few hosts (page cache, Python bytecode; and a failure
# here means the setup is wrong, so stop before spending the benchmark's time), then one
# Puppet run on every job host (the first apply creates all files, later ones change one).
say "warm-up: every tool once on $WARM_N hosts"
for k in "${CMD_KEYS[@]}"; do
  run_one "$k" warm "$WARM_N" 0 || die "warm-up run of $(label "$k" cmd) failed; see $WORK/runs/warm-n$WARM_N-r0-$k"
done
if want bssh; then
  # bssh must verify host keys like every other tool: with an empty known_hosts it must refuse
  if env -u SSH_AUTH_SOCK --chdir="$WORK/bssh-nokeys" "HOME=$WORK/bssh-nokeys" "XDG_CONFIG_HOME=$WORK/bssh-nokeys/.config" \
    "$BSSH" -H "root@127.0.0.1:$(port_of "${HOSTS[0]}")" -i "$FLEET_KEY" --strict-host-key-checking yes \
    --require-all-success true </dev/null >"$WORK/bssh-nokeys.log" 2>&1; then
    die "bssh ran on a host whose key is not in its known_hosts: it does not check host keys (see $WORK/bssh-nokeys.log)"
  fi
  grep -q 'Unknown server key' "$WORK/bssh-nokeys.log" ||
    die "bssh failed on a host whose key is not in its known_hosts, but not for that key (see $WORK/bssh-nokeys.log)"

  say "bssh refuses a host whose key is not in its known_hosts: checked"
fi
if ((${#JOB_NS[@]} > 0)); then
  jmax=0
  for n in "${JOB_NS[@]}"; do ((n > jmax)) && jmax=$n; done
  say "warm-up: one puppet apply on $jmax hosts"
  printf '%s\n' "${HOSTS[@]:0:jmax}" |
    xargs -P "$JOBS" -I{} ssh -F "$SSHCFG" {} "$JOB_LINE" >"$WORK/warm-job.log" 2>&1 ||
    die "warm-up puppet run failed (see $WORK/warm-job.log)"
fi

# ---------------------------------------------------------------- the benchmark
t_bench=$(date +%s)
for n in "${CMD_SIZES[@]}"; do
  ((${#CMD_KEYS[@]} > 0)) || break
  say "trivial command on $n hosts: ${#CMD_KEYS[@]} runs x $ROUNDS rounds"
  run_rounds cmd "$n" "${CMD_KEYS[@]}"
done
for n in "${JOB_NS[@]}"; do
  say "rollout (git pull + puppet apply) on $n hosts: ${#JOB_KEYS[@]} runs x $ROUNDS rounds"
  run_rounds job "$n" "${JOB_KEYS[@]}"
done
BENCH_SECS=$(($(date +%s) - t_bench))

# ---------------------------------------------------------------- report
if [[ -z "$OUT" ]]; then
  mkdir -p "$BENCH_DIR/results"
  OUT="$BENCH_DIR/results/peers-$(date +%Y%m%d-%H%M%S).md"
else
  mkdir -p "$(dirname "$OUT")"
fi

# Table and targets from $RESULTS (phase n round key label wall cpu rss fails rc hosts-cpu).
summarize() {
  awk -F '\t' -v quick="$QUICK" '
    function sortv(a, n,   i, j, t) { for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t } }
    function median(a, n) { sortv(a, n); return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }
    {
      g = $1 SUBSEP $2 SUBSEP $4
      if (!(g in cnt)) { order[++ng] = g; lab[g] = $5; ph[g] = $1; nn[g] = $2; key[g] = $4 }
      i = ++cnt[g]; wall[g, i] = $6; cpu[g, i] = $7; rss[g, i] = $8; fails[g] += $9; rnd[g, i] = $3; hcpu[g, i] = $11
      w[$1, $2, $4, $3] = $6
    }
    # per-round ratio capo/peer for group g: sets RN (count), RMED, RMIN, RMAX
    function ratios(g,   i, r, a) {
      RN = 0; RMIN = 1e9; RMAX = 0
      for (i = 1; i <= cnt[g]; i++) {
        r = rnd[g, i]
        if (((ph[g], nn[g], "capo", r) in w) && wall[g, i] > 0) {
          a[++RN] = w[ph[g], nn[g], "capo", r] / wall[g, i]
          if (a[RN] < RMIN) RMIN = a[RN]; if (a[RN] > RMAX) RMAX = a[RN]
        }
      }
      if (RN) RMED = median(a, RN)
    }
    function target(desc, p, n, k, limit,   g, best, gg, res) {
      g = p SUBSEP n SUBSEP k
      if (quick) res = "n/a (quick run)"
      else if (g in cnt) {
        ratios(g)
        if (!RN) res = "n/a (capo not measured)"
        else res = sprintf("%s (median %.2fx over %d rounds, %.2f..%.2f; target <= %.2fx)", RMED <= limit ? "PASS" : "MISS", RMED, RN, RMIN, RMAX, limit)
      } else {
        best = ""
        for (gg in cnt) if (ph[gg] == p && key[gg] == k && (best == "" || nn[gg] + 0 > nn[best] + 0)) best = gg
        if (best != "") { ratios(best); res = RN ? sprintf("n/a (no %d-host run; at N=%d: median %.2fx, target <= %.2fx)", n, nn[best], RMED, limit) : "n/a (capo not measured)" }
        else res = "n/a (not measured)"
      }
      printf "- %s: %s\n", desc, res
    }
    END {
      nr = 0
      hdr = "workload|N|tool|runs|wall s: median (min..max)|capo/tool wall, per round: median (min..max)|controller CPU s (median)|hosts CPU s (median)|peak RSS MiB (median)|failed hosts (all rounds)"
      for (o = 1; o <= ng; o++) {
        g = order[o]; n = cnt[g]
        for (i = 1; i <= n; i++) { a[i] = wall[g, i] } ; wm = median(a, n); wmin = a[1]; wmax = a[n]
        for (i = 1; i <= n; i++) { a[i] = cpu[g, i] } ; cm = median(a, n)
        for (i = 1; i <= n; i++) { a[i] = rss[g, i] } ; rm = median(a, n)
        for (i = 1; i <= n; i++) { a[i] = hcpu[g, i] } ; hm = median(a, n)
        if (key[g] == "capo") rs = "-"
        else { ratios(g); rs = RN ? sprintf("%.2fx (%.2f..%.2f)", RMED, RMIN, RMAX) : "n/a" }
        row[++nr] = sprintf("%s|%d|%s|%d|%.2f (%.2f..%.2f)|%s|%.3f|%.3f|%.0f|%d", ph[g] == "cmd" ? "true" : "rollout", nn[g], lab[g], n, wm, wmin, wmax, rs, cm, hm, rm / 1024, fails[g])
      }
      # aligned Markdown table
      nc = split(hdr, h, "|")
      for (c = 1; c <= nc; c++) width[c] = length(h[c]) < 3 ? 3 : length(h[c])
      for (r = 1; r <= nr; r++) { split(row[r], f, "|"); for (c = 1; c <= nc; c++) if (length(f[c]) > width[c]) width[c] = length(f[c]) }
      line = "|"; for (c = 1; c <= nc; c++) line = line sprintf(" %-*s |", width[c], h[c]); print line
      line = "|"; for (c = 1; c <= nc; c++) { d = ""; for (x = 0; x < width[c]; x++) d = d "-"; if (c == 2 || c >= 4) d = substr(d, 2) ":"; line = line " " d " |" }; print line
      for (r = 1; r <= nr; r++) {
        split(row[r], f, "|"); line = "|"
        for (c = 1; c <= nc; c++) line = line sprintf((c == 2 || c >= 4) ? " %*s |" : " %-*s |", width[c], f[c])
        print line
      }
      print ""
      print "Targets (capo wall / tool wall, median of the per-round ratios):"
      print ""
      target("`true` on 200 hosts: capo <= 0.4x parallel-ssh (default kex)", "cmd", 200, "pssh", 0.4)
      target("`true` on 200 hosts: capo <= 0.15x ansible -m command (default kex)", "cmd", 200, "ans-cmd", 0.15)
      split("pssh-c clush-c pdsh-c ans-raw-c ans-cmd-c", forced, " ")
      split("parallel-ssh|clush|pdsh|ansible -m raw|ansible -m command", fname, "|")
      for (i = 1; i <= 5; i++) target("`true` on 200 hosts: capo <= 0.8x " fname[i] " forced to curve25519-sha256", "cmd", 200, forced[i], 0.8)
      target("`true` on 200 hosts: capo <= 0.8x bssh (russh, as capo)", "cmd", 200, "bssh", 0.8)
      target("rollout on 20 hosts: capo <= 1.0x parallel-ssh running the same job", "job", 20, "pssh", 1.0)
      target("rollout on 50 hosts: capo <= 1.0x parallel-ssh running the same job", "job", 50, "pssh", 1.0)
    }' "$RESULTS"
}

raw_runs() {
  echo "| workload | N | round | tool | wall s | CPU s | hosts CPU s | peak RSS MiB | failed | exit |"
  echo "|---|--:|--:|---|--:|--:|--:|--:|--:|--:|"
  awk -F '\t' '{printf "| %s | %s | %s | %s | %s | %s | %s | %.0f | %s | %s |\n", $1 == "cmd" ? "true" : "rollout", $2, $3, $5, $6, $7, $11, $8 / 1024, $9, $10}' "$RESULTS"
}

SUMMARY="$(summarize)"
LOAD_END="$(cut -d' ' -f1-3 /proc/loadavg)"
{
  echo "# capo vs. parallel-ssh, clush, pdsh, ansible"
  echo
  echo "- date: $START_DATE; benchmark took $((BENCH_SECS / 60)) min $((BENCH_SECS % 60)) s"
  echo "- machine: $MACHINE; load average at start $LOAD_START, at end $LOAD_END"
  for v in "${VERSIONS[@]}"; do echo "- $v"; done
  echo "- settings: --sizes ${CMD_SIZES[*]:-none} --job-sizes ${JOB_NS[*]:-none} --rounds $ROUNDS --jobs $JOBS --tools $TOOLS$( ((JOB_FORCED)) && echo ' --job-forced')$( ((QUICK)) && echo ' (--quick)')"
  echo "- fleet: tests/fleet/fleet.sh, $MAXN hosts (sshd on 127.0.0.1, one port each); a run on N hosts uses the first N"
  echo "- controller CPU: $CPU_SRC"
  echo "- hosts CPU: CPU used on all hosts during the run (every host's sshd is pid 1 of its namespace; its own and its reaped children's times, after minus before): sshd, the sessions, shells, commands"
  echo "- peak RSS: largest single process of the run (/usr/bin/time %M), not the sum"
  echo "- rows \"(curve25519)\": ssh forced to -o KexAlgorithms=$FORCED_KEX (what capo negotiates); other rows use each tool's defaults (OpenSSH $(ssh -V 2>&1 | sed -E 's/^OpenSSH_([^ ,]+).*/\1/'): $(ssh -G -F /dev/null x 2>/dev/null | awk '$1=="kexalgorithms"{split($2,k,","); print k[1]}'))"
  echo
  echo "$SUMMARY"
  echo
  echo "## Commands"
  echo
  echo "All OpenSSH-based tools read \`-F ssh_config\` (one \`Host hostNN\` block per host: HostName 127.0.0.1, Port, User root,"
  echo "IdentityFile, IdentitiesOnly yes, UserKnownHostsFile, GlobalKnownHostsFile /dev/null, StrictHostKeyChecking yes, BatchMode yes)."
  echo "Ansible uses an INI inventory (ansible_host/port/user/ssh_private_key_file) with the same options in ansible_ssh_common_args,"
  echo "ANSIBLE_HOST_KEY_CHECKING=True and a fresh ANSIBLE_SSH_CONTROL_PATH_DIR per run (its ControlPersist masters are stopped after each run)."
  echo "bssh (it checks host keys only against ~/.ssh/known_hosts) runs with HOME and its working directory set to a directory whose"
  echo ".ssh/known_hosts is a symlink to the fleet's known_hosts and which holds no other configuration; the host list has one"
  echo "root@127.0.0.1:PORT per host. Before the benchmark, bssh is checked to refuse a host whose key is not in its known_hosts."
  echo "Before every rollout run a new commit is pushed to the control repo; a run counts a host as failed unless its checkout is at that"
  echo "commit and its /srv/managed/motd has the new text afterwards (capo: also unless its report says \`changed\`)."
  echo
  echo '```'
  echo "capo exec    -i inv.toml -q -j $JOBS --report r.json -- true"
  echo "capo rollout -i inv.toml -q -j $JOBS --report r.json"
  echo "parallel-ssh -h hosts.txt -p $JOBS -x '-F ssh_config [-o KexAlgorithms=$FORCED_KEX]' [-t 0 for the rollout] CMD"
  echo "clush -S -b -f $JOBS -w 'host[01-NN]' -o '-F ssh_config [-o KexAlgorithms=$FORCED_KEX]' CMD"
  echo "PDSH_SSH_ARGS_APPEND='-F ssh_config [-o KexAlgorithms=$FORCED_KEX]' pdsh -S -R ssh -f $JOBS -w 'host[01-NN]' CMD"
  echo "ansible bench -i hosts.ini -f $JOBS -m raw|command|shell -a CMD [--ssh-extra-args '-o KexAlgorithms=$FORCED_KEX']"
  echo "HOME=bssh-home bssh -H 'root@127.0.0.1:PORT1,root@127.0.0.1:PORT2,...' -i KEY --strict-host-key-checking yes --parallel $JOBS --require-all-success CMD"
  echo
  echo "CMD = true, or for the rollout:"
  echo "$JOB_LINE"
  echo '```'
  echo
  echo "<details><summary>Every run</summary>"
  echo
  raw_runs
  echo
  echo "</details>"
} >"$OUT"

echo
echo "capo vs. peers -- $START_DATE -- $MACHINE"
echo "controller CPU: $CPU_SRC"
echo
echo "$SUMMARY"
echo
say "results written to $OUT"
if ((TOTAL_FAILS > 0)); then
  say "$TOTAL_FAILS runs had failed hosts (see the 'failed hosts' column)"
  exit 1
fi
exit 0
