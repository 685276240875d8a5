//! The settings keys: reading one layer (`[defaults]`, a group or a host)
//! from TOML, and merging layers into a host's final [`Settings`].

use std::ops::{Range, RangeInclusive};
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::de::{DeString, DeValue};
use toml::Spanned;

use crate::duration::{self, DurationError};
use crate::error::{ErrorKind, InventoryError};
use crate::model::{Become, HostKeyCheck, IdentityAgent, JumpHost, Puppetfile, Settings};
use crate::parse::{toml_key, type_name, Ctx};
use crate::ssh_config::SshValues;

/// Every settings key, in the order error messages list them.
pub(crate) const SETTING_KEYS: [&str; 28] = [
    "user",
    "port",
    "identity_files",
    "identity_agent",
    "identities_only",
    "known_hosts",
    "host_key_check",
    "connect_timeout",
    "command_timeout",
    "keepalive_interval",
    "keepalive_count",
    "connect_retries",
    "repo_dir",
    "repo_url",
    "lock",
    "state_dir",
    "remote",
    "branch",
    "environment",
    "manifest",
    "modulepath",
    "puppet",
    "puppet_args",
    "certname",
    "puppetfile",
    "become",
    "become_user",
    "jump",
];

const BUILTIN_USER: &str = "root";
const BUILTIN_PORT: u16 = 22;
const BUILTIN_IDENTITY_FILES: [&str; 3] = [".ssh/id_ed25519", ".ssh/id_ecdsa", ".ssh/id_rsa"];
const BUILTIN_KNOWN_HOSTS: &str = ".ssh/known_hosts";
const BUILTIN_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const BUILTIN_COMMAND_TIMEOUT: Duration = Duration::from_secs(30 * 60);
const BUILTIN_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(15);
const BUILTIN_KEEPALIVE_COUNT: u32 = 3;
const BUILTIN_CONNECT_RETRIES: u32 = 2;
const BUILTIN_REPO_DIR: &str = "/etc/puppetlabs/code/capo";
const BUILTIN_STATE_DIR: &str = "/var/lib/capo";
const BUILTIN_REMOTE: &str = "origin";
const BUILTIN_BRANCH: &str = "main";
const BUILTIN_ENVIRONMENT: &str = "production";
const BUILTIN_PUPPET: &str = "puppet";
const BUILTIN_BECOME_USER: &str = "root";

const KEEPALIVE_COUNT_RANGE: RangeInclusive<u32> = 1..=100;
const CONNECT_RETRIES_RANGE: RangeInclusive<u32> = 0..=10;

/// A value together with where its key was written, so that a group
/// conflict can point at the offending line.
#[derive(Debug, Clone)]
pub(crate) struct Val<T> {
    value: T,
    key_span: Range<usize>,
}

/// The settings one table sets; `None` means "not set here".
#[derive(Debug, Default)]
pub(crate) struct Layer {
    user: Option<Val<String>>,
    port: Option<Val<u16>>,
    identity_files: Option<Val<Vec<PathBuf>>>,
    identity_agent: Option<Val<IdentityAgent>>,
    identities_only: Option<Val<bool>>,
    known_hosts: Option<Val<PathBuf>>,
    host_key_check: Option<Val<HostKeyCheck>>,
    connect_timeout: Option<Val<Duration>>,
    command_timeout: Option<Val<Duration>>,
    keepalive_interval: Option<Val<Duration>>,
    keepalive_count: Option<Val<u32>>,
    connect_retries: Option<Val<u32>>,
    repo_dir: Option<Val<String>>,
    repo_url: Option<Val<String>>,
    lock: Option<Val<bool>>,
    state_dir: Option<Val<String>>,
    remote: Option<Val<String>>,
    branch: Option<Val<String>>,
    environment: Option<Val<String>>,
    manifest: Option<Val<String>>,
    modulepath: Option<Val<Vec<String>>>,
    puppet: Option<Val<String>>,
    puppet_args: Option<Val<Vec<String>>>,
    certname: Option<Val<String>>,
    puppetfile: Option<Val<Puppetfile>>,
    become_method: Option<Val<Become>>,
    become_user: Option<Val<String>>,
    jump: Option<Val<Vec<JumpHost>>>,
}

