# Web role: base class (inherited, so it may override the role file) plus a small document root.
class capo_demo::web inherits capo_demo {
  File["${capo_demo::root}/role"] {
    content => "web\n",
  }

  file { "${capo_demo::root}/www":
    ensure => directory,
    mode   => '0755',
  }

  file { "${capo_demo::root}/www/index.html":
    ensure => file,
    mode   => '0644',
    source => 'puppet:///modules/capo_demo/index.html',
  }
}
