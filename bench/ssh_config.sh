#!/usr/bin/env bash
# ssh_config.sh -- what reading a large OpenSSH client config costs capo: an ssh_config of
# 1,000 Host blocks (exact aliases and wildcard patterns, HostName, User, Port, IdentityFile,
# ProxyJump for some, a few wildcard blocks, an Include) for an inventory of 10,000 hosts.
# Measures `capo hosts` (no connection) with the config, with none, and with every value in
# the inventory instead; then `capo exec -- true` against a simulated fleet (capo-simfleet)
# with the config and with the inventory alone. See bench/README.md, "ssh_config.sh".
set -euo pipefail

SELF="$(readlink -f "${BASH_SOURCE[0]}")"
ROOT="$(dirname "$(dirname "$SELF")")"

HOSTS=10000
BLOCKS=1000
ROUNDS=3
JOBS=1000
EXEC=1
SCOPED=0
BUILD=1
OUT=""
KEEP=0
BASE=127.2.0.1
PORT=2223
TMP_PARENT="${TMPDIR:-/tmp}"

die() { echo "ssh_config.sh: $*" >&2; exit 1; }
log() { echo "ssh_config.sh: $*" >&2; }

usage() {
  cat <<'EOF'
usage: bench/ssh_config.sh [OPTIONS]
Writes an ssh_config of B Host blocks for an inventory of N hosts (N/B hosts per block) and
measures, under /usr/bin/time, R rounds each (interleaved):
  capo hosts   with ssh_config / ssh_config = false / every value in the inventory
  capo exec -- true on the directly reached hosts, against a simulated fleet (one address per
               block): with ssh_config / every value in the inventory
and prints a Markdown table (medians over the rounds).

  --hosts N        inventory hosts (default 10000; a multiple of B, at most 10 per block)
  --blocks B       Host blocks for the inventory's hosts (default 1000; a multiple of 10)
  --rounds R       runs of each measurement (default 3)
  --jobs J         capo exec -j (default 1000)
  --no-exec        only `capo hosts` (no simulated fleet)
  --scoped-include put the Include inside a `Host edge*` block (capo then asks the config
                   through ssh2-config's own query, the slow path)
  --base ADDR      the simulated fleet's first address, in 127.0.0.0/8 (default 127.2.0.1)
  --port P         its port (default 2223)
  --no-build       use the binaries already in target/release (or in $BIN_DIR)
  --out FILE       also write the table (Markdown) to FILE
  --tmp DIR        where the temporary directory goes (default $TMPDIR or /tmp)
  --keep           keep the temporary directory (config, inventories, reports, outputs)
  -h, --help       this text
EOF
}

while (($#)); do
  case "$1" in
    --hosts) HOSTS="${2:?--hosts needs a value}"; shift 2 ;;
    --blocks) BLOCKS="${2:?--blocks needs a value}"; shift 2 ;;
    --rounds) ROUNDS="${2:?--rounds needs a value}"; shift 2 ;;
    --jobs) JOBS="${2:?--jobs needs a value}"; shift 2 ;;
    --no-exec) EXEC=0; shift ;;
    --scoped-include) SCOPED=1; shift ;;
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

for v in "$HOSTS" "$BLOCKS" "$ROUNDS" "$JOBS" "$PORT"; do
  [[ "$v" =~ ^[1-9][0-9]*$ ]] || die "not a positive number: '$v'"
done
((BLOCKS % 10 == 0)) || die "--blocks must be a multiple of 10 (every 10th block is a ProxyJump block)"
((HOSTS % BLOCKS == 0)) || die "--hosts must be a multiple of --blocks"
PER=$((HOSTS / BLOCKS))
((PER <= 10)) || die "at most 10 hosts per block (--hosts <= 10 x --blocks)"
((BLOCKS <= 9999)) || die "at most 9999 blocks"
[[ -z "$OUT" ]] || OUT="$(readlink -f "$OUT")"

# ---------------------------------------------------------------- tools and binaries
if [[ ! -x /usr/bin/time ]]; then
  ((EUID == 0)) || die "/usr/bin/time is missing; install the Debian package 'time'"
  log "installing the 'time' package"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null ||
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null; } ||
    die "could not install the 'time' package"