impl Layer {
    /// Reads `key = value` into this layer. Returns `Ok(false)` if `key` is
    /// not a settings key, so the caller can handle its own keys or report
    /// the key as unknown.
    pub(crate) fn set(
        &mut self,
        cx: &Ctx<'_>,
        key: &Spanned<DeString<'_>>,
        value: &Spanned<DeValue<'_>>,
    ) -> Result<bool, InventoryError> {
        let key_span = key.span();
        // A macro rather than a closure: the values have different types.
        macro_rules! at {
            ($value:expr) => {
                Some(Val {
                    value: $value,
                    key_span: key_span.clone(),
                })
            };
        }
        match key.get_ref().as_ref() {
            "user" => self.user = at!(text(cx, "user", value)?),
            "port" => self.port = at!(port(cx, value)?),
            "identity_files" => {
                let paths = string_array(cx, "identity_files", value)?
                    .into_iter()
                    .map(|(s, offset)| local_path(cx, "identity_files", s, offset))
                    .collect::<Result<_, _>>()?;
                self.identity_files = at!(paths);
            }
            "identity_agent" => {
                let s = string(cx, "identity_agent", value)?;
                // "none" as in OpenSSH's IdentityAgent; anything else is the socket's path.
                let agent = if s == "none" {
                    IdentityAgent::None
                } else {
                    IdentityAgent::Path(local_path(cx, "identity_agent", s, value.span().start)?)
                };
                self.identity_agent = at!(agent);
            }
            "identities_only" => self.identities_only = at!(boolean(cx, "identities_only", value)?),
            "known_hosts" => {
                let s = string(cx, "known_hosts", value)?;
                self.known_hosts = at!(local_path(cx, "known_hosts", s, value.span().start)?);
            }
            "host_key_check" => {
                let s = string(cx, "host_key_check", value)?;
                let check = s
                    .parse()
                    .map_err(|e: crate::model::ParseHostKeyCheckError| {
                        bad_value(cx, "host_key_check", s, value.span().start, e.to_string())
                    })?;
                self.host_key_check = at!(check);
            }
            "connect_timeout" => self.connect_timeout = at!(timeout(cx, "connect_timeout", value)?),
            "command_timeout" => self.command_timeout = at!(timeout(cx, "command_timeout", value)?),
            "keepalive_interval" => {
                self.keepalive_interval = at!(timeout(cx, "keepalive_interval", value)?);
            }
            "keepalive_count" => {
                self.keepalive_count = at!(integer(
                    cx,
                    "keepalive_count",
                    value,
                    KEEPALIVE_COUNT_RANGE
                )?);
            }
            "connect_retries" => {
                self.connect_retries = at!(integer(
                    cx,
                    "connect_retries",
                    value,
                    CONNECT_RETRIES_RANGE
                )?);
            }
            "repo_dir" => self.repo_dir = at!(text(cx, "repo_dir", value)?),
            // git clone's URL argument: a leading `-` would be read as an option.
            "repo_url" => self.repo_url = at!(word(cx, "repo_url", value)?),
            "lock" => self.lock = at!(boolean(cx, "lock", value)?),
            "state_dir" => self.state_dir = at!(text(cx, "state_dir", value)?),
            "remote" => self.remote = at!(word(cx, "remote", value)?),
            "branch" => self.branch = at!(word(cx, "branch", value)?),
            "environment" => {
                let s = string(cx, "environment", value)?;
                // Puppet's rule for environment names.
                if s.is_empty()
                    || !s
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
                {
                    return Err(bad_value(
                        cx,
                        "environment",
                        s,
                        value.span().start,
                        "must be a Puppet environment name: lowercase letters, digits and `_`"
                            .into(),
                    ));
                }
                self.environment = at!(s.to_owned());
            }
            "manifest" => self.manifest = at!(text(cx, "manifest", value)?),
            "modulepath" => {
                let mut dirs = Vec::new();
                for (s, offset) in string_array(cx, "modulepath", value)? {
                    check_text(cx, "modulepath", s, offset)?;
                    // capo joins the entries with `:` for Puppet, so a colon
                    // inside one would silently split it in two.
                    if s.contains(':') {
                        return Err(bad_value(
                            cx,
                            "modulepath",
                            s,
                            offset,
                            "entries must not contain `:`; list each directory separately".into(),
                        ));
                    }
                    dirs.push(s.to_owned());
                }
                self.modulepath = at!(dirs);
            }
            "puppet" => self.puppet = at!(text(cx, "puppet", value)?),
            "puppetfile" => {
                let s = string(cx, "puppetfile", value)?;
                let installer = s.parse().map_err(|e: crate::model::ParsePuppetfileError| {
                    bad_value(cx, "puppetfile", s, value.span().start, e.to_string())
                })?;
                self.puppetfile = at!(installer);
            }
            "puppet_args" => {
                let mut args = Vec::new();
                for (s, offset) in string_array(cx, "puppet_args", value)? {
                    // Arguments are passed as separate words and may be
                    // anything a shell word can be, except NUL, which no
                    // command line can carry.
                    if s.contains('\0') {
                        return Err(bad_value(
                            cx,
                            "puppet_args",
                            s,
                            offset,
                            "must not contain NUL characters".into(),
                        ));
                    }
                    args.push(s.to_owned());
                }
                self.puppet_args = at!(args);
            }
            "certname" => self.certname = at!(word(cx, "certname", value)?),
            "become" => {
                let s = string(cx, "become", value)?;
                let how = s.parse().map_err(|e: crate::model::ParseBecomeError| {
                    bad_value(cx, "become", s, value.span().start, e.to_string())
                })?;
                self.become_method = at!(how);
            }
            "become_user" => {
                let s = string(cx, "become_user", value)?;
                // It goes unquoted into the command line every login shell reads (sudo -u
                // USER), so only a plain user name.
                let plain = !s.is_empty()
                    && !s.starts_with('-')
                    && s.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
                if !plain {
                    return Err(bad_value(
                        cx,
                        "become_user",
                        s,
                        value.span().start,
                        "must be a user name: letters, digits, `_`, `.` and `-`, not starting with `-`".into(),
                    ));
                }
                self.become_user = at!(s.to_owned());
            }
            "jump" => self.jump = at!(jump(cx, value)?),
            _ => return Ok(false),
        }
        Ok(true)
    }
}

