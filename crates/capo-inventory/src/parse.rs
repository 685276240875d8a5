//! Reading the inventory file: TOML structure, groups, hosts and host order.
//!
//! The file is read into toml's span-preserving `DeTable` rather than
//! through serde derive, so that every error, including unknown keys, can
//! point at the exact key or value that caused it.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use toml::de::{DeString, DeTable, DeValue};
use toml::Spanned;

use crate::error::{line_column, ErrorKind, InventoryError};
use crate::model::{Group, Host, Inventory};
use crate::range;
use crate::settings::{self, check_word, wrong_type, Layer, Sources, SETTING_KEYS};
use crate::ssh_config::{SshConfigFile, SshValues};

/// The most host names a whole inventory may expand to (before duplicates
/// are dropped), so that a file of many large ranges cannot exhaust memory.
pub(crate) const MAX_TOTAL_HOSTS: usize = 1_000_000;

const TOP_KEYS: [&str; 3] = ["defaults", "groups", "hosts"];

/// What errors need to know about the file being parsed.
pub(crate) struct Ctx<'a> {
    text: &'a str,
    path: &'a Path,
    /// The inventory file's directory, for relative local paths.
    pub base: &'a Path,
    /// `$HOME`, for `~`; `None` if unset.
    pub home: Option<&'a Path>,
}

impl Ctx<'_> {
    /// An error located at byte `offset` of the file.
    pub(crate) fn error(&self, offset: usize, kind: ErrorKind) -> InventoryError {
        InventoryError::new(self.path, Some(line_column(self.text, offset)), kind)
    }

    /// An error about the file as a whole.
    pub(crate) fn error_here(&self, kind: ErrorKind) -> InventoryError {
        InventoryError::new(self.path, None, kind)
    }
}

type Entry<'t, 'i> = (&'t Spanned<DeString<'i>>, &'t Spanned<DeValue<'i>>);

/// A `[groups.NAME]` table before hosts are resolved.
struct RawGroup {
    name: String,
    layer: Layer,
    /// Each `hosts` entry's offset with the names it expands to.
    patterns: Vec<(usize, Vec<String>)>,
}

/// A `[hosts.NAME]` table.
struct RawHost {
    name: String,
    offset: usize,
    address: Option<String>,
    layer: Layer,
}

pub(crate) fn parse(
    text: &str,
    path: &Path,
    home: Option<&Path>,
) -> Result<Inventory, InventoryError> {
    let cx = Ctx {
        text,
        path,
        base: path.parent().unwrap_or(Path::new("")),
        home,
    };
    let doc = DeTable::parse(text).map_err(|e| {
        let kind = ErrorKind::Syntax(e.message().to_owned());
        match e.span() {
            Some(span) => cx.error(span.start, kind),
            None => cx.error_here(kind),
        }
    })?;
    let mut defaults = Layer::default();
    let mut groups = Vec::new();
    let mut hosts = Vec::new();
    let mut ssh_config = SshConfigChoice::Default;
    for (key, value) in by_position(doc.get_ref()) {
        match key.get_ref().as_ref() {
            "defaults" => {
                let table = table(&cx, "`defaults`".into(), "a table", value)?;
                for (key, value) in by_position(table) {
                    if key.get_ref().as_ref() == "ssh_config" {
                        ssh_config = ssh_config_choice(&cx, value)?;
                    } else if !defaults.set(&cx, key, value)? {
                        let mut expected = SETTING_KEYS.to_vec();
                        expected.push("ssh_config");
                        return Err(unknown_key(&cx, key, "[defaults]", &expected));
                    }
                }
            }
            "groups" => groups = parse_groups(&cx, value)?,
            "hosts" => hosts = parse_hosts(&cx, value)?,
            _ => return Err(unknown_key(&cx, key, "the top-level table", &TOP_KEYS)),
        }
    }
    let ssh_config = load_ssh_config(&cx, ssh_config)?;
    build(&cx, path, &defaults, &groups, &hosts, ssh_config.as_ref())
}

/// The `ssh_config` key of `[defaults]`.
enum SshConfigChoice {
    /// Not set: `~/.ssh/config` if it exists.
    Default,
    /// `false`.
    Off,
    /// A path, with the offset of its value for errors.
    Path(std::path::PathBuf, usize),
}

