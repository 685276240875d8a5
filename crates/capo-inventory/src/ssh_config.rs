//! Reading OpenSSH's client configuration (`~/.ssh/config`, the `ssh_config` key) for the
//! settings capo understands, with OpenSSH's meaning or not at all.
//!
//! The file is parsed once per run with the `ssh2-config` crate and queried once per host
//! by the host's inventory name, as `ssh NAME` would. `ssh2-config` does not evaluate
//! `Match` (it folds a `Match` block's lines into the block before it), keeps the *last*
//! value of a directive repeated inside one block where OpenSSH keeps the first, and drops
//! directives it does not implement. So capo first scans the file itself, following
//! `Include`s, and refuses, naming file and line, any config whose evaluation it cannot
//! reproduce for a host of the inventory: a `Match` anywhere, a directive that changes what
//! a connection means and that capo does not honour ([`REFUSED`]), a `%` token capo does not
//! expand, or a directive repeated in one block.

use std::collections::HashMap;
use std::fs;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ssh2_config::{DefaultAlgorithms, HostClause, HostParams, ParseRule, SshConfig};
use wildmatch::WildMatch;

use crate::model::{HostKeyCheck, IdentityAgent, JumpHost};

/// Directives that change where or how capo would connect, which capo does not honour.
/// Each is refused where it applies to an inventory host, unless it has the value that
/// turns it off (the second element).
pub(crate) const REFUSED: [(&str, &str, Option<&str>); 6] = [
    ("proxycommand", "ProxyCommand", Some("none")),
    ("hostkeyalias", "HostKeyAlias", None),
    ("canonicalizehostname", "CanonicalizeHostname", Some("no")),
    ("knownhostscommand", "KnownHostsCommand", Some("none")),
    ("revokedhostkeys", "RevokedHostKeys", None),
    ("globalknownhostsfile", "GlobalKnownHostsFile", None),
];

/// Directives capo reads, with the `%` tokens it expands in each (OpenSSH's other tokens
/// are refused rather than passed on literally).
const READ: [(&str, &str, &[char]); 11] = [
    ("hostname", "HostName", &['%', 'h']),
    ("user", "User", &['%']),
    ("port", "Port", &[]),
    ("identityfile", "IdentityFile", &['%', 'd']),
    ("identitiesonly", "IdentitiesOnly", &[]),
    ("identityagent", "IdentityAgent", &['%', 'd']),
    ("connecttimeout", "ConnectTimeout", &[]),
    ("serveraliveinterval", "ServerAliveInterval", &[]),
    ("userknownhostsfile", "UserKnownHostsFile", &['%', 'd']),
    ("stricthostkeychecking", "StrictHostKeyChecking", &[]),
    ("proxyjump", "ProxyJump", &[]),
];

/// OpenSSH's limit on nested `Include`s.
const MAX_INCLUDE_DEPTH: usize = 16;

/// An `ssh_config` file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SshConfigError {
    /// A file (the config or one it includes) could not be read.
    #[error("cannot read ssh_config {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// `ssh2-config` rejected the file; its messages carry no line.
    #[error("cannot parse ssh_config {}: {reason}", path.display())]
    Parse {
        /// The file given as `ssh_config`.
        path: PathBuf,
        /// The parser's message.
        reason: String,
    },
    /// Something capo cannot evaluate as OpenSSH would.
    #[error("{}:{line}: {what}; capo cannot apply it as OpenSSH would, so it stops here: set `ssh_config = false` in [defaults] or move these settings into the inventory", file.display())]
    Refused {
        /// The file holding the line.
        file: PathBuf,
        /// 1-based line.
        line: usize,
        /// What is there and whom it concerns.
        what: String,
    },
    /// A value capo reads but cannot use.
    #[error("ssh_config {}: bad value {value:?} for `{directive}` (host {host:?}): {reason}", path.display())]
    BadValue {
        /// The file given as `ssh_config`.
        path: PathBuf,
        /// The directive.
        directive: &'static str,
        /// The value as written.
        value: String,
        /// The inventory host it was read for.
        host: String,
        /// Why.
        reason: &'static str,
    },
}

/// What an `ssh_config` says about one host; `None` where it says nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct SshValues {
    pub host_name: Option<String>,
    pub user: Option<String>,
    pub port: Option<u16>,
    pub identity_files: Option<Vec<PathBuf>>,
    pub identities_only: Option<bool>,
    pub identity_agent: Option<IdentityAgent>,
    pub connect_timeout: Option<Duration>,
    pub keepalive_interval: Option<Duration>,
    pub known_hosts: Option<PathBuf>,
    pub host_key_check: Option<HostKeyCheck>,
    /// `ProxyJump` hops, first hop first; empty for `ProxyJump none`.
    pub jump: Option<Vec<JumpHost>>,
}

/// A line capo cannot reproduce, and the `Host` patterns (outermost first) under which it
/// applies; an empty list applies to every host.
#[derive(Debug)]
struct Refusal {
    file: PathBuf,
    line: usize,
    scope: Vec<Vec<HostClause>>,
    /// The directive and why, for the message; `{host}` is filled in.
    what: String,
}

