#!/usr/bin/env bash
# bench/latency.sh -- capo rollout against parallel-ssh running the same job, on a real local
# fleet (tests/fleet/fleet.sh) whose every host is made "far away": 2 x DELAY ms more round trip
# (default 100 ms), added by a TCP proxy per host (bench/latency_proxy.py; this machine's kernel
# has no sch_netem, so `tc netem` is not an option). Fewer round trips per host should show as a
# smaller added cost.
#
# For each round: push a new commit, run `capo rollout` through the proxies and check that every
# host reached it; push another, run parallel-ssh's job (bench/lib/job.sh, the same line as
# bench/peers.sh) through the proxies and check likewise; the tool that goes first alternates
# per round. Before the rounds, one round of each straight to the hosts' sshds (the baseline).
# Same client key, same host keys (strict checking: known_hosts lines for the proxy ports), same
# concurrency. Prints a Markdown table. See bench/README.md.
#
# Needs root (the fleet harness uses unshare/nsenter/mount). Run from any directory.
set -euo pipefail

SELF="$(readlink -f "${BASH_SOURCE[0]}")"
BENCH_DIR="$(dirname "$SELF")"
ROOT="$(dirname "$BENCH_DIR")"
FLEET_SH="$ROOT/tests/fleet/fleet.sh"
PROXY_PY="$BENCH_DIR/latency_proxy.py"
# MSG_PATH, JOB_LINE, verify_job: the job bench/peers.sh gives the peers
# shellcheck source=lib/job.sh disable=SC1091  # followed with shellcheck -x
. "$BENCH_DIR/lib/job.sh"

usage() {
  cat <<'EOF'
usage: bench/latency.sh [OPTIONS]

capo rollout vs parallel-ssh (git pull + puppet apply) on a local fleet whose hosts are reached
through a latency-adding TCP proxy each (needs root).

  --hosts N      hosts in the fleet, all used by every run          (default 50)
  --rounds R     delayed rounds; each runs both tools once         (default 3)
  --delay MS     latency added in each direction, per host          (default 50: +100 ms RTT)
  --jobs J       concurrency of both tools (capo -j, parallel-ssh -p) (default 50)
  --no-build     do not run `cargo build --release` (use target/release/capo)
  --keep         leave the fleet up and the work directory in place
  --out FILE     also write the Markdown (with every run) to FILE
  -h, --help     this text

Environment: CAPO=/path/to/capo uses that binary and skips the build.
Exit status: 0 when every run reached every host, 1 when a run had failed hosts, 2 for bad
usage, other non-zero if it broke.
EOF
}

die() { echo "latency.sh: $*" >&2; exit 1; }
say() { echo "latency.sh: $*" >&2; }
bad_usage() { echo "latency.sh: $*" >&2; usage >&2; exit 2; }

# ---------------------------------------------------------------- options
HOSTS_N=50
ROUNDS=3
DELAY=50
JOBS=50
BUILD=1
KEEP=0
OUT=""
while (($#)); do
  opt="$1"
  val=""
  case "$opt" in
    --*=*) val="${opt#*=}"; opt="${opt%%=*}" ;;
    --hosts | --rounds | --delay | --jobs | --out)
      [[ $# -ge 2 ]] || bad_usage "$opt needs a value"
      val="$2"
      shift ;;
  esac
  case "$opt" in
    --hosts) HOSTS_N="$val" ;;
    --rounds) ROUNDS="$val" ;;
    --delay) DELAY="$val" ;;
    --jobs) JOBS="$val" ;;
    --out) OUT="$val" ;;
    --no-build) BUILD=0 ;;
    --keep) KEEP=1 ;;
    -h | --help) usage; exit 0 ;;
    *) bad_usage "unknown option '$1'" ;;
  esac
  shift