/// Where a host's settings come from, highest precedence first.
pub(crate) struct Sources<'a> {
    /// The host's name, for conflict messages.
    pub host_name: &'a str,
    /// The host's own `[hosts.NAME]` table, if it has one.
    pub host: Option<&'a Layer>,
    /// The host's groups with their names, in file order.
    pub groups: Vec<(&'a str, &'a Layer)>,
    /// `[defaults]`.
    pub defaults: &'a Layer,
}

impl Sources<'_> {
    /// Merges the layers into final settings. A key the inventory sets anywhere wins;
    /// where it sets none, `ssh`'s value (from `ssh_config`) is used, then the built-in
    /// default.
    pub(crate) fn resolve(
        &self,
        cx: &Ctx<'_>,
        ssh: &SshValues,
    ) -> Result<Settings, InventoryError> {
        let or_builtin = |v: Option<String>, builtin: &str| v.unwrap_or_else(|| builtin.to_owned());
        let identity_files = match self
            .pick(cx, "identity_files", |l| &l.identity_files)?
            .or_else(|| ssh.identity_files.clone())
        {
            Some(paths) => paths,
            None => BUILTIN_IDENTITY_FILES
                .iter()
                .map(|p| builtin_home(cx, "identity_files").map(|home| home.join(p)))
                .collect::<Result<_, _>>()?,
        };
        let known_hosts = match self
            .pick(cx, "known_hosts", |l| &l.known_hosts)?
            .or_else(|| ssh.known_hosts.clone())
        {
            Some(path) => path,
            None => builtin_home(cx, "known_hosts")?.join(BUILTIN_KNOWN_HOSTS),
        };
        Ok(Settings {
            user: or_builtin(
                self.pick(cx, "user", |l| &l.user)?
                    .or_else(|| ssh.user.clone()),
                BUILTIN_USER,
            ),
            port: self
                .pick(cx, "port", |l| &l.port)?
                .or(ssh.port)
                .unwrap_or(BUILTIN_PORT),
            identity_files,
            identity_agent: self
                .pick(cx, "identity_agent", |l| &l.identity_agent)?
                .or_else(|| ssh.identity_agent.clone())
                .unwrap_or(IdentityAgent::Env),
            identities_only: self
                .pick(cx, "identities_only", |l| &l.identities_only)?
                .or(ssh.identities_only)
                .unwrap_or(false),
            known_hosts,
            host_key_check: self
                .pick(cx, "host_key_check", |l| &l.host_key_check)?
                .or(ssh.host_key_check)
                .unwrap_or(HostKeyCheck::Strict),
            connect_timeout: self
                .pick(cx, "connect_timeout", |l| &l.connect_timeout)?
                .or(ssh.connect_timeout)
                .unwrap_or(BUILTIN_CONNECT_TIMEOUT),
            command_timeout: self
                .pick(cx, "command_timeout", |l| &l.command_timeout)?
                .unwrap_or(BUILTIN_COMMAND_TIMEOUT),
            keepalive_interval: self
                .pick(cx, "keepalive_interval", |l| &l.keepalive_interval)?
                .or(ssh.keepalive_interval)
                .unwrap_or(BUILTIN_KEEPALIVE_INTERVAL),
            keepalive_count: self
                .pick(cx, "keepalive_count", |l| &l.keepalive_count)?
                .unwrap_or(BUILTIN_KEEPALIVE_COUNT),
            connect_retries: self
                .pick(cx, "connect_retries", |l| &l.connect_retries)?
                .unwrap_or(BUILTIN_CONNECT_RETRIES),
            repo_dir: or_builtin(
                self.pick(cx, "repo_dir", |l| &l.repo_dir)?,
                BUILTIN_REPO_DIR,
            ),
            repo_url: self.pick(cx, "repo_url", |l| &l.repo_url)?,
            lock: self.pick(cx, "lock", |l| &l.lock)?.unwrap_or(true),
            state_dir: or_builtin(
                self.pick(cx, "state_dir", |l| &l.state_dir)?,
                BUILTIN_STATE_DIR,
            ),
            remote: or_builtin(self.pick(cx, "remote", |l| &l.remote)?, BUILTIN_REMOTE),
            branch: or_builtin(self.pick(cx, "branch", |l| &l.branch)?, BUILTIN_BRANCH),
            environment: or_builtin(
                self.pick(cx, "environment", |l| &l.environment)?,
                BUILTIN_ENVIRONMENT,
            ),
            manifest: self.pick(cx, "manifest", |l| &l.manifest)?,
            modulepath: self.pick(cx, "modulepath", |l| &l.modulepath)?,
            puppet: or_builtin(self.pick(cx, "puppet", |l| &l.puppet)?, BUILTIN_PUPPET),
            puppet_args: self
                .pick(cx, "puppet_args", |l| &l.puppet_args)?
                .unwrap_or_default(),
            certname: self.pick(cx, "certname", |l| &l.certname)?,
            puppetfile: self
                .pick(cx, "puppetfile", |l| &l.puppetfile)?
                .unwrap_or_default(),
            become_method: self
                .pick(cx, "become", |l| &l.become_method)?
                .unwrap_or_default(),
            become_user: or_builtin(
                self.pick(cx, "become_user", |l| &l.become_user)?,
                BUILTIN_BECOME_USER,
            ),
            jump: self
                .pick(cx, "jump", |l| &l.jump)?
                .or_else(|| ssh.jump.clone())
                .unwrap_or_default(),
        })
    }

    /// The value of one key by precedence, or `None` if no layer sets it.
    ///
    /// Groups have no order among themselves, so two of the host's groups
    /// setting different values is an error, unless the host's own table
    /// settles it.
    fn pick<T: Clone + PartialEq + Show>(
        &self,
        cx: &Ctx<'_>,
        key: &'static str,
        field: impl Fn(&Layer) -> &Option<Val<T>>,
    ) -> Result<Option<T>, InventoryError> {
        if let Some(v) = self.host.and_then(|l| field(l).as_ref()) {
            return Ok(Some(v.value.clone()));
        }
        let mut chosen: Option<(&str, &Val<T>)> = None;
        for &(group, layer) in &self.groups {
            let Some(v) = field(layer) else { continue };
            match chosen {
                None => chosen = Some((group, v)),
                Some((first_group, first)) if first.value != v.value => {
                    return Err(cx.error(
                        v.key_span.start,
                        ErrorKind::GroupConflict {
                            host: self.host_name.to_owned(),
                            host_key: toml_key(self.host_name),
                            key,
                            first_group: first_group.to_owned(),
                            first_value: first.value.show(),
                            second_group: group.to_owned(),
                            second_value: v.value.show(),
                        },
                    ));
                }
                Some(_) => {}
            }
        }
        Ok(chosen
            .map(|(_, v)| v)
            .or(field(self.defaults).as_ref())
            .map(|v| v.value.clone()))
    }
}