/// A parsed `ssh_config`, ready to be asked about each host.
#[derive(Debug)]
pub(crate) struct SshConfigFile {
    path: PathBuf,
    home: Option<PathBuf>,
    config: SshConfig,
    refusals: Vec<Refusal>,
    /// The fast way to ask, when it gives the same answers as `config.query`.
    matcher: Option<Matcher>,
}

/// `SshConfig::query` compiles every pattern of every Host block for every host asked
/// about (0.7 ms a host with 1,000 blocks). This asks the same blocks, merged the same way,
/// with patterns compiled once and exact names looked up in a map. It is only used when
/// no `Include` sits inside a `Host` block: then whether a block applies depends on its own
/// patterns alone (`ssh2-config` keeps the enclosing patterns of such includes privately).
#[derive(Debug)]
struct Matcher {
    /// Patterns without `*` or `?`: the blocks (index, negated) they name.
    exact: HashMap<String, Vec<(usize, bool)>>,
    /// The other patterns, with their block.
    wild: Vec<(usize, bool, WildMatch)>,
    defaults: DefaultAlgorithms,
}

impl Matcher {
    fn new(config: &SshConfig) -> Self {
        let mut exact: HashMap<String, Vec<(usize, bool)>> = HashMap::new();
        let mut wild = Vec::new();
        for (i, host) in config.get_hosts().iter().enumerate() {
            for c in &host.pattern {
                // OpenSSH matches host names ignoring case; the name asked is lowercased.
                let pattern = c.pattern.to_ascii_lowercase();
                if pattern.contains(['*', '?']) {
                    wild.push((i, c.negated, WildMatch::new(&pattern)));
                } else {
                    exact.entry(pattern).or_default().push((i, c.negated));
                }
            }
        }
        Matcher {
            exact,
            wild,
            defaults: DefaultAlgorithms::default(),
        }
    }

    /// What `config.query(name)` returns.
    fn query(&self, config: &SshConfig, name: &str) -> HostParams {
        let hosts = config.get_hosts();
        let mut positive = vec![false; hosts.len()];
        let mut negative = vec![false; hosts.len()];
        let mut mark = |i: usize, negated: bool| {
            if negated {
                negative[i] = true;
            } else {
                positive[i] = true;
            }
        };
        for &(i, negated) in self.exact.get(name).into_iter().flatten() {
            mark(i, negated);
        }
        for (i, negated, pattern) in &self.wild {
            if pattern.matches(name) {
                mark(*i, *negated);
            }
        }
        let mut params = HostParams::new(&self.defaults);
        for (i, host) in hosts.iter().enumerate() {
            if positive[i] && !negative[i] {
                params.overwrite_if_none(&host.params);
            }
        }
        params
    }
}

