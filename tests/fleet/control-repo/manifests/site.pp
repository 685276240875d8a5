# Site manifest of the capo test fleet control repo.
# Nodes are matched by certname (set per host in /etc/puppet/puppet.conf).
# With the default 5-host fleet: host01-host03 are "web", host04-host05 "db".

node /^host0[1-3]$/ {
  include capo_demo::web
}

node /^host0[4-5]$/ {
  include capo_demo::db
}

node default {
  include capo_demo
}
