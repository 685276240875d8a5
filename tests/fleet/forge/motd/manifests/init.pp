# A stand-in for a public module, installed from the Puppetfile: writes a message of the day.
class motd (
  String $message = 'Welcome',
) {
  file { '/srv/managed/motd':
    ensure  => file,
    mode    => '0644',
    content => epp('motd/motd.epp', { 'message' => $message }),
  }
}
