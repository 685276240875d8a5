#!/usr/bin/env bash
# scale.sh -- what capo itself costs at scale: CPU and memory of the controller per host,
# against a simulated fleet (capo-simfleet: one process, one loopback address per host).
# See bench/README.md, section "Simulated fleet (controller cost at scale)".
set -euo pipefail

SELF="$(readlink -f "${BASH_SOURCE[0]}")"
ROOT="$(dirname "$(dirname "$SELF")")"

# Targets, judged at N=10000.
TARGET_N=10000
TARGET_CPU_MS=1      # controller CPU (user+sys) per host
TARGET_RSS_KIB=50    # controller peak RSS per host (issue 14: 50 KiB)

HOSTS_LIST=1000,10000
JOBS_LIST=200,1000
ROUNDS=1
BUILD=1
OUT=""
KEEP=0
SYNC_DELAY=50ms
APPLY_DELAY=1s
EXEC_DELAY=0ms
BASE=127.1.0.1
PORT=2222
COMMANDS=exec,rollout
SHARDS=0
TMP_PARENT="${TMPDIR:-/tmp}"

die() { echo "scale.sh: $*" >&2; exit 1; }
log() { echo "scale.sh: $*" >&2; }

usage() {
  cat <<'EOF'
usage: bench/scale.sh [OPTIONS]
Runs `capo exec -- true` and `capo rollout` (or the --commands given) against a simulated
fleet of N hosts with -j J, for every N and J, under /usr/bin/time, and prints a table of the
controller's cost.

  --hosts N1,N2,...     fleet sizes (default 1000,10000)
  --jobs J1,J2,...      capo -j values (default 200,1000)
  --rounds R            runs of each command per (N, J) (default 1)
  --commands LIST       which of exec,rollout,plan,status,check to run (default exec,rollout)
  --shards S            also run each command as S shards (--shard K/S, one after another),
                        merge their reports with `capo report merge`, and check the merged
                        report equals the unsharded run's (hosts, statuses, summary)
  --sync-delay D        simulated `git pull` time (default 50ms)
  --apply-delay D       simulated `puppet apply` time (default 1s)
  --exec-delay D        simulated time of each ad-hoc command (default 0ms)
  --base ADDR           first host's address, in 127.0.0.0/8 (default 127.1.0.1)
  --port P              port every simulated host listens on (default 2222)
  --no-build            use the binaries already in target/release (or in $BIN_DIR)
  --out FILE            also write the table (Markdown) to FILE
  --tmp DIR             where the temporary directory goes, with capo's --runs-dir in it
                        (default $TMPDIR or /tmp); /dev/shm keeps disk I/O out of the figures
  --keep                keep the temporary directory (fleet, reports, capo's run logs)
  -h, --help            this text
EOF
}

while (($#)); do
  case "$1" in
    --hosts) HOSTS_LIST="${2:?--hosts needs a value}"; shift 2 ;;
    --jobs) JOBS_LIST="${2:?--jobs needs a value}"; shift 2 ;;
    --rounds) ROUNDS="${2:?--rounds needs a value}"; shift 2 ;;
    --commands) COMMANDS="${2:?--commands needs a value}"; shift 2 ;;
    --shards) SHARDS="${2:?--shards needs a value}"; shift 2 ;;
    --sync-delay) SYNC_DELAY="${2:?--sync-delay needs a value}"; shift 2 ;;
    --apply-delay) APPLY_DELAY="${2:?--apply-delay needs a value}"; shift 2 ;;
    --exec-delay) EXEC_DELAY="${2:?--exec-delay needs a value}"; shift 2 ;;
    --base) BASE="${2:?--base needs a value}"; shift 2 ;;
    --port) PORT="${2:?--port needs a value}"; shift 2 ;;
    --no-build) BUILD=0; shift ;;
    --out) OUT="${2:?--out needs a value}"; shift 2 ;;
    --tmp) TMP_PARENT="${2:?--tmp needs a value}"; shift 2 ;;
    --keep) KEEP=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