fi
command -v jq >/dev/null || die "jq is missing (Debian package 'jq')"

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
[[ -x "$CAPO" ]] || die "no $CAPO (run without --no-build)"
((EXEC == 0)) || [[ -x "$SIMFLEET" ]] || die "no $SIMFLEET (run without --no-build)"

# The fleet: one listener per block and one socket per connection; capo: one socket per host
# in flight and its log files.
ulimit -Hn 1048576 2>/dev/null || true
ulimit -n "$(ulimit -Hn)" 2>/dev/null || ulimit -n 1048576 2>/dev/null || true
need=$((BLOCKS + 4 * JOBS + 256))
have="$(ulimit -n)"
if ((EXEC)) && [[ "$have" != unlimited ]] && ((have < need)); then
  die "open files limit is $have, need about $need: run as root, or raise it first (ulimit -Hn 1048576; ulimit -n 1048576)"
fi

[[ -d "$TMP_PARENT" ]] || die "no directory $TMP_PARENT"
WORK="$(mktemp -d "$TMP_PARENT/capo-ssh-config.XXXXXX")"
FLEET_PID=""

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

# ---------------------------------------------------------------- the simulated fleet
# One simulated host per block: the block's HostName. It writes the client key and the
# known_hosts capo checks host keys against (strict).
FLEET="$WORK/fleet"
mkdir -p "$FLEET"
if ((EXEC)); then
  log "starting a simulated fleet of $BLOCKS hosts (one per Host block)"
  "$SIMFLEET" --hosts "$BLOCKS" --base "$BASE" --port "$PORT" --dir "$FLEET" \
    --connections $((2 * JOBS + 64)) --exec-delay 0ms \
    >"$FLEET/simfleet.out" 2>"$FLEET/simfleet.err" &
  FLEET_PID=$!
  for ((i = 0; i < 600; i++)); do
    grep -qx ready "$FLEET/simfleet.out" 2>/dev/null && break
    if ! kill -0 "$FLEET_PID" 2>/dev/null; then
      cat "$FLEET/simfleet.err" >&2
      FLEET_PID=""
      die "capo-simfleet exited before it was ready"
    fi
    sleep 0.1
  done
  grep -qx ready "$FLEET/simfleet.out" || die "capo-simfleet not ready after 60 s"
  # Block b's address: the fleet's host b+1, in its inventory's order.
  sed -n 's/^address = "\(.*\)"$/\1/p' "$FLEET/inventory.toml" >"$WORK/addresses"
else
  : >"$FLEET/client_ed25519"
  : >"$FLEET/known_hosts"
  awk -v n="$BLOCKS" 'BEGIN { for (b = 0; b < n; b++) printf "127.2.%d.%d\n", int(b / 254), b % 254 + 1 }' >"$WORK/addresses"
fi
(($(wc -l <"$WORK/addresses") == BLOCKS)) || die "expected $BLOCKS addresses from the fleet"