done
if ! [[ "$HOSTS_N" =~ ^[0-9]+$ ]] || ((10#$HOSTS_N < 1 || 10#$HOSTS_N > 999)); then bad_usage "--hosts must be 1..999"; fi
if ! [[ "$ROUNDS" =~ ^[0-9]+$ ]] || ((10#$ROUNDS < 1)); then bad_usage "--rounds must be >= 1"; fi
if ! [[ "$DELAY" =~ ^[0-9]+$ ]] || ((10#$DELAY < 1 || 10#$DELAY > 10000)); then bad_usage "--delay must be 1..10000 (ms)"; fi
if ! [[ "$JOBS" =~ ^[0-9]+$ ]] || ((10#$JOBS < 1)); then bad_usage "--jobs must be >= 1"; fi
HOSTS_N=$((10#$HOSTS_N)) ROUNDS=$((10#$ROUNDS)) DELAY=$((10#$DELAY)) JOBS=$((10#$JOBS))
RTT_MS=$((2 * DELAY))

# ---------------------------------------------------------------- prerequisites
[[ $EUID -eq 0 ]] || die "must run as root (the fleet harness needs unshare/nsenter/mount)"
[[ -x "$FLEET_SH" ]] || die "fleet harness not found at $FLEET_SH"

install_missing() {
  local -a need=()
  local pair cmd pkg
  local -a pairs=(/usr/sbin/sshd:openssh-server ssh:openssh-client puppet:puppet git:git
    unshare:util-linux nsenter:util-linux ss:iproute2 pgrep:procps
    /usr/bin/time:time jq:jq python3:python3 parallel-ssh:pssh)
  for pair in "${pairs[@]}"; do
    cmd="${pair%%:*}" pkg="${pair#*:}"
    command -v "$cmd" >/dev/null 2>&1 && continue
    [[ " ${need[*]} " == *" $pkg "* ]] || need+=("$pkg")
  done
  ((${#need[@]} > 0)) || return 0
  say "installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >&2
  apt-get install -y -q "${need[@]}" >&2
}
install_missing

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
WORK="$(mktemp -d /tmp/capo-latency.XXXXXX)"
FLEET="$WORK/fleet"
RESULTS="$WORK/results.tsv"
: >"$RESULTS"
mkdir -p "$WORK/runs" "$WORK/capo-runs"
FLEET_UP=0
PROXY_PID=""
CUR_PID=""
FAILED_RUNS=0

# shellcheck disable=SC2317  # called from cleanup
kill_tree() {  # pid: the process and its descendants (all started by this script)
  local c
  for c in $(pgrep -P "$1" 2>/dev/null || true); do kill_tree "$c"; done
  kill -KILL "$1" 2>/dev/null || true
}

# shellcheck disable=SC2317  # invoked by the EXIT trap
cleanup() {
  local rc=$?
  set +e
  trap - EXIT INT TERM
  if ((rc == 130 || rc == 143)); then say "interrupted; stopping"; fi
  if [[ -n "$CUR_PID" ]]; then
    kill_tree "$CUR_PID"
    wait "$CUR_PID" 2>/dev/null
  fi
  if [[ -n "$PROXY_PID" ]]; then
    kill -TERM "$PROXY_PID" 2>/dev/null
    wait "$PROXY_PID" 2>/dev/null
  fi
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
say "bringing up a fleet of $HOSTS_N hosts in $FLEET (about 1 s per 4 hosts)"
t0=$(date +%s.%N)
FLEET_UP=1
FLEET_QUIET=1 "$FLEET_SH" up "$HOSTS_N" --dir "$FLEET" >/dev/null
say "fleet up in $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}') s"
# shellcheck disable=SC1091
. "$FLEET/fleet.env"
read -r -a HOSTS <<<"$FLEET_HOSTS"
((${#HOSTS[@]} == HOSTS_N)) || die "fleet has ${#HOSTS[@]} hosts, expected $HOSTS_N"
port_of() { local v="FLEET_PORT_$1"; echo "${!v}"; }

# ---------------------------------------------------------------- the proxies
# One listener per host on 127.0.0.1 (a free port from the kernel), forwarding to the host's
# sshd with DELAY ms each way. It writes "host port" lines to proxy.map.ports once all listen.
for h in "${HOSTS[@]}"; do echo "$h $(port_of "$h")"; done >"$WORK/proxy.map"
# nice -10: the hosts' Puppet runs saturate the cores; the proxy needs little CPU but must wake
# on time, or it adds more than DELAY (its counters say how late it delivered)
nice -n -10 python3 "$PROXY_PY" --delay "$DELAY" --map "$WORK/proxy.map" >"$WORK/proxy.out" 2>"$WORK/proxy.err" &
PROXY_PID=$!
for ((i = 0; i < 300; i++)); do
  grep -qx ready "$WORK/proxy.out" 2>/dev/null && break
  kill -0 "$PROXY_PID" 2>/dev/null || die "latency proxy exited: $(cat "$WORK/proxy.err")"
  sleep 0.1
done
grep -qx ready "$WORK/proxy.out" || die "latency proxy not ready after 30 s"
declare -A PPORT=()
while read -r h p; do PPORT[$h]="$p"; done <"$WORK/proxy.map.ports"
((${#PPORT[@]} == HOSTS_N)) || die "proxy listens for ${#PPORT[@]} hosts, expected $HOSTS_N"
proxy_cpu() {  # seconds of CPU the proxy used so far (utime + stime)
  awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); printf "%.3f", ($12 + $13) / hz }' "/proc/$PROXY_PID/stat"
}

# Per path (direct: the sshds' ports; delay: the proxies'): known_hosts, ssh_config (for
# parallel-ssh), capo inventory. The delayed known_hosts has each host's own key under its
# proxy port ("[127.0.0.1]:PPORT ssh-ed25519 ..."), so both tools verify the real host key.
: >"$WORK/known_hosts-delay"
for h in "${HOSTS[@]}"; do
  key="$(grep -F "[127.0.0.1]:$(port_of "$h") " "$FLEET_KNOWN_HOSTS" | head -n 1 | cut -d' ' -f2-)"
  [[ -n "$key" ]] || die "no known_hosts line for $h"
  echo "[127.0.0.1]:${PPORT[$h]} $key" >>"$WORK/known_hosts-delay"
done
printf '%s\n' "${HOSTS[@]}" >"$WORK/hosts.txt"
for path in direct delay; do
  if [[ "$path" == direct ]]; then kh="$FLEET_KNOWN_HOSTS"; else kh="$WORK/known_hosts-delay"; fi
  for h in "${HOSTS[@]}"; do
    if [[ "$path" == direct ]]; then p="$(port_of "$h")"; else p="${PPORT[$h]}"; fi
    cat <<EOF
Host $h
  HostName 127.0.0.1
  Port $p
  User root
  IdentityFile $FLEET_KEY
  IdentitiesOnly yes
  UserKnownHostsFile $kh
  GlobalKnownHostsFile /dev/null
  StrictHostKeyChecking yes
  BatchMode yes

EOF
  done >"$WORK/ssh_config-$path"
  {
    # the fleet's [defaults] (key paths made absolute), with this path's known_hosts
    awk '/^\[/ && $0 != "[defaults]" {exit} {print}' "$FLEET/inventory.toml" |
      sed -e "s|\"keys/|\"$FLEET/keys/|g" -e "s|^known_hosts = .*|known_hosts = \"$kh\"|"
    echo
    echo "[groups.bench]"
    echo "hosts = [$(printf '"%s",' "${HOSTS[@]}" | sed 's/,$//')]"
    for h in "${HOSTS[@]}"; do
      if [[ "$path" == direct ]]; then p="$(port_of "$h")"; else p="${PPORT[$h]}"; fi
      printf '\n[hosts.%s]\naddress = "127.0.0.1"\nport = %s\n' "$h" "$p"
    done
  } >"$WORK/inv-$path.toml"
done
"$CAPO" hosts -i "$WORK/inv-delay.toml" >/dev/null || die "capo does not accept the generated inventory $WORK/inv-delay.toml"

# ---------------------------------------------------------------- checks before the benchmark
h1="${HOSTS[0]}"
# host keys are verified through the proxy: the direct known_hosts names other ports, so ssh
# through the proxy with it must refuse; with the proxy's own lines it must log in
if ssh -F /dev/null -i "$FLEET_KEY" -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=yes \
  -o UserKnownHostsFile="$FLEET_KNOWN_HOSTS" -o GlobalKnownHostsFile=/dev/null \
  -p "${PPORT[$h1]}" root@127.0.0.1 true >"$WORK/hostkey-check.log" 2>&1; then
  die "ssh logged in through the proxy with no known_hosts line for its port: host keys are not checked"
fi
grep -q 'Host key verification failed' "$WORK/hostkey-check.log" ||
  die "ssh through the proxy failed, but not on the host key: $(cat "$WORK/hostkey-check.log")"
# round trip: a TCP ping-pong through a proxy like these, and `ssh HOST true` (its several
# round trips: banner, key exchange, auth, channel, exec) direct and through the proxy
SELFTEST="$(python3 "$PROXY_PY" --selftest --delay "$DELAY")"
ssh_true_ms() {  # path: median ms of 5 `ssh host01 true`
  local i t0 t1
  for ((i = 0; i < 5; i++)); do
    t0=$(date +%s%N)
    ssh -F "$WORK/ssh_config-$1" "$h1" true || die "ssh $h1 true ($1) failed"
    t1=$(date +%s%N)
    echo $(((t1 - t0) / 1000000))
  done | sort -n | sed -n 3p
}
SSH_DIRECT_MS="$(ssh_true_ms direct)"
SSH_DELAY_MS="$(ssh_true_ms delay)"
say "$SELFTEST"
say "ssh $h1 true: direct ${SSH_DIRECT_MS} ms, through the proxy ${SSH_DELAY_MS} ms (median of 5)"

# ---------------------------------------------------------------- one measured run
# Runs TOOL once on PATH in ROUND: a new commit first, then the tool under /usr/bin/time, then
# the check that every host has that commit and the managed file's new content. Appends a line
# to $RESULTS; returns 1 if a host failed.
run_one() {  # tool(capo|pssh) path(direct|delay) round
  local tool="$1" path="$2" round="$3" id dir rc=0 token sha fails vbad line p0 p1
  local wall="" user="" sys="" cpu="" pcpu="0"
  id="r$round-$path-$tool"
  dir="$WORK/runs/$id"
  mkdir -p "$dir"
  token="capo latency benchmark $id $(date +%s%N)"
  sha="$(FLEET_QUIET=1 "$FLEET_SH" commit --dir "$FLEET" -- "$MSG_PATH" "$token"$'\n' "bench: $id")"
  local -a cmd
  if [[ "$tool" == capo ]]; then
    cmd=("$CAPO" rollout -i "$WORK/inv-$path.toml" -q -j "$JOBS" --runs-dir "$WORK/capo-runs" --report "$dir/report.json")
  else
    # -t 0: no per-host timeout (its default 60 s could kill a Puppet run on a busy machine;
    # capo's command_timeout is 5 minutes), as in bench/peers.sh
    cmd=(parallel-ssh -h "$WORK/hosts.txt" -p "$JOBS" -x "-F $WORK/ssh_config-$path" -t 0 "$JOB_LINE")
  fi
  printf '%q ' "${cmd[@]}" >"$dir/cmd"
  p0="$(proxy_cpu)"
  /usr/bin/time -f '%e %U %S' -o "$dir/time" "${cmd[@]}" </dev/null >"$dir/stdout" 2>"$dir/stderr" &
  CUR_PID=$!
  wait "$CUR_PID" || rc=$?
  CUR_PID=""
  p1="$(proxy_cpu)"
  line="$(tail -n 1 "$dir/time" 2>/dev/null || true)"
  if [[ "$line" =~ ^([0-9.]+)\ ([0-9.]+)\ ([0-9.]+)$ ]]; then
    wall="${BASH_REMATCH[1]}" user="${BASH_REMATCH[2]}" sys="${BASH_REMATCH[3]}"
    cpu="$(awk -v a="$user" -v b="$sys" 'BEGIN{printf "%.3f", a+b}')"
  fi
  [[ "$path" == direct ]] && pcpu="-"
  [[ "$path" == delay ]] && pcpu="$(awk -v a="$p0" -v b="$p1" 'BEGIN{printf "%.3f", b-a}')"
  # failures from the tool's own output: capo's report must say `changed` for every host,
  # parallel-ssh must print [SUCCESS] for every host
  if [[ "$tool" == capo ]]; then
    if [[ -s "$dir/report.json" && "$(jq .summary.total "$dir/report.json")" == "$HOSTS_N" ]]; then
      fails="$(jq '.summary.total - .summary.changed' "$dir/report.json")"
    else
      fails=$HOSTS_N
    fi
  else
    fails=$((HOSTS_N - $(grep -c '\[SUCCESS\]' "$dir/stdout" || true)))
  fi
  ((fails == 0 && rc != 0)) && fails=1
  [[ -n "$wall" ]] || fails=$HOSTS_N
  vbad="$(verify_job "$HOSTS_N" "$sha" "$token")"
  if ((vbad > fails)); then
    say "warning: $tool reported $fails failed, but $vbad hosts did not take the change"
    fails=$vbad
  fi
  # capo only: per host, the time outside the apply step (connect, lock, sync, reading Puppet's
  # results, closing), mean over the hosts, from the report; Puppet's CPU-bound run is left out
  local outside="-"
  if [[ "$tool" == capo && -s "$dir/report.json" ]]; then
    outside="$(jq -r '[.hosts[] | .duration_ms - ([.steps[] | select(.name == "apply") | .duration_ms] | add // 0)]
      | if length > 0 then (add / length / 1000 * 1000 | round / 1000) else "-" end' "$dir/report.json")"
  fi
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$path" "$round" "$tool" "${wall:-nan}" "${cpu:-nan}" "$pcpu" "$fails" "$outside" >>"$RESULTS"
  printf 'latency.sh: %-6s round %s  %-12s %7s s wall %7s s CPU %6s s proxy CPU  %s failed\n' \
    "$path" "$round" "$tool" "${wall:-?}" "${cpu:-?}" "$pcpu" "$fails" >&2
  if ((fails > 0)); then
    say "  $fails hosts failed (exit $rc); command: $(cat "$dir/cmd")"
    { grep -hiE 'FAILURE|failed|error|timed? ?out|refused|denied' "$dir/stdout" "$dir/stderr" ||
        tail -n 5 "$dir/stderr"; } | head -n 8 | sed 's/^/    /' >&2
    return 1
  fi
  return 0
}

# ---------------------------------------------------------------- the benchmark
START_DATE="$(date '+%Y-%m-%d %H:%M:%S %Z')"
LOAD_START="$(cut -d' ' -f1-3 /proc/loadavg)"
MACHINE="$(nproc) CPUs ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)), \
$(awk '/^MemTotal/{printf "%.1f GiB RAM", $2/1048576}' /proc/meminfo), kernel $(uname -r)"

# untimed: one Puppet run on every host (the first apply creates all files, later ones change one)
say "warm-up: one puppet apply on $HOSTS_N hosts"
xargs -P "$JOBS" -I{} ssh -F "$WORK/ssh_config-direct" {} "$JOB_LINE" <"$WORK/hosts.txt" >"$WORK/warm-job.log" 2>&1 ||
  die "warm-up puppet run failed (see $WORK/warm-job.log)"

t_bench=$(date +%s)
say "baseline: one round straight to the sshds"
run_one capo direct 0 || FAILED_RUNS=$((FAILED_RUNS + 1))
run_one pssh direct 0 || FAILED_RUNS=$((FAILED_RUNS + 1))
say "$ROUNDS rounds through the proxies (+$RTT_MS ms round trip per host)"
for ((r = 1; r <= ROUNDS; r++)); do
  if ((r % 2)); then order=(pssh capo); else order=(capo pssh); fi
  for t in "${order[@]}"; do
    run_one "$t" delay "$r" || FAILED_RUNS=$((FAILED_RUNS + 1))
  done
done
BENCH_SECS=$(($(date +%s) - t_bench))
LOAD_END="$(cut -d' ' -f1-3 /proc/loadavg)"
# the proxy's own counters (connections, bytes, how late its worst delivery was, its CPU)
kill -TERM "$PROXY_PID" 2>/dev/null || true
wait "$PROXY_PID" 2>/dev/null || true
PROXY_PID=""
PROXY_STATS="$(grep '^latency_proxy:' "$WORK/proxy.err" | tail -n 1 || true)"

# ---------------------------------------------------------------- report
# $RESULTS: path round tool wall cpu proxy-cpu fails capo-outside-apply
summarize() {
  awk -F '\t' -v rtt="$RTT_MS" '
    function sortv(a, n,   i, j, t) { for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t } }
    function median(a, n) { sortv(a, n); return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }
    {
      g = $1 SUBSEP $3; i = ++cnt[g]
      wall[g, i] = $4; cpu[g, i] = $5; pcpu[g, i] = $6; fails[g] += $7
      w[$1, $3, $2] = $4; rounds[$1, $2] = 1
      if ($3 == "capo" && $8 != "-" && $8 != "") { no = ++ocnt[$1]; outside[$1, no] = $8 }
    }
    # capo/pssh per round on path p: sets RN, RMED, RMIN, RMAX, RLIST
    function ratios(p,   r, a, x) {
      RN = 0; RMIN = 1e9; RMAX = 0; RLIST = ""
      for (r = 0; r <= 1000; r++) {
        if (!((p, "capo", r) in w) || !((p, "pssh", r) in w) || w[p, "pssh", r] <= 0) continue
        x = w[p, "capo", r] / w[p, "pssh", r]; a[++RN] = x
        if (x < RMIN) RMIN = x; if (x > RMAX) RMAX = x
        RLIST = RLIST (RLIST == "" ? "" : ", ") sprintf("round %d: %.2fx", r, x)
      }
      if (RN) RMED = median(a, RN)
    }
    function stat(g, arr,   i, a, n) { n = cnt[g]; for (i = 1; i <= n; i++) a[i] = arr[g, i]; M = median(a, n); MIN = a[1]; MAX = a[n] }
    END {
      hdr = "path|tool|runs|wall s: median (min..max)|capo/parallel-ssh wall, per round: median (min..max)|controller CPU s (median)|proxy CPU s (median)|failed hosts"
      nr = 0
      split("direct delay", paths, " "); split("capo pssh", tools, " ")
      for (pi = 1; pi <= 2; pi++) for (ti = 1; ti <= 2; ti++) {
        p = paths[pi]; t = tools[ti]; g = p SUBSEP t
        if (!(g in cnt)) continue
        stat(g, wall); wm = M; wmin = MIN; wmax = MAX; WMED[p, t] = M
        stat(g, cpu); cm = M
        stat(g, pcpu); pm = M
        if (t == "capo") rs = "-"
        else { ratios(p); rs = RN ? sprintf("%.2fx (%.2f..%.2f)", RMED, RMIN, RMAX) : "n/a" }
        row[++nr] = sprintf("%s|%s|%d|%.2f (%.2f..%.2f)|%s|%.3f|%s|%d", p == "direct" ? "direct" : "+" rtt " ms RTT", t == "capo" ? "capo rollout" : "parallel-ssh", cnt[g], wm, wmin, wmax, rs, cm, p == "direct" ? "-" : sprintf("%.3f", pm), fails[g])
      }
      nc = split(hdr, h, "|")
      for (c = 1; c <= nc; c++) width[c] = length(h[c]) < 3 ? 3 : length(h[c])
      for (r = 1; r <= nr; r++) { split(row[r], f, "|"); for (c = 1; c <= nc; c++) if (length(f[c]) > width[c]) width[c] = length(f[c]) }
      line = "|"; for (c = 1; c <= nc; c++) line = line sprintf(" %-*s |", width[c], h[c]); print line
      line = "|"; for (c = 1; c <= nc; c++) { d = ""; for (x = 0; x < width[c]; x++) d = d "-"; if (c >= 3) d = substr(d, 2) ":"; line = line " " d " |" }; print line
      for (r = 1; r <= nr; r++) {
        split(row[r], f, "|"); line = "|"
        for (c = 1; c <= nc; c++) line = line sprintf(c >= 3 ? " %*s |" : " %-*s |", width[c], f[c])
        print line
      }
      print ""
      ratios("delay")
      if (RN) printf "capo/parallel-ssh with +%d ms RTT, per round: %s; median %.2fx\n", rtt, RLIST, RMED
      ratios("direct")
      if (RN) printf "capo/parallel-ssh direct (baseline, one round): %.2fx\n", RMED
      print ""
      print "Added-latency cost (median wall with the delay minus the direct run; in round trips: cost / " rtt " ms):"
      print ""
      for (ti = 1; ti <= 2; ti++) {
        t = tools[ti]
        if (!(("direct", t) in WMED) || !(("delay", t) in WMED)) continue
        d = WMED["delay", t] - WMED["direct", t]
        printf "- %s: %+.2f s (%.2f s -> %.2f s), about %.0f round trips\n", t == "capo" ? "capo rollout" : "parallel-ssh", d, WMED["direct", t], WMED["delay", t], d * 1000 / rtt
      }
      if (ocnt["direct"] && ocnt["delay"]) {
        for (i = 1; i <= ocnt["direct"]; i++) a[i] = outside["direct", i]; od = median(a, ocnt["direct"])
        for (i = 1; i <= ocnt["delay"]; i++) a[i] = outside["delay", i]; ol = median(a, ocnt["delay"])
        print ""
        printf "capo, per host, time outside the apply step (connect, lock, sync, Puppet'"'"'s results, close; mean over the hosts, median over the runs, from its report): direct %.2f s, +%d ms RTT %.2f s: %+.2f s, about %.0f round trips\n", od, rtt, ol, ol - od, (ol - od) * 1000 / rtt
      }
    }' "$RESULTS"
}

raw_runs() {
  echo "| path | round | tool | wall s | controller CPU s | proxy CPU s | failed | capo: per-host time outside apply s (mean) |"
  echo "|---|--:|---|--:|--:|--:|--:|--:|"
  awk -F '\t' '{printf "| %s | %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $3 == "capo" ? "capo rollout" : "parallel-ssh", $4, $5, $6, $7, $8}' "$RESULTS"
}

SUMMARY="$(summarize)"
HEADER="$(
  echo "# capo rollout vs. parallel-ssh, $HOSTS_N hosts, +$RTT_MS ms round trip per host"
  echo
  echo "- date: $START_DATE; benchmark took $((BENCH_SECS / 60)) min $((BENCH_SECS % 60)) s"
  echo "- machine: $MACHINE; load average at start $LOAD_START, at end $LOAD_END"
  echo "- capo: $("$CAPO" --version 2>&1 | head -n 1); parallel-ssh: $(parallel-ssh --version 2>&1 | head -n 1); $(ssh -V 2>&1); puppet $(puppet --version 2>&1 | head -n 1); $(python3 --version 2>&1) (proxy)"
  echo "- settings: --hosts $HOSTS_N --rounds $ROUNDS --delay $DELAY --jobs $JOBS"
  echo "- latency: bench/latency_proxy.py, one listener per host, every chunk delivered $DELAY ms after it arrived, each direction"
  echo "- proxy check: $SELFTEST"
  echo "- proxy over the whole benchmark: ${PROXY_STATS#latency_proxy: }"
  echo "- ssh $h1 true (OpenSSH, median of 5): direct $SSH_DIRECT_MS ms, through the proxy $SSH_DELAY_MS ms"
  echo "- controller CPU: user+sys from /usr/bin/time (capo; parallel-ssh and the ssh processes it waits for); the proxy's CPU is separate (proxy CPU s) and counted in neither"
  echo "- job: capo rollout -q -j $JOBS; parallel-ssh -p $JOBS -t 0 -x '-F ssh_config' '$JOB_LINE'"
  echo "- a host counts as failed unless its checkout is at the run's new commit and its /srv/managed/motd has the new text (capo: and its report says changed)"
)"
{
  echo "$HEADER"
  echo
  echo "$SUMMARY"
} >"$WORK/summary.md"
if [[ -n "$OUT" ]]; then
  mkdir -p "$(dirname "$OUT")"
  {
    cat "$WORK/summary.md"
    echo
    echo "<details><summary>Every run</summary>"
    echo
    raw_runs
    echo
    echo "</details>"
  } >"$OUT"
  say "results written to $OUT"
fi
echo
cat "$WORK/summary.md"
echo
raw_runs
if ((FAILED_RUNS > 0)); then
  say "$FAILED_RUNS runs had failed hosts (see the 'failed hosts' column)"
  exit 1
fi
exit 0