fn builtin_home<'a>(cx: &Ctx<'a>, key: &'static str) -> Result<&'a Path, InventoryError> {
    cx.home
        .ok_or_else(|| cx.error_here(ErrorKind::NoHome { key, builtin: true }))
}

/// How a value is quoted in a group-conflict message.
trait Show {
    fn show(&self) -> String;
}

impl Show for String {
    fn show(&self) -> String {
        format!("{self:?}")
    }
}

impl Show for bool {
    fn show(&self) -> String {
        self.to_string()
    }
}

impl Show for u16 {
    fn show(&self) -> String {
        self.to_string()
    }
}

impl Show for u32 {
    fn show(&self) -> String {
        self.to_string()
    }
}

impl Show for PathBuf {
    fn show(&self) -> String {
        format!("{:?}", self.display().to_string())
    }
}

impl Show for Puppetfile {
    fn show(&self) -> String {
        format!("\"{self}\"")
    }
}

impl Show for Become {
    fn show(&self) -> String {
        format!("\"{self}\"")
    }
}

impl Show for IdentityAgent {
    fn show(&self) -> String {
        match self {
            IdentityAgent::Env => "SSH_AUTH_SOCK".to_string(),
            IdentityAgent::None => "\"none\"".to_string(),
            IdentityAgent::Path(p) => p.show(),
        }
    }
}