impl SshConfigFile {
    /// Reads and parses `path` and every file it includes. `home` expands `~` and anchors
    /// relative `Include`s (`~/.ssh/NAME`), as for OpenSSH's user config.
    pub(crate) fn load(path: &Path, home: Option<&Path>) -> Result<Self, SshConfigError> {
        let mut refusals = Vec::new();
        let mut scoped_include = false;
        let mut capitals = None;
        scan(
            path,
            home,
            &[],
            0,
            &mut refusals,
            &mut scoped_include,
            &mut capitals,
        )?;
        if let (true, Some((file, line))) = (scoped_include, capitals) {
            // ssh2-config's own query, needed then, matches case-sensitively.
            refusals.push(Refusal {
                file,
                line,
                scope: Vec::new(),
                what: "a `Host` pattern with capital letters, in a config with an `Include` inside a `Host` block (capo then cannot match it ignoring case as OpenSSH does)".into(),
            });
        }
        let file = fs::File::open(path).map_err(|source| SshConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let mut config = SshConfig::default();
        if let Some(home) = home {
            config = config.home_dir(home);
        }
        let config = config
            .parse(
                &mut BufReader::new(file),
                // Unknown directives are OpenSSH's business (ssh itself rejects the truly
                // unknown); the ones that matter to capo were checked by `scan`.
                ParseRule::ALLOW_UNKNOWN_FIELDS | ParseRule::ALLOW_UNSUPPORTED_FIELDS,
            )
            .map_err(|e| SshConfigError::Parse {
                path: path.to_path_buf(),
                reason: e.to_string(),
            })?;
        let matcher = (!scoped_include).then(|| Matcher::new(&config));
        Ok(Self {
            path: path.to_path_buf(),
            home: home.map(Path::to_path_buf),
            config,
            refusals,
            matcher,
        })
    }

    /// The settings for the host `ssh NAME` would connect to, or the first line that
    /// applies to it and that capo cannot reproduce.
    pub(crate) fn query(&self, name: &str) -> Result<SshValues, SshConfigError> {
        // ssh lowercases the name it is given before matching `Host` patterns (ignoring
        // their case too) and expanding `%h`.
        let name = &name.to_ascii_lowercase();
        if let Some(r) = self
            .refusals
            .iter()
            .find(|r| r.scope.iter().all(|clauses| matches(clauses, name)))
        {
            return Err(SshConfigError::Refused {
                file: r.file.clone(),
                line: r.line,
                what: r.what.replace("{host}", &format!("{name:?}")),
            });
        }
        let p: HostParams = match &self.matcher {
            Some(m) => m.query(&self.config, name),
            None => self.config.query(name),
        };
        let bad = |directive, value: &str, reason| SshConfigError::BadValue {
            path: self.path.clone(),
            directive,
            value: value.to_owned(),
            host: name.to_owned(),
            reason,
        };
        let unsupported = |key: &str| {
            p.unsupported_fields
                .get(key)
                .and_then(|args| args.first())
                .map(String::as_str)
        };
        let mut v = SshValues {
            host_name: p
                .host_name
                .as_deref()
                .map(|h| expand_tokens(h, &[('h', name)])),
            user: p.user.clone(),
            port: p.port,
            identity_files: p.identity_file.as_ref().map(|files| {
                files
                    .iter()
                    .map(|f| self.expand_path(&f.to_string_lossy()))
                    .collect()
            }),
            // OpenSSH's 0 means "no timeout" and "no keepalives"; capo always has both, so
            // 0 leaves capo's own default.
            connect_timeout: p.connect_timeout.filter(|d| !d.is_zero()),
            keepalive_interval: p.server_alive_interval.filter(|d| !d.is_zero()),
            ..SshValues::default()
        };
        // The same rules as the inventory's `address` and `user`: these reach logs, reports
        // and known_hosts lookups.
        if let Some(h) = &v.host_name {
            if crate::settings::check_word(h).is_err() {
                return Err(bad(
                    "HostName",
                    h,
                    "must be non-empty, not start with `-` and have no control characters",
                ));
            }
        }
        if let Some(u) = &v.user {
            if u.is_empty() || u.chars().any(char::is_control) {
                return Err(bad(
                    "User",
                    u,
                    "must be non-empty and have no control characters",
                ));
            }
        }
        if let Some(s) = unsupported("identitiesonly") {
            v.identities_only = Some(match s.to_ascii_lowercase().as_str() {
                "yes" | "true" => true,
                "no" | "false" => false,
                _ => return Err(bad("IdentitiesOnly", s, "expected yes or no")),
            });
        }
        if let Some(s) = unsupported("identityagent") {
            v.identity_agent = Some(match s {
                "none" => IdentityAgent::None,
                "SSH_AUTH_SOCK" | "$SSH_AUTH_SOCK" => IdentityAgent::Env,
                _ if s.starts_with('$') => {
                    return Err(bad(
                        "IdentityAgent",
                        s,
                        "capo reads only $SSH_AUTH_SOCK; set `identity_agent` in the inventory",
                    ))
                }
                _ => IdentityAgent::Path(self.expand_path(s)),
            });
        }
        if let Some(s) = unsupported("userknownhostsfile") {
            // `none`: no user known-hosts file, so no key is known.
            v.known_hosts = Some(if s == "none" {
                PathBuf::from("/dev/null")
            } else {
                self.expand_path(s)
            });
        }
        if let Some(s) = unsupported("stricthostkeychecking") {
            v.host_key_check = Some(match s.to_ascii_lowercase().as_str() {
                // capo never asks, so `ask` refuses what it would have asked about.
                "yes" | "ask" => HostKeyCheck::Strict,
                "accept-new" => HostKeyCheck::AcceptNew,
                "no" | "off" => HostKeyCheck::Off,
                _ => {
                    return Err(bad(
                        "StrictHostKeyChecking",
                        s,
                        "expected yes, ask, accept-new, no or off",
                    ))
                }
            });
        }
        if let Some(hops) = &p.proxy_jump {
            v.jump = Some(if hops.len() == 1 && hops[0] == "none" {
                Vec::new()
            } else {
                hops.iter()
                    .map(|h| {
                        let hop = h.strip_prefix("ssh://").unwrap_or(h);
                        hop.parse::<JumpHost>()
                            .map_err(|_| bad("ProxyJump", hop, "expected [user@]host[:port]"))
                    })
                    .collect::<Result<_, _>>()?
            });
        }
        Ok(v)
    }

    /// `~` and `%d` are the home directory, `%%` a `%`.
    fn expand_path(&self, s: &str) -> PathBuf {
        let home = self
            .home
            .as_deref()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_default();
        let s = expand_tokens(s, &[('d', &home)]);
        match s.strip_prefix('~') {
            Some(rest) if rest.is_empty() || rest.starts_with('/') => {
                PathBuf::from(format!("{home}{rest}"))
            }
            _ => PathBuf::from(s),
        }
    }
}

/// Replaces `%c` by its value for each `(c, value)` and `%%` by `%`. `scan` has refused
/// every other token.
fn expand_tokens(s: &str, values: &[(char, &str)]) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('%') => out.push('%'),
            Some(t) => match values.iter().find(|(k, _)| *k == t) {
                Some((_, v)) => out.push_str(v),
                None => {
                    out.push('%');
                    out.push(t);
                }
            },
            None => out.push('%'),
        }
    }
    out
}

