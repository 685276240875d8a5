#!/usr/bin/env bash
# bench/bastion.sh -- `capo exec -- true` on N real hosts reached directly, against the same
# on N real hosts reached through one bastion (ProxyJump, `jump` in the inventory), on the
# same machine, interleaved round by round.
#
# Two fleets of the test harness (tests/fleet/fleet.sh): one ordinary, one whose hosts live in
# a network namespace of their own that only its bastion reaches (`up --bastion`). Every round
# runs capo on the direct fleet, then on the bastion fleet (the other way round every other
# round), so machine drift hits both alike. The ratio is bastion wall over direct wall, per
# round; the table gives its median and range. Also counts the bastion's logins: capo opens
# one bastion session per run however many targets are behind it.
#
# Needs root (namespaces, veth). Run from any directory.
set -euo pipefail

SELF="$(readlink -f "${BASH_SOURCE[0]}")"
ROOT="$(dirname "$(dirname "$SELF")")"
FLEET_SH="$ROOT/tests/fleet/fleet.sh"

usage() {
  cat <<'USAGE'
usage: bench/bastion.sh [--hosts N] [--rounds R] [--jobs J] [--no-build]

  --hosts N     hosts in each fleet                  (default 200)
  --rounds R    rounds; each runs both once          (default 5)
  --jobs J      capo's concurrency (-j)              (default 50)
  --no-build    use target/release/capo as it is
Environment: CAPO=/path/to/capo uses that binary and skips the build.
USAGE
}

say() { echo "bastion.sh: $*" >&2; }
die() { say "$*"; exit 1; }

HOSTS=200 ROUNDS=5 JOBS=50 BUILD=1
while (($#)); do
  case "$1" in
    --hosts) HOSTS="${2:?}"; shift 2 ;;
    --rounds) ROUNDS="${2:?}"; shift 2 ;;
    --jobs) JOBS="${2:?}"; shift 2 ;;
    --no-build) BUILD=0; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
  esac
done
[[ $(id -u) == 0 ]] || die "needs root (the fleet harness uses namespaces)"

if [[ -n "${CAPO:-}" ]]; then
  :
elif ((BUILD)); then
  say "building capo (release)"
  (cd "$ROOT" && cargo build --release --quiet --bin capo)
  CAPO="$ROOT/target/release/capo"
else
  CAPO="$ROOT/target/release/capo"
fi
[[ -x "$CAPO" ]] || die "no capo binary at $CAPO"

WORK="$(mktemp -d /tmp/capo-bench-bastion.XXXXXX)"
DIRECT="$WORK/direct" VIA="$WORK/via"
cleanup() {
  bash "$FLEET_SH" down --dir "$DIRECT" >/dev/null 2>&1 || true
  bash "$FLEET_SH" down --dir "$VIA" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

say "bringing up $HOSTS direct hosts and $HOSTS hosts behind one bastion"
bash "$FLEET_SH" up "$HOSTS" --dir "$DIRECT" >/dev/null
bash "$FLEET_SH" up "$HOSTS" --dir "$VIA" --bastion >/dev/null

logins() { grep -c "Accepted publickey for root" "$VIA/hosts/bastion/sshd.log" 2>/dev/null || true; }

# run DIR: wall seconds of one `capo exec -- true`; fails unless every host is ok.
run() {
  local dir="$1" start end
  start=$(date +%s.%N)
  (cd "$dir" && "$CAPO" exec -i inventory.toml -j "$JOBS" -q --runs-dir "$WORK/runs" \
    --report "$WORK/last.json" -- true >/dev/null 2>"$WORK/last.err") ||
    die "capo failed in $dir: $(tail -n 3 "$WORK/last.err")"
  end=$(date +%s.%N)
  grep -q "\"ok\": $HOSTS," "$WORK/last.json" || die "not every host ok in $dir"
  awk -v a="$start" -v b="$end" 'BEGIN { printf "%.3f\n", b - a }'
}

# warm-up: every host's key exchange once, page cache
run "$DIRECT" >/dev/null
run "$VIA" >/dev/null

declare -a D V R S
for ((r = 0; r < ROUNDS; r++)); do
  before=$(logins)
  if ((r % 2 == 0)); then
    d=$(run "$DIRECT"); v=$(run "$VIA")
  else
    v=$(run "$VIA"); d=$(run "$DIRECT")
  fi
  sessions=$(($(logins) - before))
  D+=("$d") V+=("$v") S+=("$sessions")
  R+=("$(awk -v v="$v" -v d="$d" 'BEGIN { printf "%.3f\n", v / d }')")
  printf 'bastion.sh: round %d/%d  direct %.2f s  via bastion %.2f s  ratio %.2fx  bastion logins %d\n' \
    $((r + 1)) "$ROUNDS" "$d" "$v" "${R[-1]}" "$sessions" >&2
done

stats() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.2f (%.2f..%.2f)", m, a[1], a[NR]}'; }
echo
echo "capo exec -j $JOBS -- true, $HOSTS hosts, $ROUNDS rounds, $(date -u +%Y-%m-%d), capo $("$CAPO" --version | cut -d' ' -f2)"
echo
echo "| path | wall s: median (min..max) | bastion/direct, per round: median (min..max) | bastion logins per run |"
echo "|---|--:|--:|--:|"
echo "| direct | $(stats "${D[@]}") | - | - |"
echo "| through one bastion | $(stats "${V[@]}") | $(stats "${R[@]}")x | $(printf '%s\n' "${S[@]}" | sort -u | paste -sd,) |"