impl Show for JumpHost {
    fn show(&self) -> String {
        format!("\"{self}\"")
    }
}

impl Show for HostKeyCheck {
    fn show(&self) -> String {
        format!("\"{self}\"")
    }
}

impl Show for Duration {
    fn show(&self) -> String {
        format!("\"{}\"", duration::format(*self))
    }
}

impl<T: Show> Show for Vec<T> {
    fn show(&self) -> String {
        let items: Vec<String> = self.iter().map(Show::show).collect();
        format!("[{}]", items.join(", "))
    }
}

pub(crate) fn wrong_type(
    cx: &Ctx<'_>,
    what: String,
    expected: &'static str,
    value: &Spanned<DeValue<'_>>,
) -> InventoryError {
    cx.error(
        value.span().start,
        ErrorKind::WrongType {
            what,
            expected,
            found: type_name(value.get_ref()),
        },
    )
}

fn bad_value(
    cx: &Ctx<'_>,
    key: &str,
    value: &str,
    offset: usize,
    reason: String,
) -> InventoryError {
    cx.error(
        offset,
        ErrorKind::BadValue {
            key: key.to_owned(),
            value: format!("{value:?}"),
            reason,
        },
    )
}

pub(crate) fn string<'v>(
    cx: &Ctx<'_>,
    key: &str,
    value: &'v Spanned<DeValue<'_>>,
) -> Result<&'v str, InventoryError> {
    match value.get_ref() {
        DeValue::String(s) => Ok(s.as_ref()),
        _ => Err(wrong_type(cx, format!("`{key}`"), "a string", value)),
    }
}

