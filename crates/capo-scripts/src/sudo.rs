//! Running a command line through `sudo` (the inventory's `become = "sudo"`): the words sudo
//! gets in front of capo's `sh -c ...`, checked so that they need no quoting in any login shell.

/// How a command line runs through `sudo`: as which user, and whether sudo may ask for a
/// password (on stderr, with a prompt capo recognises) or must fail at once if it would.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sudo {
    user: String,
    prompt: Option<String>,
}

/// A word that cannot go into a sudo command line unquoted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SudoError {
    /// The target user is not a plain user name.
    #[error("cannot sudo to {0:?}: a user name must be letters, digits, `_`, `.` and `-`, not starting with `-`")]
    User(String),
    /// The password prompt has characters some shell or sudo itself (`%`) would read.
    #[error("sudo prompt {0:?} must be letters, digits, `-` and `:`")]
    Prompt(String),
}

impl Sudo {
    /// Runs as `user`. Without `prompt`: `sudo -n`, which fails at once where a password
    /// would be needed. With it: `sudo -S -p PROMPT`, which prints PROMPT on stderr and reads
    /// the password from stdin when (and only when) it needs one.
    pub fn new(user: &str, prompt: Option<&str>) -> Result<Sudo, SudoError> {
        let user_ok = !user.is_empty()
            && !user.starts_with('-')
            && user
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
        if !user_ok {
            return Err(SudoError::User(user.to_string()));
        }
        if let Some(p) = prompt {
            let ok = !p.is_empty()
                && !p.starts_with('-')
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b':'));
            if !ok {
                return Err(SudoError::Prompt(p.to_string()));
            }
        }
        Ok(Sudo {
            user: user.to_string(),
            prompt: prompt.map(str::to_string),
        })
    }

    /// The user commands run as.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The prompt sudo prints on stderr when it wants the password; `None` for `sudo -n`.
    pub fn prompt(&self) -> Option<&str> {
        self.prompt.as_deref()
    }

    /// `sudo -n -u USER -- ` or `sudo -S -p PROMPT -u USER -- `: every word checked by
    /// [`Sudo::new`], so none needs quoting. `--` ends sudo's options, so the `sh` after it
    /// is the command whatever follows.
    pub(crate) fn prefix(&self) -> String {
        match &self.prompt {
            None => format!("sudo -n -u {} -- ", self.user),
            Some(prompt) => format!("sudo -S -p {prompt} -u {} -- ", self.user),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_words_reach_the_command_line() {
        assert!(Sudo::new("root", None).is_ok());
        assert!(Sudo::new("svc-puppet.1", Some("capo-sudo-prompt-1a2b:")).is_ok());
        for user in ["", "-u", "a b", "r'oot", "#0", "a;b", "$USER", "é"] {
            assert_eq!(
                Sudo::new(user, None),
                Err(SudoError::User(user.into())),
                "{user}"
            );
        }
        for prompt in ["", "-x", "%p", "a b", "[sudo]", "it's"] {
            assert_eq!(
                Sudo::new("root", Some(prompt)),
                Err(SudoError::Prompt(prompt.into())),
                "{prompt}"
            );
        }
    }

    #[test]
    fn the_prefix_says_whether_sudo_may_ask() {
        let quiet = Sudo::new("root", None).expect("valid");
        assert_eq!(quiet.prefix(), "sudo -n -u root -- ");
        let asks = Sudo::new("app", Some("capo-pw:")).expect("valid");
        assert_eq!(asks.prefix(), "sudo -S -p capo-pw: -u app -- ");
    }
}