fn ssh_config_choice(
    cx: &Ctx<'_>,
    value: &Spanned<DeValue<'_>>,
) -> Result<SshConfigChoice, InventoryError> {
    match value.get_ref() {
        DeValue::Boolean(false) => Ok(SshConfigChoice::Off),
        DeValue::Boolean(true) => Ok(SshConfigChoice::Default),
        DeValue::String(s) => Ok(SshConfigChoice::Path(
            settings::local_path(cx, "ssh_config", s, value.span().start)?,
            value.span().start,
        )),
        _ => Err(wrong_type(
            cx,
            "`ssh_config`".into(),
            "a path or false",
            value,
        )),
    }
}

/// Reads the `ssh_config` file once for the whole inventory. Returns it with the offset of
/// the inventory value that named it, if one did.
fn load_ssh_config(
    cx: &Ctx<'_>,
    choice: SshConfigChoice,
) -> Result<Option<(SshConfigFile, Option<usize>)>, InventoryError> {
    let (path, offset) = match choice {
        SshConfigChoice::Off => return Ok(None),
        SshConfigChoice::Path(path, offset) => (path, Some(offset)),
        SshConfigChoice::Default => match cx.home {
            // A missing default file is the common case, not an error: as for ssh.
            Some(home) if home.join(".ssh/config").is_file() => (home.join(".ssh/config"), None),
            _ => return Ok(None),
        },
    };
    match SshConfigFile::load(&path, cx.home) {
        Ok(file) => Ok(Some((file, offset))),
        Err(e) => Err(ssh_config_error(cx, offset, e)),
    }
}

pub(crate) fn ssh_config_error(
    cx: &Ctx<'_>,
    offset: Option<usize>,
    e: crate::ssh_config::SshConfigError,
) -> InventoryError {
    let kind = ErrorKind::SshConfig(e);
    match offset {
        Some(offset) => cx.error(offset, kind),
        None => cx.error_here(kind),
    }
}

fn parse_groups(
    cx: &Ctx<'_>,
    value: &Spanned<DeValue<'_>>,
) -> Result<Vec<RawGroup>, InventoryError> {
    let groups = table(
        cx,
        "`groups`".into(),
        "a table of [groups.NAME] tables",
        value,
    )?;
    let mut total = 0usize;
    let mut out = Vec::new();
    for (name_key, value) in by_position(groups) {
        let name: &str = name_key.get_ref();
        check_name(name).map_err(|reason| {
            cx.error(
                name_key.span().start,
                ErrorKind::BadName {
                    what: "group",
                    name: name.to_owned(),
                    reason,
                },
            )
        })?;
        let label = format!("[groups.{}]", toml_key(name));
        let body = table(cx, format!("`groups.{}`", toml_key(name)), "a table", value)?;
        let mut group = RawGroup {
            name: name.to_owned(),
            layer: Layer::default(),
            patterns: Vec::new(),
        };
        for (key, value) in by_position(body) {
            if key.get_ref().as_ref() == "hosts" {
                group.patterns = group_hosts(cx, &group.name, value, &mut total)?;
            } else if !group.layer.set(cx, key, value)? {
                let mut expected = vec!["hosts"];
                expected.extend(SETTING_KEYS);
                return Err(unknown_key(cx, key, &label, &expected));
            }
        }
        out.push(group);
    }
    Ok(out)
}

/// Expands a group's `hosts` list, entry by entry.
fn group_hosts(
    cx: &Ctx<'_>,
    group: &str,
    value: &Spanned<DeValue<'_>>,
    total: &mut usize,
) -> Result<Vec<(usize, Vec<String>)>, InventoryError> {
    let DeValue::Array(items) = value.get_ref() else {
        return Err(wrong_type(
            cx,
            "`hosts`".into(),
            "an array of host names",
            value,
        ));
    };
    let mut out = Vec::with_capacity(items.len());
    for item in items.iter() {
        let pattern = settings::string(cx, "hosts", item)
            .map_err(|_| wrong_type(cx, "each entry of `hosts`".into(), "a string", item))?;
        let offset = item.span().start;
        let names = range::expand(pattern).map_err(|reason| {
            cx.error(
                offset,
                ErrorKind::BadPattern {
                    pattern: pattern.to_owned(),
                    group: toml_key(group),
                    reason,
                },
            )
        })?;
        *total = total.saturating_add(names.len());
        if *total > MAX_TOTAL_HOSTS {
            return Err(cx.error(offset, ErrorKind::TooManyHosts(MAX_TOTAL_HOSTS)));
        }
        for name in &names {
            check_name(name).map_err(|reason| {
                cx.error(
                    offset,
                    ErrorKind::BadName {
                        what: "host",
                        name: name.clone(),
                        reason,
                    },
                )
            })?;
        }
        out.push((offset, names));
    }
    Ok(out)
}

