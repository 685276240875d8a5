# Db role: base class (inherited, so it may override the role file) plus a config file.
class capo_demo::db inherits capo_demo {
  File["${capo_demo::root}/role"] {
    content => "db\n",
  }

  file { "${capo_demo::root}/db.conf":
    ensure  => file,
    mode    => '0600',
    content => "# managed by capo_demo::db\nlisten = 127.0.0.1\nport = 5432\n",
  }
}
