#!/usr/bin/env bash
# html.sh -- the HTML report at scale: a rollout of N simulated hosts (capo-simfleet) with
# --html, then how big the page is, how long `capo report html` takes to render it, and how
# long headless Chromium, offline in a network namespace of its own, takes to load and draw
# it. See docs/performance.md, section "The HTML report at 10,000 hosts".
set -euo pipefail

SELF="$(readlink -f "${BASH_SOURCE[0]}")"
ROOT="$(dirname "$(dirname "$SELF")")"

HOSTS=10000
JOBS=500
ROUNDS=3
FAIL_EVERY=97
SYNC_DELAY=50ms
APPLY_DELAY=1s
BASE=127.1.0.1
PORT=2222
BUILD=1
OUT=""
KEEP=0
TMP_PARENT="${TMPDIR:-/tmp}"
# The page must stay below this (bytes); the unit test holds a synthesized 10,000-host page to
# the same bound.
MAX_BYTES=$((4 * 1024 * 1024))

die() { echo "html.sh: $*" >&2; exit 1; }
log() { echo "html.sh: $*" >&2; }

usage() {
  cat <<'EOF'
usage: bench/html.sh [OPTIONS]
Runs `capo rollout --html` against a simulated fleet of N hosts (every Fth failing), then
renders the page again with `capo report html` and loads it in headless Chromium (offline:
`unshare -n`), R times each, and prints the page size and both times.

  --hosts N          fleet size (default 10000)
  --jobs J           capo -j (default 500)
  --rounds R         renders and browser loads measured (default 3; the best is shown too)
  --fail-every F     every Fth host fails its Puppet run (default 97; 0: none)
  --sync-delay D     simulated `git pull` time (default 50ms)
  --apply-delay D    simulated `puppet apply` time (default 1s)
  --base ADDR        first host's address, in 127.0.0.0/8 (default 127.1.0.1)
  --port P           port every simulated host listens on (default 2222)
  --no-build         use the binaries already in target/release (or in $BIN_DIR)
  --out FILE         also write the table (Markdown) to FILE
  --tmp DIR          where the temporary directory goes (default $TMPDIR or /tmp)
  --keep             keep the temporary directory (report, page, screenshot, run logs)
  -h, --help         this text
EOF
}

while (($#)); do
  case "$1" in
    --hosts) HOSTS="${2:?--hosts needs a value}"; shift 2 ;;
    --jobs) JOBS="${2:?--jobs needs a value}"; shift 2 ;;
    --rounds) ROUNDS="${2:?--rounds needs a value}"; shift 2 ;;
    --fail-every) FAIL_EVERY="${2:?--fail-every needs a value}"; shift 2 ;;
    --sync-delay) SYNC_DELAY="${2:?--sync-delay needs a value}"; shift 2 ;;
    --apply-delay) APPLY_DELAY="${2:?--apply-delay needs a value}"; shift 2 ;;
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
for v in "$HOSTS" "$JOBS" "$ROUNDS"; do
  [[ "$v" =~ ^[1-9][0-9]*$ ]] || die "not a positive number: '$v'"
done
[[ "$FAIL_EVERY" =~ ^[0-9]+$ ]] || die "not a number: '$FAIL_EVERY'"
[[ -z "$OUT" ]] || OUT="$(readlink -f "$OUT")"

command -v chromium >/dev/null || die "chromium is missing (apt-get install chromium; scripts/install-deps.sh)"
command -v unshare >/dev/null || die "unshare is missing (util-linux)"

TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
[[ "$TARGET_DIR" == /* ]] || TARGET_DIR="$ROOT/$TARGET_DIR"
if ((BUILD)); then
  log "building capo and capo-simfleet (release)"
  (cd "$ROOT" && cargo build --release --quiet -p capo -p capo-simfleet)
fi
BIN_DIR="${BIN_DIR:-$TARGET_DIR/release}"
CAPO="$BIN_DIR/capo"
SIMFLEET="$BIN_DIR/capo-simfleet"
[[ -x "$CAPO" && -x "$SIMFLEET" ]] || die "no $CAPO or $SIMFLEET (run without --no-build)"

# One listener per host in the fleet, one socket per host in flight in capo.
ulimit -Hn 1048576 2>/dev/null || true
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
need=$((HOSTS + 2 * JOBS + 256))
have="$(ulimit -n)"
if [[ "$have" != unlimited ]] && ((have < need)); then
  die "open files limit is $have, need about $need: run as root, or raise it first"
fi

[[ -d "$TMP_PARENT" ]] || die "no directory $TMP_PARENT"
WORK="$(mktemp -d "$TMP_PARENT/capo-html.XXXXXX")"
FLEET_PID=""
# shellcheck disable=SC2317 # run by the EXIT trap
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [[ -n "$FLEET_PID" ]]; then
    kill -TERM "$FLEET_PID" 2>/dev/null || true
    wait "$FLEET_PID" 2>/dev/null || true
  fi
  if ((KEEP)); then log "kept $WORK"; else rm -rf -- "$WORK"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# ---------------------------------------------------------------- the run
mkdir -p "$WORK/fleet"
"$SIMFLEET" --hosts "$HOSTS" --base "$BASE" --port "$PORT" --dir "$WORK/fleet" \
  --connections $((2 * JOBS + 64)) --fail-every "$FAIL_EVERY" \
  --sync-delay "$SYNC_DELAY" --apply-delay "$APPLY_DELAY" \
  >"$WORK/fleet/simfleet.out" 2>"$WORK/fleet/simfleet.err" &
FLEET_PID=$!
for ((i = 0; i < 1200; i++)); do
  grep -qx ready "$WORK/fleet/simfleet.out" 2>/dev/null && break
  kill -0 "$FLEET_PID" 2>/dev/null || { cat "$WORK/fleet/simfleet.err" >&2; die "capo-simfleet exited"; }
  sleep 0.1
done
grep -qx ready "$WORK/fleet/simfleet.out" || die "capo-simfleet not ready after 120 s"

log "rollout of $HOSTS simulated hosts (-j $JOBS) with --html"
t0=$(now_ms)
rc=0
"$CAPO" rollout -q -i "$WORK/fleet/inventory.toml" -j "$JOBS" --runs-dir "$WORK/runs" \
  --report "$WORK/report.json" --html "$WORK/rollout.html" >"$WORK/rollout.out" 2>&1 || rc=$?
rollout_ms=$(($(now_ms) - t0))
# 1 when some hosts failed, as asked with --fail-every.
((rc == 0 || rc == 1)) || { cat "$WORK/rollout.out" >&2; die "capo rollout exited $rc"; }
[[ -s "$WORK/rollout.html" ]] || die "no page written by --html"
summary="$(grep -m1 ' hosts: ' "$WORK/rollout.out" || true)"
kill -TERM "$FLEET_PID" 2>/dev/null || true
wait "$FLEET_PID" 2>/dev/null || true
FLEET_PID=""

# ---------------------------------------------------------------- render
renders=()
for ((r = 0; r < ROUNDS; r++)); do
  t0=$(now_ms)
  "$CAPO" report html "$WORK/report.json" >"$WORK/page.html"
  renders+=($(($(now_ms) - t0)))
done
cmp -s "$WORK/page.html" "$WORK/rollout.html" || die "capo report html differs from --html's page"
bytes=$(stat -c %s "$WORK/page.html")
((bytes < MAX_BYTES)) || die "the page is $bytes bytes, over the bound of $MAX_BYTES"

# ---------------------------------------------------------------- load in Chromium
# chromium_run ARGS... URL: headless, offline (its own network namespace), own profile.
chromium_run() {
  local profile
  profile="$(mktemp -d "$WORK/profile.XXXXXX")"
  timeout --kill-after=5 120 unshare -n chromium --headless --no-sandbox --disable-gpu \
    --disable-background-networking --disable-component-update --disable-sync --no-first-run \
    --no-default-browser-check --force-color-profile=srgb --hide-scrollbars \
    --user-data-dir="$profile" "$@" 2>>"$WORK/chromium.err"
  rm -rf -- "$profile"
}
printf '<!DOCTYPE html><html><body><p>empty</p></body></html>\n' >"$WORK/empty.html"
empties=() loads=() drawn=()
for ((r = 0; r < ROUNDS; r++)); do
  t0=$(now_ms)
  chromium_run --dump-dom "file://$WORK/empty.html" >/dev/null
  empties+=($(($(now_ms) - t0)))
  t0=$(now_ms)
  chromium_run --dump-dom "file://$WORK/page.html" >"$WORK/dom.html"
  loads+=($(($(now_ms) - t0)))
  grep -q "data-drawn=\"$HOSTS\"" "$WORK/dom.html" || die "the page's script did not draw $HOSTS hosts (see $WORK/dom.html)"
  drawn+=("$(grep -o 'data-drawn-ms="[0-9]*"' "$WORK/dom.html" | grep -o '[0-9]*')")
done
chromium_run --screenshot="$WORK/page.png" --window-size=1280,2400 "file://$WORK/page.html" >/dev/null

# ---------------------------------------------------------------- table
# stats V...: "median (best-worst)".
stats() {
  local sorted
  mapfile -t sorted < <(printf '%s\n' "$@" | sort -n)
  echo "${sorted[$(((${#sorted[@]} - 1) / 2))]} (${sorted[0]}-${sorted[-1]})"
}
table="$(
  cat <<EOF
| hosts | page | per host | \`capo report html\` | Chromium: load and draw (page's own clock) | Chromium: whole run | Chromium: empty page |
|---:|---:|---:|---:|---:|---:|---:|
| $HOSTS | $((bytes / 1024)) KiB | $((bytes / HOSTS)) B | $(stats "${renders[@]}") ms | $(stats "${drawn[@]}") ms | $(stats "${loads[@]}") ms | $(stats "${empties[@]}") ms |
EOF
)"
echo "$summary"
echo "rollout with --html: ${rollout_ms} ms; $ROUNDS rounds each, median (best-worst):"
echo
echo "$table"
[[ -z "$OUT" ]] || echo "$table" >"$OUT"
((KEEP)) && log "screenshot: $WORK/page.png"
exit 0
