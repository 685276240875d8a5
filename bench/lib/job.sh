# shellcheck shell=bash
# bench/lib/job.sh -- the rollout job that bench/peers.sh and bench/latency.sh give every tool,
# and the check that a run reached every host. Sourced, not run; needs FLEET (the fleet's
# directory) and HOSTS (its host names, in order) set by the caller.

# The change a job run rolls out, and the shell line the peers run on each host: the same
# steps as capo's `sync` and `apply` (crates/capo-engine/src/steps/mod.rs) with the fleet
# inventory's settings (repo_dir /srv/puppet, remote origin, branch main, manifest
# manifests/site.pp, modulepath modules). Puppet's --detailed-exitcodes: 0 = no change,
# 2 = changed, anything else = failure.
# shellcheck disable=SC2034  # used by the scripts that source this file
MSG_PATH=modules/capo_demo/files/message.txt
# shellcheck disable=SC2016,SC2034  # expanded on the host, not here; used by the sourcing scripts
JOB_LINE='cd /srv/puppet && git pull --ff-only origin main && puppet apply --detailed-exitcodes --color=false --modulepath modules manifests/site.pp; rc=$?; [ $rc -eq 0 ] || [ $rc -eq 2 ]'

# Hosts among the first n whose checkout is not at SHA or whose motd lacks TOKEN (read from the
# hosts' files on this machine, after the run, untimed).
verify_job() {  # n sha token
  local n="$1" sha="$2" token="$3" h bad=0
  for h in "${HOSTS[@]:0:n}"; do
    if [[ "$(git -C "$FLEET/hosts/$h/checkout" rev-parse HEAD 2>/dev/null)" != "$sha" ]] ||
      ! grep -qF -- "$token" "$FLEET/hosts/$h/managed/motd" 2>/dev/null; then
      bad=$((bad + 1))
    fi
  done
  echo "$bad"
}
