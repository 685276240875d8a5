# Role: a web host.
class role::web {
  include profile::base
  include profile::web
}