/// OpenSSH's pattern-list match: some pattern matches and no negated one does.
fn matches(clauses: &[HostClause], name: &str) -> bool {
    let mut matched = false;
    for c in clauses {
        if c.intersects(name) {
            if c.negated {
                return false;
            }
            matched = true;
        }
    }
    matched
}

/// Splits a config line into its lowercased keyword and its arguments (`Key value`,
/// `Key=value`, `Key = value`), or `None` for a blank or comment line.
fn tokenize(line: &str) -> Option<(String, Vec<String>)> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let end = line
        .find(|c: char| c.is_whitespace() || c == '=')
        .unwrap_or(line.len());
    let (key, rest) = line.split_at(end);
    let rest = rest.trim_start();
    let rest = rest.strip_prefix('=').unwrap_or(rest);
    let mut args = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    let mut any = false;
    for c in rest.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                any = true;
            }
            '#' if !quoted => break,
            c if c.is_whitespace() && !quoted => {
                if any {
                    args.push(std::mem::take(&mut current));
                    any = false;
                }
            }
            c => {
                current.push(c);
                any = true;
            }
        }
    }
    if any {
        args.push(current);
    }
    Some((key.to_ascii_lowercase(), args))
}

/// The block being scanned: its `Host` patterns (none before the first `Host`), the
/// line that opened it, and the directives already seen in it.
struct Block {
    clauses: Option<Vec<HostClause>>,
    seen: HashMap<String, usize>,
}

