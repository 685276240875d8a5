# Profile: what every host gets. The site fact comes from this module's lib/facter.
class profile::base {
  include motd

  file { '/srv/managed/site':
    ensure  => file,
    mode    => '0644',
    content => "${facts['capo_site']}\n",
  }
}