/// The strings of an array, each with the offset of its element.
fn string_array<'v>(
    cx: &Ctx<'_>,
    key: &str,
    value: &'v Spanned<DeValue<'_>>,
) -> Result<Vec<(&'v str, usize)>, InventoryError> {
    let DeValue::Array(items) = value.get_ref() else {
        return Err(wrong_type(
            cx,
            format!("`{key}`"),
            "an array of strings",
            value,
        ));
    };
    items
        .iter()
        .map(|item| match item.get_ref() {
            DeValue::String(s) => Ok((s.as_ref(), item.span().start)),
            _ => Err(wrong_type(
                cx,
                format!("each entry of `{key}`"),
                "a string",
                item,
            )),
        })
        .collect()
}

/// A free-form string: non-empty and free of control characters, which
/// would garble logs and remote command lines.
fn text(cx: &Ctx<'_>, key: &str, value: &Spanned<DeValue<'_>>) -> Result<String, InventoryError> {
    let s = string(cx, key, value)?;
    check_text(cx, key, s, value.span().start)?;
    Ok(s.to_owned())
}

fn check_text(cx: &Ctx<'_>, key: &str, s: &str, offset: usize) -> Result<(), InventoryError> {
    if s.is_empty() {
        return Err(bad_value(cx, key, s, offset, "must not be empty".into()));
    }
    if s.chars().any(char::is_control) {
        return Err(bad_value(
            cx,
            key,
            s,
            offset,
            "must not contain control characters".into(),
        ));
    }
    Ok(())
}

/// A single word that ends up as a command-line argument (git's remote and
/// branch, Puppet's certname): a leading `-` would be read as an option.
fn word(cx: &Ctx<'_>, key: &str, value: &Spanned<DeValue<'_>>) -> Result<String, InventoryError> {
    let s = string(cx, key, value)?;
    check_word(s).map_err(|reason| bad_value(cx, key, s, value.span().start, reason))?;
    Ok(s.to_owned())
}

/// Checks a value that must be one command-line word. Returns the reason it
/// is not. Whitespace and shell syntax are allowed on purpose: the value is
/// quoted on its way to the host, so git or Puppet get to reject it with their
/// own message, and nothing in it ever runs as a command.
pub(crate) fn check_word(s: &str) -> Result<(), String> {
    if s.is_empty() {
        Err("must not be empty".into())
    } else if s.starts_with('-') {
        Err("must not start with `-`".into())
    } else if s.chars().any(char::is_control) {
        Err("must not contain control characters".into())
    } else {
        Ok(())
    }
}

fn boolean(cx: &Ctx<'_>, key: &str, value: &Spanned<DeValue<'_>>) -> Result<bool, InventoryError> {
    match value.get_ref() {
        DeValue::Boolean(b) => Ok(*b),
        _ => Err(wrong_type(cx, format!("`{key}`"), "true or false", value)),
    }
}

/// `jump`: one `[user@]host[:port]`, a list of them (first hop first), or `"none"` (connect
/// directly, e.g. for a host under defaults that set a jump host).
fn jump(cx: &Ctx<'_>, value: &Spanned<DeValue<'_>>) -> Result<Vec<JumpHost>, InventoryError> {
    let entries = match value.get_ref() {
        DeValue::String(s) if s.as_ref() == "none" => return Ok(Vec::new()),
        DeValue::String(s) => vec![(s.as_ref(), value.span().start)],
        DeValue::Array(_) => {
            let entries = string_array(cx, "jump", value)?;
            if entries.is_empty() {
                return Err(bad_value(
                    cx,
                    "jump",
                    "[]",
                    value.span().start,
                    "list at least one jump host, or write \"none\" to connect directly".into(),
                ));
            }
            entries
        }
        _ => {
            return Err(wrong_type(
                cx,
                "`jump`".into(),
                "a string or an array of strings",
                value,
            ))
        }
    };
    entries
        .into_iter()
        .map(|(s, offset)| {
            if s == "none" {
                return Err(bad_value(
                    cx,
                    "jump",
                    s,
                    offset,
                    "\"none\" stands alone, not in a list".into(),
                ));
            }
            s.parse().map_err(|e: crate::model::ParseJumpHostError| {
                bad_value(cx, "jump", s, offset, e.to_string())
            })
        })
        .collect()
}