/// Records every line of `path` (and of the files it includes) that capo cannot reproduce.
fn scan(
    path: &Path,
    home: Option<&Path>,
    scope: &[Vec<HostClause>],
    depth: usize,
    out: &mut Vec<Refusal>,
    scoped_include: &mut bool,
    capitals: &mut Option<(PathBuf, usize)>,
) -> Result<(), SshConfigError> {
    let text = fs::read_to_string(path).map_err(|source| SshConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let mut block = Block {
        clauses: None,
        seen: HashMap::new(),
    };
    let scope_here = |block: &Block| {
        let mut s = scope.to_vec();
        s.extend(block.clauses.clone());
        s
    };
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        let Some((key, args)) = tokenize(line) else {
            continue;
        };
        let refuse = |out: &mut Vec<Refusal>, what: String, block: &Block| {
            out.push(Refusal {
                file: path.to_path_buf(),
                line: line_no,
                scope: scope_here(block),
                what,
            });
        };
        match key.as_str() {
            "host" => {
                if capitals.is_none()
                    && args
                        .iter()
                        .any(|a| a.chars().any(|c| c.is_ascii_uppercase()))
                {
                    *capitals = Some((path.to_path_buf(), line_no));
                }
                let args: Vec<String> = args.iter().map(|a| a.to_ascii_lowercase()).collect();
                block = Block {
                    clauses: Some(
                        args.iter()
                            .map(|a| match a.strip_prefix('!') {
                                Some(p) => HostClause::new(p.to_owned(), true),
                                None => HostClause::new(a.clone(), false),
                            })
                            .collect(),
                    ),
                    seen: HashMap::new(),
                };
            }
            "match" => {
                // Whom a Match applies to depends on things capo cannot see the way ssh
                // does (exec, canonical names, the final pass), so it is refused outright.
                out.push(Refusal {
                    file: path.to_path_buf(),
                    line: line_no,
                    scope: scope.to_vec(),
                    what: "`Match` blocks are not supported".into(),
                });
                // Nothing below it can be attributed to a Host block any more; the
                // refusal above already stops every host.
                return Ok(());
            }
            "include" => {
                if depth >= MAX_INCLUDE_DEPTH {
                    refuse(
                        out,
                        format!("`Include` nested more than {MAX_INCLUDE_DEPTH} deep"),
                        &block,
                    );
                    continue;
                }
                let inner = scope_here(&block);
                *scoped_include |= !inner.is_empty();
                for arg in &args {
                    for file in include_files(arg, home) {
                        scan(
                            &file,
                            home,
                            &inner,
                            depth + 1,
                            out,
                            scoped_include,
                            capitals,
                        )?;
                    }
                }
            }
            _ => {
                if let Some((_, name, off)) = REFUSED.iter().find(|(k, _, _)| *k == key) {
                    let value = args.first().map(String::as_str).unwrap_or("");
                    if off.is_none_or(|off| !value.eq_ignore_ascii_case(off)) {
                        let value = args.join(" ");
                        refuse(
                            out,
                            format!("`{name} {value}` applies to host {{host}}, and capo does not support {name}"),
                            &block,
                        );
                    }
                } else if let Some((_, name, tokens)) = READ.iter().find(|(k, _, _)| *k == key) {
                    if let Some(bad) = args.iter().find_map(|a| unexpanded_token(a, tokens)) {
                        refuse(
                            out,
                            format!("`{name}` applies to host {{host}} and uses `{bad}`, which capo does not expand"),
                            &block,
                        );
                    }
                    // IdentityFile lines add up; every other directive keeps its first value.
                    if key != "identityfile" {
                        if let Some(first) = block.seen.get(&key) {
                            refuse(
                                out,
                                format!("`{name}` applies to host {{host}} and is repeated in one block (first at line {first}); OpenSSH uses the first value and the parser capo uses the last"),
                                &block,
                            );
                        } else {
                            block.seen.insert(key.clone(), line_no);
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

/// The first `%` token or `${` in `arg` that is not among `allowed`.
fn unexpanded_token(arg: &str, allowed: &[char]) -> Option<String> {
    if let Some(at) = arg.find("${") {
        let end = arg[at..].find('}').map_or(arg.len(), |e| at + e + 1);
        return Some(arg[at..end].to_owned());
    }
    let mut chars = arg.chars();
    while let Some(c) = chars.next() {
        if c == '%' {
            match chars.next() {
                Some(t) if allowed.contains(&t) => {}
                Some(t) => return Some(format!("%{t}")),
                None => return Some("%".into()),
            }
        }
    }
    None
}

/// The files an `Include` argument names, sorted as glob(3) sorts them: absolute paths as
/// they are, `~/` under the home directory, anything else under `~/.ssh/`.
fn include_files(arg: &str, home: Option<&Path>) -> Vec<PathBuf> {
    let escaped_home = home.map(|h| glob::Pattern::escape(&h.to_string_lossy()));
    let pattern = if arg.starts_with('/') {
        arg.to_owned()
    } else if let Some(rest) = arg.strip_prefix("~/") {
        match &escaped_home {
            Some(h) => format!("{h}/{rest}"),
            None => return Vec::new(),
        }
    } else {
        match &escaped_home {
            Some(h) => format!("{h}/.ssh/{arg}"),
            None => return Vec::new(),
        }
    };
    let Ok(paths) = glob::glob(&pattern) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = paths.filter_map(Result::ok).collect();
    files.sort();
    files
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};
    use std::time::Duration;

    use crate::parse::parse;
    use crate::{HostKeyCheck, IdentityAgent, Inventory};

    /// A home directory of the test's own, so the machine's ~/.ssh/config is never read.
    struct Home {
        dir: tempfile::TempDir,
    }

    impl Home {
        fn new() -> Self {
            let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
            Home { dir }
        }

        fn path(&self) -> &Path {
            self.dir.path()
        }

        fn write(&self, rel: &str, text: &str) -> PathBuf {
            let path = self.path().join(rel);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).unwrap_or_else(|e| panic!("mkdir: {e}"));
            }
            std::fs::write(&path, text).unwrap_or_else(|e| panic!("write: {e}"));
            path
        }

        fn parse(&self, inventory: &str) -> Result<Inventory, crate::InventoryError> {
            parse(
                inventory,
                &self.path().join("inventory.toml"),
                Some(self.path()),
            )
        }

        fn ok(&self, inventory: &str) -> Inventory {
            self.parse(inventory).unwrap_or_else(|e| panic!("{e}"))
        }

        fn err(&self, inventory: &str) -> String {
            match self.parse(inventory) {
                Ok(inv) => panic!("parsed, expected an error: {inv:?}"),
                Err(e) => e.to_string(),
            }
        }
    }

    const EVERYTHING: &str = "\
Host web1
    HostName 10.0.0.1
    User deploy
    Port 2201
    IdentityFile ~/.ssh/web_key
    IdentityFile /keys/second
    IdentitiesOnly yes
    IdentityAgent ~/agent.sock
    ConnectTimeout 7
    ServerAliveInterval 9
    UserKnownHostsFile ~/.ssh/kh_web /ignored/second
    StrictHostKeyChecking accept-new
    ProxyJump jump@bastion:2222,ssh://other
";

    #[test]
    fn proxy_jump_becomes_the_hosts_jump_unless_the_inventory_sets_one() {
        let home = Home::new();
        home.write(
            ".ssh/config",
            "Host web*\n    ProxyJump ops@bastion:2222\nHost db1\n    ProxyJump none\n",
        );
        let inv = home.ok("[hosts.web1]\n[hosts.web2]\njump = \"none\"\n[hosts.db1]\n");
        let hops = |i: usize| -> Vec<String> {
            inv.hosts[i]
                .settings
                .jump
                .iter()
                .map(|h| h.to_string())
                .collect()
        };
        assert_eq!(hops(0), ["ops@bastion:2222"]);
        assert!(hops(1).is_empty(), "the inventory's jump = \"none\" wins");
        assert!(hops(2).is_empty());
        home.write(".ssh/config", "Host web1\n    ProxyJump -oops\n");
        let e = home.err("[hosts.web1]\n");
        assert!(e.contains("ProxyJump") && e.contains("-oops"), "{e}");
    }

    #[test]
    fn every_directive_is_read_from_the_default_file() {
        let home = Home::new();
        home.write(".ssh/config", EVERYTHING);
        let inv = home.ok("[hosts.web1]\n[hosts.db1]\n");
        let web = &inv.hosts[0];
        let h = home.path();
        assert_eq!(web.address, "10.0.0.1");
        assert_eq!(web.settings.user, "deploy");
        assert_eq!(web.settings.port, 2201);
        assert_eq!(
            web.settings.identity_files,
            vec![h.join(".ssh/web_key"), PathBuf::from("/keys/second")]
        );
        assert!(web.settings.identities_only);
        assert_eq!(
            web.settings.identity_agent,
            IdentityAgent::Path(h.join("agent.sock"))
        );
        assert_eq!(web.settings.connect_timeout, Duration::from_secs(7));
        assert_eq!(web.settings.keepalive_interval, Duration::from_secs(9));
        assert_eq!(web.settings.known_hosts, h.join(".ssh/kh_web"));
        assert_eq!(web.settings.host_key_check, HostKeyCheck::AcceptNew);
        let hops: Vec<String> = web.settings.jump.iter().map(|h| h.to_string()).collect();
        assert_eq!(hops, ["jump@bastion:2222", "other"]);
        // A host no block matches keeps capo's built-ins.
        let db = &inv.hosts[1];
        assert_eq!(db.address, "db1");
        assert_eq!(db.settings.user, "root");
        assert_eq!(db.settings.port, 22);
        assert_eq!(db.settings.known_hosts, h.join(".ssh/known_hosts"));
        assert!(db.settings.jump.is_empty());
    }

    #[test]
    fn inventory_values_anywhere_beat_the_config() {
        let home = Home::new();
        home.write(".ssh/config", EVERYTHING);
        let inv = home.ok(
            "[defaults]\nport = 22\n\
             [groups.g]\nhosts = [\"web1\"]\nuser = \"from-group\"\n\
             [hosts.web1]\naddress = \"192.0.2.9\"\nhost_key_check = \"strict\"\nidentity_files = [\"/inv/key\"]\n",
        );
        let web = &inv.hosts[0];
        assert_eq!(web.address, "192.0.2.9");
        assert_eq!(web.settings.port, 22, "[defaults] beats ssh_config");
        assert_eq!(web.settings.user, "from-group", "a group beats ssh_config");
        assert_eq!(web.settings.host_key_check, HostKeyCheck::Strict);
        assert_eq!(web.settings.identity_files, vec![PathBuf::from("/inv/key")]);
        // What the inventory does not set still comes from the config.
        assert_eq!(web.settings.connect_timeout, Duration::from_secs(7));
    }

    #[test]
    fn first_match_wins_per_directive_and_identity_files_add_up() {
        let home = Home::new();
        home.write(
            ".ssh/config",
            "User top\n\
             Host web*\n  Port 2201\n  IdentityFile /k/web\n\
             Host web1 !web2\n  Port 9999\n  User late\n  HostName web1.example\n  IdentityFile /k/one\n\
             Host *\n  Port 22\n  HostName %h.fallback\n  StrictHostKeyChecking ask\n",
        );
        let inv = home.ok("[hosts.web1]\n[hosts.web2]\n");
        let (w1, w2) = (&inv.hosts[0], &inv.hosts[1]);
        assert_eq!(
            w1.settings.user, "top",
            "lines before the first Host apply first"
        );
        assert_eq!(w1.settings.port, 2201);
        assert_eq!(w1.address, "web1.example");
        assert_eq!(
            w1.settings.identity_files,
            vec![PathBuf::from("/k/web"), PathBuf::from("/k/one")]
        );
        assert_eq!(w1.settings.host_key_check, HostKeyCheck::Strict);
        assert_eq!(w2.address, "web2.fallback", "%h is the name asked for");
        assert_eq!(w2.settings.identity_files, vec![PathBuf::from("/k/web")]);
    }

    #[test]
    fn strict_host_key_checking_spellings() {
        for (value, want) in [
            ("yes", HostKeyCheck::Strict),
            ("ask", HostKeyCheck::Strict),
            ("accept-new", HostKeyCheck::AcceptNew),
            ("no", HostKeyCheck::Off),
            ("off", HostKeyCheck::Off),
        ] {
            let home = Home::new();
            home.write(".ssh/config", &format!("StrictHostKeyChecking {value}\n"));
            assert_eq!(
                home.ok("[hosts.a]\n").hosts[0].settings.host_key_check,
                want
            );
        }
        let home = Home::new();
        home.write(".ssh/config", "StrictHostKeyChecking maybe\n");
        assert_eq!(
            home.err("[hosts.a]\n"),
            format!(
                "{}: ssh_config {}: bad value \"maybe\" for `StrictHostKeyChecking` (host \"a\"): expected yes, ask, accept-new, no or off",
                home.path().join("inventory.toml").display(),
                home.path().join(".ssh/config").display()
            )
        );
    }

    #[test]
    fn include_with_a_glob_relative_to_dot_ssh_and_scoped_by_host() {
        let home = Home::new();
        home.write(
            ".ssh/config",
            "Include conf.d/*.conf\nHost db*\n  Include ~/db.inc\n",
        );
        home.write(".ssh/conf.d/10-web.conf", "Host web1\n  Port 2201\n");
        home.write(".ssh/conf.d/20-all.conf", "Host *\n  User everyone\n");
        home.write(".ssh/conf.d/ignored.txt", "Host *\n  Port 1\n");
        home.write("db.inc", "Port 5432\n");
        let inv = home.ok("[hosts.web1]\n[hosts.db1]\n[hosts.x]\n");
        assert_eq!(inv.hosts[0].settings.port, 2201);
        assert_eq!(inv.hosts[0].settings.user, "everyone");
        assert_eq!(inv.hosts[1].settings.port, 5432);
        assert_eq!(inv.hosts[2].settings.port, 22, "db.inc is only for db*");
    }

    #[test]
    fn match_is_refused_with_file_and_line_even_in_an_include() {
        let home = Home::new();
        home.write(".ssh/config", "Host a\n  Port 1\nInclude extra\n");
        let extra = home.write(
            ".ssh/extra",
            "# comment\n\nMatch host a exec \"true\"\n  Port 2\n",
        );
        assert_eq!(
            home.err("[hosts.a]\n"),
            format!(
                "{}: {}:3: `Match` blocks are not supported; capo cannot apply it as OpenSSH would, so it stops here: set `ssh_config = false` in [defaults] or move these settings into the inventory",
                home.path().join("inventory.toml").display(),
                extra.display()
            )
        );
        // `ssh_config = false` turns the file off altogether.
        let inv = home.ok("[defaults]\nssh_config = false\n[hosts.a]\n");
        assert_eq!(inv.hosts[0].settings.port, 22);
    }

    #[test]
    fn proxy_command_is_refused_only_where_it_applies() {
        let home = Home::new();
        let config = home.write(
            "cfg",
            "Host other\n  ProxyCommand nc %h %p\nHost a\n  ProxyCommand none\n  HostKeyAlias x\n",
        );
        let inv_path = home.path().join("inventory.toml");
        let text = format!(
            "[defaults]\nssh_config = {:?}\n[hosts.b]\n",
            config.display().to_string()
        );
        assert_eq!(home.ok(&text).hosts[0].address, "b");
        let text = format!(
            "[defaults]\nssh_config = {:?}\n[hosts.b]\n[hosts.other]\n",
            config.display().to_string()
        );
        assert_eq!(
            home.err(&text),
            format!(
                "{}:2:14: {}:2: `ProxyCommand nc %h %p` applies to host \"other\", and capo does not support ProxyCommand; capo cannot apply it as OpenSSH would, so it stops here: set `ssh_config = false` in [defaults] or move these settings into the inventory",
                inv_path.display(),
                config.display()
            )
        );
        let text = format!(
            "[defaults]\nssh_config = {:?}\n[hosts.a]\n",
            config.display().to_string()
        );
        assert!(home.err(&text).contains(&format!(
            "{}:5: `HostKeyAlias x` applies to host \"a\"",
            config.display()
        )),);
    }

    #[test]
    fn repeated_directive_and_unexpanded_tokens_are_refused() {
        let home = Home::new();
        let config = home.write(
            ".ssh/config",
            "Host a\n  Port 1\n  Port 2\nHost b\n  IdentityFile ~/.ssh/%r_key\n",
        );
        let e = home.err("[hosts.a]\n");
        assert!(
            e.contains(&format!(
                "{}:3: `Port` applies to host \"a\" and is repeated in one block (first at line 2)",
                config.display()
            )),
            "{e}"
        );
        let e = home.err("[hosts.b]\n");
        assert!(
            e.contains(&format!("{}:5: `IdentityFile` applies to host \"b\" and uses `%r`, which capo does not expand", config.display())),
            "{e}"
        );
    }

    #[test]
    fn missing_files() {
        let home = Home::new();
        // No ~/.ssh/config: nothing read, no error.
        assert_eq!(home.ok("[hosts.a]\n").hosts[0].settings.port, 22);
        // A missing explicit file is an error at the key's value.
        let e = home.err("[defaults]\nssh_config = \"nowhere\"\n[hosts.a]\n");
        assert_eq!(
            e,
            format!(
                "{}:2:14: cannot read ssh_config {}: No such file or directory (os error 2)",
                home.path().join("inventory.toml").display(),
                home.path().join("nowhere").display()
            )
        );
        let e = home.err("[defaults]\nssh_config = 3\n[hosts.a]\n");
        assert!(
            e.ends_with("`ssh_config` must be a path or false, found integer"),
            "{e}"
        );
        let e = home.err("[groups.g]\nhosts = [\"a\"]\nssh_config = false\n");
        assert!(e.contains("unknown key `ssh_config` in [groups.g]"), "{e}");
        assert!(
            e.ends_with(
                "; `ssh_config` can only be set in [defaults]: it is read once for all hosts"
            ),
            "{e}"
        );
    }

    #[test]
    fn the_fast_matcher_answers_as_ssh2_config_does() {
        let home = Home::new();
        let configs = [
            EVERYTHING,
            "User top\nHost web* !web3\n  Port 2\nHost web1 db?\n  Port 3\n  User x\nHost *\n  Port 4\n  IdentityFile /a\n",
            "Host a b\n  IdentityFile /1\nHost !b *\n  IdentityFile /2\n  HostName h\n",
        ];
        for (n, text) in configs.iter().enumerate() {
            let path = home.write(&format!("c{n}"), text);
            let file = super::SshConfigFile::load(&path, Some(home.path()))
                .unwrap_or_else(|e| panic!("{e}"));
            let Some(m) = &file.matcher else {
                panic!("no matcher for config {n}")
            };
            for name in ["web1", "web3", "web10", "db1", "db10", "a", "b", "c", "top"] {
                assert_eq!(
                    m.query(&file.config, name),
                    file.config.query(name),
                    "config {n}, host {name}"
                );
            }
        }
        // An Include inside a Host block: ssh2-config's own query is used.
        let path = home.write("scoped", "Host db*\n  Include ~/inc\n");
        home.write("inc", "Port 5\n");
        let file =
            super::SshConfigFile::load(&path, Some(home.path())).unwrap_or_else(|e| panic!("{e}"));
        assert!(file.matcher.is_none());
    }

    #[test]
    fn host_names_match_ignoring_case_as_in_openssh() {
        let home = Home::new();
        home.write(
            ".ssh/config",
            "Host WEB1\n  Port 2201\n  HostName %h.Example\n",
        );
        let inv = home.ok("[hosts.web1]\n[hosts.Web1x]\n");
        assert_eq!(inv.hosts[0].settings.port, 2201);
        assert_eq!(inv.hosts[0].address, "web1.Example");
        assert_eq!(inv.hosts[1].settings.port, 22);
        // With an Include inside a Host block capo cannot match capitals that way: refused.
        let config = home.write(
            ".ssh/config",
            "Host WEB1\n  Port 2201\nHost db*\n  Include inc\n",
        );
        home.write(".ssh/inc", "Port 5\n");
        let e = home.err("[hosts.web1]\n");
        assert!(
            e.contains(&format!(
                "{}:1: a `Host` pattern with capital letters",
                config.display()
            )),
            "{e}"
        );
    }

    #[test]
    fn values_the_parser_or_capo_rejects() {
        let home = Home::new();
        let config = home.write(".ssh/config", "Host a\n  Port twenty\n");
        assert_eq!(
            home.err("[hosts.a]\n"),
            format!(
                "{}: cannot parse ssh_config {}: expected port number",
                home.path().join("inventory.toml").display(),
                config.display()
            )
        );
        home.write(".ssh/config", "Host a\n  HostName -oProxyCommand=x\n");
        let e = home.err("[hosts.a]\n");
        assert!(
            e.ends_with("bad value \"-oProxyCommand=x\" for `HostName` (host \"a\"): must be non-empty, not start with `-` and have no control characters"),
            "{e}"
        );
    }

    /// Prints what reading a config costs: `cargo test --release -p capo-inventory
    /// ssh_config_cost -- --ignored --nocapture`.
    #[test]
    #[ignore = "a measurement, not a check"]
    fn ssh_config_cost_at_ten_thousand_hosts() {
        // 1,000 Host blocks for 10,000 hosts, each block naming its 10 hosts either with
        // one wildcard (`web0001-*`) or as 10 exact aliases, plus a `Host *` block.
        for style in ["wildcard", "exact"] {
            let home = Home::new();
            let mut config = String::new();
            for i in 0..1000 {
                let names = if style == "wildcard" {
                    format!("web{i:04}-*")
                } else {
                    (0..10)
                        .map(|j| format!("web{i:04}-{j}"))
                        .collect::<Vec<_>>()
                        .join(" ")
                };
                config.push_str(&format!(
                    "Host {names}\n  HostName 10.{}.{}.1\n  User u{i}\n  Port {}\n  IdentityFile ~/.ssh/k{i}\n\n",
                    i / 256,
                    i % 256,
                    2000 + i
                ));
            }
            config
                .push_str("Host *\n  ServerAliveInterval 5\n  StrictHostKeyChecking accept-new\n");
            home.write(".ssh/config", &config);
            let mut inventory = String::from("[groups.all]\nhosts = [\n");
            for i in 0..1000 {
                inventory.push_str(&format!("  \"web{i:04}-[0-9]\",\n"));
            }
            inventory.push_str("]\n");
            let off = format!("[defaults]\nssh_config = false\n{inventory}");
            let t = std::time::Instant::now();
            let plain = home.ok(&off);
            let without = t.elapsed();
            let t = std::time::Instant::now();
            let inv = home.ok(&inventory);
            let with = t.elapsed();
            assert_eq!(inv.hosts.len(), 10_000);
            assert_eq!(plain.hosts.len(), 10_000);
            assert_eq!(inv.hosts[9999].settings.port, 2999);
            assert_eq!(inv.hosts[9999].address, "10.3.231.1");
            let extra = with.saturating_sub(without);
            println!(
                "{style}: 10000 hosts, 1001 Host blocks: inventory without ssh_config {without:?}, with {with:?}: ssh_config costs {extra:?} ({:.1} µs per host)",
                extra.as_secs_f64() * 1e6 / 10_000.0
            );
        }
    }
}
