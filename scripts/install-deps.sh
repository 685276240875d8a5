#!/usr/bin/env bash
# Installs the system packages capo's demo and tests need on Debian 12, if they are missing:
# OpenSSH's server (each test host runs its own sshd), Puppet, git, and the tools the fleet
# harness uses (unshare/nsenter from util-linux, ss from iproute2, ps from procps), GNU time
# (/usr/bin/time) for the memory measurements in tests, shellcheck for the host-side scripts,
# the login shells those scripts are tested under (tcsh, which also provides csh; fish), and
# the Puppetfile module installers capo drives (r10k, g10k), sudo (the fleet's deploy users
# and capo's `become = "sudo"`) with openssl (the fleet hashes their passwords), and tmux (tests
# that need a real terminal: --confirm, passphrase and sudo prompts; ssh-agent and ssh-add
# come with openssh-client), systemd for `systemd-analyze verify` of pull mode's units, and
# python3-venv for the schema validators the sharding examples are checked with (below), and
# chromium, the headless browser that loads the HTML report offline (tests/html.rs,
# bench/html.sh).
set -euo pipefail

need=()
for pkg in openssh-server openssh-client puppet git util-linux iproute2 procps time shellcheck tcsh fish r10k g10k sudo openssl tmux systemd python3-venv chromium; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: missing packages (${need[*]}); run as root or install them first" >&2
    exit 1
  fi
  echo "install-deps: installing ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  # With recommends, as tested: facter and Puppet use several of them (ruby-selinux, dmidecode...).
  apt-get install -y -q "${need[@]}"
fi
command -v cargo >/dev/null || { echo "install-deps: cargo not found (install Rust, e.g. with rustup)" >&2; exit 1; }

# Validators for docs/examples (tests/shards.rs): GitHub's workflow schema (check-jsonschema
# vendors it) and the Kubernetes API schema (kubernetes-validate bundles it), pinned, from
# PyPI, in their own venv so that the system Python stays untouched.
tools=/opt/capo-tools
if ! [ -x "$tools/bin/check-jsonschema" ] || ! [ -x "$tools/bin/kubernetes-validate" ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: $tools missing; run as root to install the schema validators" >&2
    exit 1
  fi
  echo "install-deps: installing check-jsonschema and kubernetes-validate into $tools" >&2
  /usr/bin/python3 -m venv "$tools"
  "$tools/bin/pip" install -q check-jsonschema==0.39.0 kubernetes-validate==1.37.0
fi