# ---------------------------------------------------------------- the config and inventories
# Hosts: block b holds PER hosts named nodeBBBB-J (edgeBBBB-J for every 10th block, b % 10 == 9,
# whose hosts are reached through a bastion). Blocks:
#   - b % 4 == 0: one wildcard pattern (`Host node0012-*`), else the block's names as exact
#     aliases (`Host node0013-0 node0013-1 ...`);
#   - each: HostName (its simulated host), User, Port, IdentityFile; edge blocks a ProxyJump;
#   - the edge blocks and the bastions' own blocks are in an included file;
#   - then a few wildcard blocks: one that applies to nothing, a negated one
#     (`Host node* !node0000-*`), and `Host *` with the known_hosts file and timeouts.
log "writing an ssh_config of $BLOCKS Host blocks for $HOSTS hosts"
mkdir -p "$WORK/ssh_config.d"
awk -v per="$PER" -v port="$PORT" -v key="$FLEET/client_ed25519" -v kh="$FLEET/known_hosts" \
  -v scoped="$SCOPED" -v main="$WORK/ssh_config" -v inc="$WORK/ssh_config.d/edge.conf" -v incdir="$WORK/ssh_config.d" '
  {
    b = NR - 1; addr = $1
    edge = (b % 10 == 9)
    prefix = sprintf("%s%04d-", edge ? "edge" : "node", b)
    if (b % 4 == 0) pattern = prefix "*"
    else { pattern = ""; for (j = 0; j < per; j++) pattern = pattern (j ? " " : "") prefix j }
    out = edge ? inc : main
    if (edge) { hostname = sprintf("10.%d.%d.%d", 1 + int(b / 65536) % 200, int(b / 256) % 256, b % 256); p = 22 }
    else { hostname = addr; p = port }
    printf "Host %s\n  HostName %s\n  User %s\n  Port %d\n  IdentityFile %s\n", pattern, hostname, "root", p, key >out
    if (edge) printf "  ProxyJump jump@bastion%d:2222\n", b % 3 + 1 >out
    printf "\n" >out
  }
  BEGIN {
    printf "# capo bench/ssh_config.sh: Host blocks for %s\n\n%sInclude %s/*.conf\n\n", "the benchmark inventory", (scoped ? "Host edge*\n  " : ""), incdir >main
    printf "# Bastions and the hosts behind them.\nHost bastion1 bastion2 bastion3\n  HostName 10.255.0.1\n  User jump\n\n" >inc
  }
  END {
    printf "Host *.corp.example.com *.lab\n  User admin\n  ServerAliveInterval 60\n\n" >main
    printf "Host node* !node0000-*\n  ServerAliveInterval 20\n\n" >main
    printf "Host *\n  UserKnownHostsFile %s\n  StrictHostKeyChecking yes\n  IdentitiesOnly yes\n  ConnectTimeout 10\n  ServerAliveInterval 30\n", kh >main
  }' "$WORK/addresses"

# The inventory: the hosts by name only (ranges), the rest from ssh_config.
hosts_list() { # hosts_list node|edge: the inventory entries (ranges) of those blocks
  awk -v n="$BLOCKS" -v per="$PER" -v kind="$1" 'BEGIN {
    for (b = 0; b < n; b++) if ((b % 10 == 9) == (kind == "edge"))
      printf "  \"%s%04d-[0-%d]\",\n", kind, b, per - 1
  }'
}
{
  echo "# bench/ssh_config.sh: $HOSTS hosts, everything but the names from ssh_config."
  echo "[defaults]"
  echo "ssh_config = \"$WORK/ssh_config\""
  echo "connect_timeout = \"30s\""
  echo
  echo "[groups.node]"
  echo "hosts = ["
  hosts_list node
  echo "]"
  echo
  echo "[groups.edge]"
  echo "hosts = ["
  hosts_list edge
  echo "]"
} >"$WORK/config.toml"
# The same without the config: what the inventory itself costs.
sed "s|^ssh_config = .*|ssh_config = false|" "$WORK/config.toml" >"$WORK/none.toml"

# Every value in the inventory instead: the settings of `Host *` in [defaults], the negated
# block's in the node group, each host's address and port (and jump) in its own table.
{
  echo "# bench/ssh_config.sh: $HOSTS hosts, every value in the inventory."
  echo "[defaults]"
  echo "ssh_config = false"
  echo "user = \"root\""
  echo "identity_files = [\"$FLEET/client_ed25519\"]"
  echo "known_hosts = \"$FLEET/known_hosts\""
  echo "host_key_check = \"strict\""
  echo "connect_timeout = \"30s\""
  echo "keepalive_interval = \"30s\""
  echo "identities_only = true"
  echo
  echo "[groups.node]"
  echo "keepalive_interval = \"20s\""
  echo "hosts = ["
  hosts_list node
  echo "]"
  echo
  echo "[groups.edge]"
  echo "hosts = ["
  hosts_list edge
  echo "]"
  awk -v per="$PER" -v port="$PORT" '{
    b = NR - 1; edge = (b % 10 == 9)
    for (j = 0; j < per; j++) {
      if (edge) printf "\n[hosts.\"edge%04d-%d\"]\naddress = \"10.%d.%d.%d\"\nport = 22\njump = \"jump@bastion%d:2222\"\n", b, j, 1 + int(b / 65536) % 200, int(b / 256) % 256, b % 256, b % 3 + 1
      else printf "\n[hosts.\"node%04d-%d\"]\naddress = \"%s\"\nport = %d\n%s", b, j, $1, port, (b == 0 ? "keepalive_interval = \"30s\"\n" : "")
    }
  }' "$WORK/addresses"
} >"$WORK/inventory.toml"