fn parse_hosts(cx: &Ctx<'_>, value: &Spanned<DeValue<'_>>) -> Result<Vec<RawHost>, InventoryError> {
    let hosts = table(
        cx,
        "`hosts`".into(),
        "a table of [hosts.NAME] tables",
        value,
    )?;
    let mut out = Vec::new();
    for (name_key, value) in by_position(hosts) {
        let name: &str = name_key.get_ref();
        let offset = name_key.span().start;
        check_name(name).map_err(|reason| {
            cx.error(
                offset,
                ErrorKind::BadName {
                    what: "host",
                    name: name.to_owned(),
                    reason,
                },
            )
        })?;
        let label = format!("[hosts.{}]", toml_key(name));
        let body = table(cx, format!("`hosts.{}`", toml_key(name)), "a table", value)?;
        let mut host = RawHost {
            name: name.to_owned(),
            offset,
            address: None,
            layer: Layer::default(),
        };
        for (key, value) in by_position(body) {
            if key.get_ref().as_ref() == "address" {
                let address = settings::string(cx, "address", value)?;
                check_word(address).map_err(|reason| {
                    cx.error(
                        value.span().start,
                        ErrorKind::BadValue {
                            key: "address".into(),
                            value: format!("{address:?}"),
                            reason,
                        },
                    )
                })?;
                host.address = Some(address.to_owned());
            } else if !host.layer.set(cx, key, value)? {
                let mut expected = vec!["address"];
                expected.extend(SETTING_KEYS);
                return Err(unknown_key(cx, key, &label, &expected));
            }
        }
        out.push(host);
    }
    Ok(out)
}

fn build(
    cx: &Ctx<'_>,
    path: &Path,
    defaults: &Layer,
    groups: &[RawGroup],
    raw_hosts: &[RawHost],
    ssh_config: Option<&(SshConfigFile, Option<usize>)>,
) -> Result<Inventory, InventoryError> {
    // Every appearance of a host name with its byte offset; a stable sort
    // keeps a range's names in expansion order at their shared offset.
    let mut appearances: Vec<(usize, &str)> = Vec::new();
    for group in groups {
        for (offset, names) in &group.patterns {
            appearances.extend(names.iter().map(|n| (*offset, n.as_str())));
        }
    }
    appearances.extend(raw_hosts.iter().map(|h| (h.offset, h.name.as_str())));
    appearances.sort_by_key(|&(offset, _)| offset);

    let mut index: HashMap<&str, usize> = HashMap::new();
    let mut order: Vec<&str> = Vec::new();
    for (_, name) in appearances {
        index.entry(name).or_insert_with(|| {
            order.push(name);
            order.len() - 1
        });
    }
    if order.is_empty() {
        return Err(cx.error_here(ErrorKind::NoHosts));
    }

    let mut memberships: Vec<Vec<usize>> = vec![Vec::new(); order.len()];
    let mut out_groups = Vec::with_capacity(groups.len());
    for (g, group) in groups.iter().enumerate() {
        let mut seen = HashSet::new();
        let mut members = Vec::new();
        for name in group.patterns.iter().flat_map(|(_, names)| names) {
            if seen.insert(name.as_str()) {
                members.push(name.clone());
                if let Some(&h) = index.get(name.as_str()) {
                    memberships[h].push(g);
                }
            }
        }
        out_groups.push(Group {
            name: group.name.clone(),
            hosts: members,
        });
    }

    let host_tables: HashMap<&str, &RawHost> =
        raw_hosts.iter().map(|h| (h.name.as_str(), h)).collect();
    let mut hosts = Vec::with_capacity(order.len());
    for (h, name) in order.iter().enumerate() {
        let table = host_tables.get(name).copied();
        let sources = Sources {
            host_name: name,
            host: table.map(|t| &t.layer),
            groups: memberships[h]
                .iter()
                .map(|&g| (groups[g].name.as_str(), &groups[g].layer))
                .collect(),
            defaults,
        };
        // Asked by the inventory name, as `ssh NAME` would be.
        let ssh = match ssh_config {
            Some((file, offset)) => file
                .query(name)
                .map_err(|e| ssh_config_error(cx, *offset, e))?,
            None => SshValues::default(),
        };
        let settings = sources.resolve(cx, &ssh)?;
        hosts.push(Host {
            name: (*name).to_owned(),
            address: table
                .and_then(|t| t.address.clone())
                .or_else(|| ssh.host_name.clone())
                .unwrap_or_else(|| (*name).to_owned()),
            groups: memberships[h]
                .iter()
                .map(|&g| groups[g].name.clone())
                .collect(),
            settings,
        });
    }
    Ok(Inventory {
        path: path.to_path_buf(),
        hosts,
        groups: out_groups,
    })
}

