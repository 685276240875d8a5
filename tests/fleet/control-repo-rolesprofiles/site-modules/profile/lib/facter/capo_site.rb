# A custom fact shipped in the control repo (modulepath lib/facter).
Facter.add(:capo_site) do
  setcode { 'capo-rolesprofiles' }
end