fn port(cx: &Ctx<'_>, value: &Spanned<DeValue<'_>>) -> Result<u16, InventoryError> {
    let n = integer(cx, "port", value, 1..=u32::from(u16::MAX))?;
    // In range, so this cannot fail; the fallback only avoids a panic path.
    Ok(u16::try_from(n).unwrap_or(u16::MAX))
}

/// An integer within `range`; anything else, including numbers too large
/// for any integer type, is reported as out of range, showing the number as
/// written.
fn integer(
    cx: &Ctx<'_>,
    key: &str,
    value: &Spanned<DeValue<'_>>,
    range: RangeInclusive<u32>,
) -> Result<u32, InventoryError> {
    let DeValue::Integer(n) = value.get_ref() else {
        return Err(wrong_type(cx, format!("`{key}`"), "an integer", value));
    };
    i128::from_str_radix(n.as_str(), n.radix())
        .ok()
        .and_then(|n| u32::try_from(n).ok())
        .filter(|n| range.contains(n))
        .ok_or_else(|| {
            cx.error(
                value.span().start,
                ErrorKind::BadValue {
                    key: key.to_owned(),
                    value: n.to_string(),
                    reason: format!("must be between {} and {}", range.start(), range.end()),
                },
            )
        })
}

fn timeout(
    cx: &Ctx<'_>,
    key: &str,
    value: &Spanned<DeValue<'_>>,
) -> Result<Duration, InventoryError> {
    let offset = value.span().start;
    let bad = |shown: String, reason| {
        cx.error(
            offset,
            ErrorKind::BadDuration {
                key: key.to_owned(),
                value: shown,
                reason,
            },
        )
    };
    let d = match value.get_ref() {
        DeValue::String(s) => duration::parse(s).map_err(|reason| bad(format!("{s:?}"), reason))?,
        // `connect_timeout = 10` is the likeliest mistake of all; answer it
        // with the same hint as the string "10".
        DeValue::Integer(n) if n.radix() == 10 && !n.as_str().starts_with('-') => {
            let digits = n.as_str().trim_start_matches('+').to_owned();
            return Err(bad(n.to_string(), DurationError::MissingUnit(digits)));
        }
        _ => {
            return Err(wrong_type(
                cx,
                format!("`{key}`"),
                "a duration string such as \"10s\"",
                value,
            ))
        }
    };
    if d.is_zero() {
        return Err(cx.error(
            offset,
            ErrorKind::BadValue {
                key: key.to_owned(),
                value: format!("{:?}", duration::format(d)),
                reason: "must be greater than zero".into(),
            },
        ));
    }
    Ok(d)
}

/// Resolves a local path: `~` and `~/...` against `$HOME`, relative paths
/// against the inventory file's directory, so that the same inventory works
/// whatever directory capo is run from.
pub(crate) fn local_path(
    cx: &Ctx<'_>,
    key: &'static str,
    s: &str,
    offset: usize,
) -> Result<PathBuf, InventoryError> {
    if s.is_empty() {
        return Err(bad_value(cx, key, s, offset, "must not be empty".into()));
    }
    if s.contains('\0') {
        return Err(bad_value(
            cx,
            key,
            s,
            offset,
            "must not contain NUL characters".into(),
        ));
    }
    if let Some(rest) = s.strip_prefix('~') {
        let rest = match rest.strip_prefix('/') {
            Some(rest) => rest,
            None if rest.is_empty() => rest,
            None => {
                return Err(bad_value(
                    cx,
                    key,
                    s,
                    offset,
                    "only `~` and `~/` are expanded, not `~user`".into(),
                ))
            }
        };
        let home = cx.home.ok_or_else(|| {
            cx.error(
                offset,
                ErrorKind::NoHome {
                    key,
                    builtin: false,
                },
            )
        })?;
        return Ok(if rest.is_empty() {
            home.to_path_buf()
        } else {
            home.join(rest)
        });
    }
    Ok(cx.base.join(s))
}