# ---------------------------------------------------------------- sanity: the config resolves
"$CAPO" hosts -i "$WORK/config.toml" --format json >"$WORK/hosts-config.json" 2>"$WORK/hosts-config.err" ||
  { cat "$WORK/hosts-config.err" >&2; die "capo hosts refused the config"; }
"$CAPO" hosts -i "$WORK/inventory.toml" --format json >"$WORK/hosts-inventory.json" 2>"$WORK/hosts-inventory.err" ||
  { cat "$WORK/hosts-inventory.err" >&2; die "capo hosts refused the inventory"; }
# Both ways must say the same about every host: address, port, user (what `capo hosts` shows).
essence='[.[] | [.name, .address, .port, .user]] | sort'
if ! diff <(jq -c "$essence" "$WORK/hosts-config.json") <(jq -c "$essence" "$WORK/hosts-inventory.json") >"$WORK/hosts.diff"; then
  head -n 20 "$WORK/hosts.diff" >&2
  die "ssh_config and the inventory resolve the hosts differently (see above)"
fi
total="$(jq 'length' "$WORK/hosts-config.json")"
((total == HOSTS)) || die "capo hosts lists $total hosts, not $HOSTS"
NODES="$(jq '[.[] | select(.name | startswith("node"))] | length' "$WORK/hosts-config.json")"

# ---------------------------------------------------------------- measuring
# run LABEL ARGV...: one run under /usr/bin/time; appends "wall cpu rss_kib" to $WORK/t-LABEL.
run() {
  local label="$1" rc=0
  shift
  /usr/bin/time -f '%e %U %S %M' -o "$WORK/time" "$@" >"$WORK/out-$label" 2>"$WORK/err-$label" || rc=$?
  local wall user sys rss
  read -r wall user sys rss < <(tail -n 1 "$WORK/time")
  echo "$wall $(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%.2f", u + s }') $rss" >>"$WORK/t-$label"
  return "$rc"
}

FAILED=0
# Warm-up, unmeasured: the binary and the files in the page cache.
"$CAPO" hosts -i "$WORK/none.toml" >/dev/null
for ((r = 1; r <= ROUNDS; r++)); do
  log "capo hosts, round $r of $ROUNDS"
  run hosts-config "$CAPO" hosts -i "$WORK/config.toml" || FAILED=$((FAILED + 1))
  run hosts-none "$CAPO" hosts -i "$WORK/none.toml" || FAILED=$((FAILED + 1))
  run hosts-inventory "$CAPO" hosts -i "$WORK/inventory.toml" || FAILED=$((FAILED + 1))
done

# exec_run LABEL INVENTORY ROUND: `capo exec -- true` on the node hosts; checks every one is ok.
exec_run() {
  local label="$1" inv="$2" r="$3" ok
  local report="$WORK/report-$label-$r.json"
  run "$label" "$CAPO" exec -q -j "$JOBS" -l 'node*' -i "$inv" --runs-dir "$WORK/runs-$label-$r" \
    --report "$report" -- true || true
  ok="$(jq -r '.summary.ok // 0' "$report" 2>/dev/null || echo 0)"
  if [[ "$ok" != "$NODES" ]]; then
    FAILED=$((FAILED + 1))
    log "$label round $r: $ok of $NODES hosts ok; first errors:"
    jq -r '[.hosts[] | select(.error != null) | "\(.name): \(.error.kind): \(.error.message)"] | .[:5][]' "$report" >&2 2>/dev/null ||
      tail -n 5 "$WORK/err-$label" >&2
  fi
}
if ((EXEC)); then
  "$CAPO" exec -q -l node0001-0 -i "$WORK/config.toml" --runs-dir "$WORK/runs-warm-up" -- true >/dev/null 2>&1 ||
    log "warm-up exec failed (see the measurements)"
  for ((r = 1; r <= ROUNDS; r++)); do
    log "capo exec -- true on $NODES hosts, round $r of $ROUNDS"
    # Alternate which goes first, so drift of the machine hits both alike.
    if ((r % 2)); then
      exec_run exec-config "$WORK/config.toml" "$r"
      exec_run exec-inventory "$WORK/inventory.toml" "$r"
    else
      exec_run exec-inventory "$WORK/inventory.toml" "$r"
      exec_run exec-config "$WORK/config.toml" "$r"
    fi
  done
