# Site manifest of the capo roles/profiles test control repo: classification only, by
# certname (set per host in /etc/puppet/puppet.conf); everything else is Hiera data.
# host01 and host02 are web hosts, every other host a db host (with the tests' 3-host fleet
# this matches the inventory's web and db groups).

node /^host0[1-2]$/ {
  include role::web
}

node default {
  include role::db
}