/// A table's entries in file order. toml's map is sorted by key, but errors
/// should come out for the first problem in the file, and host order is
/// file order.
fn by_position<'t, 'i>(table: &'t DeTable<'i>) -> Vec<Entry<'t, 'i>> {
    let mut entries: Vec<Entry<'t, 'i>> = table.iter().collect();
    entries.sort_by_key(|(key, _)| key.span().start);
    entries
}

fn table<'v, 'i>(
    cx: &Ctx<'_>,
    what: String,
    expected: &'static str,
    value: &'v Spanned<DeValue<'i>>,
) -> Result<&'v DeTable<'i>, InventoryError> {
    match value.get_ref() {
        DeValue::Table(t) => Ok(t),
        _ => Err(wrong_type(cx, what, expected, value)),
    }
}

fn unknown_key(
    cx: &Ctx<'_>,
    key: &Spanned<DeString<'_>>,
    table: &str,
    expected: &[&'static str],
) -> InventoryError {
    let name: &str = key.get_ref();
    let hint = match name {
        "address" if table.starts_with("[groups.") || table == "[defaults]" => {
            Some("; `address` can only be set in a [hosts.NAME] table")
        }
        "ssh_config" if table != "[defaults]" => {
            Some("; `ssh_config` can only be set in [defaults]: it is read once for all hosts")
        }
        "hosts" if table.starts_with("[hosts.") || table == "[defaults]" => {
            Some("; hosts are listed in a [groups.NAME] table's `hosts`")
        }
        _ => None,
    };
    cx.error(
        key.span().start,
        ErrorKind::UnknownKey {
            key: name.to_owned(),
            table: table.to_owned(),
            expected: expected.to_vec(),
            hint,
        },
    )
}

/// Checks a host or group name. These names are typed in `--limit`, so
/// characters with a meaning there are refused.
fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("must not be empty".into());
    }
    if name.starts_with('-') {
        return Err("must not start with `-`".into());
    }
    if name.starts_with('!') {
        return Err("must not start with `!`, which excludes in --limit".into());
    }
    if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("must not contain whitespace or control characters".into());
    }
    if name.contains(',') {
        return Err("must not contain `,`, which separates --limit terms".into());
    }
    if name.contains(['*', '?']) {
        return Err("must not contain `*` or `?`, which are --limit wildcards".into());
    }
    // Only a group's `hosts` entries are expanded, and expansion removes the
    // brackets, so a bracket here is a range written where none is expanded.
    if name.contains(['[', ']']) {
        return Err(
            "must not contain `[` or `]`; ranges are only expanded in a group's `hosts` list"
                .into(),
        );
    }
    Ok(())
}

/// A name as it would be written as a TOML key, for messages such as
/// `[hosts."web01.example.com"]`.
pub(crate) fn toml_key(name: &str) -> String {
    let bare = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if bare {
        name.to_owned()
    } else {
        format!("{name:?}")
    }
}

/// The TOML type of a value, as error messages name it.
pub(crate) fn type_name(value: &DeValue<'_>) -> &'static str {
    match value {
        DeValue::String(_) => "string",
        DeValue::Integer(_) => "integer",
        DeValue::Float(_) => "float",
        DeValue::Boolean(_) => "boolean",
        DeValue::Datetime(_) => "datetime",
        DeValue::Array(_) => "array",
        DeValue::Table(_) => "table",
    }
}
