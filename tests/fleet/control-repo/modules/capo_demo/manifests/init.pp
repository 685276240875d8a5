# Base class: applied to every host of the test fleet.
# Only manages plain files under /srv/managed, so it is idempotent:
# the first apply changes things (exit 2 with --detailed-exitcodes),
# a second apply on an unchanged repo changes nothing (exit 0).
class capo_demo (
  String $root = '/srv/managed',
) {
  file { $root:
    ensure => directory,
    mode   => '0755',
  }

  # Edit modules/capo_demo/files/message.txt to roll out a visible change.
  file { "${root}/motd":
    ensure  => file,
    mode    => '0644',
    content => epp('capo_demo/motd.epp', {
      'certname' => $trusted['certname'],
      'hostname' => $facts['networking']['hostname'],
      'message'  => file('capo_demo/message.txt'),
    }),
  }

  file { "${root}/role":
    ensure  => file,
    mode    => '0644',
    content => "base\n",
  }
}