done

IFS=, read -r -a HOSTS <<<"$HOSTS_LIST"
IFS=, read -r -a JOBS <<<"$JOBS_LIST"
IFS=, read -r -a CMDS <<<"$COMMANDS"
[[ "$SHARDS" =~ ^[0-9]+$ ]] || die "not a number: --shards '$SHARDS'"
for v in "${HOSTS[@]}" "${JOBS[@]}" "$ROUNDS"; do
  [[ "$v" =~ ^[1-9][0-9]*$ ]] || die "not a positive number: '$v'"
done
for c in "${CMDS[@]}"; do
  [[ "$c" =~ ^(exec|rollout|plan|status|check)$ ]] || die "unknown command '$c' (exec, rollout, plan, status, check)"
done
[[ -z "$OUT" ]] || OUT="$(readlink -f "$OUT")"

FAILED_RUNS=0

# ---------------------------------------------------------------- tools and binaries
if [[ ! -x /usr/bin/time ]]; then
  ((EUID == 0)) || die "/usr/bin/time is missing; install the Debian package 'time'"
  log "installing the 'time' package"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null ||
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null; } ||
    die "could not install the 'time' package"
fi

TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
[[ "$TARGET_DIR" == /* ]] || TARGET_DIR="$ROOT/$TARGET_DIR"
if ((BUILD)); then
  log "building capo and capo-simfleet (release)"
  (cd "$ROOT" && cargo build --release --quiet -p capo -p capo-simfleet)
fi
# BIN_DIR: where the binaries are, e.g. target/debug for CI's smoke run (not for figures).
BIN_DIR="${BIN_DIR:-$TARGET_DIR/release}"
CAPO="$BIN_DIR/capo"
SIMFLEET="$BIN_DIR/capo-simfleet"
[[ -x "$CAPO" && -x "$SIMFLEET" ]] || die "no $CAPO or $SIMFLEET (run without --no-build)"

# ---------------------------------------------------------------- file descriptors
# Per process: the fleet needs one listener per host and one socket per connection; capo one
# socket per host in flight plus its open log files. Root may raise the hard limit (not inside
# a container without CAP_SYS_RESOURCE).
max_n=0 max_j=0
for n in "${HOSTS[@]}"; do ((n > max_n)) && max_n=$n; done
for j in "${JOBS[@]}"; do ((j > max_j)) && max_j=$j; done
ulimit -Hn 1048576 2>/dev/null || true
ulimit -n "$(ulimit -Hn)" 2>/dev/null || ulimit -n 1048576 2>/dev/null || true
need=$((max_n + 2 * max_j + 256))
((4 * max_j + 256 > need)) && need=$((4 * max_j + 256))
have="$(ulimit -n)"
if [[ "$have" != unlimited ]] && ((have < need)); then
  die "open files limit is $have, need about $need: run as root, or raise it first (ulimit -Hn 1048576; ulimit -n 1048576)"
fi

# ---------------------------------------------------------------- fleet lifecycle
[[ -d "$TMP_PARENT" ]] || die "no directory $TMP_PARENT"
WORK="$(mktemp -d "$TMP_PARENT/capo-scale.XXXXXX")"
FLEET_PID=""

stop_fleet() {
  if [[ -n "$FLEET_PID" ]]; then
    kill -TERM "$FLEET_PID" 2>/dev/null || true
    wait "$FLEET_PID" 2>/dev/null || true
    FLEET_PID=""
  fi
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  stop_fleet
  if ((KEEP)); then
    log "kept $WORK"
  else
    rm -rf -- "$WORK"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# start_fleet N: starts capo-simfleet with N hosts and waits for its `ready`.
start_fleet() {
  local n="$1" dir="$WORK/fleet-$1" i
  mkdir -p "$dir"
  "$SIMFLEET" --hosts "$n" --base "$BASE" --port "$PORT" --dir "$dir" \
    --connections $((2 * max_j + 64)) \
    --sync-delay "$SYNC_DELAY" --apply-delay "$APPLY_DELAY" --exec-delay "$EXEC_DELAY" \
    >"$dir/simfleet.out" 2>"$dir/simfleet.err" &
  FLEET_PID=$!
  for ((i = 0; i < 1200; i++)); do
    if grep -qx ready "$dir/simfleet.out" 2>/dev/null; then
      INVENTORY="$dir/inventory.toml"
      return 0
    fi
    if ! kill -0 "$FLEET_PID" 2>/dev/null; then
      wait "$FLEET_PID" 2>/dev/null || true
      FLEET_PID=""
      cat "$dir/simfleet.err" >&2
      die "capo-simfleet exited before it was ready"
    fi
    sleep 0.1
  done
  die "capo-simfleet not ready after 120 s (see $dir/simfleet.err)"
}

# warm_up: loads capo and the inventory once and reaches one host, unmeasured, so that the first
# measurement does not pay for a cold page cache.
warm_up() {
  "$CAPO" hosts -i "$INVENTORY" >/dev/null
  "$CAPO" exec -q -l "$(sed -n '/^\[hosts\."/{s/^\[hosts\."\(.*\)"\]$/\1/p;q;}' "$INVENTORY")" -i "$INVENTORY" \
    --runs-dir "$WORK/runs-warm-up" -- true >/dev/null 2>&1 || log "warm-up run failed (see the measurements)"
}

# ---------------------------------------------------------------- measuring
# count KEY REPORT: summary.KEY of a capo JSON report (capo.report/v1).
count() {
  if command -v jq >/dev/null 2>&1; then
    jq -r ".summary.$1 // 0" "$2"
  else
    # The report is pretty-printed with "summary" before "hosts".
    sed -n '/^  "summary": {/,/^  }/p' "$2" | grep -m1 -o "\"$1\": [0-9]*" | grep -o '[0-9]*$' || echo 0
  fi
}

# count_states REPORT: hosts of a `capo status` report whose host_state is ok or changed.
count_states() {
  if command -v jq >/dev/null 2>&1; then
    jq '[.hosts[] | select(.host_state.state == "ok" or .host_state.state == "changed")] | length' "$1"
  else
    python3 -c 'import json, sys
print(sum(1 for h in json.load(open(sys.argv[1]))["hosts"]
          if (h.get("host_state") or {}).get("state") in ("ok", "changed")))' "$1"
  fi
}

ROWS=()
VERDICTS=()

# measure N J CMD ROUND [K/S]: one run, or its shard K of S.
measure() {
  local n="$1" j="$2" cmd="$3" round="$4" shard="${5:-}" tag="$1-$2-$3-$4"
  [[ -z "$shard" ]] || tag="$tag-s${shard%/*}"
  local report="$WORK/report-$tag.json" timing="$WORK/time-$tag" rc=0
  local -a argv=("$CAPO" "$cmd" -q -j "$j" -i "$INVENTORY" --runs-dir "$WORK/runs-$tag" --report "$report")
  [[ -z "$shard" ]] || argv+=(--shard "$shard")
  [[ "$cmd" == exec ]] && argv+=(-- true)
  log "N=$n J=$j $cmd ${shard:+shard $shard }(round $round)"
  /usr/bin/time -f '%e %U %S %M' -o "$timing" "${argv[@]}" >"$WORK/stdout-$tag" 2>"$WORK/stderr-$tag" || rc=$?

  local wall user sys rss_kib
  read -r wall user sys rss_kib < <(tail -n 1 "$timing")
  local good failures="?"
  if [[ -s "$report" ]]; then
    case "$cmd" in
      exec) good=$(($(count ok "$report"))) ;;
      rollout) good=$(($(count changed "$report") + $(count unchanged "$report"))) ;;
      plan) good=$(($(count would_change "$report") + $(count unchanged "$report"))) ;;
      check) good=$(($(count ok "$report"))) ;;
      # Every status host ends `ok` (it was read); what it read is its host_state.
      status) good=$(($(count_states "$report"))) ;;
    esac
    failures=$(($(count total "$report") - good))
  else
    log "capo exited $rc without a report; its stderr:"
    tail -n 20 "$WORK/stderr-$tag" >&2
  fi
  if [[ "$failures" != 0 ]]; then
    FAILED_RUNS=$((FAILED_RUNS + 1))
    log "  $failures hosts not ok (capo exit $rc); first errors:"
    if [[ -s "$report" ]] && command -v jq >/dev/null 2>&1; then
      jq -r '[.hosts[] | select(.error != null) | "\(.name): \(.error.kind): \(.error.message)"] | .[:5][]' "$report" >&2 || true
    fi
  fi

  local row label="$cmd${shard:+ $shard}" hosts="$n"
  [[ -z "$shard" || ! -s "$report" ]] || hosts="$(count total "$report")"
  row="$(awk -v n="$hosts" -v j="$j" -v cmd="$label" -v wall="$wall" -v u="$user" -v s="$sys" \
    -v rss="$rss_kib" -v f="$failures" -v tn="$TARGET_N" -v tc="$TARGET_CPU_MS" -v tr="$TARGET_RSS_KIB" 'BEGIN {
      cpu = u + s; cpu_ms = cpu * 1000 / n; rss_host = rss / n
      verdict = (cpu_ms <= tc && rss_host <= tr && f == "0") ? "PASS" : "MISS"
      if (n < tn) verdict = verdict " (N<" tn ")"
      printf "| %6d | %5d | %-7s | %7.1f | %8.2f | %6.2f | %6.2f | %11.3f | %8.1f | %12.1f | %8s | %-14s |", \
        n, j, cmd, wall, cpu, u, s, cpu_ms, rss / 1024, rss_host, f, verdict
    }')"
  ROWS+=("$row")
  if [[ -z "$shard" ]] && ((n >= TARGET_N)); then
    VERDICTS+=("$(awk -v n="$n" -v j="$j" -v cmd="$cmd" -v u="$user" -v s="$sys" -v rss="$rss_kib" \
      -v f="$failures" -v tc="$TARGET_CPU_MS" -v tr="$TARGET_RSS_KIB" 'BEGIN {
        cpu_ms = (u + s) * 1000 / n; rss_host = rss / n
        ok = (cpu_ms <= tc && rss_host <= tr && f == "0")
        printf "%s: N=%d J=%d %s: CPU %.3f ms/host (target <= %g), peak RSS %.1f KiB/host (target <= %g), %s failures", \
          ok ? "PASS" : "MISS", n, j, cmd, cpu_ms, tc, rss_host, tr, f
      }')")
  fi
  # capo's per-host logs stay until the end: deleting tens of thousands of files right before
  # the next run makes ext4 slower at creating that run's files (it avoids reusing inodes
  # freed moments ago), which would be charged to capo.
}

# merge_shards N J CMD ROUND: merges the S shards' reports of a run, measured, and checks the
# merged report against the unsharded run's: the same hosts in the same order, with the same
# statuses and errors, and the same summary.
merge_shards() {
  local n="$1" j="$2" cmd="$3" round="$4" tag="$1-$2-$3-$4"
  local merged="$WORK/merged-$tag.json" timing="$WORK/time-merge-$tag" rc=0 k
  local -a parts=()
  for ((k = 1; k <= SHARDS; k++)); do parts+=("$WORK/report-$tag-s$k.json"); done
  log "N=$n J=$j $cmd: merging $SHARDS shards"
  /usr/bin/time -f '%e %U %S %M' -o "$timing" "$CAPO" report merge "${parts[@]}" \
    --report "$merged" --junit "$WORK/merged-$tag.xml" --summary-md "$WORK/merged-$tag.md" \
    --format json >/dev/null 2>"$WORK/stderr-merge-$tag" || rc=$?
  local wall user sys rss_kib differs=0
  read -r wall user sys rss_kib < <(tail -n 1 "$timing")
  python3 - "$WORK/report-$tag.json" "$merged" <<'PY' >&2 || differs=1
import json, sys
def essence(path):
    r = json.load(open(path))
    return [(h["name"], h["status"], h.get("error")) for h in r["hosts"]], r["summary"]
whole, merged = essence(sys.argv[1]), essence(sys.argv[2])
if whole != merged:
    print("scale.sh: the merged report differs from the unsharded run's", file=sys.stderr)
    sys.exit(1)
PY
  if ((differs)); then
    FAILED_RUNS=$((FAILED_RUNS + 1))
    tail -n 5 "$WORK/stderr-merge-$tag" >&2
  fi
  ROWS+=("$(awk -v n="$n" -v cmd="merge $SHARDS" -v wall="$wall" -v u="$user" -v s="$sys" \
    -v rss="$rss_kib" -v f="$differs" -v size="$(stat -c %s "$merged" 2>/dev/null || echo 0)" 'BEGIN {
      cpu = u + s
      printf "| %6d | %5s | %-7s | %7.1f | %8.2f | %6.2f | %6.2f | %11.3f | %8.1f | %12.1f | %8s | %-14s |", \
        n, "-", cmd, wall, cpu, u, s, cpu * 1000 / n, rss / 1024, rss / n, f, sprintf("%.1f MB JSON", size / 1e6)
    }')")
}

for n in "${HOSTS[@]}"; do
  log "starting a simulated fleet of $n hosts"
  start_fleet "$n"
  warm_up
  for j in "${JOBS[@]}"; do
    for ((r = 1; r <= ROUNDS; r++)); do
      for cmd in "${CMDS[@]}"; do
        measure "$n" "$j" "$cmd" "$r"
        if ((SHARDS > 0)); then
          for ((k = 1; k <= SHARDS; k++)); do
            measure "$n" "$j" "$cmd" "$r" "$k/$SHARDS"
          done
          merge_shards "$n" "$j" "$cmd" "$r"
        fi
      done
    done
  done
  stop_fleet
done

# ---------------------------------------------------------------- the table
table() {
  echo "## capo controller cost at scale ($(date -u +%Y-%m-%dT%H:%MZ))"
  echo
  echo "capo $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet HEAD 2>/dev/null || echo ' (modified)'); $(nproc) cores, $(uname -r);" \
    "simulated fleet: sync $SYNC_DELAY, apply $APPLY_DELAY, exec $EXEC_DELAY; exec runs \`true\`;" \
    "runs dir on $(df --output=fstype "$WORK" 2>/dev/null | tail -n 1 || echo '?') ($TMP_PARENT)."
  echo
  printf '| %6s | %5s | %-7s | %7s | %8s | %6s | %6s | %11s | %8s | %12s | %8s | %-14s |\n' \
    N J command "wall s" "CPU s" "user s" "sys s" "CPU/host ms" "RSS MiB" "RSS/host KiB" failures target
  echo "|-------:|------:|---------|--------:|---------:|-------:|-------:|------------:|---------:|-------------:|---------:|----------------|"
  printf '%s\n' "${ROWS[@]}"
  echo
  echo "Targets at N=$TARGET_N: controller CPU (user+sys) <= $TARGET_CPU_MS ms per host, peak RSS <= $TARGET_RSS_KIB KiB per host, no failures."
  if ((${#VERDICTS[@]})); then
    printf -- '- %s\n' "${VERDICTS[@]}"
  else
    echo "- not judged: no run had N >= $TARGET_N"
  fi
}

table
[[ -z "$OUT" ]] || table >"$OUT"
# Missed targets are figures to report; hosts that did not end ok mean the run is broken.
((FAILED_RUNS == 0)) || die "$FAILED_RUNS run(s) had hosts that did not end ok"
