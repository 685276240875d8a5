# Role: a database host.
class role::db {
  include profile::base
  include profile::db
}
