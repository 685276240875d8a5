#!/usr/bin/env bash
# A real rollout on a local demo fleet: installs what is missing, builds capo, brings up five
# hosts (each its own sshd, git checkout and Puppet state, on loopback) with a control repo of
# the usual shape (roles/profiles, Hiera data, environment.conf, a Puppetfile), rolls it out,
# plans and rolls out a Hiera data change and a module bump, shows the reports, and tears the
# fleet down. Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

./scripts/install-deps.sh
cargo build --release --locked
capo="$root/target/release/capo"
fleet="$root/tests/fleet/fleet.sh"

dir=$(mktemp -d /tmp/capo-demo.XXXXXX)
trap '"$fleet" down --dir "$dir" --purge >/dev/null 2>&1 || true' EXIT
FLEET_QUIET=1 "$fleet" up 5 --repo rolesprofiles --dir "$dir" >/dev/null
cd "$dir"

step() { printf '\n\033[1m$ %s\033[0m\n' "$*" >&2; }
commit() {  # path content message: push a commit to the fleet's origin
  local sha
  sha=$(FLEET_QUIET=1 "$fleet" commit --dir "$dir" -- "$1" "$2" "$3")
  printf '\npushed %s to origin: %s\n' "${sha:0:7}" "$3" >&2
}

step capo hosts -i inventory.toml
"$capo" hosts -i inventory.toml

# Before anything: can a rollout run on every host? (changes nothing)
step capo check -i inventory.toml
"$capo" check -i inventory.toml || true

# host01-02 are web hosts (role::web), host03-05 db hosts; every host gets the motd module
# from the Puppetfile, installed by r10k on the first rollout (step `modules`).
step capo rollout -i inventory.toml --report report.json
"$capo" rollout -i inventory.toml --report report.json || true

# A change to Hiera data only: the plan runs the target revision as the Puppet environment,
# so it sees it (the web hosts would change, the db hosts not) and touches nothing.
greeting="Hello from capo, $(date -u +%H:%M:%S)"
commit data/common.yaml "$(sed "s/^profile::web::greeting: .*/profile::web::greeting: \"$greeting\"/" \
  work/data/common.yaml)
" "Demo: new greeting for the web pages"

step capo plan -i inventory.toml --show-diff
"$capo" plan -i inventory.toml --show-diff || true

# A module bumped in the Puppetfile: the rollout installs motd 1.1.0, then applies both.
commit Puppetfile "$(sed "s/v1.0.0/v1.1.0/" work/Puppetfile)
" "Demo: motd 1.1.0"

step capo rollout -i inventory.toml --canary 1 --report rollout.json
"$capo" rollout -i inventory.toml --canary 1 --report rollout.json || true

step "cat /srv/managed/www/index.html /srv/managed/motd   # on host01, as the host sees it"
FLEET_QUIET=1 "$fleet" exec host01 --dir "$dir" -- cat /srv/managed/www/index.html /srv/managed/motd

step "steps and Puppet's config version per host, from rollout.json"
python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(json.dumps(r["summary"])); [print(h["name"], h["status"], "steps:", ",".join(s["name"] for s in h["steps"]), "config_version:", ((h["puppet"] or {}).get("config_version") or "-")[:7]) for h in r["hosts"]]' rollout.json

# Where every host stands now, from what each one recorded of its last run.
step capo status -i inventory.toml
"$capo" status -i inventory.toml || true
