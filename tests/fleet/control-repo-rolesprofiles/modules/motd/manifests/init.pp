# A stand-in for a vendored public module: writes a message of the day.
class motd (
  String $message = 'Welcome',
) {
  file { '/srv/managed/motd':
    ensure  => file,
    mode    => '0644',
    content => epp('motd/motd.epp', { 'message' => $message }),
  }
}
