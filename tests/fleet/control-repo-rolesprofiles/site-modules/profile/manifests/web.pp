# Profile: a small static site, one file per page, all from Hiera data.
class profile::web (
  String        $greeting,
  Array[String] $pages,
) {
  file { '/srv/managed/www':
    ensure => directory,
    mode   => '0755',
  }

  $pages.each |String $page| {
    file { "/srv/managed/www/${page}.html":
      ensure  => file,
      mode    => '0644',
      content => "<html><body><h1>${greeting}</h1><p>${page}</p></body></html>\n",
    }
  }
}
