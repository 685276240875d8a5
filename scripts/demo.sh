#!/usr/bin/env bash
# A real rollout on a local demo fleet: installs what is missing, builds capo, brings up five
# hosts (each its own sshd, git checkout and Puppet state, on loopback), rolls out, rolls out a
# new commit to the web group, shows the reports, and tears the fleet down. Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

./scripts/install-deps.sh
cargo build --release --locked
capo="$root/target/release/capo"

dir=$(mktemp -d /tmp/capo-demo.XXXXXX)
trap '"$root/tests/fleet/fleet.sh" down --dir "$dir" --purge >/dev/null 2>&1 || true' EXIT
FLEET_QUIET=1 tests/fleet/fleet.sh up 5 --dir "$dir" >/dev/null
cd "$dir"

step() { printf '\n\033[1m$ %s\033[0m\n' "$*" >&2; }

step capo hosts -i inventory.toml
"$capo" hosts -i inventory.toml

step capo rollout -i inventory.toml --report report.json
"$capo" rollout -i inventory.toml --report report.json || true

msg="Welcome to the capo demo fleet (v2), rolled out $(date -u +%H:%M:%S)."
sha=$(FLEET_QUIET=1 "$root/tests/fleet/fleet.sh" commit --dir "$dir" -- \
  modules/capo_demo/files/message.txt "$msg" "Demo: new welcome message")
printf '\npushed %s to origin: "%s"\n' "${sha:0:7}" "$msg" >&2

step capo plan -i inventory.toml --show-diff
"$capo" plan -i inventory.toml --show-diff || true

step capo rollout -i inventory.toml -l web --report web.json
"$capo" rollout -i inventory.toml -l web --report web.json || true

step "cat /srv/managed/motd   # on host01, as the host sees it"
FLEET_QUIET=1 "$root/tests/fleet/fleet.sh" exec host01 --dir "$dir" -- cat /srv/managed/motd

step "summary of web.json"
python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(json.dumps(r["summary"])); [print(h["name"], h["status"], (h["rev_before"] or "-")[:7], "->", (h["rev_after"] or "-")[:7]) for h in r["hosts"]]' web.json