fi

# ---------------------------------------------------------------- the table
# stats LABEL: "wall_median wall_min wall_max cpu_median rss_median_kib" over the rounds.
stats() {
  awk '{ w[NR] = $1; c[NR] = $2; m[NR] = $3 }
    function median(a, n,   i, j, t) {
      for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
      return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
    }
    END {
      n = NR; min = w[1]; max = w[1]
      for (i = 1; i <= n; i++) { if (w[i] < min) min = w[i]; if (w[i] > max) max = w[i] }
      printf "%s %s %s %s %s\n", median(w, n), min, max, median(c, n), median(m, n)
    }' "$WORK/t-$1"
}

row() { # row WHAT INVENTORY HOSTS LABEL [BASE_LABEL BASE_NAME]
  local what="$1" inv="$2" n="$3" label="$4" base="${5:-}" base_name="${6:-}"
  local wall min max cpu rss bcpu extra="-"
  read -r wall min max cpu rss < <(stats "$label")
  if [[ -n "$base" ]]; then
    read -r _ _ _ bcpu _ < <(stats "$base")
    extra="$(awk -v c="$cpu" -v b="$bcpu" -v n="$n" -v name="$base_name" 'BEGIN { printf "%+.2f s, %+.1f µs/host vs %s", c - b, (c - b) * 1e6 / n, name }')"
  fi
  awk -v what="$what" -v inv="$inv" -v n="$n" -v wall="$wall" -v min="$min" -v max="$max" \
    -v cpu="$cpu" -v rss="$rss" -v extra="$extra" 'BEGIN {
      printf "| %-17s | %-25s | %6d | %5.2f (%.2f-%.2f) | %6.2f | %11.1f | %7.1f | %-30s |\n", \
        what, inv, n, wall, min, max, cpu, cpu * 1e6 / n, rss / 1024, extra
    }'
}

table() {
  local scoped_note="" exec_note=""
  # shellcheck disable=SC2016 # backquotes for Markdown
  ((SCOPED == 0)) || scoped_note='; the Include inside a `Host edge*` block'
  ((EXEC == 0)) || exec_note="; exec: \`-j $JOBS\`, the $NODES directly reached hosts, $BLOCKS simulated hosts (one per block)"
  echo "## ssh_config at scale ($(date -u +%Y-%m-%dT%H:%MZ))"
  echo
  echo "capo $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet HEAD 2>/dev/null || echo ' (modified)'); $(nproc) cores, $(uname -r);" \
    "an ssh_config of $BLOCKS Host blocks (+ 3 bastion aliases, 3 wildcard blocks, 1 Include; $(cat "$WORK/ssh_config" "$WORK"/ssh_config.d/*.conf | wc -l) lines) for $HOSTS hosts, $PER per block;" \
    "medians of $ROUNDS rounds$scoped_note$exec_note."
  echo
  echo "| command           | inventory                 |  hosts | wall s (min-max)  |  CPU s | CPU µs/host | RSS MiB | extra CPU                      |"
  echo "|-------------------|---------------------------|-------:|-------------------|-------:|------------:|--------:|--------------------------------|"
  row "capo hosts" "names + ssh_config" "$HOSTS" hosts-config hosts-none "no config"
  row "capo hosts" "names, no config" "$HOSTS" hosts-none
  row "capo hosts" "every value in inventory" "$HOSTS" hosts-inventory hosts-none "no config"
  if ((EXEC)); then
    row "capo exec -- true" "names + ssh_config" "$NODES" exec-config exec-inventory "inventory"
    row "capo exec -- true" "every value in inventory" "$NODES" exec-inventory
  fi
}

table
[[ -z "$OUT" ]] || table >"$OUT"
((FAILED == 0)) || die "$FAILED run(s) failed or had hosts that did not end ok"
