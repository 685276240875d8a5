# Profile: a database configuration file from Hiera data.
class profile::db (
  Integer $port,
) {
  file { '/srv/managed/db.conf':
    ensure  => file,
    mode    => '0644',
    content => "port = ${port}\n",
  }
}
